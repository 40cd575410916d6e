"""Validation of PersistentVolumes, PersistentVolumeClaims and StorageClasses.

Restates what users meet of pkg/apis/core/validation (``ValidatePersistentVolume``,
``ValidatePersistentVolumeClaimSpec`` and their update checks) and
pkg/apis/storage/validation (``ValidateStorageClass``), with upstream's field paths and
messages:

* a claim needs ``accessModes`` (``at least 1 access mode is required``) and
  ``resources.requests.storage`` (``spec.resources[storage]: Required value``), a
  positive quantity; its spec is immutable but for ``volumeName`` set once, a class set
  where none was (RetroactiveDefaultStorageClass) and, once Bound, a larger request
  (``spec is immutable after creation except resources.requests and
  volumeAttributesClassName for bound claims``);
* a volume needs ``capacity`` (storage only), ``accessModes`` and exactly one volume
  source (``must specify a volume type``, ``may not specify more than 1 volume type``);
  a ``local`` one needs node affinity; its source is immutable;
* a class needs a ``provisioner``; ``reclaimPolicy`` is Delete or Retain; the
  provisioner, parameters, reclaim policy and binding mode are immutable.

The claim-spec rules also check a StatefulSet's ``volumeClaimTemplates``
(:func:`validate_claim_spec`). :mod:`netlab.api.validation` registers these functions.
Objects arrive defaulted. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from netlab.api import selectors
from netlab.api.errors import forbidden_field, invalid, not_supported, required
from netlab.api.persistentvolumes import ACCESS_MODES, quantity
from netlab.api.validation_base import _QUANTITY_MSG, _V, _immutable, dns1123_subdomain
from netlab.api.validation_networking import label_selector

VOLUME_MODES = ("Block", "Filesystem")
PV_RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
SC_RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
# Every source a PersistentVolumeSpec may set (PersistentVolumeSource's fields).
VOLUME_SOURCES = ("gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs",
                  "rbd", "iscsi", "cinder", "cephfs", "fc", "flocker", "flexVolume", "azureFile",
                  "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
                  "portworxVolume", "scaleIO", "local", "storageos", "csi")
CLAIM_IMMUTABLE_MSG = ("spec is immutable after creation except resources.requests and "
                       "volumeAttributesClassName for bound claims")


def _access_modes(v: _V, spec: dict[str, Any], path: str) -> None:
    modes = spec.get("accessModes")
    if not modes:
        v.add(required(path, "at least 1 access mode is required"))
        return
    if not isinstance(modes, list):
        v.add(invalid(path, modes, "must be a list"))
        return
    for mode in modes:
        if mode not in ACCESS_MODES:
            v.add(not_supported(path, mode, sorted(ACCESS_MODES)))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        v.add(forbidden_field(path, "may not use ReadWriteOncePod with other access modes"))


def _storage_quantity(v: _V, value: Any, path: str, positive: bool) -> None:
    q = quantity(value)
    if q is None:
        v.add(invalid(path, value, _QUANTITY_MSG))
    elif q < 0:
        v.add(invalid(path, value, "must be greater than or equal to 0"))
    elif positive and q == 0:
        v.add(invalid(path, value, "must be greater than zero"))


def _class_name(v: _V, holder: dict[str, Any], path: str) -> None:
    name = v.string(holder, "storageClassName", path)
    if name:
        for msg in dns1123_subdomain(name):
            v.add(invalid(path, name, msg))


def validate_claim_spec(v: _V, spec: Any, path: str) -> None:
    """``ValidatePersistentVolumeClaimSpec`` at ``path`` (``spec``, or a StatefulSet's
    ``spec.volumeClaimTemplates[i].spec``)."""
    if not isinstance(spec, dict):
        v.add(required(path) if spec is None else invalid(path, spec, "must be an object"))
        return
    _access_modes(v, spec, f"{path}.accessModes")
    label_selector(v, spec.get("selector"), f"{path}.selector")
    resources = v.obj(spec, "resources", f"{path}.resources")
    requests = v.obj(resources, "requests", f"{path}.resources.requests")
    if requests.get("storage") is None:
        v.add(required(f"{path}.resources[storage]"))
    else:
        _storage_quantity(v, requests["storage"], f"{path}.resources[storage]", positive=True)
    _class_name(v, spec, f"{path}.storageClassName")
    if spec.get("volumeMode") is not None:
        v.one_of(spec, "volumeMode", f"{path}.volumeMode", VOLUME_MODES)


def validate_claim(v: _V, obj: dict[str, Any]) -> None:
    validate_claim_spec(v, obj.get("spec"), "spec")


def validate_claim_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    """``ValidatePersistentVolumeClaimUpdate``: what may change in a claim's spec."""
    new_spec = dict(new.get("spec") or {}) if isinstance(new.get("spec"), dict) else {}
    old_spec = dict(old.get("spec") or {}) if isinstance(old.get("spec"), dict) else {}
    if not old_spec.get("volumeName"):
        old_spec["volumeName"] = new_spec.get("volumeName")  # the binder sets it once
    if old_spec.get("storageClassName") is None:
        # RetroactiveDefaultStorageClass: a claim made before any default got one.
        old_spec["storageClassName"] = new_spec.get("storageClassName")
    bound = (old.get("status") or {}).get("phase") == "Bound"
    if bound:
        for spec in (new_spec, old_spec):
            spec.pop("volumeAttributesClassName", None)
        new_res = dict(new_spec.get("resources") or {})
        old_requests = (old_spec.get("resources") or {}).get("requests")
        if isinstance(old_requests, dict) and isinstance(new_res.get("requests"), dict):
            new_res["requests"] = {**new_res["requests"],
                                   "storage": old_requests.get("storage")}
            new_spec["resources"] = new_res
    for spec in (new_spec, old_spec):
        spec.setdefault("volumeName", None)
        if not spec.get("volumeName"):
            spec["volumeName"] = None
    if new_spec != old_spec:
        v.add(forbidden_field("spec", CLAIM_IMMUTABLE_MSG))
    new_size = quantity(_request(new))
    old_size = quantity(_request(old))
    if new_size is not None and old_size is not None and new_size < old_size:
        v.add(forbidden_field("spec.resources.requests.storage",
                              "field can not be less than previous value"))


