"""The node lifecycle rules, as pure functions: what a node's conditions, taints and
pods should become, given when its kubelet was last heard from.

These are Kubernetes' node lifecycle controller's rules (``tryUpdateNodeHealth``,
the NoSchedule tainting pass, the NoExecute taint manager), reduced to data in,
data out so each one is unit-tested:

- ``unknown_conditions``: a node not heard from for the grace period gets
  Ready (and the pressure conditions the kubelet reported) ``Unknown``, reason
  ``NodeStatusUnknown``, "Kubelet stopped posting node status."; the last
  heartbeat time is kept, as it is the evidence;
- ``desired_taints``: Ready=Unknown -> ``node.kubernetes.io/unreachable``,
  Ready=False -> ``node.kubernetes.io/not-ready``, each as NoSchedule (no new
  pods) and NoExecute (evict the running ones), with ``timeAdded``; a cordoned
  node gets ``node.kubernetes.io/unschedulable:NoSchedule``. Everything else
  on the node's taint list is left as it is;
- ``eviction_time``: when a pod on a NoExecute-tainted node must go: at once
  for a taint it does not tolerate, after the smallest ``tolerationSeconds``
  of the tolerations that match, never if one matches without a limit. The
  clock starts at the taint's ``timeAdded``, which is stored in the API, so a
  restarted controller evicts at exactly the same moment. A pod with no
  toleration at all for the not-ready/unreachable taints (the API server adds
  one to every pod, see DefaultTolerationSeconds) is given ``eviction_timeout``
  rather than evicted at once: the lab's "evict after a further timeout".

Durations in flags are parsed by ``netlab.units``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Optional

from netlab.api.timefmt import parse_time
from netlab.api.views import node_spec, node_status, pod_spec
from netlab.master.scheduler.filters import tolerates

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
OWNED_TAINTS = (NOT_READY_TAINT, UNREACHABLE_TAINT, UNSCHEDULABLE_TAINT)
# The conditions a kubelet reports that turn Unknown with its silence.
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
STATUS_UNKNOWN_REASON = "NodeStatusUnknown"
STATUS_UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_UPDATED_REASON = "NodeStatusNeverUpdated"
NEVER_UPDATED_MESSAGE = "Kubelet never posted node status."


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def condition(node: Mapping[str, Any], kind: str = "Ready") -> Optional[dict[str, Any]]:
    for cond in _list(node_status(node).get("conditions")):
        if cond.get("type") == kind:
            return cond
    return None


def ready_status(node: Mapping[str, Any]) -> Optional[str]:
    """"True", "False", "Unknown", or None when the kubelet never posted it."""
    cond = condition(node)
    return str(cond.get("status")) if cond else None


def heartbeat_of(node: Mapping[str, Any]) -> tuple[Optional[str], Optional[str]]:
    """What changes each time the kubelet posts status: (Ready's status, lastHeartbeatTime)."""
    cond = condition(node)
    if cond is None:
        return None, None
    return cond.get("status"), cond.get("lastHeartbeatTime")


def unknown_conditions(node: Mapping[str, Any], now: str) -> list[dict[str, Any]]:
    """The conditions to write when the kubelet has gone silent (a strategic merge list)."""
    out = []
    present = {c.get("type"): c for c in _list(node_status(node).get("conditions"))}
    for kind in KUBELET_CONDITIONS:
        cond = present.get(kind)
        if cond is None and kind != "Ready":
            continue
        if cond is not None and cond.get("status") == "Unknown":
            continue
        if cond is None:
            out.append({"type": kind, "status": "Unknown", "reason": NEVER_UPDATED_REASON,
                        "message": NEVER_UPDATED_MESSAGE, "lastHeartbeatTime": now,
                        "lastTransitionTime": now})
        else:
            out.append({**cond, "status": "Unknown", "reason": STATUS_UNKNOWN_REASON,
                        "message": STATUS_UNKNOWN_MESSAGE, "lastTransitionTime": now})
    return out


def desired_taints(node: Mapping[str, Any], no_execute: bool, now: str) -> list[dict[str, Any]]:
    """The node's taint list as this controller wants it.

    ``no_execute`` False (the cluster looks disrupted, see the controller) keeps
    the NoExecute taints off, so nothing is evicted.
    """
    spec = node_spec(node)
    current = _list(spec.get("taints"))
    kept = [t for t in current if t.get("key") not in OWNED_TAINTS]
    status = ready_status(node)
    wanted: list[tuple[str, str]] = []
    if status != "True":
        key = UNREACHABLE_TAINT if status == "Unknown" else NOT_READY_TAINT
        wanted.append((key, "NoSchedule"))
        if no_execute and status is not None:
            wanted.append((key, "NoExecute"))
    if spec.get("unschedulable") is True:
        wanted.append((UNSCHEDULABLE_TAINT, "NoSchedule"))
    existing = {(t.get("key"), t.get("effect")): t for t in current}
    for key, effect in wanted:
        taint = existing.get((key, effect))
        if taint is None:
            taint = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = now  # the eviction clock starts here
        kept.append(taint)
    return kept


def same_taints(a: Iterable[Mapping[str, Any]], b: Iterable[Mapping[str, Any]]) -> bool:
    def canon(taints: Iterable[Mapping[str, Any]]) -> list:
        return sorted(tuple(sorted((k, str(v)) for k, v in t.items())) for t in taints)
    return canon(a) == canon(b)


def eviction_time(pod: Mapping[str, Any], taints: Iterable[Mapping[str, Any]],
                  eviction_timeout: float, observed: float) -> Optional[float]:
    """Epoch seconds at which ``pod`` must be evicted from a node with ``taints``; None
    if never. ``observed`` stands in for a taint's missing ``timeAdded``."""
    tolerations = _list(pod_spec(pod).get("tolerations"))
    due: Optional[float] = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        added = parse_time(taint.get("timeAdded"))
        start = added.timestamp() if added else observed
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            wait = eviction_timeout if taint.get("key") in (NOT_READY_TAINT,
                                                            UNREACHABLE_TAINT) else 0.0
        else:
            limits: list[Any] = [t.get("tolerationSeconds") for t in matching]
            if any(not isinstance(s, (int, float)) or isinstance(s, bool) for s in limits):
                continue  # tolerated for ever
            wait = max(0.0, float(min(limits)))
        when = start + wait
        due = when if due is None else min(due, when)
    return due


