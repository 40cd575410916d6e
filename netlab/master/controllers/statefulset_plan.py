"""StatefulSet decisions: pod identities, ordering, rolling update, status (pure).

The rules of Kubernetes' ``stateful_set_control.go`` and ``stateful_set_utils.go``
over plain dicts, so each decision is unit-tested without a cluster:

* identity: pod ``<set>-<ordinal>``, ``hostname`` = pod name, ``subdomain`` =
  ``serviceName``, labels ``statefulset.kubernetes.io/pod-name``,
  ``apps.kubernetes.io/pod-index`` and ``controller-revision-hash`` (the revision's
  name);
* :func:`next_step`: with ``OrderedReady``, one action at a time: replace a failed
  pod, create the lowest missing ordinal, and wait until every lower ordinal is
  Running and Ready before going on; remove condemned ordinals (at or above
  ``replicas``) highest first, one at a time, each gone before the next; with
  ``Parallel``, all creations and removals at once;
* ``RollingUpdate``: from the highest ordinal down to ``partition``, delete one pod
  not at the update revision, and wait for its replacement to be Running and Ready;
  ``OnDelete`` leaves pods alone (a pod deleted by the user comes back at the update
  revision);
* a new pod below ``partition`` is made from the current revision, others from the
  update revision;
* storage (``getPersistentVolumeClaims``, ``updateStorage``): each
  ``volumeClaimTemplates`` entry is a claim ``<template>-<set>-<ordinal>`` with the
  set's selector labels, made before its pod, and a volume of the pod named after the
  template (replacing a template volume of that name); the claims' owner references
  follow ``persistentVolumeClaimRetentionPolicy`` (:func:`claim_owner_refs`): none with
  the default Retain/Retain, so claims outlive the set and a re-created pod finds its data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from netlab.api.views import labels_of, meta_of, name_of, spec_of
from netlab.master.controllers import history, podutil

Obj = Mapping[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal_of(set_name: str, pod: Obj) -> Optional[int]:
    """The ordinal of a pod named ``<set>-<n>``; None for pods of another name."""
    name = name_of(pod)
    match = re.fullmatch(re.escape(set_name) + r"-(0|[1-9][0-9]*)", name)
    return int(match.group(1)) if match else None


def revision_of(pod: Obj) -> str:
    return labels_of(pod).get(history.HASH_LABEL, "")


def running_and_ready(pod: Obj) -> bool:
    return podutil.phase(pod) == "Running" and podutil.is_ready(pod)


def healthy(pod: Obj) -> bool:
    return running_and_ready(pod) and not podutil.is_terminating(pod)


def replicas(sts: Obj) -> int:
    value = spec_of(sts).get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def start_ordinal(sts: Obj) -> int:
    start = (spec_of(sts).get("ordinals") or {}).get("start")
    return start if isinstance(start, int) and not isinstance(start, bool) else 0


def partition(sts: Obj) -> int:
    strategy = spec_of(sts).get("updateStrategy") or {}
    value = (strategy.get("rollingUpdate") or {}).get("partition")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def is_rolling(sts: Obj) -> bool:
    return ((spec_of(sts).get("updateStrategy") or {}).get("type") or "RollingUpdate") \
        == "RollingUpdate"


def is_parallel(sts: Obj) -> bool:
    return spec_of(sts).get("podManagementPolicy") == "Parallel"


def uses_current_revision(sts: Obj, ordinal: int) -> bool:
    """``newVersionedStatefulSetPod``: a pod below the partition keeps the current revision."""
    return is_rolling(sts) and ordinal - start_ordinal(sts) < partition(sts)


def pod_for(sts: Obj, template: Obj, ordinal: int, revision_name: str) -> dict[str, Any]:
    """A new pod of ``sts`` at ``ordinal`` from ``template`` (a revision's pod template)."""
    meta = meta_of(sts)
    name = f"{meta.get('name', '')}-{ordinal}"
    tmeta = meta_of(template)
    labels = dict(tmeta.get("labels") or {})
    labels.update({POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal),
                   history.HASH_LABEL: revision_name})
    pmeta: dict[str, Any] = {"name": name, "namespace": meta.get("namespace"), "labels": labels,
                             "ownerReferences": [podutil.owner_reference(
                                 sts, "apps/v1", "StatefulSet")]}
    if tmeta.get("annotations"):
        pmeta["annotations"] = dict(tmeta["annotations"])
    spec = dict(podutil.pod_from_template(template, "", "", None)["spec"])
    templates = claim_templates(sts)
    if templates:
        claimed = {claim_template_name(t) for t in templates}
        spec["volumes"] = [{"name": claim_template_name(t), "persistentVolumeClaim": {
            "claimName": claim_name(sts, t, ordinal)}} for t in templates] + [
            v for v in spec.get("volumes") or [] if v.get("name") not in claimed]
    spec["hostname"] = name
    service = spec_of(sts).get("serviceName")
    if service:
        spec["subdomain"] = service
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pmeta, "spec": spec}


