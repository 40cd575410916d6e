"""A pod's ``persistentVolumeClaim`` volumes: claim -> bound volume -> host path (pure).

The kubelet's desired-state populator (``getPVCExtractPV``) restated: the claim must
exist and be Bound, its volume must exist and name the claim back (by uid), and the
volume must be one netlab can mount, a ``hostPath`` or ``local`` directory. Until then
the volume fails with upstream's ``error processing PVC <ns>/<claim>: ...`` and the pod
waits, ContainerCreating, and tries again.

Containment: netlab's own state and data directories are never a pod's (a ``hostPath``
into them is refused). The one exception is the lab's local-path provisioner's directory
for this very volume and claim, ``<data dir>/local-path/<pv>_<ns>_<claim>``, which the
provisioner made; any other path under the lab's directories, another claim's directory
included, is refused as a hostPath there would be. :func:`resolve` says which case a
volume is, so the volume manager mounts the provisioner's directory as a volume of the
pod and anything else with the hostPath rules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from netlab.api import persistentvolumes as pvs
from netlab.api.views import meta_of, name_of, namespace_of, uid_of
from netlab.node.kubelet.volumes import UnsupportedVolume, VolumeError

PVC = "persistentVolumeClaim"


@dataclass(frozen=True)
class ClaimPath:
    """Where a claim's volume is on the host. ``provisioned``: the local-path
    provisioner's own directory for it (else a static volume's path, a hostPath);
    ``host_path_type``: the volume's ``hostPath.type``."""

    path: str
    provisioned: bool
    host_path_type: str = ""


def claim_name(volume: Mapping[str, Any]) -> str:
    source = volume.get(PVC)
    return str(source.get("claimName") or "") if isinstance(source, dict) else ""


def read_only(volume: Mapping[str, Any]) -> bool:
    source = volume.get(PVC)
    return isinstance(source, dict) and source.get("readOnly") is True


def resolve(claim: Optional[Mapping[str, Any]], pv: Optional[Mapping[str, Any]],
            namespace: str, name: str, local_path_root: str) -> ClaimPath:
    """The path of claim ``namespace/name``'s volume; raises :class:`VolumeError` while it
    cannot be mounted (no claim, not bound, no volume, a volume of another claim).
    ``pv`` is the volume the claim names (None: not found or not asked yet)."""
    prefix = f"error processing PVC {namespace}/{name}"
    if claim is None:
        raise VolumeError(f"{prefix}: failed to fetch PVC from API server: "
                          f'persistentvolumeclaims "{name}" not found')
    if meta_of(claim).get("deletionTimestamp"):
        raise VolumeError(f"{prefix}: can't start pod because PVC {namespace}/{name} is being "
                          "deleted")
    volume_name = (claim.get("spec") or {}).get("volumeName")
    if (claim.get("status") or {}).get("phase") != "Bound" or not volume_name:
        raise VolumeError(f"{prefix}: PVC is not bound")
    if pv is None:
        raise VolumeError(f'{prefix}: failed to fetch PV "{volume_name}" from API server: '
                          f'persistentvolumes "{volume_name}" not found')
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if ref.get("uid") != uid_of(claim) or ref.get("name") != name or \
            ref.get("namespace") != namespace:
        raise VolumeError(f'{prefix}: the PV\'s claimRef does not point to this claim '
                          f'(uid {uid_of(claim)})')
    path = pvs.volume_path(pv)
    if not path:
        sources = [k for k in (pv.get("spec") or {}) if isinstance(
            (pv.get("spec") or {}).get(k), dict) and k not in ("capacity", "claimRef",
                                                               "nodeAffinity")]
        raise UnsupportedVolume(f"persistentvolume {name_of(pv)}: "
                                f"{', '.join(sources) or 'its'} volumes are not supported by "
                                "netlab (supported: hostPath, local)")
    host_path = (pv.get("spec") or {}).get("hostPath")
    kind = str(host_path.get("type") or "") if isinstance(host_path, dict) else ""
    expected = pvs.local_path(local_path_root, name_of(pv), claim) if local_path_root else ""
    if expected and os.path.normpath(path) == expected:
        return ClaimPath(expected, provisioned=True, host_path_type=kind)
    return ClaimPath(path, provisioned=False, host_path_type=kind)


def pod_namespace(pod: Mapping[str, Any]) -> str:
    return namespace_of(pod) or str(meta_of(pod).get("namespace") or "default")
