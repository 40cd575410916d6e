"""HTTP-level behaviour: authentication, discovery, negotiation, limits, bad requests."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
from aiohttp import web
from apiserver_kit import PODS, pod

from netlab.api.resources import GROUP_ORDER
from netlab.master.apiserver import Config, make_app


async def test_auth(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.get(PODS, token=None)
        assert status == 401 and err["reason"] == "Unauthorized"
        status, _ = await c.get(PODS, token="wrong")
        assert status == 401
        for path in ("/version", "/healthz", "/readyz", "/livez", "/healthz/ping"):
            status, _ = await c.get(path, token=None)
            assert status == 200, path
        status, _ = await c.get("/api", token=None)
        assert status == 401


async def test_unix_socket_is_trusted(memory_store, tmp_path: Path):
    path = str(tmp_path / "api.sock")
    runner = web.AppRunner(make_app(memory_store, Config(tokens={"secret"})))
    await runner.setup()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(8)
    await web.SockSite(runner, sock).start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as s, \
                s.get("http://localhost/api/v1/namespaces") as resp:
            assert resp.status == 200
            assert len((await resp.json())["items"]) == 4
    finally:
        await runner.cleanup()


async def test_version_discovery_and_health(api, memory_store):
    async with api(memory_store, git_version="v1.29.3-netlab") as c:
        version = await c.ok("GET", "/version")
        assert (version["major"], version["minor"]) == ("1", "29")
        assert version["gitVersion"] == "v1.29.3-netlab"
        api_doc = await c.ok("GET", "/api", headers={"Accept": (
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
            "application/json")})
        assert api_doc["kind"] == "APIVersions" and api_doc["versions"] == ["v1"]
        groups = await c.ok("GET", "/apis")
        names = [g["name"] for g in groups["groups"]]
        assert names == [g for g in GROUP_ORDER if g in names]
        assert {"apps", "autoscaling", "batch", "coordination.k8s.io"} <= set(names)
        core = await c.ok("GET", "/api/v1")
        assert "pods/log" in {r["name"] for r in core["resources"]}
        apps = await c.ok("GET", "/apis/apps/v1")
        assert apps["groupVersion"] == "apps/v1"
        status, _ = await c.get("/apis/nope/v1")
        assert status == 404
        async with c.raw.get("/readyz") as resp:
            assert await resp.text() == "ok"


async def test_openapi_is_mounted(api, memory_store):
    async with api(memory_store) as c:
        index = await c.ok("GET", "/openapi/v3")
        assert "api/v1" in index["paths"]
        url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        async with c.raw.get(url, headers={"Authorization": "Bearer test-token",
                                           "Accept": "application/json"}) as resp:
            assert resp.status == 200
            doc = await resp.json()
        assert any("deployments" in p for p in doc["paths"])
        status, _ = await c.get("/openapi/v3/apis/nope/v1")
        assert status == 404


async def test_values_json_cannot_hold_and_deep_nesting_are_refused(api, memory_store):
    """A number too large for a double decodes to infinity, and a patch can nest a
    value as deep as it likes: 400s, and the stored object is untouched."""
    async with api(memory_store) as c:
        created = await c.ok("POST", PODS, pod("x"))
        status, err = await c.post(PODS, data=b'{"metadata": {"name": "y"}, "spec": '
                                   b'{"containers": [{"name": "c", "image": "i"}], '
                                   b'"priority": 1e999}}')
        assert status == 400 and "NaN and Infinity" in err["message"], err
        deep: dict = {}
        for _ in range(101):
            deep = {"a": deep}
        status, err = await c.patch(f"{PODS}/x", {"metadata": {"labels": {"k": "v"}},
                                                  "spec": {"overhead": deep}})
        assert status == 400 and "nested more than 100 levels" in err["message"], err
        status, err = await c.patch(f"{PODS}/x", data=b'{"spec": {"priority": -Infinity}}')
        assert status == 400 and "NaN and Infinity" in err["message"], err
        after = await c.ok("GET", f"{PODS}/x")
        assert after["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert "labels" not in after["metadata"] or "k" not in after["metadata"]["labels"]


async def test_negotiation_and_bad_input(api, memory_store):
    async with api(memory_store, max_body=1024) as c:
        status, err = await c.get(PODS, headers={"Accept": "application/vnd.kubernetes.protobuf"})
        assert status == 406 and err["reason"] == "NotAcceptable"
        status, out = await c.get(PODS, headers={
            "Accept": "application/vnd.kubernetes.protobuf,application/json"})
        assert status == 200 and out["kind"] == "PodList"
        status, err = await c.post(PODS, data=b'{"metadata": {', content_type="application/json")
        assert status == 400 and "json parse error" in err["message"]
        status, err = await c.post(PODS, data=b"[1, 2]")
        assert status == 400
        status, err = await c.post(PODS, data=b'{"spec": {"priority": NaN}}')
        assert status == 400
        status, err = await c.post(PODS, data=b"a: *b\n", content_type="application/yaml")
        assert status == 400
        status, err = await c.post(PODS, pod("x"), content_type="text/plain")
        assert status == 415 and err["reason"] == "UnsupportedMediaType"
        status, err = await c.post(PODS, data=b" " * 2048)
        assert status == 413 and err["reason"] == "RequestEntityTooLarge"
        assert err["message"] == "Request entity too large: limit is 1024"
        status, err = await c.request("PROPFIND", PODS)
        assert status == 405
        status, err = await c.post(f"{PODS}/x", pod("x"))
        assert status == 405 and err["reason"] == "MethodNotAllowed"
        status, err = await c.put("/api/v1/pods/x", pod("x"))
        assert status == 404
        status, err = await c.get("/api/v1/namespaces/default/widgets")
        assert status == 404 and err["reason"] == "NotFound"
        status, err = await c.get("/nothing/here")
        assert status == 404
        async with api(memory_store) as big:
            status, err = await big.post(PODS, data=b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}")
            assert status == 400


async def test_pretty_and_metadata_output(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("a"))
        async with c.raw.get(f"{PODS}/a", params={"pretty": "true"},
                             headers={"Authorization": "Bearer test-token"}) as resp:
            text = await resp.text()
        assert text.startswith("{\n")
        out = await c.ok("GET", PODS, headers={
            "Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"})
        assert out["kind"] == "PartialObjectMetadataList"
        assert out["items"][0] == {"kind": "PartialObjectMetadata",
                                   "apiVersion": "meta.k8s.io/v1",
                                   "metadata": out["items"][0]["metadata"]}
