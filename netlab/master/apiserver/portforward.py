"""``pods/portforward``: the API server's side of kubectl's and the Python client's port-forward.

The pod must exist (404), be bound to a node and be running (400, upstream's
wording). Then, by what the client asks for:

- a WebSocket with ``v4.channel.k8s.io`` (the official Python client): relayed
  message for message to the kubelet's ``/portForward`` WebSocket, as
  kube-apiserver's upgrade-aware proxy relays it;
- an HTTP upgrade to ``SPDY/3.1`` with ``X-Stream-Protocol-Version:
  portforward.k8s.io`` (kubectl, and kubectl 1.31+ when its WebSocket is
  refused): 101, then a SPDY/3.1 session on the raw connection;
- a WebSocket with ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.31+): the same SPDY
  session, carried in binary WebSocket messages.

The SPDY session (``SpdySession``, on ``spdysession.SpdyConnection``, which it shares
with SPDY exec and attach) is served here rather than relayed: each of
kubectl's forwarded connections is a pair of streams (``streamType`` error and
data, one ``requestID``), and each pair becomes one kubelet WebSocket for its
port. The kubelet's data channel becomes DATA on the data stream, its error
channel DATA on the error stream; kubectl prints the latter. The end of either
side ends the pair, as containerd's forwarder ends a connection when one
direction does. A malformed frame ends the session with GOAWAY.

The kubelet sends the pod's bytes in messages of up to 1 MiB (fewer DATA frames cost
kubectl less). aiohttp allocates each message it receives; with glibc's malloc left
to its dynamic thresholds, the API server's CPU per GiB, mostly its kernel share,
grew by about what kubectl saved (likely the heap's top given back after each
message and faulted in again). ``keep_message_buffers`` (the first port-forward
calls it) fixes the thresholds so such buffers stay in the heap, keeping at most
``TRIM_THRESHOLD`` of free heap (docs/benchmarks.md, "Bigger messages").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import aiohttp
from aiohttp import web

from netlab.api import errors, spdy, views
from netlab.api import portforward as pf
from netlab.api.remotecommand import offered_protocols
from netlab.api.views import pod_spec
from netlab.kernel.processes import keep_large_allocations_in_heap
from netlab.master.apiserver.config import Config, LogUnavailable
from netlab.master.apiserver.request import RequestInfo
from netlab.master.apiserver.spdysession import Buffer, Read, SpdyConnection, Write, spdy_upgrade
from netlab.master.apiserver.storage import Registry
from netlab.master.apiserver.streaming import kubelet_node, relay_response, upgrade_failed
from netlab.tasks import until_first

log = logging.getLogger(__name__)

# How long a stream waits for its partner (upstream's streamCreationTimeout is 30s).
PAIR_TIMEOUT = 30.0
# Kubelet data is sent to kubectl in DATA frames of at most this size.
CHUNK = 1 << 20
# DATA frames from kubectl waiting for the kubelet, per connection. When full, reading
# the SPDY connection waits: TCP's backpressure reaches kubectl (spdystream has no
# flow control of its own).
INBOUND_FRAMES = 16

Dial = Callable[[int], Awaitable[tuple[Any, Any]]]

# Allocations below MMAP_THRESHOLD come from the heap, and up to TRIM_THRESHOLD of free
# memory at its top stays there (glibc's dynamic thresholds may reach 32 and 64 MiB).
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 16 << 20
_heap_kept = False


def keep_message_buffers() -> bool:
    """Keep buffers of the kubelet's messages in this process's heap (see the module's
    docstring), once; False where the C library has no ``mallopt`` (not glibc)."""
    global _heap_kept
    if _heap_kept:
        return True
    _heap_kept = True
    return keep_large_allocations_in_heap(MMAP_THRESHOLD, TRIM_THRESHOLD)


def _upgrade(request: web.Request) -> str:
    return request.headers.get("Upgrade", "").strip().lower()


async def port_forward(request: web.Request, registry: Registry, config: Config,
                       info: RequestInfo) -> web.StreamResponse:
    """GET or POST ``pods/{name}/portforward``."""
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    pod = await registry.get(info.resource, info.namespace, info.name or "")
    pod_name, namespace = views.name_of(pod), views.namespace_of(pod)
    node_name = pod_spec(pod).get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {pod_name} does not have a host assigned")
    phase = views.status_of(pod).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(f"cannot connect to a completed pod; current phase is {phase}")
    upgrade = _upgrade(request)
    offered = offered_protocols(request.headers.get("Sec-WebSocket-Protocol"))
    query = [(k, v) for k, v in request.query.items() if k in ("ports", "port")]
    if upgrade == "websocket":
        if pf.TUNNEL_PROTOCOL in offered:
            mode = "tunnel"
        elif pf.WS_PROTOCOL in offered or not offered:
            mode = "websocket"
            try:
                pf.parse_ports(v for _, v in query)
            except ValueError as err:
                raise errors.bad_request(str(err)) from None
        else:
            raise errors.APIError(403, "Forbidden", (
                f"unable to upgrade: unable to negotiate protocol: client supports {offered}, "
                f"server supports {[pf.TUNNEL_PROTOCOL, pf.WS_PROTOCOL]}"))
    elif upgrade.startswith("spdy/"):
        versions = [v.strip() for v in request.headers.getall("X-Stream-Protocol-Version", [])]
        if pf.SPDY_PROTOCOL not in ",".join(versions).replace(" ", "").split(","):
            raise errors.APIError(403, "Forbidden", (
                f"unable to upgrade: unable to negotiate protocol: client supports {versions}, "
                f"server supports [{pf.SPDY_PROTOCOL}]"))
        mode = "spdy"
    else:
        raise errors.bad_request("Upgrade request required")
    node = await kubelet_node(registry, config, node_name)
    keep_message_buffers()
    dialer = config.remote_command
    assert dialer is not None  # (kubelet_node refused otherwise)

    async def dial(ports: list[tuple[str, str]], protocols: list[str]) -> tuple[Any, Any]:
        return await dialer(node, "portForward", namespace, pod_name, "", ports, protocols)

    if mode == "websocket":
        try:
            session, upstream = await dial(query, offered or [pf.WS_PROTOCOL])
        except LogUnavailable as err:
            raise upgrade_failed(err) from None
        return await relay_response(request, session, upstream, (pf.WS_PROTOCOL,))

    async def dial_port(port: int) -> tuple[Any, Any]:
        return await dial([("ports", str(port))], [pf.WS_PROTOCOL])

    if mode == "tunnel":
        ws = web.WebSocketResponse(protocols=(pf.TUNNEL_PROTOCOL,), autoping=True,
                                   max_msg_size=0)
        await ws.prepare(request)

        async def read_ws() -> bytes:
            async for message in ws:
                # kubectl writes each piece of a frame as a message, some of them empty.
                if message.type == aiohttp.WSMsgType.BINARY and message.data:
                    return bytes(message.data)
                if message.type == aiohttp.WSMsgType.BINARY:
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
            return b""

        async def write_ws(data: Buffer) -> None:
            if not ws.closed:
                # aiohttp takes any bytes-like here (it checks so), though typed bytes.
                await ws.send_bytes(data)  # type: ignore[arg-type]

        try:
            await SpdySession(read_ws, write_ws, dial_port).run()
        finally:
            await ws.close()
        return ws

    async def serve(read: Read, write: Write) -> None:
        await SpdySession(read, write, dial_port).run()

    return await spdy_upgrade(request, pf.SPDY_PROTOCOL, serve)


@dataclass
class _Pair:
    """One forwarded connection: kubectl's error and data streams for one requestID."""
    request_id: str
    port: int = 0
    error: int = 0
    data: int = 0
    inbound: asyncio.Queue[bytes] = field(
        default_factory=lambda: asyncio.Queue(INBOUND_FRAMES))
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: Optional[asyncio.Task[None]] = None


