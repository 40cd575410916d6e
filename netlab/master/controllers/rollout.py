"""Deployment rollout math: revisions, template hashes, rolling-update steps, status.

Pure functions over plain Deployment and ReplicaSet dicts, transcribed from
Kubernetes' ``pkg/controller/deployment`` (``util/deployment_util.go``,
``rolling.go``, ``sync.go``, ``progress.go``) so that a rollout advances in
exactly the steps a Kubernetes user expects:

* a ReplicaSet per pod template, named ``<deployment>-<pod-template-hash>``,
  its revision in ``deployment.kubernetes.io/revision`` (what ``kubectl
  rollout history`` and ``undo`` read);
* rolling updates bounded by ``maxSurge`` (rounded up) and ``maxUnavailable``
  (rounded down; both 0 is read as maxUnavailable 1);
* proportional scaling when the replica count changes mid-rollout;
* status and the Available / Progressing conditions ``kubectl rollout status``
  waits on.

One deliberate difference: a ReplicaSet's available count is read as
``min(status.availableReplicas, spec.replicas)``. Right after the controller
lowers an old ReplicaSet, its status still counts the pods about to go;
clamping keeps a quick second reconcile from scaling down again on that stale
count, which could otherwise dip below ``replicas - maxUnavailable``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Optional, TypeVar

from netlab.api.objects import deep_copy
from netlab.api.timefmt import format_time, parse_time
from netlab.api.views import (
    annotations_of,
    creation_timestamp_of,
    is_terminating,
    meta_of,
    name_of,
    spec_of,
    status_of,
)

Obj = Mapping[str, Any]
RS = TypeVar("RS", bound=Obj)  # a ReplicaSet, as a dict or a read-only mapping

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
_NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                         MAX_REPLICAS, ROLLBACK_TO})
MAX_HISTORY_CHARS = 2000

# Condition reasons, as kubectl and users grep for them.
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString's: no vowels, no 0/1/3


# --- small accessors ----------------------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def replicas(obj: Optional[Obj]) -> int:
    return _int(spec_of(obj).get("replicas"), 1) if obj else 0


def revision(obj: Obj) -> int:
    try:
        return int(annotations_of(obj).get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(sets: Iterable[Obj]) -> int:
    return max((revision(rs) for rs in sets), default=0)


def available(rs: Optional[Obj]) -> int:
    """Available pods of a ReplicaSet, never more than it is asked to keep (see above)."""
    if rs is None:
        return 0
    return min(_int(status_of(rs).get("availableReplicas")), replicas(rs))


def by_age(sets: Iterable[RS]) -> list[RS]:
    """Oldest first (``ReplicaSetsByCreationTimestamp``), name as the tie-break."""
    return sorted(sets, key=lambda rs: (creation_timestamp_of(rs), name_of(rs)))


def active(sets: Iterable[Optional[Obj]]) -> list[Obj]:
    return [rs for rs in sets if rs is not None and replicas(rs) > 0]


# --- templates and hashes -----------------------------------------------------------------------


def _semantic(value: Any) -> Any:
    """A JSON value as Kubernetes' semantic equality sees it: null, {} and [] are the same
    as absent (kubectl sends back a template with ``creationTimestamp: null``)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            item = _semantic(item)
            if item is not None and item != {} and item != []:
                out[key] = item
        return out
    if isinstance(value, list):
        return [_semantic(item) for item in value]
    return value


def _without_hash(template: Optional[Obj]) -> Any:
    copy = _semantic(dict(template or {}))
    labels = meta_of(copy).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
        if not labels:
            copy["metadata"].pop("labels")
    if isinstance(copy.get("metadata"), dict) and not copy["metadata"]:
        copy.pop("metadata")
    return copy


