"""The usage annotation: how a kubelet's measurements reach everyone else.

Each kubelet writes what it measured (its node's and its pods' CPU and memory, with a
timestamp and window) as JSON in one annotation on its own Node object,
``metrics.netlab.io/usage`` (``netlab.node.kubelet.metrics`` builds it). Readers are
the API server's metrics.k8s.io (``kubectl top``), the scheduler's usage scoring, the
HPA's metrics and ``netlab top``; they share the name and the first parse here, so
the format has one definition. Pure.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from netlab.api.views import annotations_of

USAGE_ANNOTATION = "metrics.netlab.io/usage"


def read_usage(node: dict[str, Any]) -> Optional[dict[str, Any]]:
    """A Node's parsed usage annotation (``{"node": {...}, "pods": {...}, "timestamp",
    "window"}``); None when absent or unreadable."""
    text = annotations_of(node).get(USAGE_ANNOTATION)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("node"), dict) else None


def container_usages(entry: dict[str, Any], names: list[str]
                     ) -> list[tuple[str, dict[str, Any]]]:
    """A pod entry's usage per container, as (name, ``{"cpu", "memory"}``): each
    container's own where the kubelet measured it (its cgroup), in the pod's order
    (``names``: the pod's containers, when known); otherwise the pod's whole usage,
    under the container's name for a one-container pod, else as ``(pod)``."""
    measured = entry.get("containers")
    if isinstance(measured, dict) and measured:
        order = [n for n in names if n in measured] + sorted(
            n for n in measured if n not in names)
        return [(n, measured[n]) for n in order if isinstance(measured[n], dict)]
    whole = {"cpu": entry.get("cpu", "0"), "memory": entry.get("memory", "0")}
    return [(names[0] if len(names) == 1 else "(pod)", whole)]
