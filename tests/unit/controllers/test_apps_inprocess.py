"""The DaemonSet and StatefulSet controllers against a real API server in-process.

The test plays the scheduler and kubelets (``set_pod_state``), so it can show what a
lab cannot easily: a node that joins gets its daemon pod, and a StatefulSet waits for
each pod's readiness before creating the next."""

from __future__ import annotations

from cmkit import cluster, eventually, set_pod_state

from netlab.master.controllers.daemonset_placement import target_node


def node(name: str, taints: list | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def workload(kind: str, name: str, **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}},
                     **spec}}


async def test_daemonset_places_a_pod_on_each_eligible_node_and_on_nodes_that_join() -> None:
    async with cluster(controllers=["daemonset"]) as c:
        await c.client.create(node("cp", [{"key": "node-role.kubernetes.io/control-plane",
                                           "effect": "NoSchedule"}]))
        await c.client.create(node("w1"))
        await c.client.create(workload("DaemonSet", "agent"))

        async def targets():
            return sorted(target_node(p) or "" for p in await c.pods(selector="app=agent"))

        await eventually(lambda: _equal(targets, ["w1"]), what="one pod, on w1")
        await c.client.create(node("w2"))
        await eventually(lambda: _equal(targets, ["w1", "w2"]), what="a pod on the new node")
        for pod in await c.pods(selector="app=agent"):
            await set_pod_state(c.client, pod, node=target_node(pod))

        async def status():
            ds = await c.client.get("daemonsets", "agent", "default")
            s = ds["status"]
            return (s.get("desiredNumberScheduled"), s.get("numberReady"),
                    s.get("updatedNumberScheduled"), s.get("observedGeneration")) == (2, 2, 2, 1)

        await eventually(status, what="the status to count two ready pods")
        revisions = (await c.client.list("controllerrevisions", "default"))["items"]
        assert [r["revision"] for r in revisions] == [1]
        hash_label = revisions[0]["metadata"]["labels"]["controller-revision-hash"]
        assert revisions[0]["metadata"]["name"] == f"agent-{hash_label}"
        assert all(p["metadata"]["labels"]["controller-revision-hash"] == hash_label
                   for p in await c.pods(selector="app=agent"))


async def _equal(probe, expected):
    return await probe() == expected


async def _bind_and_run(c, pod: dict, node_name: str) -> None:
    """Play the scheduler (bind) and the kubelet (Running and Ready)."""
    if not pod["spec"].get("nodeName"):
        await c.client.request("POST", f"/api/v1/namespaces/default/pods/"
                               f"{pod['metadata']['name']}/binding", body={
                                   "apiVersion": "v1", "kind": "Binding",
                                   "metadata": {"name": pod["metadata"]["name"]},
                                   "target": {"kind": "Node", "name": node_name}})
    await set_pod_state(c.client, pod)


async def test_statefulset_waits_for_readiness_before_the_next_ordinal() -> None:
    async with cluster(controllers=["statefulset"]) as c:
        await c.client.create(workload("StatefulSet", "db", replicas=3, serviceName="db"))

        async def names():
            return sorted(p["metadata"]["name"] for p in await c.pods(selector="app=db"))

        await eventually(lambda: _equal(names, ["db-0"]), what="db-0 alone")
        assert await names() == ["db-0"]  # not ready yet: no db-1
        for expected in (["db-0", "db-1"], ["db-0", "db-1", "db-2"]):
            for pod in await c.pods(selector="app=db"):
                await _bind_and_run(c, pod, "n1")
            await eventually(lambda e=expected: _equal(names, e), what=" and ".join(expected))
        for pod in await c.pods(selector="app=db"):
            await _bind_and_run(c, pod, "n1")

        async def ready():
            sts = await c.client.get("statefulsets", "db", "default")
            return sts["status"].get("readyReplicas") == 3 and \
                sts["status"]["currentRevision"] == sts["status"]["updateRevision"]

        await eventually(ready, what="three ready replicas")
        await c.client.patch("statefulsets", "db", {"spec": {"replicas": 1}}, "default")
        # db-2 goes first. Bound pods are deleted gracefully and no kubelet finishes them
        # here, so db-2 stays terminating, and db-1 must be left alone meanwhile.

        async def terminating():
            pods = await c.pods(selector="app=db", live_only=False)
            return {p["metadata"]["name"] for p in pods
                    if p["metadata"].get("deletionTimestamp")}

        await eventually(lambda: _equal(terminating, {"db-2"}), what="db-2 terminating")
        await eventually(lambda: _equal(names, ["db-0", "db-1"]), what="db-1 still live")
        assert await terminating() == {"db-2"}