def equal_ignore_hash(a: Optional[Obj], b: Optional[Obj]) -> bool:
    """Two pod templates equal but for the ``pod-template-hash`` label."""
    return _without_hash(a) == _without_hash(b)


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """``ComputeHash``: FNV-1a (32 bit) of the template, salted with the collision count,
    spelled in the safe alphabet. (Kubernetes hashes Go's printing of the struct, netlab
    its canonical JSON, so the strings differ from a real cluster's, not their use.)"""
    data = json.dumps(_without_hash(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_ALPHABET[ord(c) % len(_ALPHABET)] for c in str(h))


def find_new(deployment: Obj, sets: Iterable[RS]) -> Optional[RS]:
    """The ReplicaSet running the deployment's template (the oldest, if several do)."""
    template = spec_of(deployment).get("template")
    for rs in by_age(sets):
        if equal_ignore_hash(spec_of(rs).get("template"), template):
            return rs
    return None


def new_replica_set(deployment: Obj, template_hash_value: str, replica_count: int,
                    new_revision: int, owner_ref: dict[str, Any]) -> dict[str, Any]:
    """The ReplicaSet object to create for the deployment's current template."""
    spec = spec_of(deployment)
    meta = meta_of(deployment)
    template = deep_copy(dict(spec.get("template") or {}))
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: template_hash_value}
    selector = deep_copy(dict(spec.get("selector") or {}))
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}),
                               HASH_LABEL: template_hash_value}
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": f"{meta.get('name')}-{template_hash_value}",
                       "namespace": meta.get("namespace"), "labels": dict(tmeta["labels"]),
                       "ownerReferences": [owner_ref]},
          "spec": {"replicas": replica_count, "minReadySeconds":
                   _int(spec.get("minReadySeconds")), "selector": selector,
                   "template": template}}
    set_new_rs_annotations(deployment, rs, new_revision, exists=False)
    return rs


# --- annotations --------------------------------------------------------------------------------


