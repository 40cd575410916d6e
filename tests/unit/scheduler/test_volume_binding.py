"""VolumeBinding: a pod's claims decide where it may run. Pure rules, then the scheduler
against an in-process API server: a missing claim keeps the pod Pending with upstream's
message (and it is placed once the claim exists), a bound claim's volume pins the pod to
its node, and an unbound WaitForFirstConsumer claim gets the chosen node."""

from __future__ import annotations

from schedkit import CONTROL_PLANE_TAINT, eventually, node, pod
from test_scheduler_loop import create_nodes, events, running_scheduler

from netlab.api import persistentvolumes as pvs
from netlab.master.scheduler import volumebinding as vb

WFFC = {"metadata": {"name": "standard"}, "provisioner": pvs.LOCAL_PATH_PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer"}
LOCAL = {"metadata": {"name": "local"}, "provisioner": "kubernetes.io/no-provisioner",
         "volumeBindingMode": "WaitForFirstConsumer"}
NOW = {"metadata": {"name": "now"}, "provisioner": "example.com/x",
       "volumeBindingMode": "Immediate"}
CLASSES = {"standard": WFFC, "local": LOCAL, "now": NOW}


def claim(name: str, cls: str = "standard", volume: str = "") -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                  "resources": {"requests": {"storage": "1Gi"}}}
    if volume:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def on_node(name: str, node_name: str, cls: str = "standard", claim_ref: dict | None = None,
            phase: str = "Bound") -> dict:
    spec: dict = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "storageClassName": cls, "hostPath": {"path": f"/srv/{name}"},
                  "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                      {"key": "kubernetes.io/hostname", "operator": "In",
                       "values": [node_name]}]}]}}}
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": spec, "status": {"phase": phase}}


def with_claim(p: dict, *names: str) -> dict:
    p["spec"]["volumes"] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": n}}
                            for i, n in enumerate(names)]
    return p


def labels(name: str) -> dict:
    return {"kubernetes.io/hostname": name}


def test_prefilter_names_the_missing_claim_or_the_unbound_immediate_one():
    got = vb.pod_claims(with_claim(pod("p"), "data"), {}, {}, CLASSES)
    assert got.error == 'persistentvolumeclaim "data" not found'
    assert vb.prefilter_error(3, got.error) == \
        '0/3 nodes are available: persistentvolumeclaim "data" not found.'
    claims = {"default/data": claim("data", cls="now")}
    assert vb.pod_claims(with_claim(pod("p"), "data"), claims, {}, CLASSES).error == \
        "pod has unbound immediate PersistentVolumeClaims"
    assert vb.pod_claims(pod("p"), {}, {}, CLASSES).empty


def test_a_bound_claims_volume_pins_the_pod_to_its_node():
    claims = {"default/data": claim("data", volume="pv-1")}
    volumes = {"pv-1": on_node("pv-1", "worker2")}
    got = vb.pod_claims(with_claim(pod("p"), "data"), claims, volumes, CLASSES)
    assert got.bound == [volumes["pv-1"]] and not got.delayed
    assert vb.filter_node(got, "worker1", labels("worker1"), [], CLASSES) == [
        "node(s) had volume node affinity conflict"]
    assert vb.filter_node(got, "worker2", labels("worker2"), [], CLASSES) == []


def test_an_unbound_delayed_claim_needs_a_provisioner_or_a_reachable_volume():
    claims = {"default/data": claim("data"), "default/disk": claim("disk", cls="local")}
    got = vb.pod_claims(with_claim(pod("p"), "data"), claims, {}, CLASSES)
    assert [c["metadata"]["name"] for c in got.delayed] == ["data"]
    assert vb.filter_node(got, "worker1", labels("worker1"), [], CLASSES) == []
    # No provisioner: only a node that reaches an Available volume of the class will do.
    got = vb.pod_claims(with_claim(pod("p"), "disk"), claims, {}, CLASSES)
    free = on_node("disk-2", "worker2", cls="local", phase="Available")
    assert vb.filter_node(got, "worker1", labels("worker1"), [free], CLASSES) == [
        "node(s) didn't find available persistent volumes to bind"]
    assert vb.filter_node(got, "worker2", labels("worker2"), [free], CLASSES) == []


async def test_scheduler_waits_for_claims_pins_to_volumes_and_selects_nodes(api_server):
    async with api_server() as client:
        await create_nodes(client, node("control-plane", taints=[CONTROL_PLANE_TAINT]),
                           node("worker1"), node("worker2"))
        await client.create(on_node("pv-1", "worker2", claim_ref={
            "namespace": "default", "name": "pinned"}))
        await client.create(claim("pinned", volume="pv-1"))
        await client.create(with_claim(pod("orphan"), "missing"))
        await client.create(with_claim(pod("pinned"), "pinned"))
        await client.create(claim("fresh"))
        await client.create(with_claim(pod("fresh"), "fresh"))
        async with running_scheduler(client):
            async def bound(name: str):
                p = await client.get("pods", name, "default")
                return p["spec"].get("nodeName")

            assert await eventually(lambda: bound("pinned"), what="pinned bound") == "worker2"
            chosen = await eventually(lambda: bound("fresh"), what="fresh bound")
            fresh = await client.get("persistentvolumeclaims", "fresh", "default")
            assert fresh["metadata"]["annotations"][pvs.SELECTED_NODE_ANNOTATION] == chosen

            async def failed():
                return [e["message"] for e in await events(client, "FailedScheduling")
                        if e["involvedObject"]["name"] == "orphan"]
            messages = await eventually(failed, what="orphan's FailedScheduling")
            assert messages == [
                '0/3 nodes are available: persistentvolumeclaim "missing" not found.']
            orphan = await client.get("pods", "orphan", "default")
            condition = next(c for c in orphan["status"]["conditions"]
                             if c["type"] == "PodScheduled")
            assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
            assert not orphan["spec"].get("nodeName")
            # The claim comes: the parked pod is tried again and placed.
            await client.create(claim("missing"))
            assert await eventually(lambda: bound("orphan"), what="orphan bound")
