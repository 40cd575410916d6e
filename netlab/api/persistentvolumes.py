"""Persistent volumes' shared rules: what binds to what, and what the local-path
provisioner makes (pure).

The PV controller (``netlab.master.controllers.persistentvolume``), the scheduler's
VolumeBinding filter (``netlab.master.scheduler.volumebinding``), the kubelet's
``persistentVolumeClaim`` volumes and the API server's DefaultStorageClass admission all
decide with these functions, so they agree:

* classes: a claim's or volume's class is ``spec.storageClassName`` (or the beta
  annotation, which upstream still reads first); the default class is the one annotated
  ``storageclass.kubernetes.io/is-default-class: "true"`` (the newest wins, as upstream's
  admission picks it);
* static binding: :func:`find_best_match` is upstream's ``findBestMatchForClaim``: an
  Available (or pre-bound to this claim) volume of the claim's class, volume mode, every
  access mode it asks for, its selector, and the smallest capacity that holds its request;
* dynamic provisioning for ``rancher.io/local-path``, as kind's local-path-provisioner
  does it: a volume ``pvc-<claim uid>`` whose ``hostPath`` is
  ``<lab data dir>/local-path/<pv>_<namespace>_<claim>``, required on the node the
  scheduler picked (``volume.kubernetes.io/selected-node``), of the request's size and
  the class's reclaim policy (:func:`provisioned_volume`);
* a volume's node affinity against a node (:func:`node_affinity_matches`).

The one built-in class, ``standard``, is :data:`STANDARD_STORAGE_CLASS`, which every
lab's API server makes at start (``netlab.master.apiserver.bootstrap``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, Optional

from netlab.api.nodeaffinity import term_matches
from netlab.api.selectors import SelectorError, label_selector_from_object
from netlab.api.views import annotations_of, labels_of, meta_of, name_of, namespace_of, uid_of
from netlab.units import QuantityError, parse_quantity

Obj = Mapping[str, Any]

LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
LOCAL_PATH_DIR = "local-path"  # under the lab's data directory
STANDARD_CLASS = "standard"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"
STORAGE_PROVISIONER_ANNOTATION = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER_ANNOTATION = "volume.beta.kubernetes.io/storage-provisioner"
BIND_COMPLETED_ANNOTATION = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER_ANNOTATION = "pv.kubernetes.io/bound-by-controller"
HOSTNAME_LABEL = "kubernetes.io/hostname"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
IMMEDIATE = "Immediate"
FILESYSTEM = "Filesystem"
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
_MODE_ABBREVIATIONS = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"),
                       ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))

STANDARD_STORAGE_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": STANDARD_CLASS,
                 "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
    "provisioner": LOCAL_PATH_PROVISIONER,
    "reclaimPolicy": "Delete",
    "volumeBindingMode": WAIT_FOR_FIRST_CONSUMER,
}


# --- reading claims, volumes and classes -------------------------------------------------------


def _spec(obj: Obj) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def storage_class_name(obj: Obj) -> str:
    """A claim's or a volume's class (``GetPersistentVolumeClaimClass``,
    ``GetPersistentVolumeClass``: the same rule): the beta annotation first, then
    ``spec.storageClassName``."""
    beta = annotations_of(obj).get(BETA_CLASS_ANNOTATION)
    if beta is not None:
        return beta
    value = _spec(obj).get("storageClassName")
    return value if isinstance(value, str) else ""


def pod_claim_volumes(pod: Obj) -> list[tuple[str, str]]:
    """``(volume name, claim name)`` of each ``persistentVolumeClaim`` volume of a pod,
    in the order of its volumes: what the scheduler, the kubelet and the pvc-protection
    controller read of a pod's claims."""
    spec = pod.get("spec")
    out = []
    for volume in (spec.get("volumes") if isinstance(spec, dict) else None) or []:
        source = volume.get("persistentVolumeClaim") if isinstance(volume, dict) else None
        name = source.get("claimName") if isinstance(source, dict) else None
        if isinstance(name, str) and name:
            out.append((str(volume.get("name") or ""), name))
    return out


def quantity(value: Any) -> Optional[Decimal]:
    try:
        return parse_quantity(value)
    except (QuantityError, TypeError, ValueError, ArithmeticError):
        return None


def claim_request(claim: Obj) -> Any:
    """The claim's ``resources.requests.storage`` as written."""
    resources = _spec(claim).get("resources")
    requests = resources.get("requests") if isinstance(resources, dict) else None
    return requests.get("storage") if isinstance(requests, dict) else None


def volume_capacity(pv: Obj) -> Any:
    capacity = _spec(pv).get("capacity")
    return capacity.get("storage") if isinstance(capacity, dict) else None


def access_modes_string(modes: Any) -> str:
    """``GetAccessModesAsString``: ``RWO,ROX,RWX,RWOP`` in that order, each once."""
    have = set(modes) if isinstance(modes, list) else set()
    return ",".join(short for mode, short in _MODE_ABBREVIATIONS if mode in have)


def is_default_class(sc: Obj) -> bool:
    annotations = annotations_of(sc)
    return annotations.get(DEFAULT_CLASS_ANNOTATION) == "true" or \
        annotations.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true"


def default_class_name(classes: Iterable[Obj]) -> Optional[str]:
    """The default StorageClass's name, or None. With several defaults upstream's
    admission takes the newest (then the name, for a stable answer)."""
    defaults = [c for c in classes if is_default_class(c)]
    if not defaults:
        return None
    newest = max(defaults, key=lambda c: (str(meta_of(c).get("creationTimestamp") or ""),
                                         name_of(c)))
    return name_of(newest)


