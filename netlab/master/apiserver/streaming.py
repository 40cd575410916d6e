"""``pods/exec`` and ``pods/attach``: the API server relays a remote command to the kubelet.

As kube-apiserver does (``pkg/registry/core/pod`` streamLocation, then the
upgrade-aware proxy), the API server resolves the pod, the container and the
node, with upstream's errors (404 for a missing pod; 400 for a container the
pod does not have or a pod without a node), and hands the stream to the
kubelet of the pod's node (``config.remote_command``, HTTPS with the lab
token). The kubelet runs the command and speaks the channel protocol
(``netlab.api.remotecommand``); here WebSocket messages are only relayed, one
for one, both ways, until either side closes.

A client that asks for another WebSocket subprotocol gets upstream's 403. One
that asks for SPDY (kubectl before 1.30) has its ``X-Stream-Protocol-Version``
negotiated first (upstream's 403 when no version matches), then the kubelet's
WebSocket is dialled as for any client, so the kubelet's errors (a container
that is not running) are still a Status before the upgrade; after the 101 the
API server serves the SPDY session and translates it (``spdyexec.py``). A
request without an upgrade gets upstream's 400 ``Upgrade request required`` from
here, as upstream's UpgradeAwareHandler answers it: the kubelet is not dialled.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import aiohttp
from aiohttp import web

from netlab.api import errors, resources, views
from netlab.api import remotecommand as rc
from netlab.api.views import pod_spec
from netlab.master.apiserver.config import Config, LogUnavailable
from netlab.master.apiserver.request import RequestInfo
from netlab.master.apiserver.spdyexec import ExecSession
from netlab.master.apiserver.spdysession import Read, Write, spdy_upgrade
from netlab.master.apiserver.storage import Registry
from netlab.tasks import until_first

log = logging.getLogger(__name__)

NODES = resources.builtin("Node")


def pick_container(pod: dict, wanted: str) -> str:
    """streamLocation's container: the one named, or the only one."""
    name = views.name_of(pod)
    spec: Any = pod_spec(pod)

    def names(key: str) -> list[str]:
        return [c.get("name", "") for c in spec.get(key) or [] if isinstance(c, dict)]

    containers, init, ephemeral = (names("containers"), names("initContainers"),
                                   names("ephemeralContainers"))
    if wanted:
        if wanted not in containers + init + ephemeral:
            raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
        return wanted
    if len(containers) == 1:
        return containers[0]
    if not containers:
        raise errors.bad_request(f"a container name must be specified for pod {name}")
    message = (f"a container name must be specified for pod {name}, choose one of: "
               f"[{' '.join(containers)}]")
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    raise errors.bad_request(message)


async def kubelet_node(registry: Registry, config: Config, node_name: str) -> dict:
    """The Node whose kubelet a stream goes to: 400 when the API server has no way to
    kubelets, 404 when the Node is gone."""
    if config.remote_command is None:
        raise errors.bad_request(f"unable to upgrade connection: the API server has no "
                                 f'connection to the kubelet of node "{node_name}"')
    try:
        return await registry.get(NODES, None, node_name)
    except errors.APIError:
        raise errors.not_found("nodes", node_name) from None


def upgrade_failed(err: LogUnavailable) -> errors.APIError:
    """The kubelet refused a stream: its 403 as it is, else upstream's 404 or 400."""
    if err.code == 403:
        return errors.APIError(403, "Forbidden", str(err))
    return errors.APIError(404 if err.code == 404 else 400,
                           "NotFound" if err.code == 404 else "BadRequest",
                           f"unable to upgrade connection: {err}")


