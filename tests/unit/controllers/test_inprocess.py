"""The controllers against a real API server in-process: objects converge as in Kubernetes.

No root, no lab: the API server (memory store) and the controller manager run in the
test's event loop; ``FakeKubelet`` plays the node agents where pods must run."""

from __future__ import annotations

import asyncio

from cmkit import FakeKubelet, ReadyTracker, cluster, deployment, eventually, set_pod_state

from netlab.master.controllers.base import Options


async def _live(c, n=None, selector=None):
    pods = await c.pods(selector=selector)
    return pods if n is None or len(pods) == n else None


async def _settled(c, name: str, n: int, namespace: str = "default"):
    """The ReplicaSet has seen its latest spec and counts exactly ``n`` pods."""
    for rs in (await c.client.list("replicasets", namespace))["items"]:
        if rs["metadata"]["name"].startswith(f"{name}-"):
            s = rs["status"]
            return (s.get("observedGeneration") == rs["metadata"]["generation"]
                    and s.get("replicas", 0) == n and len(await c.pods(namespace)) == n)
    return False


async def test_scale_up_and_down_with_owner_references() -> None:
    async with cluster() as c, ReadyTracker(c.client, "app=web") as tracker:
        await c.client.create(deployment("web", 6))
        pods = await eventually(lambda: _live(c, 6), what="6 pods")
        rs = (await c.client.list("replicasets", "default"))["items"]
        assert len(rs) == 1
        rs_uid = rs[0]["metadata"]["uid"]
        dep = await c.client.get("deployments", "web", "default")
        assert rs[0]["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
        for pod in pods:
            ref = pod["metadata"]["ownerReferences"][0]
            assert (ref["kind"], ref["uid"], ref["controller"]) == ("ReplicaSet", rs_uid, True)
            assert "pod-template-hash" in pod["metadata"]["labels"]
        await c.client.patch("deployments", "web", {"spec": {"replicas": 12}}, "default")
        await eventually(lambda: _settled(c, "web", 12), what="12 pods")
        assert max(tracker.totals) == 12  # never one more, at any revision
        await c.client.patch("deployments", "web", {"spec": {"replicas": 2}}, "default")
        await eventually(lambda: _settled(c, "web", 2), what="2 pods")


async def test_a_burst_of_events_never_overshoots() -> None:
    async with cluster() as c, ReadyTracker(c.client, "app=burst") as tracker:
        await c.client.create(deployment("burst", 40))
        await eventually(lambda: _live(c, 40), timeout=20, what="40 pods")
        # Status churn on every pod wakes the ReplicaSet controller many times over.
        for pod in await c.pods():
            await set_pod_state(c.client, pod)
        await eventually(lambda: _settled(c, "burst", 40), what="the status to settle")
        assert max(tracker.totals) == 40


async def test_rolling_update_keeps_availability_and_undo_restores() -> None:
    async with cluster() as c, FakeKubelet(c.client):
        await c.client.create(deployment(
            "roll", 4, strategy={"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}))

        async def rolled(revision: str, image: str):
            d = await c.client.get("deployments", "roll", "default")
            s = d["status"]
            return (d["metadata"].get("annotations", {}).get(
                "deployment.kubernetes.io/revision") == revision and
                s.get("observedGeneration") == d["metadata"]["generation"] and
                s.get("updatedReplicas") == 4 and s.get("availableReplicas") == 4 and
                s.get("replicas") == 4 and all(
                    p["spec"]["containers"][0]["image"] == image for p in await c.pods()))

        await eventually(lambda: rolled("1", "netlab/echo"), what="revision 1 rolled out")
        async with ReadyTracker(c.client, "app=roll") as tracker:
            await c.client.patch("deployments", "roll", {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "netlab/agnhost"}]}}}}, "default",
                patch_type="strategic")
            await eventually(lambda: rolled("2", "netlab/agnhost"), what="revision 2")
        assert len(tracker.ready_counts) > 10  # it saw the rollout, event by event
        assert min(tracker.ready_counts) >= 3, "fewer than replicas - maxUnavailable ready"
        assert max(tracker.totals) <= 5, "more than replicas + maxSurge pods"
        sets = (await c.client.list("replicasets", "default"))["items"]
        assert sorted(s["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                      for s in sets) == ["1", "2"]
        # What kubectl rollout undo does: copy revision 1's template back.
        old = next(s for s in sets
                   if s["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
        template = old["spec"]["template"]
        del template["metadata"]["labels"]["pod-template-hash"]
        await c.client.patch("deployments", "roll", [
            {"op": "replace", "path": "/spec/template", "value": template}], "default",
            patch_type="json")
        await eventually(lambda: rolled("3", "netlab/echo"), what="revision 3 (= 1)")
        sets = (await c.client.list("replicasets", "default"))["items"]
        assert len(sets) == 2  # the old set came back; no third set
        back = next(s for s in sets if s["metadata"]["uid"] == old["metadata"]["uid"])
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"


async def test_replicaset_adopts_orphans_and_releases_mismatches() -> None:
    async with cluster() as c:
        for i in range(2):
            await c.client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": f"orphan-{i}", "namespace": "default", "labels": {"app": "adopt"}},
                "spec": {"containers": [{"name": "c", "image": "netlab/echo"}]}})
        await c.client.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": "adopt", "namespace": "default"}, "spec": {
            "replicas": 3, "selector": {"matchLabels": {"app": "adopt"}},
            "template": {"metadata": {"labels": {"app": "adopt"}},
                         "spec": {"containers": [{"name": "c", "image": "netlab/echo"}]}}}})
        pods = await eventually(lambda: _live(c, 3), what="3 pods (2 adopted)")
        names = {p["metadata"]["name"] for p in pods}
        assert {"orphan-0", "orphan-1"} <= names
        for name in ("orphan-0", "orphan-1"):
            pod = await c.client.get("pods", name, "default")
            assert pod["metadata"]["ownerReferences"][0]["name"] == "adopt"
        # Relabel one: it is released and replaced.
        await c.client.patch("pods", "orphan-0", {"metadata": {"labels": {"app": "other"}}},
                             "default")

        async def released():
            pod = await c.client.get("pods", "orphan-0", "default")
            return not pod["metadata"].get("ownerReferences")

        await eventually(released, what="orphan-0 to be released")
        await eventually(lambda: _live(c, 3, "app=adopt"), what="a replacement")


