"""OpenAPI v3 component schemas of PersistentVolume, PersistentVolumeClaim (core/v1) and
StorageClass (storage.k8s.io/v1), restated from k8s.io/api.

Imported at the bottom of :mod:`netlab.api.openapi_schemas`, whose ``_def``/``_kind``
registration tables these calls fill: kubectl validates manifests and computes apply
patches from them, and strict field validation rejects fields not declared here. The
volume sources netlab never mounts (the cloud and network ones) are free-form objects,
as the Pod schema's are; ``provisioner`` is required of a StorageClass, as published.
"""

from __future__ import annotations

from typing import Any

from netlab.api.openapi_schemas_base import (
    _PREFIXES,
    AS,
    FREE,
    QMAP,
    SMAP,
    TIME,
    A,
    B,
    M,
    R,
    S,
    _def,
    _kind,
    obj,
)

_PREFIXES["storage"] = "io.k8s.api.storage.v1."

# --- PersistentVolumeClaim ----------------------------------------------------------------------

_def("core.PersistentVolumeClaimCondition", obj(
    ("type", "status"), lastProbeTime=TIME, lastTransitionTime=TIME, message=S, reason=S,
    status=S, type=S))
_def("core.ModifyVolumeStatus", obj(("status",), status=S, targetVolumeAttributesClassName=S))
_def("core.PersistentVolumeClaimStatus", obj(
    accessModes=AS(), allocatedResourceStatuses=SMAP, allocatedResources=QMAP, capacity=QMAP,
    conditions=M("core.PersistentVolumeClaimCondition", "type"),
    currentVolumeAttributesClassName=S, modifyVolumeStatus=R("core.ModifyVolumeStatus"),
    phase=S))
_kind("core.PersistentVolumeClaim", "", "v1", {
    "spec": R("core.PersistentVolumeClaimSpec"),
    "status": R("core.PersistentVolumeClaimStatus")})

# --- PersistentVolume ---------------------------------------------------------------------------

_def("core.LocalVolumeSource", obj(("path",), fsType=S, path=S))
_def("core.VolumeNodeAffinity", obj(required=R("core.NodeSelector")))
_NETWORK_SOURCES = ("awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi",
                    "fc", "flexVolume", "flocker", "gcePersistentDisk", "glusterfs", "iscsi",
                    "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO",
                    "storageos", "vsphereVolume")
_SOURCE_PROPS: dict[str, Any] = {name: FREE for name in _NETWORK_SOURCES}
_def("core.PersistentVolumeSpec", obj(
    accessModes=AS(), capacity=QMAP, claimRef=R("core.ObjectReference"),
    hostPath=R("core.HostPathVolumeSource"), local=R("core.LocalVolumeSource"),
    mountOptions=AS(), nfs=R("core.NFSVolumeSource"),
    nodeAffinity=R("core.VolumeNodeAffinity"), persistentVolumeReclaimPolicy=S,
    storageClassName=S, volumeAttributesClassName=S, volumeMode=S, **_SOURCE_PROPS))
_def("core.PersistentVolumeStatus", obj(lastPhaseTransitionTime=TIME, message=S, phase=S,
                                        reason=S))
_kind("core.PersistentVolume", "", "v1", {
    "spec": R("core.PersistentVolumeSpec"), "status": R("core.PersistentVolumeStatus")})

# --- StorageClass -------------------------------------------------------------------------------

_def("core.TopologySelectorLabelRequirement", obj(("key", "values"), key=S, values=AS()))
_def("core.TopologySelectorTerm", obj(
    matchLabelExpressions=A("core.TopologySelectorLabelRequirement", ltype="atomic"),
    mtype="atomic"))
_kind("storage.StorageClass", "storage.k8s.io", "v1", {
    "allowVolumeExpansion": B,
    "allowedTopologies": A("core.TopologySelectorTerm", ltype="atomic"),
    "mountOptions": AS(), "parameters": SMAP, "provisioner": S, "reclaimPolicy": S,
    "volumeBindingMode": S}, ("provisioner",))
