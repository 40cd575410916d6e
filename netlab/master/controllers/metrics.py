"""Pod usage for the HPA, as the kubelets publish it on their Node objects.

netlab has no metrics-server. Each kubelet measures its pods (CPU in
millicores over a window, memory working set) and, every metrics period,
writes one annotation on its own Node, ``metrics.netlab.io/usage``::

    {"timestamp": "2024-05-01T12:00:10Z", "window": "10s",
     "node": {"cpu": "250m", "memory": "123456Ki"},
     "pods": {"<namespace>/<name>": {"uid": "...", "cpu": "120m", "memory": "2048Ki"}}}

``UsageIndex`` follows the Node informer and keeps the latest sample of every
pod, parsed once per Node update, so the HPA reads usage the same way it
reads everything else: from a cache fed by a watch. This module only reads
the documented annotation; it does not import the kubelet.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from netlab.api.timefmt import parse_time
from netlab.api.usage import USAGE_ANNOTATION
from netlab.api.views import annotations_of, meta_of
from netlab.client.informer import Informer, object_key
from netlab.units import QuantityError, cpu_millis, memory_bytes

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


@dataclass(frozen=True)
class PodUsage:
    uid: str
    cpu_millis: int
    memory_bytes: int
    timestamp: float  # epoch seconds, the end of the window
    window: float  # seconds
    node: str


def parse_window(text: Any) -> float:
    m = _DURATION.match(str(text or "").strip())
    if not m:
        return 0.0
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value * 60 if m.group(2) == "m" else value


def parse_usage(node: dict[str, Any]) -> dict[str, PodUsage]:
    """Every pod sample in a Node's usage annotation ("ns/name" -> usage); {} if none."""
    meta = meta_of(node)
    text = (meta.get("annotations") or {}).get(USAGE_ANNOTATION)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    when = parse_time(data.get("timestamp")) if isinstance(data, dict) else None
    if when is None:
        return {}
    window = parse_window(data.get("window"))
    out = {}
    for key, usage in (data.get("pods") or {}).items():
        if not isinstance(usage, dict):
            continue
        try:
            cpu = cpu_millis(usage.get("cpu", "0"))
            memory = memory_bytes(usage.get("memory", "0"))
        except (QuantityError, ValueError, TypeError):
            continue
        out[key] = PodUsage(str(usage.get("uid", "")), cpu, memory, when.timestamp(), window,
                            meta.get("name", ""))
    return out


class UsageIndex:
    """The latest usage sample of every pod, from all Nodes' annotations."""

    def __init__(self, nodes: Informer) -> None:
        self._by_node: dict[str, dict[str, PodUsage]] = {}
        self._annotation: dict[str, Optional[str]] = {}
        nodes.add_handler(self._on_node)

    def _on_node(self, kind: str, node: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        key = object_key(node)
        if kind == "DELETED":
            self._by_node.pop(key, None)
            self._annotation.pop(key, None)
            return
        text = annotations_of(node).get(USAGE_ANNOTATION)
        if self._annotation.get(key) == text and key in self._by_node:
            return  # a heartbeat: the usage did not change
        self._annotation[key] = text
        self._by_node[key] = parse_usage(node)

    def pod(self, namespace: str, name: str, uid: str = "") -> Optional[PodUsage]:
        """The newest sample of a pod (a pod moved between nodes may appear twice)."""
        best = None
        for samples in self._by_node.values():
            sample = samples.get(f"{namespace}/{name}")
            if sample is None or (uid and sample.uid and sample.uid != uid):
                continue
            if best is None or sample.timestamp > best.timestamp:
                best = sample
        return best