def _request(claim: dict[str, Any]) -> Any:
    spec = claim.get("spec")
    resources = spec.get("resources") if isinstance(spec, dict) else None
    requests = resources.get("requests") if isinstance(resources, dict) else None
    return requests.get("storage") if isinstance(requests, dict) else None


def validate_volume(v: _V, obj: dict[str, Any]) -> None:
    """``ValidatePersistentVolume``."""
    spec = v.obj(obj, "spec", "spec")
    capacity = spec.get("capacity")
    if not capacity:
        v.add(required("spec.capacity"))
    elif not isinstance(capacity, dict):
        v.add(invalid("spec.capacity", capacity, "must be an object"))
    else:
        for key, value in capacity.items():
            if key != "storage":
                v.add(not_supported("spec.capacity", key, ["storage"]))
            else:
                _storage_quantity(v, value, "spec.capacity[storage]", positive=False)
    _access_modes(v, spec, "spec.accessModes")
    if spec.get("persistentVolumeReclaimPolicy") is not None:
        v.one_of(spec, "persistentVolumeReclaimPolicy", "spec.persistentVolumeReclaimPolicy",
                 PV_RECLAIM_POLICIES)
    sources = [key for key in VOLUME_SOURCES if spec.get(key) is not None]
    if not sources:
        v.add(required("spec", "must specify a volume type"))
    for extra in sources[1:]:
        v.add(forbidden_field(f"spec.{extra}", "may not specify more than 1 volume type"))
    for key in ("hostPath", "local"):
        if key in sources[:1]:
            source = v.obj(spec, key, f"spec.{key}")
            path = v.string(source, "path", f"spec.{key}.path")
            if not path:
                v.add(required(f"spec.{key}.path"))
            elif ".." in path.split("/"):
                v.add(invalid(f"spec.{key}.path", path, "must not contain '..'"))
    if "local" in sources[:1] and not _has_node_affinity(spec):
        v.add(required("metadata.annotations", "Local volume requires node affinity"))
    _class_name(v, spec, "spec.storageClassName")
    if spec.get("volumeMode") is not None:
        v.one_of(spec, "volumeMode", "spec.volumeMode", VOLUME_MODES)
    affinity = v.obj(spec, "nodeAffinity", "spec.nodeAffinity")
    required_terms = v.obj(affinity, "required", "spec.nodeAffinity.required")
    if affinity.get("required") is not None and not required_terms.get("nodeSelectorTerms"):
        v.add(required("spec.nodeAffinity.required.nodeSelectorTerms",
                       "must have at least one node selector term"))


def _has_node_affinity(spec: dict[str, Any]) -> bool:
    affinity = spec.get("nodeAffinity")
    required_ = affinity.get("required") if isinstance(affinity, dict) else None
    return isinstance(required_, dict) and bool(required_.get("nodeSelectorTerms"))


def validate_volume_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    """``ValidatePersistentVolumeUpdate``: the source, the mode and a node affinity once
    set are fixed."""
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if {k: new_spec.get(k) for k in VOLUME_SOURCES} != {k: old_spec.get(k)
                                                        for k in VOLUME_SOURCES}:
        v.add(forbidden_field("spec.persistentvolumesource",
                              "spec.persistentvolumesource is immutable after creation"))
    _immutable(v, new, old, "spec", "volumeMode")
    if old_spec.get("nodeAffinity") is not None:
        _immutable(v, new, old, "spec", "nodeAffinity")


def validate_storage_class(v: _V, obj: dict[str, Any]) -> None:
    """``ValidateStorageClass``."""
    provisioner = v.string(obj, "provisioner", "provisioner")
    if not provisioner:
        v.add(required("provisioner"))
    else:
        for msg in selectors.is_qualified_name(provisioner.lower()):
            v.add(invalid("provisioner", provisioner, msg))
    v.one_of(obj, "reclaimPolicy", "reclaimPolicy", SC_RECLAIM_POLICIES)
    v.one_of(obj, "volumeBindingMode", "volumeBindingMode", BINDING_MODES, required_=True)
    parameters = v.obj(obj, "parameters", "parameters")
    for key, value in parameters.items():
        if not isinstance(value, str):
            v.add(invalid(f"parameters[{key}]", value, "must be a string"))
    expansion = obj.get("allowVolumeExpansion")
    if expansion is not None and not isinstance(expansion, bool):
        v.add(invalid("allowVolumeExpansion", expansion, "must be a boolean"))


def validate_storage_class_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    if (new.get("parameters") or {}) != (old.get("parameters") or {}):
        v.add(forbidden_field("parameters", "updates to parameters are forbidden."))
    if new.get("provisioner") != old.get("provisioner"):
        v.add(forbidden_field("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        v.add(forbidden_field("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    _immutable(v, new, old, "volumeBindingMode")