def set_new_rs_annotations(deployment: Obj, rs: dict[str, Any], new_revision: int,
                           exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the deployment's annotations, raise the
    revision (keeping the old one in the history when rolling back to this set)
    and, for a set being created, the replica annotations. True if anything changed."""
    meta = rs.setdefault("metadata", {})
    ann = meta.setdefault("annotations", {})
    changed = False
    for key, value in annotations_of(deployment).items():
        if key not in _NOT_COPIED and ann.get(key) != value:
            ann[key] = value
            changed = True
    old_text = ann.get(REVISION)
    try:
        old = int(old_text) if old_text else 0
    except ValueError:
        old = 0
    if old < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old_text:
            history = [h for h in ann.get(REVISION_HISTORY, "").split(",") if h]
            history.append(old_text)
            text = ",".join(history)
            while len(text) > MAX_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
                text = ",".join(history)
            ann[REVISION_HISTORY] = text
    if not exists and set_replicas_annotations(rs, replicas(deployment),
                                               replicas(deployment) + max_surge(deployment)):
        changed = True
    if not ann:
        meta.pop("annotations")
    return changed


def set_replicas_annotations(rs: dict[str, Any], desired: int, maximum: int) -> bool:
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(maximum)
    ann[DESIRED_REPLICAS] = str(desired)
    ann[MAX_REPLICAS] = str(maximum)
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    ann = annotations_of(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(maximum)


# --- maxSurge and maxUnavailable ----------------------------------------------------------------


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        fraction = float(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def _rolling(deployment: Obj) -> Optional[Mapping[str, Any]]:
    strategy = spec_of(deployment).get("strategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate") or {"maxSurge": "25%", "maxUnavailable": "25%"}


def fenceposts(deployment: Obj) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable) as pod counts."""
    rolling = _rolling(deployment)
    if rolling is None:
        return 0, 0
    desired = replicas(deployment)
    surge = int_or_percent(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # a rollout must be able to make progress
    return surge, unavailable


def max_surge(deployment: Obj) -> int:
    return fenceposts(deployment)[0]


def max_unavailable(deployment: Obj) -> int:
    """``MaxUnavailable``: never more than the replicas themselves."""
    if _rolling(deployment) is None or replicas(deployment) == 0:
        return 0
    return min(fenceposts(deployment)[1], replicas(deployment))


# --- the rolling update -------------------------------------------------------------------------


def new_rs_replicas(deployment: Obj, all_sets: Iterable[Optional[Obj]],
                    new_rs: Optional[Obj]) -> int:
    """``NewRSNewReplicas``: how far the new ReplicaSet may grow right now."""
    if _rolling(deployment) is None:
        return replicas(deployment)  # Recreate: everything at once
    current = replicas(new_rs)
    total = sum(replicas(rs) for rs in all_sets if rs is not None)
    ceiling = replicas(deployment) + max_surge(deployment)
    if total >= ceiling:
        return current
    return current + max(0, min(ceiling - total, replicas(deployment) - current))


def old_scale_down(deployment: Obj, old_sets: Sequence[Obj],
                   new_rs: Optional[Obj]) -> dict[str, int]:
    """``reconcileOldReplicaSets``: the new sizes of old ReplicaSets this step.

    First unhealthy pods go (old sets with fewer available than desired, within
    what availability allows), then healthy ones, oldest set first, never
    leaving fewer than ``replicas - maxUnavailable`` available pods.
    """
    sizes = {name_of(rs): replicas(rs) for rs in old_sets}
    if sum(sizes.values()) == 0:
        return {}
    all_count = sum(sizes.values()) + replicas(new_rs)
    min_available = replicas(deployment) - max_unavailable(deployment)
    new_unavailable = replicas(new_rs) - available(new_rs)
    budget = all_count - min_available - new_unavailable
    if budget <= 0:
        return {}
    plan: dict[str, int] = {}
    cleaned = 0
    for rs in by_age(old_sets):  # cleanupUnhealthyReplicas
        if cleaned >= budget:
            break
        size = sizes[name_of(rs)]
        unhealthy = size - available(rs)
        if size == 0 or unhealthy <= 0:
            continue
        cut = min(budget - cleaned, unhealthy)
        sizes[name_of(rs)] = plan[name_of(rs)] = size - cut
        cleaned += cut
    # scaleDownOldReplicaSetsForRollingUpdate, on the sizes after the cleanup.
    available_now = available(new_rs) + sum(min(available(rs), sizes[name_of(rs)])
                                            for rs in old_sets)
    if available_now > min_available:
        to_cut, cut_so_far = available_now - min_available, 0
        for rs in by_age(old_sets):
            if cut_so_far >= to_cut:
                break
            size = sizes[name_of(rs)]
            if size == 0:
                continue
            cut = min(size, to_cut - cut_so_far)
            sizes[name_of(rs)] = plan[name_of(rs)] = size - cut
            cut_so_far += cut
    return plan


def is_scaling_event(deployment: Obj, sets: Iterable[Optional[Obj]]) -> bool:
    """Some active ReplicaSet was sized for a different replica count."""
    desired = str(replicas(deployment))
    for rs in active(sets):
        ann = annotations_of(rs).get(DESIRED_REPLICAS)
        if ann is not None and ann != desired:
            return True
    return False


def _find_active_or_latest(new_rs: Optional[Obj], old_sets: Sequence[Obj]) -> Optional[Obj]:
    if new_rs is None and not old_sets:
        return None
    newest_first = sorted(old_sets, key=lambda rs: (creation_timestamp_of(rs), name_of(rs)),
                          reverse=True)
    live = active([*newest_first, new_rs])
    if not live:
        return new_rs if new_rs is not None else newest_first[0]
    if len(live) == 1:
        return live[0]
    return None


def is_saturated(deployment: Obj, rs: Optional[Obj]) -> bool:
    if rs is None:
        return False
    desired = replicas(deployment)
    return (replicas(rs) == desired and annotations_of(rs).get(DESIRED_REPLICAS) == str(desired)
            and _int(status_of(rs).get("availableReplicas")) == desired)


def proportional_scale(deployment: Obj, new_rs: Optional[Obj],
                       old_sets: Sequence[Obj]) -> dict[str, int]:
    """``scale``: new sizes when the replica count changed (spread over the active
    ReplicaSets in proportion to their size, the rest to the largest)."""
    only = _find_active_or_latest(new_rs, old_sets)
    if only is not None:
        return {name_of(only): replicas(deployment)} if replicas(only) != replicas(deployment) \
            else {}
    if is_saturated(deployment, new_rs):
        return {name_of(rs): 0 for rs in active(old_sets)}
    if _rolling(deployment) is None:
        return {}
    live = active([*old_sets, new_rs])
    current = sum(replicas(rs) for rs in live)
    allowed = replicas(deployment) + max_surge(deployment) if replicas(deployment) > 0 else 0
    to_add = allowed - current
    # Largest first; on ties the newer first when adding, the older first when removing.
    live.sort(key=lambda rs: (creation_timestamp_of(rs), name_of(rs)), reverse=to_add > 0)
    live.sort(key=lambda rs: -replicas(rs))
    sizes: dict[str, int] = {}
    added = 0
    for rs in live:
        proportion = _proportion(rs, deployment, to_add, added) if to_add else 0
        sizes[name_of(rs)] = replicas(rs) + proportion
        added += proportion
    if live and to_add:
        first = name_of(live[0])
        sizes[first] = max(0, sizes[first] + to_add - added)
    return {n: v for n, v in sizes.items()
            if v != replicas(next(rs for rs in live if name_of(rs) == n))}


def _proportion(rs: Obj, deployment: Obj, to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas(deployment) == 0:
        fraction = -replicas(rs)
    else:
        total = replicas(deployment) + max_surge(deployment)
        try:
            annotated = int(annotations_of(rs).get(MAX_REPLICAS, ""))
        except ValueError:
            annotated = _int(status_of(deployment).get("replicas"))
        annotated = annotated or 1
        fraction = _round_half_away(replicas(rs) * total / annotated) - replicas(rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _round_half_away(x: float) -> int:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def cleanup_candidates(deployment: Obj, old_sets: Sequence[Obj]) -> list[Obj]:
    """Old, empty ReplicaSets beyond ``revisionHistoryLimit``, oldest revision first."""
    limit = spec_of(deployment).get("revisionHistoryLimit")
    if not isinstance(limit, int):
        return []
    alive = [rs for rs in old_sets if not is_terminating(rs)]
    extra = len(alive) - limit
    if extra <= 0:
        return []
    alive.sort(key=lambda rs: (revision(rs), creation_timestamp_of(rs), name_of(rs)))
    out = []
    for rs in alive[:extra]:
        gen = _int(meta_of(rs).get("generation"))
        if _int(status_of(rs).get("replicas")) or replicas(rs) or \
                gen > _int(status_of(rs).get("observedGeneration")):
            continue
        out.append(rs)
    return out


# --- status and conditions ----------------------------------------------------------------------


def condition(status: Mapping[str, Any], ctype: str) -> Optional[Mapping[str, Any]]:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def set_condition(status: dict[str, Any], ctype: str, value: str, reason: str, message: str,
                  now: datetime) -> None:
    """``SetDeploymentCondition``: unchanged status and reason keep the old condition."""
    stamp = format_time(now)
    old = condition(status, ctype)
    if old is not None and old.get("status") == value and old.get("reason") == reason:
        return
    new = {"type": ctype, "status": value, "lastUpdateTime": stamp,
           "lastTransitionTime": stamp, "reason": reason, "message": message}
    if old is not None and old.get("status") == value:
        new["lastTransitionTime"] = old.get("lastTransitionTime") or stamp
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    status["conditions"].append(new)


def calculate_status(deployment: Obj, all_sets: Sequence[Obj], new_rs: Optional[Obj],
                     now: datetime) -> dict[str, Any]:
    """``calculateStatus``: counts summed over the ReplicaSets, the Available condition."""
    avail = sum(_int(status_of(rs).get("availableReplicas")) for rs in all_sets)
    total = sum(replicas(rs) for rs in all_sets)
    old = status_of(deployment)
    status: dict[str, Any] = {
        "observedGeneration": meta_of(deployment).get("generation"),
        "replicas": sum(_int(status_of(rs).get("replicas")) for rs in all_sets),
        "updatedReplicas": _int(status_of(new_rs).get("replicas")) if new_rs else 0,
        "readyReplicas": sum(_int(status_of(rs).get("readyReplicas")) for rs in all_sets),
        "availableReplicas": avail,
        "unavailableReplicas": max(total - avail, 0),
    }
    if old.get("collisionCount"):
        status["collisionCount"] = old["collisionCount"]
    status["conditions"] = deep_copy(list(old.get("conditions") or []))
    if avail >= replicas(deployment) - max_unavailable(deployment):
        set_condition(status, "Available", "True", "MinimumReplicasAvailable",
                      "Deployment has minimum availability.", now)
    else:
        set_condition(status, "Available", "False", "MinimumReplicasUnavailable",
                      "Deployment does not have minimum availability.", now)
    for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                "unavailableReplicas"):
        if not status[key]:
            del status[key]
    if not status["conditions"]:
        del status["conditions"]
    return status


def is_complete(deployment: Obj, status: Mapping[str, Any]) -> bool:
    """``DeploymentComplete``: every replica updated, available, nothing old left."""
    want = replicas(deployment)
    return (_int(status.get("updatedReplicas")) == want and _int(status.get("replicas")) == want
            and _int(status.get("availableReplicas")) == want
            and _int(status.get("observedGeneration"))
            >= _int(meta_of(deployment).get("generation")))


def is_progressing(deployment: Obj, status: Mapping[str, Any]) -> bool:
    old = status_of(deployment)

    def old_pods(s: Mapping[str, Any]) -> int:
        return _int(s.get("replicas")) - _int(s.get("updatedReplicas"))

    return (_int(status.get("updatedReplicas")) > _int(old.get("updatedReplicas"))
            or old_pods(status) < old_pods(old)
            or _int(status.get("readyReplicas")) > _int(old.get("readyReplicas"))
            or _int(status.get("availableReplicas")) > _int(old.get("availableReplicas")))


def deadline(deployment: Obj) -> Optional[int]:
    value = spec_of(deployment).get("progressDeadlineSeconds")
    return value if isinstance(value, int) and value < 2**31 - 1 else None


def timed_out(deployment: Obj, status: Mapping[str, Any], now: datetime) -> bool:
    seconds = deadline(deployment)
    cond = condition(status, "Progressing")
    if seconds is None or cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and (now - since).total_seconds() > seconds


def rollout_status(deployment: Obj, all_sets: Sequence[Obj], new_rs: Optional[Obj],
                   now: datetime) -> dict[str, Any]:
    """``syncRolloutStatus``: the status with the Progressing condition advanced."""
    status = calculate_status(deployment, all_sets, new_rs, now)
    if deadline(deployment) is None:
        status["conditions"] = [c for c in status.get("conditions") or []
                                if c.get("type") != "Progressing"]
        if not status["conditions"]:
            del status["conditions"]
        return status
    current = condition(status, "Progressing")
    complete_already = (_int(status.get("replicas")) == _int(status.get("updatedReplicas"))
                        and current is not None and current.get("reason") == NEW_RS_AVAILABLE)
    rs_name = name_of(new_rs) if new_rs else ""
    if not complete_already:
        if is_complete(deployment, status):
            set_condition(status, "Progressing", "True", NEW_RS_AVAILABLE,
                          f'ReplicaSet "{rs_name}" has successfully progressed.', now)
        elif is_progressing(deployment, status):
            stamp = format_time(now)
            cond = {"type": "Progressing", "status": "True", "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp, "reason": RS_UPDATED,
                    "message": f'ReplicaSet "{rs_name}" is progressing.'}
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime") or stamp
            status["conditions"] = [c for c in status.get("conditions") or []
                                    if c.get("type") != "Progressing"] + [cond]
        elif timed_out(deployment, status, now):
            set_condition(status, "Progressing", "False", TIMED_OUT,
                          f'ReplicaSet "{rs_name}" has timed out progressing.', now)
    return status


def seconds_to_deadline(deployment: Obj, status: Mapping[str, Any],
                        now: datetime) -> Optional[float]:
    """``requeueStuckDeployment``: when to look again for a progress deadline."""
    seconds = deadline(deployment)
    cond = condition(status, "Progressing")
    if seconds is None or cond is None or is_complete(deployment, status) or \
            cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT):
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return max(since.timestamp() + seconds - now.timestamp(), 0.0) + 1.0
