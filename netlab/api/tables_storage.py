"""Server-side Table columns and cells for PersistentVolumes, PersistentVolumeClaims and
StorageClasses, as kube-apiserver's printers (pkg/printers/internalversion
``printPersistentVolume``, ``printPersistentVolumeClaim``, ``printStorageClass``) print
them:

* ``kubectl get pvc``: NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS
  VOLUMEATTRIBUTESCLASS AGE (VOLUMEMODE wide); capacity and access modes only once the
  claim names a volume, from its status;
* ``kubectl get pv``: NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS
  VOLUMEATTRIBUTESCLASS REASON AGE (VOLUMEMODE wide);
* ``kubectl get sc``: NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE
  ALLOWVOLUMEEXPANSION AGE, the default class's name followed by ``(default)``.

An object being deleted shows ``Terminating`` as its status. :mod:`netlab.api.tables`
adds this module's ``PRINTERS`` to its own. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from netlab.api.persistentvolumes import (
    access_modes_string,
    is_default_class,
    storage_class_name,
)
from netlab.api.printers import _age, _get, _name
from netlab.api.tables_base import _AGE, _NAME, Column, Printer
from netlab.api.views import dict_at

Obj = dict[str, Any]


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _phase(obj: Obj) -> str:
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    return _s(_get(obj, "status", "phase"))


def _unset(value: Any) -> str:
    return value if isinstance(value, str) else "<unset>"


def _quantity(value: Any) -> str:
    return str(value) if isinstance(value, (str, int, float)) and \
        not isinstance(value, bool) else ""


def volume_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = dict_at(obj, "spec")
    ref = spec.get("claimRef")
    claim = f"{_s(ref.get('namespace'))}/{_s(ref.get('name'))}" if isinstance(ref, dict) else ""
    return [_name(obj), _quantity(_get(obj, "spec", "capacity", "storage")),
            access_modes_string(spec.get("accessModes")),
            _s(spec.get("persistentVolumeReclaimPolicy")), _phase(obj), claim,
            storage_class_name(obj), _unset(spec.get("volumeAttributesClassName")),
            _s(_get(obj, "status", "reason")), _age(obj, now), _unset(spec.get("volumeMode"))]


def claim_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = dict_at(obj, "spec")
    volume = _s(spec.get("volumeName"))
    capacity = access = ""
    if volume:
        capacity = _quantity(_get(obj, "status", "capacity", "storage"))
        access = access_modes_string(_get(obj, "status", "accessModes"))
    return [_name(obj), _phase(obj), volume, capacity, access, storage_class_name(obj),
            _unset(spec.get("volumeAttributesClassName")), _age(obj, now),
            _unset(spec.get("volumeMode"))]


def storage_class_cells(obj: Obj, now: datetime) -> list[Any]:
    name = _name(obj) + (" (default)" if is_default_class(obj) else "")
    expansion = obj.get("allowVolumeExpansion")
    return [name, _s(obj.get("provisioner")), _s(obj.get("reclaimPolicy")) or "Delete",
            _s(obj.get("volumeBindingMode")) or "Immediate",
            expansion if isinstance(expansion, bool) else False, _age(obj, now)]


_MODE_DESC = "volumeMode defines if a volume is intended to be used with a formatted filesystem "\
    "or to remain in raw block state."

PRINTERS: dict[str, Printer] = {
    "PersistentVolume": Printer((
        _NAME,
        Column("Capacity", description="capacity is the description of the persistent "
               "volume's resources and capacity."),
        Column("Access Modes", description="accessModes contains all ways the volume can be "
               "mounted."),
        Column("Reclaim Policy", description="persistentVolumeReclaimPolicy defines what "
               "happens to a persistent volume when released from its claim."),
        Column("Status", description="phase indicates if a volume is available, bound to a "
               "claim, or released by a claim."),
        Column("Claim", description="claimRef is part of a bi-directional binding between "
               "PersistentVolume and PersistentVolumeClaim."),
        Column("StorageClass", description="StorageClass of the pv"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
        Column("Reason", description="reason is a brief CamelCase string that describes any "
               "failure and is meant for machine parsing and tidy display in the CLI."),
        _AGE,
        Column("VolumeMode", priority=1, description=_MODE_DESC),
    ), volume_cells),
    "PersistentVolumeClaim": Printer((
        _NAME,
        Column("Status", description="phase represents the current phase of "
               "PersistentVolumeClaim."),
        Column("Volume", description="volumeName is the binding reference to the "
               "PersistentVolume backing this claim."),
        Column("Capacity", description="capacity represents the actual resources of the "
               "underlying volume."),
        Column("Access Modes", description="accessModes contains the actual access modes the "
               "volume backing the PVC has."),
        Column("StorageClass", description="StorageClass of the pvc"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
        _AGE,
        Column("VolumeMode", priority=1, description=_MODE_DESC),
    ), claim_cells),
    "StorageClass": Printer((
        _NAME,
        Column("Provisioner", description="provisioner indicates the type of the "
               "provisioner."),
        Column("ReclaimPolicy", description="reclaimPolicy controls the reclaimPolicy for "
               "dynamically provisioned PersistentVolumes of this storage class."),
        Column("VolumeBindingMode", description="volumeBindingMode indicates how "
               "PersistentVolumeClaims should be provisioned and bound."),
        Column("AllowVolumeExpansion", description="allowVolumeExpansion shows whether the "
               "storage class allow volume expand."),
        _AGE,
    ), storage_class_cells),
}
