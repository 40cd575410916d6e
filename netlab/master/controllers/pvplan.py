"""The PV controller's decisions: what to do next for a claim, and for a volume (pure).

Upstream's ``persistentvolume`` controller (pkg/controller/volume/persistentvolume,
``syncClaim`` and ``syncVolume``) restated over plain dicts, with the local-path
provisioner kind runs next to it folded in, so each decision is unit-tested without a
cluster. The controller (``persistentvolume.py``) carries them out.

A claim (:func:`claim_step`):

* bound to a volume whose ``claimRef`` is this claim: done (``Lost`` when that volume
  is gone);
* naming a volume (pre-bound by its user) or matching one (:func:`find_best_match`):
  bind them. A claim whose class waits for a first consumer only binds a volume pre-bound
  to it, or, once the scheduler chose a node (``volume.kubernetes.io/selected-node``), a
  volume that node can reach;
* of a class whose provisioner is ``rancher.io/local-path``, with a node chosen:
  provision (a volume ``pvc-<uid>`` on that node); without a node yet: wait, as upstream
  says (``waiting for first consumer to be created before binding``);
* of another provisioner's class: wait for it (``ExternalProvisioning``); of no class and
  no volume: ``FailedBinding``.

A volume (:func:`volume_step`): ``Available`` without a claim, ``Bound`` with its
claim's ``volumeName`` naming it, ``Released`` once its claim is gone, then deleted when
its reclaim policy says ``Delete`` (``Retain`` keeps it, Released, as upstream).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from netlab.api.persistentvolumes import (
    BIND_COMPLETED_ANNOTATION,
    HOSTNAME_LABEL,
    LOCAL_PATH_PROVISIONER,
    SELECTED_NODE_ANNOTATION,
    WAIT_FOR_FIRST_CONSUMER,
    binding_mode,
    claim_ref_matches,
    claim_request,
    find_best_match,
    node_affinity_matches,
    quantity,
    storage_class_name,
    volume_capacity,
    volume_matches,
)
from netlab.api.views import annotations_of, meta_of, name_of, namespace_of, uid_of

Obj = Mapping[str, Any]

# What a step is: nothing to do, or one of these.
DONE, BIND, PROVISION, WAIT, LOST = "done", "bind", "provision", "wait", "lost"
AVAILABLE, BOUND, RELEASED, DELETE, FAILED = "Available", "Bound", "Released", "delete", "Failed"

WAIT_FOR_CONSUMER_MSG = "waiting for first consumer to be created before binding"
NO_CLASS_MSG = "no persistent volumes available for this claim and no storage class is set"
NO_NODE_MSG = "configuration error, no node was specified"
NO_DELETER_MSG = "error getting deleter volume plugin for volume \"{}\": no deletable " \
                 "volume plugin matched"


@dataclass
class ClaimStep:
    """What to do for a claim: ``action``, with the volume to bind, or the class and node
    to provision on, or the event to tell (``reason``, ``message``; ``warning`` for a
    Warning event)."""

    action: str
    volume: Optional[Obj] = None
    storage_class: Optional[Obj] = None
    node: str = ""
    reason: str = ""
    message: str = ""
    warning: bool = False


@dataclass
class VolumeStep:
    """What to do for a volume: the phase to write (empty: keep it), and whether to
    delete it (its reclaim policy is Delete and its claim is gone)."""

    phase: str = ""
    delete: bool = False
    message: str = ""
    claims: list[str] = field(default_factory=list)  # claim keys to look at again


def external_provisioning_msg(provisioner: str) -> str:
    return (f'Waiting for a volume to be created either by the external provisioner '
            f'"{provisioner}" or manually by the system administrator. If volume creation is '
            f'delayed, please verify that the provisioner is running and correctly registered.')


def _phase(obj: Obj) -> str:
    status = obj.get("status")
    return str(status.get("phase") or "") if isinstance(status, dict) else ""


def _spec(obj: Obj) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def claim_is_bound(claim: Obj, pv: Optional[Obj]) -> bool:
    """The binding is complete on both sides, as the controller writes it."""
    return pv is not None and _phase(claim) == BOUND and \
        _spec(claim).get("volumeName") == name_of(pv) and claim_ref_matches(pv, claim) and \
        bool((_spec(pv).get("claimRef") or {}).get("uid")) and \
        annotations_of(claim).get(BIND_COMPLETED_ANNOTATION) == "yes"


def mismatch(pv: Obj, claim: Obj) -> str:
    """``checkVolumeSatisfyClaim``: why a volume a claim names cannot serve it (empty:
    it can). The selector is not asked of a volume named by hand, as upstream."""
    if volume_matches(pv, claim):
        return ""
    request, capacity = quantity(claim_request(claim)), quantity(volume_capacity(pv))
    if request is None or capacity is None or capacity < request:
        return "requested PV is too small"
    if storage_class_name(pv) != storage_class_name(claim):
        return "storageClassName does not match"
    if (_spec(pv).get("volumeMode") or "Filesystem") != \
            (_spec(claim).get("volumeMode") or "Filesystem"):
        return "incompatible volumeMode"
    if not set(_spec(claim).get("accessModes") or []) <= set(_spec(pv).get("accessModes") or []):
        return "incompatible accessMode"
    return ""


def claim_step(claim: Obj, volumes: Iterable[Obj], classes: Mapping[str, Obj],
               can_provision: bool = True) -> ClaimStep:
    """What to do next for ``claim`` (upstream's ``syncClaim``); ``can_provision``: the
    local-path provisioner has a root to make volumes in."""
    if meta_of(claim).get("deletionTimestamp"):
        return ClaimStep(DONE)
    by_name = {name_of(v): v for v in volumes}
    wanted = _spec(claim).get("volumeName")
    if wanted:
        pv = by_name.get(str(wanted))
        if pv is None:
            if _phase(claim) == BOUND:
                return ClaimStep(LOST, reason="ClaimLost", warning=True,
                                 message="Bound claim has lost its PersistentVolume. Data on "
                                         "the volume is lost!")
            return ClaimStep(WAIT)  # pre-bound to a volume still to come
        if claim_is_bound(claim, pv):
            return ClaimStep(DONE)
        ref = _spec(pv).get("claimRef")
        if ref and not claim_ref_matches(pv, claim):
            return ClaimStep(WAIT, reason="FailedBinding", warning=True,
                             message=f'volume "{wanted}" already bound to a different claim.')
        why = mismatch(pv, claim)
        if why:
            return ClaimStep(WAIT, reason="VolumeMismatch", warning=True,
                             message=f'Cannot bind to requested volume "{wanted}": {why}')
        return ClaimStep(BIND, volume=pv)
    class_name = storage_class_name(claim)
    sc = classes.get(class_name) if class_name else None
    node = annotations_of(claim).get(SELECTED_NODE_ANNOTATION, "")
    delayed = bool(class_name) and binding_mode(sc) == WAIT_FOR_FIRST_CONSUMER
    candidates = [v for v in volumes if claim_ref_matches(v, claim) or not delayed or (
        node and node_affinity_matches(v, node, {HOSTNAME_LABEL: node}))]
    pv = find_best_match(claim, candidates)
    if pv is not None:
        return ClaimStep(BIND, volume=pv)
    if delayed and not node:
        return ClaimStep(WAIT, reason="WaitForFirstConsumer", message=WAIT_FOR_CONSUMER_MSG)
    if not class_name:
        return ClaimStep(WAIT, reason="FailedBinding", message=NO_CLASS_MSG)
    if sc is None:
        return ClaimStep(WAIT, reason="ProvisioningFailed", warning=True,
                         message=f'storageclass.storage.k8s.io "{class_name}" not found')
    provisioner = str(sc.get("provisioner") or "")
    if provisioner != LOCAL_PATH_PROVISIONER or not can_provision:
        return ClaimStep(WAIT, reason="ExternalProvisioning",
                         message=external_provisioning_msg(provisioner))
    if not node:
        return ClaimStep(WAIT, reason="ProvisioningFailed", warning=True,
                         message=f'failed to provision volume with StorageClass "{class_name}": '
                                 f"{NO_NODE_MSG}")
    return ClaimStep(PROVISION, storage_class=sc, node=node)


def claim_key_of_volume(pv: Obj) -> Optional[str]:
    ref = _spec(pv).get("claimRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    return f"{ref.get('namespace') or ''}/{ref['name']}"


def volume_step(pv: Obj, claim: Optional[Obj], can_delete: bool) -> VolumeStep:
    """What to do next for ``pv`` (upstream's ``syncVolume``); ``claim``: the claim its
    ``claimRef`` names, as found (None: there is none); ``can_delete``: a deleter exists
    for it (the local-path provisioner's own volumes)."""
    if meta_of(pv).get("deletionTimestamp"):
        return VolumeStep()
    phase = _phase(pv)
    ref = _spec(pv).get("claimRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return VolumeStep(phase=AVAILABLE if phase != AVAILABLE else "")
    key = claim_key_of_volume(pv)
    gone = claim is None or (bool(ref.get("uid")) and uid_of(claim) != ref.get("uid"))
    if gone:
        if not ref.get("uid"):
            # Pre-bound by its user to a claim not made yet: it waits for that claim.
            return VolumeStep(phase=AVAILABLE if phase != AVAILABLE else "")
        policy = _spec(pv).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Delete":
            if not can_delete:
                message = NO_DELETER_MSG.format(name_of(pv))
                return VolumeStep(phase=FAILED if phase != FAILED else "", message=message)
            return VolumeStep(phase=RELEASED if phase != RELEASED else "", delete=True)
        return VolumeStep(phase=RELEASED if phase != RELEASED else "")
    assert claim is not None
    if _spec(claim).get("volumeName") == name_of(pv):
        return VolumeStep(phase=BOUND if phase != BOUND else "")
    # Claimed, the claim not bound yet: the claim's sync binds them.
    return VolumeStep(claims=[key] if key else [])


def namespaced_key(obj: Obj) -> str:
    return f"{namespace_of(obj)}/{name_of(obj)}"
