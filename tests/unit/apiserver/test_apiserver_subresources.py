"""Subresources: scale, binding, log (with a fake log fetcher), HPA versions."""

from __future__ import annotations

from typing import Any

from apiserver_kit import DEPLOYMENTS, PODS, TOKEN, deployment, pod

from netlab.master.apiserver.config import LogRequest, LogUnavailable

HPAS_V1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
HPAS_V2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"


async def test_scale(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", DEPLOYMENTS, deployment("web", replicas=2))
        scale = await c.ok("GET", f"{DEPLOYMENTS}/web/scale")
        assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
        assert scale["spec"] == {"replicas": 2}
        assert scale["status"] == {"replicas": 0, "selector": "app=web"}
        scale = await c.ok("PATCH", f"{DEPLOYMENTS}/web/scale", {"spec": {"replicas": 4}})
        assert scale["spec"]["replicas"] == 4
        dep = await c.ok("GET", f"{DEPLOYMENTS}/web")
        assert dep["spec"]["replicas"] == 4 and dep["metadata"]["generation"] == 2
        scale["spec"]["replicas"] = 1
        scale = await c.ok("PUT", f"{DEPLOYMENTS}/web/scale", scale)
        assert scale["spec"]["replicas"] == 1
        stale = dict(scale, spec={"replicas": 3})
        stale["metadata"] = dict(scale["metadata"], resourceVersion="1")
        status, err = await c.put(f"{DEPLOYMENTS}/web/scale", stale)
        assert status == 409
        status, err = await c.patch(f"{DEPLOYMENTS}/web/scale", {"spec": {"replicas": -1}})
        assert status == 422
        assert err["message"] == ('Scale.autoscaling "web" is invalid: spec.replicas: Invalid '
                                  "value: -1: must be greater than or equal to 0")


async def test_binding(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("p"))
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
        status, out = await c.post(f"{PODS}/p/binding", binding)
        assert status == 201 and out["status"] == "Success"
        bound = await c.ok("GET", f"{PODS}/p")
        assert bound["spec"]["nodeName"] == "n1"
        assert {"type": "PodScheduled", "status": "True"}.items() <= \
            bound["status"]["conditions"][0].items()
        status, err = await c.post(f"{PODS}/p/binding", dict(binding, target={"name": "n2"}))
        assert status == 409
        assert err["message"] == ('Operation cannot be fulfilled on pods/binding "p": pod p is '
                                  'already assigned to node "n1"')
        status, err = await c.post(f"{PODS}/p/binding", dict(binding, target={}))
        assert status == 422 and err["details"]["causes"][0]["field"] == "target.name"
        status, _ = await c.post(f"{PODS}/nope/binding", dict(binding, metadata={
            "name": "nope"}))
        assert status == 404


async def test_log_without_node_or_kubelet(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("p"))
        status, err = await c.get(f"{PODS}/p/log")
        assert status == 400 and "is waiting to start" in err["message"]
        await c.ok("POST", PODS, pod("q", nodeName="n1"))
        status, err = await c.get(f"{PODS}/q/log")
        assert status == 400 and "kubelet" in err["message"]
        two = pod("two")
        two["spec"]["containers"].append({"name": "d", "image": "busybox"})
        await c.ok("POST", PODS, two)
        status, err = await c.get(f"{PODS}/two/log")
        assert status == 400
        assert err["message"] == ("a container name must be specified for pod two, choose one "
                                  "of: [c d]")
        status, err = await c.get(f"{PODS}/two/log", container="x")
        assert status == 400 and err["message"] == "container x is not valid for pod two"


async def test_log_fetcher_hook(api, memory_store):
    calls: list[LogRequest] = []

    async def fetcher(req: LogRequest) -> Any:
        calls.append(req)
        if req.node is None or req.container == "broken":
            raise LogUnavailable("kubelet says no")

        async def chunks() -> Any:
            yield b"line 1\n"
            yield b"line 2\n"

        return chunks()

    async with api(memory_store, log_fetcher=fetcher) as c:
        await c.ok("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
        body = pod("p", nodeName="n1")
        body["spec"]["containers"].append({"name": "broken", "image": "x"})
        await c.ok("POST", PODS, body)
        async with c.raw.get(f"{PODS}/p/log", params={"container": "c", "tailLines": "5"},
                             headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.status == 200 and await resp.text() == "line 1\nline 2\n"
        req = calls[-1]
        assert req.pod_name == "p" and req.node_name == "n1" and req.tail_lines == 5
        assert req.node["metadata"]["name"] == "n1" and not req.follow
        status, err = await c.get(f"{PODS}/p/log", container="broken")
        assert status == 400 and err["message"] == "kubelet says no"


async def test_hpa_served_in_v1_and_v2(api, memory_store):
    async with api(memory_store) as c:
        v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
              "metadata": {"name": "h"},
              "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "web"},
                       "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}}
        out = await c.ok("POST", HPAS_V1, v1)
        assert out["apiVersion"] == "autoscaling/v1"
        assert out["spec"]["targetCPUUtilizationPercentage"] == 60
        assert out["spec"]["minReplicas"] == 1
        v2 = await c.ok("GET", f"{HPAS_V2}/h")
        assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]
        listed = await c.ok("GET", HPAS_V1)
        assert listed["apiVersion"] == "autoscaling/v1"
        assert listed["items"][0]["spec"]["targetCPUUtilizationPercentage"] == 60
        status, err = await c.post(HPAS_V2, {"metadata": {"name": "bad"}, "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 0}})
        assert status == 422 and "spec.maxReplicas" in err["message"]
