"""PodDisruptionBudget rules shared by the eviction subresource and the disruption controller.

Both sides must agree on which pods a budget covers, which pods count as healthy, and how
the ``DisruptionAllowed`` condition reads (pkg/apis/policy/helper and
pkg/controller/disruption in Kubernetes). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Optional

from netlab.api import selectors
from netlab.api.timefmt import format_time
from netlab.api.views import dict_at, meta_of, spec_of

Obj = Mapping[str, Any]

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
# How long an eviction that the PDB recorded in status.disruptedPods keeps the pod out of
# the healthy count while its deletion is under way (upstream's DeletionTimeout).
DELETION_TIMEOUT_SECONDS = 120
# Refuse evictions while this many are recorded but not yet seen deleted (MaxDisruptedPodSize).
MAX_DISRUPTED_PODS = 2000


def pod_ready(pod: Obj) -> bool:
    status = dict_at(pod, "status")
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])


def selects(pdb: Obj, pod: Obj) -> bool:
    """Whether ``pdb`` covers ``pod``: same namespace, and a non-empty selector that matches.

    In policy/v1 an empty selector would select every pod; the eviction path and the
    controller's pod lookup both refuse to let a nil/empty selector cover anything, as
    upstream's ``getPodDisruptionBudgets`` does.
    """
    pmeta = meta_of(pod)
    if meta_of(pdb).get("namespace") != pmeta.get("namespace"):
        return False
    selector = spec_of(pdb).get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels")
                                              or selector.get("matchExpressions")):
        return False
    try:
        parsed = selectors.label_selector_from_object(selector)
    except selectors.SelectorError:
        return False
    return parsed.matches(pmeta.get("labels") or {})


def set_allowed_condition(status: dict[str, Any], when: datetime, reason: Optional[str] = None,
                          message: str = "") -> None:
    """``UpdateDisruptionAllowedCondition``: True/SufficientPods while disruptions remain,
    False/InsufficientPods otherwise (or False with ``reason``, e.g. SyncFailed)."""
    allowed = (status.get("disruptionsAllowed") or 0) > 0 and reason is None
    value = "True" if allowed else "False"
    reason = reason or (SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS)
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    current = next((c for c in conditions if c.get("type") == DISRUPTION_ALLOWED), None)
    observed = status.get("observedGeneration")
    if current is None:
        current = {"type": DISRUPTION_ALLOWED, "lastTransitionTime": format_time(when)}
        conditions.append(current)
    elif current.get("status") != value:
        current["lastTransitionTime"] = format_time(when)
    current.update(status=value, reason=reason, message=message)
    if observed is not None:
        current["observedGeneration"] = observed
    status["conditions"] = conditions