async def test_restart_mid_scale_ends_at_exactly_the_desired_count() -> None:
    async with cluster() as c:
        await c.client.create(deployment("restart", 0))
        await c.client.patch("deployments", "restart", {"spec": {"replicas": 50}}, "default")
        await eventually(lambda: _at_least(c, 5), what="the scale-up to start")
        # kill: stop the manager where it is, start a fresh one on the same API.
        from netlab.master.controllers.manager import ControllerManager

        for task in asyncio.all_tasks():
            if task.get_coro().__qualname__.startswith("ControllerManager.run"):
                task.cancel()
        fresh = ControllerManager(c.client, Options())
        task = asyncio.ensure_future(fresh.run())
        try:
            await eventually(lambda: _settled(c, "restart", 50), timeout=30, what="50 pods")
            pods = await c.pods()
            assert len({p["metadata"]["name"] for p in pods}) == 50
        finally:
            task.cancel()


async def _at_least(c, n):
    return len(await c.pods()) >= n


async def test_endpoints_follow_readiness_and_named_ports() -> None:
    async with cluster() as c:
        await c.client.create({"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "web", "namespace": "default", "labels": {"tier": "front"}}, "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        for name, port, ip in (("a", 8080, "10.244.1.5"), ("b", 9090, "10.244.2.5"),
                               ("c", 8080, "10.244.1.6")):
            pod = await c.client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": name, "namespace": "default", "labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "c", "image": "netlab/echo", "ports": [
                    {"name": "http", "containerPort": port}]}]}})
            await set_pod_state(c.client, pod, ready=name != "c", ip=ip)

        async def subsets():
            try:
                ep = await c.client.get("endpoints", "web", "default")
            except Exception:
                return None
            subs = ep.get("subsets") or []
            return subs if sum(len(s.get("addresses", [])) + len(s.get("notReadyAddresses", []))
                               for s in subs) == 3 else None

        subs = await eventually(subsets, what="endpoints for 3 pods")
        by_port = {s["ports"][0]["port"]: s for s in subs}
        assert [a["ip"] for a in by_port[8080]["addresses"]] == ["10.244.1.5"]
        assert [a["ip"] for a in by_port[8080]["notReadyAddresses"]] == ["10.244.1.6"]
        assert [a["ip"] for a in by_port[9090]["addresses"]] == ["10.244.2.5"]
        ref = by_port[9090]["addresses"][0]["targetRef"]
        assert (ref["kind"], ref["name"]) == ("Pod", "b")
        ep = await c.client.get("endpoints", "web", "default")
        assert ep["metadata"]["labels"] == {"tier": "front"}
        await c.client.delete("services", "web", "default")

        async def gone():
            try:
                await c.client.get("endpoints", "web", "default")
            except Exception:
                return True
            return False

        await eventually(gone, what="the endpoints to go with the service")