async def remote_command(request: web.Request, registry: Registry, config: Config,
                         info: RequestInfo) -> web.StreamResponse:
    """GET or POST ``pods/{name}/exec`` or ``pods/{name}/attach``."""
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    kind = info.subresource or "exec"
    pod = await registry.get(info.resource, info.namespace, info.name or "")
    pod_name = views.name_of(pod)
    container = pick_container(pod, request.query.get("container", ""))
    try:
        rc.stream_options(request.query, exec_=kind == "exec")
    except ValueError as err:
        raise errors.bad_request(str(err)) from None
    node_name = pod_spec(pod).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {pod_name} does not have a host assigned")
    offered = rc.offered_protocols(request.headers.get("Sec-WebSocket-Protocol"))
    upgrade = request.headers.get("Upgrade", "").strip().lower()
    websocket = upgrade == "websocket"
    spdy_protocol: str | None = None
    if websocket and rc.negotiate(offered) is None:
        raise errors.APIError(403, "Forbidden", rc.refusal_message(offered))
    if upgrade.startswith("spdy/"):
        spdy_protocol = _spdy_handshake(request)
    node = await kubelet_node(registry, config, node_name)
    if not websocket and spdy_protocol is None:
        # As upstream's UpgradeAwareHandler (UpgradeRequired): answered here, without
        # asking the kubelet, whatever state the container is in.
        raise errors.bad_request("Upgrade request required")
    dial = config.remote_command
    assert dial is not None  # (kubelet_node refused otherwise)
    query = [(k, v) for k, v in request.query.items() if k != "container"]
    if spdy_protocol is not None:
        # The kubelet speaks WebSocket: v5, whose close signal carries stdin's EOF.
        offered = [rc.V5, rc.V4]
    try:
        session, upstream = await dial(
            node, kind, views.namespace_of(pod), pod_name, container, query, offered)
    except LogUnavailable as err:
        raise upgrade_failed(err) from None
    if spdy_protocol is not None:
        return await _spdy_exec(request, session, upstream, spdy_protocol,
                                rc.stream_options(request.query, exec_=kind == "exec"))
    return await relay_response(request, session, upstream,
                                (upstream.protocol,) if upstream.protocol else ())


def _spdy_handshake(request: web.Request) -> str:
    """httpstream.Handshake: the version to answer, or its 400/403 (before the upgrade)."""
    versions = [v.strip() for v in request.headers.getall("X-Stream-Protocol-Version", [])
                if v.strip()]
    if not versions:
        raise errors.bad_request("unable to upgrade: X-Stream-Protocol-Version is required")
    protocol = rc.negotiate_spdy(versions)
    if protocol is None:
        offered = [p.strip() for v in versions for p in v.split(",") if p.strip()]
        raise errors.APIError(403, "Forbidden", rc.spdy_refusal_message(offered))
    return protocol


async def _spdy_exec(request: web.Request, session: aiohttp.ClientSession,
                     upstream: aiohttp.ClientWebSocketResponse, protocol: str,
                     opts: rc.StreamOptions) -> web.StreamResponse:
    """Serve the SPDY session of kubectl before 1.30, bridged to the kubelet's WebSocket."""
    expected = rc.spdy_streams(protocol, opts)

    async def serve(read: Read, write: Write) -> None:
        await ExecSession(read, write, protocol, expected, upstream).serve()

    try:
        return await spdy_upgrade(request, protocol, serve)
    finally:
        await upstream.close()
        await session.close()


async def relay_response(request: web.Request, session: aiohttp.ClientSession,
                         upstream: aiohttp.ClientWebSocketResponse,
                         protocols: tuple[str, ...]) -> web.WebSocketResponse:
    """Answer ``request`` with a WebSocket speaking ``protocols`` and relay it to
    ``upstream`` (the kubelet's) until either side closes; ``session`` goes with it."""
    try:
        client = web.WebSocketResponse(protocols=protocols, autoping=True, max_msg_size=0)
        await client.prepare(request)
        await relay(client, upstream)
        return client
    finally:
        await upstream.close()
        await session.close()


async def relay(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
                ) -> None:
    """Copy messages both ways until one side closes, then close the other."""
    async def copy(source: Any, sink: Any) -> None:
        async for message in source:
            if message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            else:
                return

    try:
        await until_first(copy(client, upstream), copy(upstream, client))
    finally:
        with contextlib.suppress(Exception):
            await client.close()
        with contextlib.suppress(Exception):
            await upstream.close()
