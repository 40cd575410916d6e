"""The kubelet's ``/portForward/{namespace}/{pod}`` endpoint: WebSocket port forwarding.

What upstream's kubelet serves for the official Python client
(``pkg/kubelet/cri/streaming/portforward/websocket.go``): a WebSocket
(``v4.channel.k8s.io``, or no subprotocol: binary channels) whose ``ports``
query names the ports (repeated or comma-separated). Port ``i`` has data
channel ``2i`` and error channel ``2i+1``; the first message the kubelet sends
on each channel is the port, two bytes little-endian. For each port one
connection is opened and copied both ways; if it fails the reason goes on the
port's error channel and the other ports go on. When every port's connection
has ended, the WebSocket closes. The API server also uses it for each stream
pair of kubectl's SPDY port-forward, one port per WebSocket.

As CRI runtimes do, the connection goes to ``localhost:port`` inside the pod's
network namespace: its socket is made there (``netns.run_in_netns``) and then
driven from the kubelet's loop, so a server bound to the pod's loopback only is
reachable, as in a real cluster.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
from typing import Any

import aiohttp
from aiohttp import web

from netlab.api import portforward as pf
from netlab.api import remotecommand as rc
from netlab.kernel import netns as netnslib
from netlab.node.kubelet.streaming import text_response

log = logging.getLogger("netlab.kubelet.portforward")

# The pod's bytes are read up to this much at a time, each read one message and one
# DATA frame to kubectl. Fewer, larger frames cost kubectl less (0.2-0.5 CPU-s/GiB at
# 1 MiB against 256 KiB, 1.5 more at 64 KiB; docs/benchmarks.md): its SPDY client
# allocates each frame and hands it between goroutines. The buffer is reused, so the
# size costs the kubelet no allocation per read.
CHUNK = 1 << 20
# Bytes of client messages waiting for a port's connection; beyond it reading the
# WebSocket waits, so TCP's backpressure reaches the client.
INBOX_BYTES = 4 << 20
# No single client message may be larger (the API server sends SPDY DATA payloads).
MAX_MESSAGE = 32 << 20
CONNECT_TIMEOUT = 10.0
LOCALHOST = "127.0.0.1"  # tcp4, as containerd dials


def register(app: web.Application, kubelet: Any) -> None:
    """Add ``/portForward``; ``kubelet`` supplies ``port_forward_target``: (pod IP, pod
    UID, the pod's network namespace or None for the kubelet's own), or (code, message)."""
    async def handle(request: web.Request) -> web.StreamResponse:
        ns, pod = request.match_info["namespace"], request.match_info["pod"]
        try:
            ports = pf.parse_ports(request.query.getall("ports", []) +
                                   request.query.getall("port", []))
        except ValueError as err:
            return text_response(400, str(err))
        target = await kubelet.port_forward_target(ns, pod)
        if isinstance(target[0], int):
            return text_response(*target)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return text_response(400, "Upgrade request required")
        offered = rc.offered_protocols(request.headers.get("Sec-WebSocket-Protocol"))
        if offered and pf.WS_PROTOCOL not in offered:
            return text_response(403, f"unable to upgrade: unable to negotiate protocol: client "
                              f"supports {offered}, server supports {[pf.WS_PROTOCOL]}")
        ws = web.WebSocketResponse(protocols=(pf.WS_PROTOCOL,), autoping=True,
                                   max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        try:
            await _forward(ws, str(target[0]), str(target[1]), target[2], ports, pod)
        finally:
            await ws.close()
        return ws

    for method in ("GET", "POST"):
        app.router.add_route(method, "/portForward/{namespace}/{pod}", handle)


async def _forward(ws: web.WebSocketResponse, host: str, uid: str, netns: str | None,
                   ports: list[int], pod: str) -> None:
    # Client data per data channel, queued: it may come before the pod connection is open.
    inbox = {2 * i: ByteQueue(INBOX_BYTES) for i in range(len(ports))}

    async def send(channel: int, data: bytes) -> None:
        if not ws.closed:
            await ws.send_bytes(bytes((channel,)) + data)

    async def upstream(queue: ByteQueue, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # sock_sendall returns once the kernel took it all: the queue's bound holds.
            await loop.sock_sendall(sock, await queue.get())

    async def one(index: int, port: int) -> None:
        data_ch, err_ch = 2 * index, 2 * index + 1
        try:
            await connection(port, data_ch, err_ch)
        finally:
            # Later messages for this port are dropped, and so is one waiting for room.
            inbox.pop(data_ch).close()

    async def connection(port: int, data_ch: int, err_ch: int) -> None:
        try:
            sock = await asyncio.wait_for(dial(netns, port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as err:
            # asyncio's message names the address; the kernel's reason is the errno's.
            reason = os.strerror(err.errno).lower() if isinstance(err, OSError) and \
                err.errno else "i/o timeout"
            await send(err_ch, pf.forward_error(port, pod, uid, LOCALHOST, reason).encode())
            return
        up = asyncio.ensure_future(upstream(inbox[data_ch], sock))
        loop = asyncio.get_running_loop()
        buffer = ChannelBuffer(data_ch, CHUNK)
        try:
            # The socket itself rather than a StreamReader (whose buffer copied every
            # byte in and out again), read into the message's own buffer after its
            # channel byte: the kernel's copy is the only one before TLS.
            while n := await loop.sock_recv_into(sock, buffer.payload()):
                if ws.closed:
                    break
                # aiohttp takes any bytes-like here (it checks so), though typed bytes.
                await ws.send_bytes(buffer.message(n))  # type: ignore[arg-type]
                buffer.recycle()
        except OSError:
            pass
        finally:
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await up
            sock.close()

    for index, port in enumerate(ports):  # the prefixes first, as upstream writes them
        await send(2 * index, pf.port_prefix(port))
        await send(2 * index + 1, pf.port_prefix(port))
    tasks = [asyncio.ensure_future(one(i, p)) for i, p in enumerate(ports)]
    everything = asyncio.ensure_future(asyncio.wait(tasks))
    inbound = asyncio.ensure_future(_inbound(ws, inbox))
    try:
        await asyncio.wait([everything, inbound], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (*tasks, inbound):
            task.cancel()
        for task in (*tasks, inbound):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        everything.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await everything


async def dial(netns: str | None, port: int) -> socket.socket:
    """A connected, non-blocking socket to ``localhost:port`` in network namespace
    ``netns`` (None: this thread's own), for the loop's ``sock_*`` calls. The socket is
    created there; connecting and everything after it happen on the loop, in the
    socket's namespace whatever the thread's."""
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    sock = make() if netns is None else await asyncio.to_thread(
        netnslib.run_in_netns, netns, make)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (LOCALHOST, port))
        return sock
    except BaseException:
        sock.close()
        raise


async def _inbound(ws: web.WebSocketResponse, inbox: dict[int, ByteQueue]) -> None:
    """Client messages: data for a port's connection, by its data channel."""
    async for message in ws:
        if message.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
            return
        raw = message.data.encode() if isinstance(message.data, str) else message.data
        queue = inbox.get(raw[0]) if raw else None
        if queue is not None and len(raw) > 1:
            await queue.put(memoryview(raw)[1:])  # a view: the bytes are not copied again


class ByteQueue:
    """Messages for one port's connection, bounded by their bytes: ``put`` waits while
    the queued bytes and the new message's exceed ``limit`` (a larger message goes in
    alone). One reader and one writer at a time; ``close`` drops what waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0  # bytes queued
        self.closed = False
        self._items: collections.deque[bytes | memoryview] = collections.deque()
        self._room = asyncio.Event()
        self._ready = asyncio.Event()

    async def put(self, data: bytes | memoryview) -> None:
        while not self.closed and self._items and self.size + len(data) > self.limit:
            self._room.clear()
            await self._room.wait()
        if not self.closed:
            self._items.append(data)
            self.size += len(data)
            self._ready.set()

    async def get(self) -> bytes | memoryview:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        data = self._items.popleft()
        self.size -= len(data)
        self._room.set()
        return data

    def close(self) -> None:
        self.closed = True
        self._items.clear()
        self.size = 0
        self._room.set()


class ChannelBuffer:
    """A message buffer for one channel: its channel byte, then room for ``size`` bytes
    read into it (``payload``) and sent from it (``message``).

    It is reused from one message to the next only when nothing still holds a view of
    it once the message is sent: the TLS transport takes the bytes at once when its
    connection is established, but keeps a reference (to send later) when it cannot,
    and a later read would then overwrite them. ``recycle`` finds out without asking
    the transport: a bytearray with a live view refuses to change size."""

    def __init__(self, channel: int, size: int) -> None:
        self.channel, self.size = channel, size
        self.buffer = self._new()
        self.fresh = 0  # buffers allocated after the first (for tests)

    def _new(self) -> bytearray:
        buffer = bytearray(self.size + 1)
        buffer[0] = self.channel
        return buffer

    def payload(self) -> memoryview:
        """Where the next read goes."""
        return memoryview(self.buffer)[1:]

    def message(self, n: int) -> memoryview:
        """The channel byte and the ``n`` bytes read."""
        return memoryview(self.buffer)[:n + 1]

    def recycle(self) -> None:
        """Call once the message is sent and this side's views of it are gone."""
        try:
            del self.buffer[-1]  # raises BufferError while any view is alive
        except BufferError:
            self.buffer = self._new()
            self.fresh += 1
            return
        self.buffer.append(0)