def binding_mode(sc: Optional[Obj]) -> str:
    value = sc.get("volumeBindingMode") if sc is not None else None
    return value if isinstance(value, str) and value else IMMEDIATE


def claim_ref_matches(pv: Obj, claim: Obj) -> bool:
    """Whether the volume's ``claimRef`` names this claim (and, when it has a uid, this
    very claim, not a same-named successor)."""
    ref = _spec(pv).get("claimRef")
    if not isinstance(ref, dict):
        return False
    if ref.get("name") != name_of(claim) or ref.get("namespace") != namespace_of(claim):
        return False
    return not ref.get("uid") or ref.get("uid") == uid_of(claim)


def is_delayed_binding(claim: Obj, classes: Mapping[str, Obj]) -> bool:
    """``IsDelayBindingMode``: the claim's class waits for a first consumer."""
    sc = classes.get(storage_class_name(claim))
    return binding_mode(sc) == WAIT_FOR_FIRST_CONSUMER


# --- static binding ----------------------------------------------------------------------------


def volume_matches(pv: Obj, claim: Obj) -> bool:
    """Whether ``pv`` could serve ``claim`` (class, mode, access modes, selector, size),
    not counting who it is bound to."""
    spec, cspec = _spec(pv), _spec(claim)
    if storage_class_name(pv) != storage_class_name(claim):
        return False
    if (spec.get("volumeMode") or FILESYSTEM) != (cspec.get("volumeMode") or FILESYSTEM):
        return False
    have = set(spec.get("accessModes") or [])
    if not set(cspec.get("accessModes") or []) <= have:
        return False
    selector = cspec.get("selector")
    if selector is not None:
        try:
            if not label_selector_from_object(selector).matches(labels_of(pv)):
                return False
        except SelectorError:
            return False
    request, capacity = quantity(claim_request(claim)), quantity(volume_capacity(pv))
    return request is not None and capacity is not None and capacity >= request


def find_best_match(claim: Obj, volumes: Iterable[Obj]) -> Optional[Obj]:
    """``findBestMatchForClaim``: a volume pre-bound to this claim that matches, else the
    smallest Available unclaimed volume that matches. Volumes being deleted never bind."""
    best: Optional[Obj] = None
    best_size: Optional[Decimal] = None
    for pv in volumes:
        if meta_of(pv).get("deletionTimestamp") or not volume_matches(pv, claim):
            continue
        if claim_ref_matches(pv, claim):
            return pv
        if _spec(pv).get("claimRef") or (pv.get("status") or {}).get("phase") != "Available":
            continue
        size = quantity(volume_capacity(pv))
        if best is None or (size is not None and best_size is not None and size < best_size):
            best, best_size = pv, size
    return best


# --- the local-path provisioner ----------------------------------------------------------------


def provisioned_volume_name(claim: Obj) -> str:
    """``pvc-<claim uid>``, the name external provisioners give a claim's volume."""
    return f"pvc-{uid_of(claim)}"


def local_path(root: str, pv_name: str, claim: Obj) -> str:
    """Where local-path-provisioner keeps a volume: ``<root>/<pv>_<namespace>_<claim>``."""
    return str(PurePosixPath(root) / f"{pv_name}_{namespace_of(claim)}_{name_of(claim)}")


def is_local_path_of(path: str, root: str) -> bool:
    """Whether ``path`` is one directory directly under ``root`` (the only paths the
    provisioner ever made, and so the only ones it may delete)."""
    parent = PurePosixPath(path).parent
    name = PurePosixPath(path).name
    return parent == PurePosixPath(root) and name not in ("", ".", "..") and "/" not in name


def provisioned_volume(claim: Obj, sc: Obj, node: str, root: str) -> dict[str, Any]:
    """The PersistentVolume local-path-provisioner makes for ``claim`` on ``node``."""
    name = provisioned_volume_name(claim)
    cspec = _spec(claim)
    policy = sc.get("reclaimPolicy") if isinstance(sc.get("reclaimPolicy"), str) else "Delete"
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name,
                     "annotations": {PROVISIONED_BY_ANNOTATION: LOCAL_PATH_PROVISIONER}},
        "spec": {
            "capacity": {"storage": claim_request(claim)},
            "accessModes": list(cspec.get("accessModes") or []),
            "persistentVolumeReclaimPolicy": policy,
            "storageClassName": name_of(sc),
            "volumeMode": cspec.get("volumeMode") or FILESYSTEM,
            "hostPath": {"path": local_path(root, name, claim), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "namespace": namespace_of(claim), "name": name_of(claim),
                         "uid": uid_of(claim),
                         "resourceVersion": meta_of(claim).get("resourceVersion") or ""},
        },
    }


def volume_path(pv: Obj) -> str:
    """The host path of a ``hostPath`` or ``local`` volume; empty for any other source."""
    spec = _spec(pv)
    for key in ("hostPath", "local"):
        source = spec.get(key)
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            return str(source["path"])
    return ""


# --- node affinity -----------------------------------------------------------------------------


def node_affinity_matches(pv: Obj, node_name: str, node_labels: Mapping[str, str]) -> bool:
    """``CheckNodeAffinity``: a volume without ``nodeAffinity.required`` fits every
    node; else one of its terms must match all its expressions (and fields)."""
    affinity = _spec(pv).get("nodeAffinity")
    required = affinity.get("required") if isinstance(affinity, dict) else None
    if not isinstance(required, dict):
        return True
    return any(term_matches(term, node_name, node_labels)
               for term in required.get("nodeSelectorTerms") or [] if isinstance(term, dict))
