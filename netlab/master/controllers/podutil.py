"""What controllers need to know about pods: liveness, readiness, creation, deletion order.

Kubernetes' controllers share a handful of pod predicates (``controller_utils.go``,
``podutil``): a pod is *active* until it is being deleted or has finished; *ready*
when its Ready condition is True; *available* once it has been ready for the
owner's ``minReadySeconds``. They also share how a pod is stamped out of a
template and, when there are too many, which pods go first. All of it is pure
(objects in, answers out, ``now`` passed in), so it is unit-tested directly and
the ReplicaSet, Job, Deployment and Endpoints controllers agree on every answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Optional

from netlab.api.objects import deep_copy
from netlab.api.timefmt import parse_time
from netlab.api.views import get_path, is_terminating  # callers use podutil.is_terminating
from netlab.units import QuantityError, cpu_millis, memory_bytes

Obj = Mapping[str, Any]

# Annotation a user sets to steer which pods a scale-down removes first (lower first).
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def phase(pod: Obj) -> str:
    return get_path(pod, "status", "phase") or ""


def is_finished(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """``controller.IsPodActive``: counts toward a ReplicaSet's or Job's replicas."""
    return not is_terminating(pod) and not is_finished(pod)


def condition(pod: Obj, ctype: str) -> Optional[Mapping[str, Any]]:
    for cond in get_path(pod, "status", "conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == ctype:
            return cond
    return None


def is_ready(pod: Obj) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def ready_since(pod: Obj) -> Optional[datetime]:
    """When the pod last became ready; None when it is not ready."""
    cond = condition(pod, "Ready")
    if not cond or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def is_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready, and for at least ``minReadySeconds`` (``podutil.IsPodAvailable``)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def seconds_until_available(pod: Obj, min_ready_seconds: int, now: datetime) -> Optional[float]:
    """For a ready but not yet available pod, how long until it is; else None."""
    since = ready_since(pod)
    if since is None or min_ready_seconds <= 0:
        return None
    left = min_ready_seconds - (now - since).total_seconds()
    return left if left > 0 else None


def max_restarts(pod: Obj) -> int:
    counts = [s.get("restartCount") or 0 for s in get_path(pod, "status", "containerStatuses") or []
              if isinstance(s, Mapping)]
    return max(counts, default=0)


def container_requests(pod_spec: Obj, resource: str) -> Optional[int]:
    """Sum of the containers' requests for ``resource`` (cpu in millicores, memory in bytes);
    None if any container has no request, as the HPA then cannot compute utilization."""
    total = 0
    for container in get_path(pod_spec, "containers") or []:
        value = get_path(container, "resources", "requests", resource)
        if value is None:
            return None
        try:
            total += cpu_millis(value) if resource == "cpu" else memory_bytes(value)
        except (QuantityError, ValueError, TypeError):
            return None
    return total


# --- creation ----------------------------------------------------------------------------------


def owner_reference(owner: Obj, api_version: str, kind: str) -> dict[str, Any]:
    """The controller reference a controller puts on what it creates."""
    return {"apiVersion": api_version, "kind": kind, "name": get_path(owner, "metadata", "name"),
            "uid": get_path(owner, "metadata", "uid"), "controller": True,
            "blockOwnerDeletion": True}


def pod_from_template(template: Obj, namespace: Optional[str], generate_name: str,
                      owner_ref: Optional[dict[str, Any]],
                      finalizers: Iterable[str] = ()) -> dict[str, Any]:
    """``GetPodFromTemplate``: a new Pod with the template's labels, annotations and spec."""
    tmeta = get_path(template, "metadata") or {}
    meta: dict[str, Any] = {"generateName": generate_name, "namespace": namespace}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if owner_ref is not None:
        meta["ownerReferences"] = [owner_ref]
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": deep_copy(dict(get_path(template, "spec") or {}))}


def generate_name_prefix(owner_name: str) -> str:
    """``<owner>-``, cut so the generated name stays a valid 63-character name."""
    prefix = f"{owner_name}-"
    return prefix if len(prefix) <= 58 else prefix[:58]


# --- deletion order ---------------------------------------------------------------------------


def _stamp(value: Any) -> Optional[float]:
    when = parse_time(value)
    return (when - _EPOCH).total_seconds() if when else None


def _deletion_cost(pod: Obj) -> int:
    text = (get_path(pod, "metadata", "annotations") or {}).get(DELETION_COST)
    try:
        return int(text) if text is not None else 0
    except (TypeError, ValueError):
        return 0


def node_ranks(related: Iterable[Obj]) -> Counter:
    """How many of the related active pods sit on each node (``""`` = unscheduled)."""
    return Counter(get_path(p, "spec", "nodeName") or "" for p in related if is_active(p))


def deletion_key(pod: Obj, ranks: Mapping[str, int]) -> tuple:
    """Sort key of ``ActivePodsWithRanks``: smaller keys are deleted first.

    In order: unscheduled before scheduled; Pending, then Unknown, then Running;
    not ready before ready; lower ``pod-deletion-cost`` first; pods on nodes
    crowded with related pods first; the most recently ready first; more
    restarts first; the newest first.
    """
    node = get_path(pod, "spec", "nodeName") or ""
    ready = is_ready(pod)
    ready_at = _stamp(get_path(condition(pod, "Ready") or {}, "lastTransitionTime")) \
        if ready else None
    created = _stamp(get_path(pod, "metadata", "creationTimestamp"))
    return (
        1 if node else 0,
        {"Pending": 0, "Unknown": 1, "Running": 2}.get(phase(pod), 0),
        1 if ready else 0,
        _deletion_cost(pod),
        -ranks.get(node, 0) if node else 0,
        (0, 0.0) if not ready or ready_at is None else (1, -ready_at),
        -max_restarts(pod),
        (0, 0.0) if created is None else (1, -created),
        get_path(pod, "metadata", "name") or "",  # a stable tie-break, for tests and logs
    )


def pods_to_delete(pods: Sequence[Obj], count: int, related: Iterable[Obj] = ()) -> list[Obj]:
    """The ``count`` pods a scale-down removes (``getPodsToDelete``). ``related`` are the
    pods whose placement counts as crowding (the owner's own, plus its siblings')."""
    if count <= 0:
        return []
    ranks = node_ranks(list(related) or pods)
    return sorted(pods, key=lambda p: deletion_key(p, ranks))[:count]
