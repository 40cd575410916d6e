"""The EndpointSlice controller against an in-process API server: slices follow the pods,
are rewritten only when their content changes, and go with their Service."""

from __future__ import annotations

from cmkit import cluster, eventually, set_pod_state

SERVICE_LABEL = "kubernetes.io/service-name=web"


async def _slices(c):
    return (await c.client.list("endpointslices", "default",
                                label_selector=SERVICE_LABEL))["items"]


async def test_slices_follow_readiness_and_go_with_the_service() -> None:
    async with cluster() as c:
        await c.client.create({"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "web", "namespace": "default", "labels": {"tier": "front"}}, "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        pods = {}
        for name, port, ip in (("a", 8080, "10.244.1.5"), ("b", 9090, "10.244.2.5"),
                               ("c", 8080, "10.244.1.6")):
            pod = await c.client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": name, "namespace": "default", "labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "c", "image": "netlab/echo", "ports": [
                    {"name": "http", "containerPort": port}]}]}})
            pods[name] = await set_pod_state(c.client, pod, ready=name != "c", ip=ip)

        async def by_port():
            slices = await _slices(c)
            if sum(len(s["endpoints"]) for s in slices) != 3:
                return None
            return {s["ports"][0]["port"]: s for s in slices}

        got = await eventually(by_port, what="slices for 3 pods")
        assert sorted(got) == [8080, 9090]
        ready = {e["addresses"][0]: e["conditions"]["ready"] for e in got[8080]["endpoints"]}
        assert ready == {"10.244.1.5": True, "10.244.1.6": False}
        first = got[8080]
        assert first["metadata"]["name"].startswith("web-")
        assert first["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
            "endpointslice-controller.k8s.io"

        await set_pod_state(c.client, pods["c"], ready=True, ip="10.244.1.6")

        async def c_ready():
            s = (await by_port() or {}).get(8080)
            return s if s and all(e["conditions"]["ready"] for e in s["endpoints"]) else None

        updated = await eventually(c_ready, what="pod c ready in its slice")
        assert updated["metadata"]["name"] == first["metadata"]["name"]
        assert updated["metadata"]["generation"] == first["metadata"]["generation"] + 1
        untouched = (await by_port())[9090]
        assert untouched["metadata"]["resourceVersion"] == \
            got[9090]["metadata"]["resourceVersion"]

        await c.client.delete("services", "web", "default")

        async def gone():
            return not await _slices(c)

        await eventually(gone, what="the slices to go with the service")
