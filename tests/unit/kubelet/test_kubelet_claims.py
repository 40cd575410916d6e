"""A pod's persistentVolumeClaim volumes in the kubelet: claim -> bound volume -> path,
the errors the pod waits on (FailedMount), and what is mounted: the provisioner's own
directory for this claim, read-only when asked; never another path under netlab's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netlab.api import persistentvolumes as pvs
from netlab.node.kubelet import claims, volumemanager
from netlab.node.kubelet import volumes as plugins
from netlab.node.kubelet.spec import PodContext
from netlab.node.runtime import capabilities

CTX = PodContext(node_name="worker1", host_ip="192.168.100.3", pod_ip="10.244.1.7",
                 hostname="web-0", node_cpu_millis=2000, node_memory_bytes=4 << 30)
POD = {"metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1"}, "spec": {}}


def claim(phase: str = "Bound", volume: str = "pvc-c1") -> dict:
    return {"metadata": {"name": "data", "namespace": "shop", "uid": "c1"},
            "spec": {"volumeName": volume, "storageClassName": "standard",
                     "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": phase}}


def provisioned(root: str) -> dict:
    sc = {"metadata": {"name": "standard"}, "reclaimPolicy": "Delete"}
    c = claim()
    return pvs.provisioned_volume(c, sc, "worker1", root)


def test_a_claim_resolves_to_its_bound_volumes_directory(tmp_path: Path):
    root = str(tmp_path / "local-path")
    got = claims.resolve(claim(), provisioned(root), "shop", "data", root)
    assert got == claims.ClaimPath(f"{root}/pvc-c1_shop_data", provisioned=True,
                                   host_path_type="DirectoryOrCreate")


@pytest.mark.parametrize("claim_obj,pv,message", [
    (None, None, 'error processing PVC shop/data: failed to fetch PVC from API server: '
                 'persistentvolumeclaims "data" not found'),
    (claim(phase="Pending", volume=""), None, "error processing PVC shop/data: PVC is not bound"),
    (claim(), None, 'error processing PVC shop/data: failed to fetch PV "pvc-c1" from API '
                    'server: persistentvolumes "pvc-c1" not found'),
])
def test_until_the_claim_is_bound_the_volume_fails_with_upstreams_words(claim_obj, pv,
                                                                        message):
    with pytest.raises(plugins.VolumeError) as err:
        claims.resolve(claim_obj, pv, "shop", "data", "/var/lib/netlab/lab/local-path")
    assert str(err.value) == message


def test_a_claim_being_deleted_starts_no_pod(tmp_path: Path):
    root = str(tmp_path / "local-path")
    going = claim()
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    with pytest.raises(plugins.VolumeError, match="can't start pod because PVC shop/data is "
                                                  "being deleted"):
        claims.resolve(going, provisioned(root), "shop", "data", root)


def test_a_volume_of_another_claim_is_refused(tmp_path: Path):
    root = str(tmp_path / "local-path")
    pv = provisioned(root)
    pv["spec"]["claimRef"]["uid"] = "someone-else"
    with pytest.raises(plugins.VolumeError, match="claimRef does not point to this claim"):
        claims.resolve(claim(), pv, "shop", "data", root)


def test_setup_makes_the_provisioned_directory_and_mounts_it(tmp_path: Path):
    root = str(tmp_path / "local-path")
    where = claims.resolve(claim(), provisioned(root), "shop", "data", root)
    vol = {"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}
    path = volumemanager.setup_volume(tmp_path / "pod", vol, POD, CTX, {}, claim_path=where)
    assert path == where.path and os.stat(path).st_mode & 0o777 == 0o777
    container = {"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    (bind,) = volumemanager.container_mounts(container, {"data": vol}, {"data": path})
    assert (bind.source, bind.destination, bind.read_only, bind.host_path) == (
        path, "/data", True, False)


def test_paths_under_netlabs_directories_are_only_the_claims_own(monkeypatch, tmp_path: Path):
    """A static volume whose path leads into netlab's data directory (another claim's
    directory, the store) is refused, as a hostPath there is; the provisioner's directory
    for this claim is the one exception."""
    data_root = tmp_path / "netlab-data"
    monkeypatch.setattr(capabilities.paths, "DATA_ROOT", data_root)
    root = str(data_root / "lab" / "local-path")
    other = f"{root}/pvc-other_shop_other"
    os.makedirs(other)
    pv = provisioned(root)
    pv["spec"]["hostPath"]["path"] = other
    where = claims.resolve(claim(), pv, "shop", "data", root)
    assert not where.provisioned
    vol = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    with pytest.raises(plugins.VolumeError, match="would expose netlab's own files"):
        volumemanager.setup_volume(tmp_path / "pod", vol, POD, CTX, {}, claim_path=where)
    own = claims.resolve(claim(), provisioned(root), "shop", "data", root)
    assert volumemanager.setup_volume(tmp_path / "pod", vol, POD, CTX, {},
                                      claim_path=own) == f"{root}/pvc-c1_shop_data"


def test_a_static_host_path_volume_is_mounted_under_the_hostpath_rules(tmp_path: Path):
    static = {"metadata": {"name": "static"},
              "spec": {"hostPath": {"path": str(tmp_path / "srv"), "type": "Directory"},
                       "claimRef": {"namespace": "shop", "name": "data", "uid": "c1"}}}
    where = claims.resolve(claim(volume="static"), static, "shop", "data", "/nowhere")
    vol = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    with pytest.raises(plugins.VolumeError, match="is not a directory"):
        volumemanager.setup_volume(tmp_path / "pod", vol, POD, CTX, {}, claim_path=where)
    (tmp_path / "srv").mkdir()
    path = volumemanager.setup_volume(tmp_path / "pod", vol, POD, CTX, {}, claim_path=where)
    container = {"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    (bind,) = volumemanager.container_mounts(container, {"data": vol}, {"data": path},
                                             host_paths=frozenset({"data"}))
    assert (bind.read_only, bind.host_path) == (False, True)