def claim_templates(sts: Obj) -> list[Obj]:
    templates = spec_of(sts).get("volumeClaimTemplates")
    return [t for t in templates if isinstance(t, dict)] if isinstance(templates, list) else []


def claim_template_name(template: Obj) -> str:
    return str(meta_of(template).get("name") or "")


def claim_name(sts: Obj, template: Obj, ordinal: int) -> str:
    """``getPersistentVolumeClaimName``: ``<template>-<set>-<ordinal>``."""
    return f"{claim_template_name(template)}-{name_of(sts)}-{ordinal}"


def retention(sts: Obj) -> tuple[str, str]:
    """``(whenDeleted, whenScaled)``, each Retain unless the set says Delete."""
    policy = spec_of(sts).get("persistentVolumeClaimRetentionPolicy")
    policy = policy if isinstance(policy, dict) else {}
    return (str(policy.get("whenDeleted") or "Retain"), str(policy.get("whenScaled") or "Retain"))


def in_range(sts: Obj, ordinal: int) -> bool:
    """The ordinal is one the set wants (not condemned by a scale-down)."""
    return start_ordinal(sts) <= ordinal < start_ordinal(sts) + replicas(sts)


def _ref(owner: Obj, api_version: str, kind: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name_of(owner),
            "uid": meta_of(owner).get("uid")}


def claim_owner_refs(sts: Obj, pod: Optional[Obj], ordinal: int) -> list[dict[str, Any]]:
    """``updateClaimOwnerRefForSetAndPod``: the set owns its claims when ``whenDeleted``
    is Delete (and the ordinal is in range); the pod owns its claim once scaled away
    when ``whenScaled`` is Delete. Neither is a controller reference."""
    when_deleted, when_scaled = retention(sts)
    scaled_down = not in_range(sts, ordinal)
    refs = []
    if when_deleted == "Delete" and not (scaled_down and when_scaled == "Delete"):
        refs.append(_ref(sts, "apps/v1", "StatefulSet"))
    if when_scaled == "Delete" and scaled_down and pod is not None:
        refs.append(_ref(pod, "v1", "Pod"))
    return refs


def claims_for(sts: Obj, ordinal: int) -> list[dict[str, Any]]:
    """The claims of the pod at ``ordinal`` (``getPersistentVolumeClaims``), as made:
    the template's metadata and spec, the set's namespace and selector labels."""
    selector = spec_of(sts).get("selector")
    match = selector.get("matchLabels") if isinstance(selector, dict) else None
    out = []
    for template in claim_templates(sts):
        tmeta = meta_of(template)
        labels = {**(tmeta.get("labels") or {}), **(match or {})}
        cmeta: dict[str, Any] = {"name": claim_name(sts, template, ordinal),
                                 "namespace": meta_of(sts).get("namespace")}
        if labels:
            cmeta["labels"] = labels
        if tmeta.get("annotations"):
            cmeta["annotations"] = dict(tmeta["annotations"])
        refs = claim_owner_refs(sts, None, ordinal)
        if refs:
            cmeta["ownerReferences"] = refs
        out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": cmeta,
                    "spec": dict(template.get("spec") or {})})
    return out