async def test_job_completes_with_parallelism_and_counts_exactly() -> None:
    async with cluster() as c:
        await c.client.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": "five", "namespace": "default"}, "spec": {
            "completions": 5, "parallelism": 2, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "netlab/echo"}]}}}})
        max_active = 0
        finished: set[str] = set()
        while True:
            job = await c.client.get("jobs", "five", "default")
            if any(cd["type"] == "Complete" for cd in job["status"].get("conditions", [])):
                break
            pods = [p for p in await c.pods(selector="job-name=five", live_only=False)
                    if p["status"].get("phase") not in ("Succeeded", "Failed")]
            max_active = max(max_active, len(pods))
            for pod in pods[:1]:  # one at a time finishes
                assert "batch.kubernetes.io/job-tracking" in pod["metadata"]["finalizers"]
                await set_pod_state(c.client, pod, phase="Succeeded", ready=False)
                finished.add(pod["metadata"]["name"])
            await asyncio.sleep(0.05)  # the fake kubelet's pace: one pod finishes per step
        status = job["status"]
        assert status["succeeded"] == 5 and not status.get("failed")
        assert status.get("startTime") and status.get("completionTime")
        assert max_active <= 2
        pods = await c.pods(selector="job-name=five", live_only=False)
        assert len(pods) == 5
        assert all(not p["metadata"].get("finalizers") for p in pods)


async def test_job_fails_after_its_backoff_limit() -> None:
    async with cluster() as c:
        await c.client.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": "doomed", "namespace": "default"}, "spec": {
            "backoffLimit": 1, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "netlab/echo"}]}}}})

        async def failed():
            job = await c.client.get("jobs", "doomed", "default")
            if any(cd["type"] == "Failed" and cd["status"] == "True"
                   for cd in job["status"].get("conditions", [])):
                return job
            for pod in await c.pods(selector="job-name=doomed", live_only=False):
                if pod["status"].get("phase") != "Failed":
                    await set_pod_state(c.client, pod, phase="Failed", ready=False)
            return None

        job = await eventually(failed, timeout=20, what="the job to fail")
        assert job["status"]["failed"] == 2
        cond = next(cd for cd in job["status"]["conditions"] if cd["type"] == "Failed")
        assert cond["reason"] == "BackoffLimitExceeded"


async def _gone(c, resource, name, namespace="default"):
    try:
        await c.client.get(resource, name, namespace)
    except Exception:
        return True
    return False


