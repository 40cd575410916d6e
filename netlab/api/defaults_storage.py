"""Defaulting of PersistentVolumes, PersistentVolumeClaims and StorageClasses, as
upstream's ``SetDefaults_*`` functions do it:

* PersistentVolume: ``persistentVolumeReclaimPolicy`` Retain (a provisioned volume carries
  its class's policy, which the provisioner writes), ``volumeMode`` Filesystem, and a
  ``hostPath`` without a ``type`` gets ``""``;
* PersistentVolumeClaim: ``volumeMode`` Filesystem (and a StatefulSet's
  ``volumeClaimTemplates`` the same, plus a Pending status, as upstream defaults them
  with the set);
* StorageClass: ``reclaimPolicy`` Delete, ``volumeBindingMode`` Immediate.

The status a new volume or claim starts with (phase Pending) is the strategy's
(``netlab.master.apiserver.strategy``). :mod:`netlab.api.defaults` registers these in its
table. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any


def _spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else None


def default_claim_spec(spec: dict[str, Any]) -> None:
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"


def default_persistent_volume_claim(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is not None:
        default_claim_spec(spec)


def default_persistent_volume(obj: dict[str, Any]) -> None:
    spec = _spec(obj)
    if spec is None:
        return
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    host_path = spec.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") is None:
        host_path["type"] = ""


def default_storage_class(obj: dict[str, Any]) -> None:
    if obj.get("reclaimPolicy") is None:
        obj["reclaimPolicy"] = "Delete"
    if obj.get("volumeBindingMode") is None:
        obj["volumeBindingMode"] = "Immediate"


def default_claim_templates(templates: Any) -> None:
    """A StatefulSet's ``volumeClaimTemplates``: each as a claim (upstream's generated
    defaulters reach them too, which is why ``kubectl get sts -o yaml`` shows each
    template with ``status: {phase: Pending}``)."""
    if not isinstance(templates, list):
        return
    for template in templates:
        if not isinstance(template, dict):
            continue
        spec = template.get("spec")
        if isinstance(spec, dict):
            default_claim_spec(spec)
        status = template.get("status")
        if status is None:
            template["status"] = {"phase": "Pending"}
        elif isinstance(status, dict) and not status.get("phase"):
            status["phase"] = "Pending"