@dataclass
class Step:
    """What one sync does: ordinals to create, pods to delete."""

    create: list[int] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)
    waiting: str = ""  # why nothing more is done now (for logs and tests)


def next_step(sts: Obj, pods: list[dict[str, Any]], update_revision: str) -> Step:
    """What to do now for ``sts`` owning ``pods`` (its claimed pods with ordinals)."""
    name = name_of(sts)
    start = start_ordinal(sts)
    want = range(start, start + replicas(sts))
    by_ordinal: dict[int, dict[str, Any]] = {}
    condemned: list[dict[str, Any]] = []
    pod: Optional[dict[str, Any]]
    for pod in pods:
        ordinal = ordinal_of(name, pod)
        if ordinal is None:
            continue
        if ordinal in want:
            by_ordinal[ordinal] = pod
        else:
            condemned.append(pod)
    monotonic = not is_parallel(sts)
    step = Step()
    for ordinal in want:
        pod = by_ordinal.get(ordinal)
        if pod is None:
            step.create.append(ordinal)
            if monotonic:
                step.waiting = f"creating {name}-{ordinal}"
                return step
            continue
        if podutil.is_finished(pod) and not podutil.is_terminating(pod):
            step.delete.append(pod)  # recreated on a later pass
            if monotonic:
                step.waiting = f"replacing failed {name}-{ordinal}"
                return step
            continue
        if monotonic and not healthy(pod):
            step.waiting = f"waiting for {name}-{ordinal} to be Running and Ready"
            return step
    condemned.sort(key=lambda p: -(ordinal_of(name, p) or 0))
    for pod in condemned:
        if podutil.is_terminating(pod):
            if monotonic:
                step.waiting = f"waiting for {pod['metadata']['name']} to terminate"
                return step
            continue
        step.delete.append(pod)
        if monotonic:
            step.waiting = f"removing {pod['metadata']['name']}"
            return step
    if step.create or step.delete or not is_rolling(sts):
        return step
    for ordinal in reversed(range(start + partition(sts), want.stop)):
        pod = by_ordinal.get(ordinal)
        if pod is None:
            break
        if revision_of(pod) != update_revision and not podutil.is_terminating(pod):
            step.delete.append(pod)
            step.waiting = f"updating {name}-{ordinal}"
            return step
        if not healthy(pod):
            step.waiting = f"waiting for {name}-{ordinal} to be Running and Ready"
            return step
    return step


def calculate_status(sts: Obj, pods: list[dict[str, Any]], current_revision: str,
                     update_revision: str, when: datetime,
                     collision_count: Optional[int]) -> dict[str, Any]:
    """The status ``kubectl rollout status sts/x`` reads."""
    min_ready = int(spec_of(sts).get("minReadySeconds") or 0)
    status: dict[str, Any] = {
        "observedGeneration": meta_of(sts).get("generation"),
        "replicas": 0, "readyReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0,
        "availableReplicas": 0,
    }
    for pod in pods:
        status["replicas"] += 1
        if running_and_ready(pod):
            status["readyReplicas"] += 1
            if podutil.is_available(pod, min_ready, when):
                status["availableReplicas"] += 1
        if not podutil.is_terminating(pod):
            if revision_of(pod) == current_revision:
                status["currentReplicas"] += 1
            if revision_of(pod) == update_revision:
                status["updatedReplicas"] += 1
    status["currentRevision"] = current_revision
    status["updateRevision"] = update_revision
    if is_rolling(sts) and status["updatedReplicas"] == status["replicas"] == replicas(sts) \
            and status["readyReplicas"] == status["replicas"]:
        # The rolling update is complete: the update revision becomes the current one.
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = update_revision
    if collision_count is not None:
        status["collisionCount"] = collision_count
    for key in ("readyReplicas", "currentReplicas", "updatedReplicas"):
        if not status[key]:
            del status[key]
    if status["observedGeneration"] is None:
        del status["observedGeneration"]
    return status
