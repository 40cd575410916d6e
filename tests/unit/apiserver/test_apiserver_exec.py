"""pods/exec and pods/attach in the API server: upstream's errors, RBAC's create verb,
and the WebSocket relayed to a kubelet endpoint (the real /exec handler, over a fake
kubelet whose containers are this host) both ways, exit Status included."""

from __future__ import annotations

import contextlib
import json
import os
import types
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from apiserver_kit import PODS, TOKEN, pod

from netlab.api import remotecommand as rc
from netlab.client.kubelet import open_remote_command
from netlab.master.apiserver.config import LogUnavailable
from netlab.node.kubelet import streaming

RBAC = "/apis/rbac.authorization.k8s.io/v1"


class FakeKubelet:
    async def exec_spec(self, namespace: str, pod: str, container: str, argv: list[str]) -> Any:
        if container != "c":
            return 400, f'container not found ("{container}")'
        return types.SimpleNamespace(argv=argv, env={"PATH": os.environ.get("PATH", "/bin")})


@contextlib.asynccontextmanager
async def kubelet() -> AsyncIterator[int]:
    app = web.Application()
    streaming.register(app, FakeKubelet())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server.port or 0
    finally:
        await server.close()


async def dial(node: Any, kind: str, namespace: str, pod_name: str, container: str,
               query: list[tuple[str, str]], protocols: Any) -> tuple[Any, Any]:
    from netlab.client.kubelet import KubeletError
    try:
        return await open_remote_command(node, kind, namespace, pod_name, container, query,
                                         "kubelet-token", protocols, scheme="http")
    except KubeletError as err:
        raise LogUnavailable(str(err), err.code) from None