async def test_cascading_delete_background_foreground_orphan() -> None:
    async with cluster() as c:
        for name in ("bg", "fg", "orph"):
            await c.client.create(deployment(name, 2))
        await eventually(lambda: _live(c, 6), what="6 pods")
        await c.client.delete("deployments", "bg", "default", propagation="Background")
        await c.client.delete("deployments", "fg", "default", propagation="Foreground")
        await c.client.delete("deployments", "orph", "default", propagation="Orphan")
        for name in ("bg", "fg", "orph"):
            await eventually(lambda n=name: _gone(c, "deployments", n), what=f"deploy {name}")
        await eventually(lambda: _live(c, 2), what="only the orphaned pods left")
        sets = (await c.client.list("replicasets", "default"))["items"]
        assert [s["metadata"]["name"].split("-")[0] for s in sets] == ["orph"]
        assert not sets[0]["metadata"].get("ownerReferences")
        for pod in await c.pods():
            assert pod["metadata"]["ownerReferences"][0]["uid"] == sets[0]["metadata"]["uid"]


async def test_namespace_deletion_empties_it_then_removes_it() -> None:
    async with cluster() as c:
        await c.client.create({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": "doomed"}})
        await c.client.create(deployment("web", 3, namespace="doomed"))
        await c.client.create({"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "web", "namespace": "doomed"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"port": 80}]}})
        await eventually(lambda: _ns_pods(c, 3), what="3 pods in the namespace")
        await c.client.delete("namespaces", "doomed")
        await eventually(lambda: _gone(c, "namespaces", "doomed"), what="the namespace to go")
        assert (await c.client.list("pods", "doomed"))["items"] == []


async def _ns_pods(c, n):
    return len((await c.client.list("pods", "doomed"))["items"]) == n


async def test_hpa_scales_up_under_load_and_back_down() -> None:
    import json

    from netlab.api.objects import timestamp

    options = Options(hpa_sync_period=0.2, hpa_downscale_stabilization=1.0,
                      hpa_cpu_initialization_period=0.0)
    async with cluster(options) as c, FakeKubelet(c.client):
        await c.client.create({"apiVersion": "v1", "kind": "Node",
                               "metadata": {"name": "node-a"}})
        dep = deployment("burn", 1, image="netlab/stress")
        dep["spec"]["template"]["spec"]["containers"][0]["resources"] = {
            "requests": {"cpu": "100m"}}
        await c.client.create(dep)
        await c.client.create({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "burn", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "burn"},
                     "minReplicas": 1, "maxReplicas": 4,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 50}}}]}})
        load = {"cpu": "300m"}

        async def publish() -> None:  # the kubelet's usage annotation, every 0.2 s
            while True:
                pods = {f"default/{p['metadata']['name']}": {
                    "uid": p["metadata"]["uid"], "cpu": load["cpu"], "memory": "1024Ki"}
                    for p in await c.pods(selector="app=burn")}
                usage = {"timestamp": timestamp(), "window": "1s",
                         "node": {"cpu": "0m", "memory": "0Ki"}, "pods": pods}
                await c.client.patch("nodes", "node-a", {"metadata": {"annotations": {
                    "metrics.netlab.io/usage": json.dumps(usage)}}})
                await asyncio.sleep(0.2)

        publisher = asyncio.ensure_future(publish())
        try:
            async def replicas(n):
                d = await c.client.get("deployments", "burn", "default")
                return d["spec"]["replicas"] == n

            await eventually(lambda: replicas(4), timeout=20, what="a scale-up to 4")

            async def status_caught_up():
                # The controller scales first and writes its status after: read the
                # status once it reports the same decision.
                h = await c.client.get("horizontalpodautoscalers", "burn", "default")
                return h if (h.get("status") or {}).get("desiredReplicas") == 4 else None

            hpa = await eventually(status_caught_up, timeout=20, what="the HPA status")
            current = hpa["status"]["currentMetrics"][0]["resource"]["current"]
            assert current["averageUtilization"] == 300
            assert hpa["status"]["desiredReplicas"] == 4
            load["cpu"] = "0m"
            await eventually(lambda: replicas(1), timeout=20, what="a scale-down to 1")
        finally:
            publisher.cancel()
