"""metrics.k8s.io and the proxy subresources, in-process: shapes and quantities of
NodeMetrics and PodMetrics from the kubelets' usage annotation, the proxy URL forms
(``name:port``), the endpoint a service proxy picks, and a request forwarded through
``services/proxy`` to a small HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import random

import pytest
from aiohttp import web

from netlab.api.errors import APIError
from netlab.api.objects import dumps
from netlab.api.resources import store_key
from netlab.api.usage import USAGE_ANNOTATION
from netlab.master.apiserver import authz, metricsapi, proxy
from netlab.master.apiserver.app import PROXY
from netlab.units import format_cpu, format_memory

NODE_USAGE = {"timestamp": "2026-01-01T00:00:10Z", "window": "10s",
              "node": {"cpu": "250m", "memory": "1048576Ki"},
              "pods": {"default/web": {"uid": "u-web", "cpu": "120m", "memory": "2048Ki"},
                       "default/duo": {"uid": "u-duo", "cpu": "1m", "memory": "1000Ki"},
                       "other/db": {"uid": "u-db", "cpu": "0m", "memory": "3Ki"},
                       "default/gone": {"uid": "u-old", "cpu": "5m", "memory": "4Ki"},
                       # Measured per container (each has a cgroup): b and a, not c.
                       "default/trio": {"uid": "u-trio", "cpu": "30m", "memory": "30Ki",
                                        "containers": {
                                            "b": {"cpu": "20m", "memory": "20Ki"},
                                            "a": {"cpu": "10m", "memory": "10Ki"}}}}}


def test_quantities_are_canonical_like_metrics_servers():
    assert format_cpu(nanocores=0) == "0"
    assert format_cpu(nanocores=120_000_000) == "120m"
    assert format_cpu(nanocores=2_000_000_000) == "2"
    assert format_cpu(nanocores=1_500) == "1500n"
    assert format_cpu(nanocores=12_000) == "12u"
    assert format_memory(2048 * 1024) == "2Mi"
    assert format_memory(1000 * 1024) == "1000Ki"
    assert format_memory(1500) == "1500"
    assert format_memory(0) == "0"


def test_windows_are_go_durations():
    assert metricsapi.go_duration(10) == "10s"
    assert metricsapi.go_duration(10.5) == "10.5s"
    assert metricsapi.go_duration(60) == "1m0s"
    assert metricsapi.go_duration(3725) == "1h2m5s"
    assert metricsapi.go_duration(0.5) == "500ms"
    assert metricsapi.go_duration(0) == "0s"


def _node(name: str, usage: dict | None, labels: dict | None = None) -> dict:
    meta: dict = {"name": name, "labels": labels or {}}
    if usage is not None:
        meta["annotations"] = {USAGE_ANNOTATION: json.dumps(usage)}
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta}


def _pod(name: str, namespace: str = "default", containers=("c",), labels=None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"containers": [{"name": c, "image": "netlab/echo"} for c in containers]}}


async def _fill(c) -> None:
    usage = json.loads(json.dumps(NODE_USAGE))
    await c.ok("POST", "/api/v1/nodes", _node("w1", NODE_USAGE, {"zone": "a"}))
    await c.ok("POST", "/api/v1/nodes", _node("w2", None))
    await c.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    for pod in (_pod("web", labels={"app": "web"}), _pod("duo", containers=("a", "b")),
                _pod("db", "other"), _pod("gone"), _pod("new"),
                _pod("trio", containers=("a", "b", "c"))):
        made = await c.ok("POST", f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods",
                          pod)
        key = f"{made['metadata']['namespace']}/{made['metadata']['name']}"
        if key in usage["pods"] and key != "default/gone":
            usage["pods"][key]["uid"] = made["metadata"]["uid"]  # measured: this pod
    await c.ok("PATCH", "/api/v1/nodes/w1", {"metadata": {"annotations": {
        USAGE_ANNOTATION: json.dumps(usage)}}})


async def test_discovery_and_the_apiservice(api, memory_store):
    async with api(memory_store) as c:
        groups = await c.ok("GET", "/apis")
        assert groups["groups"][-1]["name"] == "metrics.k8s.io"
        group = await c.ok("GET", "/apis/metrics.k8s.io")
        assert group["preferredVersion"] == {"groupVersion": "metrics.k8s.io/v1beta1",
                                             "version": "v1beta1"}
        listing = await c.ok("GET", "/apis/metrics.k8s.io/v1beta1")
        assert {(r["name"], r["kind"], r["namespaced"]) for r in listing["resources"]} == {
            ("nodes", "NodeMetrics", False), ("pods", "PodMetrics", True)}
        service = await c.ok("GET", "/apis/apiregistration.k8s.io/v1/apiservices/"
                                    "v1beta1.metrics.k8s.io")
        available = next(x for x in service["status"]["conditions"]
                         if x["type"] == "Available")
        assert available["status"] == "True"
        status, _ = await c.get("/apis/metrics.k8s.io/v1")
        assert status == 404


async def test_node_metrics(api, memory_store):
    async with api(memory_store) as c:
        await _fill(c)
        nodes = await c.ok("GET", "/apis/metrics.k8s.io/v1beta1/nodes")
        assert nodes["kind"] == "NodeMetricsList"
        [w1] = nodes["items"]  # w2 has measured nothing: absent
        assert w1["metadata"]["name"] == "w1" and w1["metadata"]["labels"] == {"zone": "a"}
        assert (w1["timestamp"], w1["window"]) == ("2026-01-01T00:00:10Z", "10s")
        assert w1["usage"] == {"cpu": "250m", "memory": "1Gi"}
        one = await c.ok("GET", "/apis/metrics.k8s.io/v1beta1/nodes/w1")
        assert one["kind"] == "NodeMetrics" and one["usage"] == w1["usage"]
        assert (await c.ok("GET", "/apis/metrics.k8s.io/v1beta1/nodes",
                           labelSelector="zone=b"))["items"] == []
        status, err = await c.get("/apis/metrics.k8s.io/v1beta1/nodes/w2")
        assert (status, err["message"]) == (
            404, 'nodemetrics.metrics.k8s.io "w2" not found')
        status, err = await c.get("/apis/metrics.k8s.io/v1beta1/nodes/nope")
        assert (status, err["message"]) == (404, 'nodes "nope" not found')


async def test_pod_metrics(api, memory_store):
    async with api(memory_store) as c:
        await _fill(c)
        pods = await c.ok("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
        assert pods["kind"] == "PodMetricsList"
        by_name = {p["metadata"]["name"]: p for p in pods["items"]}
        # "gone" has another uid than the measured one, "new" no usage yet: both absent.
        assert set(by_name) == {"web", "duo", "trio"}
        # Each container's own usage, in the pod's order.
        assert by_name["trio"]["containers"] == [
            {"name": "a", "usage": {"cpu": "10m", "memory": "10Ki"}},
            {"name": "b", "usage": {"cpu": "20m", "memory": "20Ki"}}]
        web_ = by_name["web"]
        assert web_["containers"] == [{"name": "c", "usage": {"cpu": "120m",
                                                              "memory": "2Mi"}}]
        assert web_["window"] == "10s" and web_["metadata"]["namespace"] == "default"
        assert by_name["duo"]["containers"][0]["name"] == "(pod)"
        every = await c.ok("GET", "/apis/metrics.k8s.io/v1beta1/pods")
        assert {(p["metadata"]["namespace"], p["metadata"]["name"])
                for p in every["items"]} == {("default", "web"), ("default", "duo"),
                                             ("default", "trio"), ("other", "db")}
        db = next(p for p in every["items"] if p["metadata"]["name"] == "db")
        assert db["containers"][0]["usage"] == {"cpu": "0", "memory": "3Ki"}
        labelled = await c.ok("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
                              labelSelector="app=web")
        assert [p["metadata"]["name"] for p in labelled["items"]] == ["web"]
        one = await c.ok("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web")
        assert one["kind"] == "PodMetrics"
        status, err = await c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/new")
        assert (status, err["message"]) == (
            404, 'podmetrics.metrics.k8s.io "default/new" not found')
        status, err = await c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope")
        assert (status, err["reason"], err["message"]) == (
            404, "NotFound", 'pods "nope" not found')
        status, err = await c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
                                  labelSelector="a b")
        assert status == 400
        status, _ = await c.post("/apis/metrics.k8s.io/v1beta1/nodes", {})
        assert status == 405


# --- proxy ------------------------------------------------------------------------------------


def test_proxy_paths():
    parse = proxy.parse_proxy_path
    assert parse("/api/v1/namespaces/x/services/web:80/proxy/") == proxy.ProxyPath(
        "x", "services", "web:80", "/")
    assert parse("/api/v1/namespaces/x/pods/p/proxy") == proxy.ProxyPath("x", "pods", "p", "")
    assert parse("/api/v1/namespaces/x/pods/p/proxy/a/b%2Fc") == proxy.ProxyPath(
        "x", "pods", "p", "/a/b%2Fc")
    assert parse("/api/v1/namespaces/x/pods/http%3Ap%3A8080/proxy/").id == "http:p:8080"
    assert parse("/api/v1/namespaces/x/pods/p/log") is None
    assert parse("/api/v1/namespaces/x/configmaps/p/proxy/") is None


def test_scheme_name_port_forms():
    split = proxy.split_scheme_name_port
    assert split("web", "service") == ("", "web", "")
    assert split("web:80", "service") == ("", "web", "80")
    assert split("web:http", "service") == ("", "web", "http")
    assert split("http:web:", "service") == ("http", "web", "")
    assert split("https:web:443", "service") == ("https", "web", "443")
    for bad in ("a:b:c:d", "ftp:web:21", ":80"):
        with pytest.raises(APIError) as err:
            split(bad, "pod")
        assert (err.value.code, err.value.message) == (400, f'invalid pod request "{bad}"')


def test_pod_location():
    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [
        {"name": "http", "containerPort": 8080}, {"containerPort": 9090}]}]},
        "status": {"podIP": "10.244.1.5"}}
    assert proxy.pod_location(pod, "p").url("/x") == "http://10.244.1.5:8080/x"
    assert proxy.pod_location(pod, "p:9090").url("") == "http://10.244.1.5:9090/"
    assert proxy.pod_location(pod, "p:http").port == 8080
    assert proxy.pod_location({"status": {"podIP": "10.0.0.1"}}, "p").url("/") == \
        "http://10.0.0.1/"
    with pytest.raises(APIError) as err:
        proxy.pod_location({"status": {}}, "p")
    assert (err.value.code, err.value.message) == (400, "address not allowed")


def _slice(ports, endpoints):
    return {"ports": ports, "endpoints": endpoints}


def test_only_endpoints_of_pods_with_that_address_count():
    slices = [_slice([{"name": "", "port": 80}], [
        {"addresses": ["10.244.1.2"], "targetRef": {"kind": "Pod", "name": "a"}},
        {"addresses": ["10.244.1.3"], "targetRef": {"kind": "Pod", "name": "b"}},
        {"addresses": ["10.244.1.4"], "targetRef": {"kind": "Pod", "name": "gone"}},
        {"addresses": ["10.0.0.1"]}])]
    pods = {"a": {"status": {"podIP": "10.244.1.2"}},
            "b": {"status": {"podIP": "10.244.9.9", "podIPs": [{"ip": "10.244.9.9"}]}}}
    [kept] = proxy.pod_endpoints_only(slices, pods)
    assert [e["addresses"] for e in kept["endpoints"]] == [["10.244.1.2"]]


def test_service_endpoint_choice():
    service = {"spec": {"ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53}]}}
    slices = [_slice([{"name": "http", "port": 8080}, {"name": "dns", "port": 5353}], [
        {"addresses": ["10.244.1.2"], "conditions": {"ready": True}},
        {"addresses": ["10.244.1.3"], "conditions": {"ready": False}},
        {"addresses": ["10.244.2.4"]}])]  # ready unknown counts as ready
    rng = random.Random(1)
    chosen = {proxy.service_location(service, slices, "web:80", rng).host for _ in range(50)}
    assert chosen == {"10.244.1.2", "10.244.2.4"}
    loc = proxy.service_location(service, slices, "web:dns", rng)
    assert loc.port == 5353
    with pytest.raises(APIError) as err:
        proxy.service_location(service, slices, "web:81")
    assert (err.value.code, err.value.message) == (
        503, 'no service port 81 found for service "web"')
    with pytest.raises(APIError) as err:
        proxy.service_location(service, [], "web:80")
    assert (err.value.code, err.value.message) == (
        503, 'no endpoints available for service "web"')
    with pytest.raises(APIError) as err:
        proxy.service_location(service, slices, "web:other")
    assert err.value.message == 'no endpoints available for service "web:other"'


async def test_services_proxy_forwards_a_request(api, memory_store):
    seen: list[dict] = []
    cookies: list[str | None] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append({"method": request.method, "path": request.rel_url.raw_path,
                     "query": request.query_string, "body": await request.text(),
                     "auth": request.headers.get("Authorization")})
        cookies.append(request.headers.get("Cookie"))
        return web.json_response({"ok": True}, status=201, headers={
            "X-Backend": "yes", "Set-Cookie": f"session=s{len(seen)}; Path=/"})

    backend = web.Application()
    backend.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(backend)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with api(memory_store) as c:
            await c.ok("POST", "/api/v1/namespaces/default/services", {
                "metadata": {"name": "web"},
                "spec": {"ports": [{"name": "http", "port": 80}], "selector": {"a": "b"}}})
            # Straight into the store: validation keeps loopback out of a slice, and
            # the backend of this test listens on 127.0.0.1.
            memory_store.create(store_key("endpointslices", "default", "web-1"), dumps({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-1", "namespace": "default",
                             "labels": {proxy.SERVICE_NAME_LABEL: "web"}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True},
                               "targetRef": {"kind": "Pod", "name": "backend"}}]}))
            # Until a pod of that name has that address, the endpoint is not trusted.
            status, err = await c.get("/api/v1/namespaces/default/services/web:80/proxy/")
            assert (status, err["message"]) == (
                503, 'no endpoints available for service "web"')
            memory_store.create(store_key("pods", "default", "backend"), dumps({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "backend", "namespace": "default"},
                "status": {"podIP": "127.0.0.1"}}))
            status, body = await c.post(
                "/api/v1/namespaces/default/services/web:80/proxy/a/b?x=1&y=2",
                data=b"hello", content_type="text/plain")
            assert (status, body) == (201, {"ok": True})
            assert seen[-1] == {"method": "POST", "path": "/a/b", "query": "x=1&y=2",
                                "body": "hello", "auth": None}
            async with c.raw.delete(
                    "/api/v1/namespaces/default/services/http:web:http/proxy",
                    headers={"Authorization": "Bearer test-token"}) as resp:
                assert resp.status == 201 and resp.headers["X-Backend"] == "yes"
            assert seen[-1]["method"] == "DELETE" and seen[-1]["path"] == "/"
            for _ in range(2):  # HEAD keeps the connection usable: no stray body bytes
                async with c.raw.head(
                        "/api/v1/namespaces/default/services/web:http/proxy/h",
                        headers={"Authorization": "Bearer test-token"}) as resp:
                    assert resp.status == 201 and await resp.read() == b""
            big = "x" * 200_000  # streamed back whole
            status, body = await c.post("/api/v1/namespaces/default/services/web:80/proxy/",
                                        data=big.encode(), content_type="text/plain")
            assert status == 201 and seen[-1]["body"] == big
            status, err = await c.get("/api/v1/namespaces/default/services/nope/proxy/")
            assert (status, err["message"]) == (404, 'services "nope" not found')
            # A name that cannot be a store key names nothing: the same 404.
            status, err = await c.get("/api/v1/namespaces/default/pods/a%2Fb/proxy/")
            assert (status, err["message"]) == (404, 'pods "a/b" not found')
            status, err = await c.get("/api/v1/namespaces/default/pods/nope:1:2:3/proxy/")
            assert (status, err["message"]) == (400, 'invalid pod request "nope:1:2:3"')
            # One client session for every proxied request, keeping no cookie: a backend's
            # Set-Cookie for one client never rides along on the next request.
            session = c.app[PROXY].session
            for _ in range(2):
                c.raw.session.cookie_jar.clear()  # (the test client keeps them, not us)
                await c.get("/api/v1/namespaces/default/services/web:80/proxy/")
            assert c.app[PROXY].session is session
            assert len(cookies) >= 3 and cookies[-2:] == [None, None]
        assert session.closed  # closed with the app
    finally:
        await runner.cleanup()
    # Nothing listens there any more: 503 in the API's words.
    async with api(memory_store) as c:
        status, err = await c.get("/api/v1/namespaces/default/services/web/proxy/")
        # (no unnamed port: "web" alone names none, as upstream)
        assert (status, err["message"]) == (503, 'no endpoints available for service "web"')
        status, err = await c.get("/api/v1/namespaces/default/services/web:http/proxy/")
        assert status == 503 and err["reason"] == "ServiceUnavailable"
        assert err["message"].startswith("error trying to reach service: ")


def test_proxy_requests_are_authorized_as_the_proxy_subresource():
    attrs = authz.request_attributes("POST", "/api/v1/namespaces/x/pods/p:8080/proxy/a/b", {})
    assert (attrs.verb, attrs.namespace, attrs.resource, attrs.subresource, attrs.name) == (
        "create", "x", "pods", "proxy", "p:8080")
    attrs = authz.request_attributes("GET", "/api/v1/namespaces/x/services/web/proxy/", {})
    assert (attrs.verb, attrs.resource, attrs.subresource) == ("get", "services", "proxy")
    attrs = authz.request_attributes("GET", "/apis/metrics.k8s.io/v1beta1/pods", {})
    assert (attrs.verb, attrs.group, attrs.resource) == ("list", "metrics.k8s.io", "pods")


async def test_rbac_guards_the_proxy_and_the_metrics(api, memory_store):
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    jane = {"Impersonate-User": "jane"}
    async with api(memory_store) as c:
        status, err = await c.get("/api/v1/namespaces/default/services/web:80/proxy/",
                                  headers=jane)
        assert (status, err["message"]) == (
            403, 'services "web:80" is forbidden: User "jane" cannot get resource '
                 '"services/proxy" in API group "" in the namespace "default"')
        status, err = await c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
                                  headers=jane)
        assert status == 403 and 'cannot list resource "pods" in API group ' \
            '"metrics.k8s.io"' in err["message"]
        await c.ok("POST", f"{rbac}/roles", {"metadata": {"name": "proxy"}, "rules": [
            {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]}]})
        await c.ok("POST", f"{rbac}/rolebindings", {
            "metadata": {"name": "proxy"}, "roleRef": {"kind": "Role", "name": "proxy"},
            "subjects": [{"kind": "User", "name": "jane"}]})
        # Allowed now: past authorization, to the missing Service's 404.
        status, err = await c.get("/api/v1/namespaces/default/services/web:80/proxy/",
                                  headers=jane)
        assert (status, err["message"]) == (404, 'services "web" not found')