async def _setup(c: Any, port: int) -> None:
    node = {"metadata": {"name": "n1"}}
    await c.ok("POST", "/api/v1/nodes", node)
    await c.ok("PATCH", "/api/v1/nodes/n1/status", {"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})
    two = pod("p", nodeName="n1")
    two["spec"]["containers"].append({"name": "d", "image": "busybox"})
    await c.ok("POST", PODS, two)
    await c.ok("POST", PODS, pod("pending"))


def _query(*command: str, **flags: str) -> list[tuple[str, str]]:
    return [("command", x) for x in command] + list(flags.items())


async def test_exec_errors_are_upstreams(api, memory_store):
    async with kubelet() as port, api(memory_store, remote_command=dial) as c:
        await _setup(c, port)
        auth = {"Authorization": f"Bearer {TOKEN}"}

        async def status(path: str, query: Any, headers: Any = None) -> tuple[int, dict]:
            async with c.raw.post(path, params=query, headers={**auth, **(headers or {})}) as r:
                return r.status, json.loads(await r.text())

        code, err = await status(f"{PODS}/nope/exec", _query("true", stdout="true"))
        assert code == 404 and err["message"] == 'pods "nope" not found'
        code, err = await status(f"{PODS}/p/exec", _query("true", stdout="true", container="x"))
        assert code == 400 and err["message"] == "container x is not valid for pod p"
        code, err = await status(f"{PODS}/p/exec", _query("true", stdout="true"))
        assert code == 400 and err["message"] == ("a container name must be specified for pod "
                                                  "p, choose one of: [c d]")
        code, err = await status(f"{PODS}/pending/exec", _query("true", stdout="true"))
        assert code == 400 and err["message"] == "pod pending does not have a host assigned"
        code, err = await status(f"{PODS}/p/exec", _query(stdout="true", container="c"))
        assert code == 400 and err["message"] == "you must specify at least 1 command"
        # The kubelet's refusal, as kube-apiserver relays it.
        ws_headers = {"Connection": "Upgrade", "Upgrade": "websocket",
                      "Sec-WebSocket-Version": "13",
                      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                      "Sec-WebSocket-Protocol": rc.V5}
        code, err = await status(f"{PODS}/p/exec", _query("true", stdout="true", container="d"),
                                 ws_headers)
        assert code == 400
        assert err["message"] == 'unable to upgrade connection: container not found ("d")'
        code, err = await status(f"{PODS}/p/exec", _query("true", stdout="true", container="c"),
                                 {**ws_headers, "Sec-WebSocket-Protocol": "channel.k8s.io"})
        assert code == 403 and err["message"].startswith("requested protocol(s) are not supported")
        # kubectl before 1.30: SPDY, served (test_apiserver_spdy_exec.py) once a stream
        # version is agreed; without one, upstream's Handshake error.
        code, err = await status(f"{PODS}/p/exec", _query("true", stdout="true", container="c"),
                                 {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
        assert code == 400 and err["kind"] == "Status"
        assert err["message"] == "unable to upgrade: X-Stream-Protocol-Version is required"


async def test_exec_is_relayed_both_ways(api, memory_store):
    async with kubelet() as port, api(memory_store, remote_command=dial) as c:
        await _setup(c, port)
        query = _query("sh", "-c", "cat; echo bye >&2; exit 7", stdin="true", stdout="true",
                       stderr="true", container="c")
        async with c.raw.ws_connect(f"{PODS}/p/exec", params=query, protocols=[rc.V5, rc.V4],
                                    headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            assert ws.protocol == rc.V5
            await ws.send_str("\x00text ")
            await ws.send_bytes(b"\x00binary")
            await ws.send_bytes(rc.close_frame(rc.STDIN))
            got: dict[int, bytes] = {}
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                channel, payload = rc.parse_frame(msg.data)
                got[channel] = got.get(channel, b"") + payload
        assert got[rc.STDOUT] == b"text binary" and got[rc.STDERR] == b"bye\n"
        status = json.loads(got[rc.ERROR])
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]


async def test_exec_needs_create_on_pods_exec(api, memory_store):
    async with kubelet() as port, api(memory_store, remote_command=dial) as c:
        await _setup(c, port)
        await c.ok("POST", f"{RBAC}/namespaces/default/roles", {
            "metadata": {"name": "getter"},
            "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}]})
        await c.ok("POST", f"{RBAC}/namespaces/default/rolebindings", {
            "metadata": {"name": "jane"}, "roleRef": {"kind": "Role", "name": "getter"},
            "subjects": [{"kind": "User", "name": "jane"}]})
        jane = {"Authorization": f"Bearer {TOKEN}", "Impersonate-User": "jane"}
        query = _query("true", stdout="true", container="c")
        async with c.raw.get(f"{PODS}/p/exec", params=query, headers=jane) as resp:
            assert resp.status == 403
            assert 'cannot create resource "pods/exec"' in (await resp.json())["message"]
        await c.ok("PATCH", f"{RBAC}/namespaces/default/roles/getter", {
            "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]})
        async with c.raw.ws_connect(f"{PODS}/p/exec", params=query, protocols=[rc.V5],
                                    headers=jane) as ws:
            messages = [msg.data async for msg in ws if msg.type == aiohttp.WSMsgType.BINARY]
        assert rc.parse_frame(messages[-1]) == (rc.ERROR, b'{"metadata":{},"status":"Success"}')


async def test_the_kubelet_tls_context_is_built_once_per_dialer(monkeypatch, tmp_path):
    """The API server's exec/attach/port-forward dialer reads the kubelet CA once, not for
    every connection; each connection still uses that context."""
    import socket
    import ssl

    import pytest

    import netlab.client.kubelet as kubelet
    from netlab.master.apiserver.__main__ import kubelet_remote_command

    built: list[Any] = []
    used: list[Any] = []
    real_tls, real_connector = kubelet.kubelet_tls, kubelet.aiohttp.TCPConnector

    def counting_tls(ca_file: Any = None) -> ssl.SSLContext:
        built.append(ca_file)
        return real_tls()

    def recording_connector(*args: Any, **kwargs: Any) -> Any:
        used.append(kwargs.get("ssl"))
        return real_connector(*args, **kwargs)

    monkeypatch.setattr(kubelet, "kubelet_tls", counting_tls)
    monkeypatch.setattr(kubelet.aiohttp, "TCPConnector", recording_connector)
    with socket.socket() as s:  # a port nothing listens on: every dial is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = {"metadata": {"name": "n1"}, "status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}
    dial = kubelet_remote_command("kubelet-token", str(tmp_path / "ca.crt"))
    for _ in range(3):
        with pytest.raises(LogUnavailable):
            await dial(node, "exec", "default", "p", "c", [], ["v5.channel.k8s.io"])
    assert built == [str(tmp_path / "ca.crt")]
    assert len(used) == 3 and all(u is used[0] for u in used)