class SpdySession(SpdyConnection):
    """The server end of one SPDY/3.1 port-forward connection."""

    name = "port-forward"

    def __init__(self, read: Read, write: Write, dial: Dial) -> None:
        super().__init__(read, write)
        self.dial = dial
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, _Pair] = {}

    async def cleanup(self) -> None:
        tasks = [p.task for p in self.pairs.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def handle(self, frame: spdy.Frame) -> bool:
        if isinstance(frame, spdy.SynStream):
            await self._syn_stream(frame)
        elif isinstance(frame, spdy.DataFrame):
            pair = self.by_stream.get(frame.stream_id)
            if pair is not None and frame.stream_id == pair.data:
                if frame.data:
                    await pair.inbound.put(frame.data)
                if frame.flags & spdy.FLAG_FIN:
                    await pair.inbound.put(b"")
        elif isinstance(frame, spdy.RstStream):
            pair = self.by_stream.get(frame.stream_id)
            if pair is not None:
                self._forget(pair)
        # SETTINGS, WINDOW_UPDATE (spdystream has no flow control), HEADERS: nothing to do
        return True

    async def _syn_stream(self, frame: spdy.SynStream) -> None:
        sid = frame.stream_id
        kind = spdy.header(frame.headers, pf.STREAM_TYPE)
        request_id = spdy.header(frame.headers, pf.REQUEST_ID)
        try:
            port = pf.parse_port(spdy.header(frame.headers, pf.PORT))
        except ValueError:
            port = 0
        if kind not in (pf.STREAM_DATA, pf.STREAM_ERROR) or not port or not request_id:
            await self.send(spdy.RstStream(sid, spdy.PROTOCOL_ERROR))
            return
        pair = self.pairs.get(request_id)
        if pair is None:
            pair = self.pairs[request_id] = _Pair(request_id, port)
            pair.task = asyncio.ensure_future(self._forward(pair))
        if getattr(pair, kind) or pair.port != port:
            await self.send(spdy.RstStream(sid, spdy.PROTOCOL_ERROR))
            return
        setattr(pair, kind, sid)
        self.by_stream[sid] = pair
        await self.send(spdy.SynReply(sid))
        if pair.error and pair.data:
            pair.ready.set()

    def _forget(self, pair: _Pair) -> None:
        self.pairs.pop(pair.request_id, None)
        for sid in (pair.error, pair.data):
            self.by_stream.pop(sid, None)
        # Unblock a reader waiting to queue more for this pair: nobody will read it.
        while not pair.inbound.empty():
            pair.inbound.get_nowait()
        if pair.task is not None and pair.task is not asyncio.current_task():
            pair.task.cancel()

    async def _forward(self, pair: _Pair) -> None:
        try:
            try:
                await asyncio.wait_for(pair.ready.wait(), PAIR_TIMEOUT)
            except asyncio.TimeoutError:
                for sid in (pair.error, pair.data):
                    if sid:
                        await self.send(spdy.RstStream(sid, spdy.REFUSED_STREAM))
                return
            try:
                session, ws = await self.dial(pair.port)
            except LogUnavailable as err:
                await self.send(spdy.DataFrame(pair.error, str(err).encode(), spdy.FLAG_FIN),
                                spdy.DataFrame(pair.data, b"", spdy.FLAG_FIN))
                return
            try:
                await self._copy(pair, ws)
            finally:
                await ws.close()
                await session.close()
            with contextlib.suppress(Exception):
                await self.send(spdy.DataFrame(pair.data, b"", spdy.FLAG_FIN),
                                spdy.DataFrame(pair.error, b"", spdy.FLAG_FIN))
        except (ConnectionError, OSError):
            pass
        finally:
            self._forget(pair)

    async def _copy(self, pair: _Pair, ws: Any) -> None:
        async def down() -> None:
            seen: set[int] = set()  # channels whose port prefix is consumed
            async for message in ws:
                if message.type != aiohttp.WSMsgType.BINARY or not message.data:
                    return
                # Views, not slices: each slice of a message copied all its bytes.
                channel, payload = message.data[0], memoryview(message.data)[1:]
                if channel not in seen:
                    seen.add(channel)
                    payload = payload[2:]
                if not payload:
                    continue
                sid = pair.data if channel == 0 else pair.error
                for at in range(0, len(payload), CHUNK):
                    await self.send_data(sid, payload[at:at + CHUNK])

        async def up() -> None:
            while chunk := await pair.inbound.get():
                await ws.send_bytes(b"\x00" + chunk)

        await until_first(down(), up())
