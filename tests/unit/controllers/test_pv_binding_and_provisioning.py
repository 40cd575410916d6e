"""The PV controller's decisions (pure), the local-path provisioner's directories, and the
controller against a real API server in-process: static binding, provisioning on the
scheduler's node, and reclaiming (Delete removes the volume and its directory; Retain
keeps the volume, Released)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cmkit import cluster, eventually

from netlab.api import persistentvolumes as pvs
from netlab.master.controllers import localpath
from netlab.master.controllers import pvplan as plan
from netlab.master.controllers.base import Options

STANDARD = {"metadata": {"name": "standard"}, "provisioner": pvs.LOCAL_PATH_PROVISIONER,
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}
IMMEDIATE = {"metadata": {"name": "fast"}, "provisioner": "example.com/nfs",
             "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}
CLASSES = {"standard": STANDARD, "fast": IMMEDIATE}


def claim(name: str = "data", cls: str | None = "standard", size: str = "1Gi",
          node: str = "", **spec: object) -> dict:
    meta: dict = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if node:
        meta["annotations"] = {pvs.SELECTED_NODE_ANNOTATION: node}
    body: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
                  **spec}
    if cls is not None:
        body["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
            "spec": body, "status": {"phase": "Pending"}}


def volume(name: str, size: str = "5Gi", cls: str = "", phase: str = "Available",
           **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": f"/srv/{name}"}, "storageClassName": cls,
                     "persistentVolumeReclaimPolicy": "Retain", **spec},
            "status": {"phase": phase}}


# --- decisions ---------------------------------------------------------------------------------


def test_static_binding_takes_the_smallest_volume_that_fits():
    volumes = [volume("big", "10Gi"), volume("small", "2Gi"), volume("tiny", "500Mi"),
               volume("bound", "1Gi", claimRef={"namespace": "x", "name": "y", "uid": "u"}),
               volume("rwx", "1Gi", accessModes=["ReadWriteMany"])]
    step = plan.claim_step(claim(cls=""), volumes, CLASSES)
    assert (step.action, pvs.storage_class_name(step.volume), step.volume["metadata"]["name"]) == (
        plan.BIND, "", "small")
    # A selector narrows the choice; nothing left is FailedBinding for a class-less claim.
    picky = claim(cls="", selector={"matchLabels": {"tier": "gold"}})
    step = plan.claim_step(picky, volumes, CLASSES)
    assert (step.action, step.reason, step.message) == (
        plan.WAIT, "FailedBinding",
        "no persistent volumes available for this claim and no storage class is set")


def test_a_volume_pre_bound_to_a_claim_wins_and_a_claim_naming_a_volume_binds_it():
    mine = volume("mine", "50Gi", claimRef={"namespace": "default", "name": "data"})
    step = plan.claim_step(claim(cls=""), [volume("small", "2Gi"), mine], CLASSES)
    assert step.volume["metadata"]["name"] == "mine"
    step = plan.claim_step(claim(cls="", volumeName="small"), [volume("small", "2Gi")], CLASSES)
    assert (step.action, step.volume["metadata"]["name"]) == (plan.BIND, "small")
    taken = volume("small", "2Gi", claimRef={"namespace": "x", "name": "y", "uid": "u"})
    step = plan.claim_step(claim(cls="", volumeName="small"), [taken], CLASSES)
    assert (step.action, step.message) == (
        plan.WAIT, 'volume "small" already bound to a different claim.')


def test_wait_for_first_consumer_then_provision_on_the_selected_node():
    step = plan.claim_step(claim(), [], CLASSES)
    assert (step.action, step.reason, step.message) == (
        plan.WAIT, "WaitForFirstConsumer",
        "waiting for first consumer to be created before binding")
    # An Available volume of the class does not bind before a node is chosen...
    local = volume("local", "5Gi", cls="standard", nodeAffinity={"required": {
        "nodeSelectorTerms": [{"matchExpressions": [{
            "key": "kubernetes.io/hostname", "operator": "In", "values": ["worker2"]}]}]}})
    assert plan.claim_step(claim(), [local], CLASSES).action == plan.WAIT
    # ...and then only if that node reaches it; else the provisioner makes one there.
    assert plan.claim_step(claim(node="worker2"), [local], CLASSES).action == plan.BIND
    step = plan.claim_step(claim(node="worker1"), [local], CLASSES)
    assert (step.action, step.node, step.storage_class) == (plan.PROVISION, "worker1",
                                                             STANDARD)
    step = plan.claim_step(claim(node="worker1"), [], CLASSES, can_provision=False)
    assert step.reason == "ExternalProvisioning"


def test_other_provisioners_and_missing_classes_are_waited_for():
    step = plan.claim_step(claim(cls="fast"), [], CLASSES)
    assert (step.action, step.reason) == (plan.WAIT, "ExternalProvisioning")
    assert '"example.com/nfs"' in step.message
    step = plan.claim_step(claim(cls="gold"), [], CLASSES)
    assert (step.reason, step.message, step.warning) == (
        "ProvisioningFailed", 'storageclass.storage.k8s.io "gold" not found', True)


def test_the_provisioned_volume_is_local_path_provisioners():
    c = claim(node="worker1")
    pv = pvs.provisioned_volume(c, STANDARD, "worker1", "/var/lib/netlab/lab/local-path")
    assert pv["metadata"] == {"name": "pvc-uid-data", "annotations": {
        "pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}}
    spec = pv["spec"]
    assert spec["hostPath"] == {
        "path": "/var/lib/netlab/lab/local-path/pvc-uid-data_default_data",
        "type": "DirectoryOrCreate"}
    assert (spec["capacity"], spec["persistentVolumeReclaimPolicy"],
            spec["storageClassName"]) == ({"storage": "1Gi"}, "Delete", "standard")
    assert spec["claimRef"]["uid"] == "uid-data"
    assert pvs.node_affinity_matches(pv, "worker1", {"kubernetes.io/hostname": "worker1"})
    assert not pvs.node_affinity_matches(pv, "worker2", {"kubernetes.io/hostname": "worker2"})
    assert plan.claim_step(c, [pv], CLASSES).action == plan.BIND


def test_a_bound_claim_is_done_and_lost_without_its_volume():
    pv = volume("pvc-uid-data", "1Gi", cls="standard", phase="Bound", claimRef={
        "namespace": "default", "name": "data", "uid": "uid-data"})
    c = claim(volumeName="pvc-uid-data")
    c["status"]["phase"] = "Bound"
    c["metadata"]["annotations"] = {pvs.BIND_COMPLETED_ANNOTATION: "yes"}
    assert plan.claim_step(c, [pv], CLASSES).action == plan.DONE
    step = plan.claim_step(c, [], CLASSES)
    assert (step.action, step.reason) == (plan.LOST, "ClaimLost")


def test_volume_phases_and_reclaim():
    assert plan.volume_step(volume("a", phase="Pending"), None, False).phase == "Available"
    ref = {"namespace": "default", "name": "data", "uid": "uid-data"}
    bound_claim = claim(volumeName="a")
    assert plan.volume_step(volume("a", phase="Pending", claimRef=ref), bound_claim,
                            False).phase == "Bound"
    # The claim is gone (or replaced by a same-named one): Retain keeps it Released...
    retained = plan.volume_step(volume("a", phase="Bound", claimRef=ref), None, False)
    assert (retained.phase, retained.delete) == ("Released", False)
    other = claim()
    other["metadata"]["uid"] = "another"
    assert plan.volume_step(volume("a", phase="Bound", claimRef=ref), other,
                            False).phase == "Released"
    # ...Delete deletes it, when a deleter exists (the provisioner's own volumes).
    doomed = volume("a", phase="Bound", claimRef=ref, persistentVolumeReclaimPolicy="Delete")
    step = plan.volume_step(doomed, None, True)
    assert (step.phase, step.delete) == ("Released", True)
    step = plan.volume_step(doomed, None, False)
    assert (step.phase, step.delete, step.message) == (
        "Failed", False, 'error getting deleter volume plugin for volume "a": no deletable '
                         'volume plugin matched')
    # Pre-bound by hand to a claim not made yet: it waits, Available.
    waiting = volume("a", phase="Pending", claimRef={"namespace": "default", "name": "later"})
    assert plan.volume_step(waiting, None, True).phase == "Available"


def test_the_default_class_and_access_mode_strings():
    older = {"metadata": {"name": "old", "creationTimestamp": "2024-01-01T00:00:00Z",
                          "annotations": {pvs.DEFAULT_CLASS_ANNOTATION: "true"}}}
    newer = {"metadata": {"name": "new", "creationTimestamp": "2025-01-01T00:00:00Z",
                          "annotations": {pvs.BETA_DEFAULT_CLASS_ANNOTATION: "true"}}}
    assert pvs.default_class_name([older, newer, {"metadata": {"name": "x"}}]) == "new"
    assert pvs.default_class_name([{"metadata": {"name": "x"}}]) is None
    assert pvs.access_modes_string(["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"]) == \
        "RWO,RWX"


# --- directories -------------------------------------------------------------------------------


def test_directories_are_made_0777_and_removed_only_under_the_root(tmp_path: Path):
    root = str(tmp_path / "local-path")
    path = f"{root}/pvc-1_default_data"
    localpath.make_dir(root, path)
    assert os.stat(path).st_mode & 0o777 == 0o777
    (Path(path) / "file").write_text("x")
    outside = tmp_path / "keep"
    outside.mkdir()
    (outside / "precious").write_text("x")
    os.symlink(outside, f"{path}/link")
    for bad in (root, str(outside), f"{root}/../keep", f"{path}/file", "/"):
        with pytest.raises(localpath.LocalPathError):
            localpath.remove_dir(root, bad)
    assert localpath.remove_dir(root, path) is True
    assert not os.path.exists(path) and (outside / "precious").exists()
    assert localpath.remove_dir(root, path) is False
    # A link put where a volume was is removed itself, never followed.
    os.symlink(outside, path)
    assert localpath.remove_dir(root, path) is True
    assert (outside / "precious").exists()


# --- the controller, in-process ----------------------------------------------------------------


async def _phase(client, resource: str, name: str, namespace: str | None, want: str):
    obj = await client.get(resource, name, namespace)
    return obj if (obj.get("status") or {}).get("phase") == want else None


async def test_controller_binds_provisions_and_reclaims(tmp_path: Path) -> None:
    root = str(tmp_path / "local-path")
    options = Options(local_path_root=root)
    async with cluster(options, controllers=["persistentvolume-binder", "pvc-protection"]) as c:
        # Static: a class-less claim binds the matching Available volume.
        await c.client.create(volume("static", "2Gi"))
        await c.client.create(claim("static", cls=""))
        bound = await eventually(lambda: _phase(c.client, "persistentvolumeclaims", "static",
                                                "default", "Bound"), what="static binding")
        assert bound["spec"]["volumeName"] == "static"
        assert bound["status"]["capacity"] == {"storage": "2Gi"}
        await eventually(lambda: _phase(c.client, "persistentvolumes", "static", None,
                                        "Bound"), what="the volume Bound")
        # Dynamic: the default class waits for a node, then provisions there.
        made = await c.client.create(claim("data", cls=None))
        assert made["spec"]["storageClassName"] == "standard"
        await c.client.patch("persistentvolumeclaims", "data", {"metadata": {"annotations": {
            pvs.SELECTED_NODE_ANNOTATION: "worker1"}}}, "default")
        data = await eventually(lambda: _phase(c.client, "persistentvolumeclaims", "data",
                                               "default", "Bound"), what="provisioning")
        pv_name = f"pvc-{made['metadata']['uid']}"
        assert data["spec"]["volumeName"] == pv_name
        assert data["metadata"]["annotations"][pvs.STORAGE_PROVISIONER_ANNOTATION] == \
            pvs.LOCAL_PATH_PROVISIONER
        pv = await c.client.get("persistentvolumes", pv_name)
        path = pv["spec"]["hostPath"]["path"]
        assert path == f"{root}/{pv_name}_default_data" and os.path.isdir(path)
        # Deleting the claim deletes the volume (Delete) and its directory.
        await c.client.delete("persistentvolumeclaims", "data", "default")

        async def volume_gone():
            names = [p["metadata"]["name"] for p in
                     (await c.client.list("persistentvolumes"))["items"]]
            return pv_name not in names and not os.path.exists(path)

        await eventually(volume_gone, what="the volume and its directory to go")
        # Retain: the static volume stays, Released.
        await c.client.delete("persistentvolumeclaims", "static", "default")
        await eventually(lambda: _phase(c.client, "persistentvolumes", "static", None,
                                        "Released"), what="the static volume Released")


def test_a_claim_naming_a_volume_that_cannot_serve_it_says_why():
    step = plan.claim_step(claim(cls="", size="10Gi", volumeName="small"),
                           [volume("small", "2Gi")], CLASSES)
    assert (step.action, step.reason, step.message) == (
        plan.WAIT, "VolumeMismatch",
        'Cannot bind to requested volume "small": requested PV is too small')
    step = plan.claim_step(claim(cls="", volumeName="rwx", accessModes=["ReadWriteMany"]),
                           [volume("rwx", "2Gi")], CLASSES)
    assert step.message.endswith("incompatible accessMode")


async def test_a_claim_in_use_is_deleted_only_when_its_pod_is_done() -> None:
    async with cluster(controllers=["pvc-protection"]) as c:
        made = await c.client.create(claim("data", cls=""))
        assert made["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        await c.client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "user", "namespace": "default"}, "spec": {
            "nodeName": "worker1", "containers": [{"name": "c", "image": "i"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
        await c.client.delete("persistentvolumeclaims", "data", "default")
        held = await c.client.get("persistentvolumeclaims", "data", "default")
        assert held["metadata"].get("deletionTimestamp")  # Terminating while in use
        pod = await c.client.get("pods", "user", "default")
        pod["status"] = {"phase": "Succeeded"}
        await c.client.update(pod, subresource="status")

        async def gone():
            items = (await c.client.list("persistentvolumeclaims", "default"))["items"]
            return not items

        await eventually(gone, what="the claim to go once its pod is done")
