"""pods/portforward in the API server, over the real kubelet /portForward handler (its
"pod" is a TCP echo server on this host's loopback): the Python client's WebSocket
protocol relayed, SPDY/3.1 after a plain upgrade and tunnelled in a WebSocket,
upstream's errors, and malformed SPDY ending only its own connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from apiserver_kit import PODS, TOKEN, pod
from test_apiserver_exec import dial

from netlab.api import portforward as pf
from netlab.api import spdy
from netlab.node.kubelet import portforward

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeKubelet:
    async def port_forward_target(self, namespace: str, pod: str) -> Any:
        if pod != "p":
            return 404, "pod does not exist"
        return "10.244.1.7", "uid-1", None  # the pod: this namespace's loopback


@contextlib.asynccontextmanager
async def kubelet() -> AsyncIterator[int]:
    app = web.Application()
    portforward.register(app, FakeKubelet())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server.port or 0
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    """The pod: answers every chunk with b"echo:" + chunk."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _setup(c: Any, port: int) -> None:
    await c.ok("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
    await c.ok("PATCH", "/api/v1/nodes/n1/status", {"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})
    await c.ok("POST", PODS, pod("p", nodeName="n1"))
    await c.ok("POST", PODS, pod("pending"))


async def test_python_clients_websocket_protocol(api, memory_store):
    refused = closed_port()
    async with kubelet() as kport, echo_server() as eport, \
            api(memory_store, remote_command=dial) as c:
        await _setup(c, kport)
        async with c.raw.ws_connect(f"{PODS}/p/portforward", params={"ports": f"{eport},{refused}"},
                                    protocols=[pf.WS_PROTOCOL], headers=AUTH) as ws:
            assert ws.protocol == pf.WS_PROTOCOL
            got: dict[int, bytes] = {0: b"", 1: b"", 2: b"", 3: b""}
            await ws.send_bytes(b"\x00hello")
            while b"echo:hello" not in got[0] or b"refused" not in got[3]:
                message = await asyncio.wait_for(ws.receive(), 10)
                assert message.type == aiohttp.WSMsgType.BINARY, message
                got[message.data[0]] += message.data[1:]
            # Each channel starts with its port, two bytes little-endian.
            assert got[0].startswith(pf.port_prefix(eport))
            assert got[1] == pf.port_prefix(eport)
            assert got[2] == pf.port_prefix(refused)
            assert got[3].endswith(f"error forwarding port {refused} to pod p, uid uid-1: "
                                   f"failed to connect to 127.0.0.1:{refused}: connection "
                                   "refused".encode())


async def test_errors_are_upstreams(api, memory_store):
    async with kubelet() as kport, api(memory_store, remote_command=dial) as c:
        await _setup(c, kport)

        async def status(name: str, headers: dict) -> tuple[int, dict]:
            async with c.raw.get(f"{PODS}/{name}/portforward", params={"ports": "80"},
                                 headers={**AUTH, **headers}) as r:
                return r.status, json.loads(await r.text())

        code, body = await status("nope", {})
        assert (code, body["message"]) == (404, 'pods "nope" not found')
        code, body = await status("pending", {})
        assert (code, body["message"]) == (400, "pod pending does not have a host assigned")
        code, body = await status("p", {})
        assert (code, body["message"]) == (400, "Upgrade request required")
        code, body = await status("p", {"Connection": "Upgrade", "Upgrade": "websocket",
                                        "Sec-WebSocket-Version": "13",
                                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                        "Sec-WebSocket-Protocol": "base64.channel.k8s.io"})
        assert code == 403 and "unable to negotiate protocol" in body["message"]


async def _spdy_client_exchange(read: Any, write: Any, eport: int, refused: int) -> None:
    """As kubectl does: per connection an error stream (closed at once) and a data stream."""
    framer, frames = spdy.Framer(), []

    async def until(pred: Any) -> None:
        while not pred():
            data = await asyncio.wait_for(read(), 10)
            assert data, f"connection closed; frames so far {frames}"
            frames.extend(framer.feed(data))

    def streams(request_id: str, port: int, first: int) -> bytes:
        head = {"port": [str(port)], "requestid": [request_id]}
        return b"".join(framer.encode(f) for f in (
            spdy.SynStream(first, {"streamtype": ["error"], **head}),
            spdy.DataFrame(first, b"", spdy.FLAG_FIN),
            spdy.SynStream(first + 2, {"streamtype": ["data"], **head}),
            spdy.DataFrame(first + 2, b"ping")))

    await write(streams("0", eport, 1) + streams("1", refused, 5) +
                framer.encode(spdy.Ping(1)))

    def data(sid: int) -> bytes:
        return b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame)
                        and f.stream_id == sid)

    await until(lambda: b"echo:ping" in data(3) and b"refused" in data(5)
                and spdy.Ping(1) in frames)
    assert {f.stream_id for f in frames if isinstance(f, spdy.SynReply)} == {1, 3, 5, 7}
    assert f"error forwarding port {refused}".encode() in data(5)
    # The refused connection's streams end; the other one still works.
    await until(lambda: any(isinstance(f, spdy.DataFrame) and f.stream_id == 7
                            and f.flags & spdy.FLAG_FIN for f in frames))
    await write(framer.encode(spdy.DataFrame(3, b"again")))
    await until(lambda: b"echo:again" in data(3))
    # Client closes its side of the data stream: the connection ends, both streams FIN.
    await write(framer.encode(spdy.DataFrame(3, b"", spdy.FLAG_FIN)))
    await until(lambda: {1, 3} <= {f.stream_id for f in frames if isinstance(f, spdy.DataFrame)
                                   and f.flags & spdy.FLAG_FIN})
    # Garbage: GOAWAY, then the connection closes.
    await write(b"\x80\x07\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
    while data := await asyncio.wait_for(read(), 10):
        with contextlib.suppress(spdy.FrameError):
            frames.extend(framer.feed(data))
    assert any(isinstance(f, spdy.GoAway) and f.status == spdy.GOAWAY_PROTOCOL_ERROR
               for f in frames)


async def test_spdy_after_a_plain_upgrade(api, memory_store):
    refused = closed_port()
    async with kubelet() as kport, echo_server() as eport, \
            api(memory_store, remote_command=dial) as c:
        await _setup(c, kport)
        reader, writer = await asyncio.open_connection("127.0.0.1", c.raw.server.port)
        writer.write((f"POST {PODS}/p/portforward HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {TOKEN}\r\nConnection: Upgrade\r\n"
                      "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n"
                      "Content-Length: 0\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"X-Stream-Protocol-Version: portforward.k8s.io" in head

        async def write(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        try:
            await _spdy_client_exchange(lambda: reader.read(65536), write, eport, refused)
        finally:
            writer.close()
        # The server is still up.
        assert (await c.request("GET", f"{PODS}/p"))[0] == 200


async def test_spdy_tunnelled_in_a_websocket(api, memory_store):
    refused = closed_port()
    async with kubelet() as kport, echo_server() as eport, \
            api(memory_store, remote_command=dial) as c:
        await _setup(c, kport)
        async with c.raw.ws_connect(f"{PODS}/p/portforward", protocols=[pf.TUNNEL_PROTOCOL],
                                    headers=AUTH) as ws:
            assert ws.protocol == pf.TUNNEL_PROTOCOL

            async def read() -> bytes:
                message = await ws.receive()
                return message.data if message.type == aiohttp.WSMsgType.BINARY else b""

            async def write(data: bytes) -> None:
                for at in range(0, len(data), 7):  # frames cut across messages, as kubectl does
                    await ws.send_bytes(data[at:at + 7])
                await ws.send_bytes(b"")

            await _spdy_client_exchange(read, write, eport, refused)
        assert (await c.request("GET", f"{PODS}/p"))[0] == 200




async def test_a_large_upload_flows_through_the_bounded_queues(api, memory_store):
    async with kubelet() as kport, echo_server() as eport, \
            api(memory_store, remote_command=dial) as c:
        await _setup(c, kport)
        async with c.raw.ws_connect(f"{PODS}/p/portforward", params={"ports": str(eport)},
                                    protocols=[pf.WS_PROTOCOL], headers=AUTH) as ws:
            chunk, count = b"x" * 32768, 256

            async def upload() -> None:
                for _ in range(count):
                    await ws.send_bytes(b"\x00" + chunk)

            sender = asyncio.ensure_future(upload())
            seen = 0
            while seen < len(chunk) * count:
                message = await asyncio.wait_for(ws.receive(), 30)
                assert message.type == aiohttp.WSMsgType.BINARY, message
                if message.data[0] == 0:
                    seen += message.data.count(b"x")
            await sender
            assert seen == len(chunk) * count


async def test_raw_spdy_reading_pauses_while_the_session_lags():
    """A raw upgrade's queued bytes stay bounded: above the limit the socket stops being
    read, and it is read again once the session drained half of what was queued."""
    import asyncio

    from netlab.master.apiserver.spdysession import RawParser

    class Transport:
        def __init__(self) -> None:
            self.reading = True
            self.pauses = self.resumes = 0

        def pause_reading(self) -> None:
            self.reading, self.pauses = False, self.pauses + 1

        def resume_reading(self) -> None:
            self.reading, self.resumes = True, self.resumes + 1

        def is_closing(self) -> bool:
            return False

    transport = Transport()
    piece, limit, total = b"x" * 65536, 1 << 20, 64 << 20
    parser = RawParser(transport, limit)  # type: ignore[arg-type]
    peak = sent = received = 0

    async def client() -> None:  # what the event loop does: feed while reading is on
        nonlocal peak, sent
        while sent < total:
            if transport.reading:
                parser.feed_data(piece)
                sent += len(piece)
                peak = max(peak, parser.queued)
            await asyncio.sleep(0)
        parser.feed_eof()

    async def slow_session() -> None:
        nonlocal received
        while data := await parser.read():
            received += len(data)
            for _ in range(3):  # three loop turns per piece: slower than the client
                await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(client(), slow_session()), 30)
    assert received == total
    assert peak <= limit + len(piece)
    assert transport.pauses > 1 and transport.resumes == transport.pauses


async def test_a_data_frame_goes_out_whole_when_its_sender_is_cancelled():
    """A DATA frame is its header and its payload, two writes: a relay cancelled while
    the first one waits (its other direction ended) still sends the second, and the
    next frame follows it, so kubectl decodes every frame of the connection."""
    from netlab.master.apiserver.spdysession import SpdyConnection

    out: list[bytes] = []
    slow, waiting = asyncio.Event(), asyncio.Event()

    async def write(data: Any) -> None:
        out.append(bytes(data))
        if len(out) == 1:
            waiting.set()
            await slow.wait()  # the transport is full: this write waits for a drain

    async def never() -> bytes:
        return b""

    conn = SpdyConnection(never, write)
    sender = asyncio.ensure_future(conn.send_data(1, b"payload"))
    await asyncio.wait_for(waiting.wait(), 10)  # the header's write is waiting
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sender
    slow.set()
    await conn.send(spdy.DataFrame(3, b"", spdy.FLAG_FIN))
    frames = spdy.Framer().feed(b"".join(out))
    assert frames == [spdy.DataFrame(1, b"payload"), spdy.DataFrame(3, b"", spdy.FLAG_FIN)]


def test_the_first_port_forward_keeps_message_buffers_in_the_heap(monkeypatch):
    """The kubelet's 1 MiB messages: glibc's thresholds are fixed once, so their buffers
    stay in the API server's heap instead of being faulted in again for each message."""
    from netlab.master.apiserver import portforward as apf

    calls: list[tuple[int, int]] = []

    class LibC:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    from netlab.kernel import processes

    monkeypatch.setattr(apf, "_heap_kept", False)
    monkeypatch.setattr(processes, "libc", LibC())
    assert apf.keep_message_buffers() and apf.keep_message_buffers()
    assert calls == [(processes.M_MMAP_THRESHOLD, 4 << 20),
                     (processes.M_TRIM_THRESHOLD, 16 << 20)]
