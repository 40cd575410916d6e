"""The kubelet's /portForward handler with a fake kubelet whose "pod" is this process's
network namespace: client data for a pod that reads slowly waits in a queue bounded by
bytes, and TCP's backpressure reaches the client instead of the kubelet's memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from netlab.api import portforward as pf
from netlab.node.kubelet import portforward

SMALL = 64 << 10  # kernel buffers we control: ours, the kubelet's receive side, the pod's
BOUND = 4 << 20  # "a few MiB" of client data queued per port


class FakeKubelet:
    async def port_forward_target(self, namespace: str, pod: str) -> Any:
        return "10.244.1.7", "uid-1", None  # the pod: this namespace's loopback


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)  # accepted sockets inherit it
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def kubelet() -> AsyncIterator[int]:
    app = web.Application()
    portforward.register(app, FakeKubelet())
    runner = web.AppRunner(app)
    await runner.setup()
    sock = _listener()
    try:
        await web.SockSite(runner, sock).start()
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()
        sock.close()


def _sysctl_max(name: str) -> int:
    return int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[-1])


@contextlib.asynccontextmanager
async def forwarded(send_buffer: int = 0) -> AsyncIterator[tuple[Any, socket.socket]]:
    """A port-forward WebSocket through the kubelet to a listener here, and the pod's
    end of the connection it made (closed before the kubelet stops: its handler must
    end)."""
    listening = _listener()
    listening.listen()
    listening.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async with kubelet() as kport, aiohttp.ClientSession() as session, \
                session.ws_connect(f"http://127.0.0.1:{kport}/portForward/ns/p",
                                   params={"ports": str(listening.getsockname()[1])},
                                   protocols=[pf.WS_PROTOCOL], max_msg_size=0) as ws:
            if send_buffer:
                ws.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                                       send_buffer)
            conn, _ = await asyncio.wait_for(loop.sock_accept(listening), 10)
            try:
                yield ws, conn
            finally:
                conn.close()
    finally:
        listening.close()


def test_a_pod_that_does_not_read_holds_back_the_client():
    async def main() -> None:
        async with forwarded(send_buffer=SMALL) as (ws, conn):
            await _held_back_then_delivered(ws, conn)  # the pod: reads nothing for now
    asyncio.run(asyncio.wait_for(main(), 120))


async def _held_back_then_delivered(ws: Any, conn: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    message, total = 1 << 20, 64 << 20
    sent = 0

    async def upload() -> None:
        nonlocal sent
        while sent < total:
            await ws.send_bytes(b"\x00" + b"x" * message)
            sent += message

    sender = asyncio.ensure_future(upload())
    try:
        # Until the client is held back: no progress for a second.
        deadline = loop.time() + 30
        last, still_since = -1, loop.time()
        while loop.time() - still_since < 1.0:
            assert loop.time() < deadline and not sender.done(), sent
            if sent != last:
                last, still_since = sent, loop.time()
            await asyncio.sleep(0.05)
        # What the path holds besides the queue: messages being read, waiting for room
        # and being written, and kernel buffers (the kubelet's send side to the pod, ours).
        slack = 3 * message + _sysctl_max("tcp_wmem") + 6 * SMALL
        assert portforward.INBOX_BYTES <= BOUND
        assert sent <= BOUND + slack, (sent, slack)
        # The pod reads: everything arrives, nothing was dropped.
        got = 0
        conn.setblocking(False)
        while got < total:
            chunk = await asyncio.wait_for(loop.sock_recv(conn, 1 << 20), 30)
            assert chunk, got
            got += chunk.count(b"x")
        await asyncio.wait_for(sender, 30)
        assert got == total
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


def test_byte_queue_bounds_by_bytes_and_close_releases_a_waiting_put():
    async def main() -> None:
        queue = portforward.ByteQueue(10)
        await queue.put(b"12345678")
        put = asyncio.ensure_future(queue.put(b"abc"))  # 11 > 10: waits
        await asyncio.sleep(0)
        assert not put.done() and queue.size == 8
        assert await queue.get() == b"12345678"
        await asyncio.wait_for(put, 1)
        assert queue.size == 3
        big = asyncio.ensure_future(queue.put(b"y" * 100))  # larger than the limit: alone
        await asyncio.sleep(0)
        assert not big.done()
        assert await queue.get() == b"abc"
        await asyncio.wait_for(big, 1)
        assert queue.size == 100
        late = asyncio.ensure_future(queue.put(b"z"))
        await asyncio.sleep(0)
        queue.close()
        await asyncio.wait_for(late, 1)
        assert queue.size == 0
    asyncio.run(main())


def test_a_message_still_held_after_sending_is_not_overwritten_by_the_next_read():
    # The pod's bytes are read into a reused buffer. A TLS transport that could not
    # take a message at once keeps a view of it to send later: that message must keep
    # its bytes, so the next read goes to a fresh buffer.
    buffer = portforward.ChannelBuffer(4, 8)
    buffer.payload()[:3] = b"abc"
    held = buffer.message(3)
    buffer.recycle()
    buffer.payload()[:3] = b"xyz"
    assert bytes(held) == b"\x04abc"
    assert bytes(buffer.message(3)) == b"\x04xyz"
    del held
    reused = buffer.buffer
    buffer.recycle()  # nothing holds it now: the same buffer again
    buffer.payload()[:2] = b"hi"
    assert buffer.buffer is reused and bytes(buffer.message(2)) == b"\x04hi"


def test_the_pods_bytes_arrive_intact_across_many_reads_into_the_reused_buffer():
    # More than a few buffers' worth, none alike: a buffer overwritten before its message
    # went out would show as wrong bytes.
    data = os.urandom(3 * portforward.CHUNK + 12345)

    async def main() -> None:
        async with forwarded() as (ws, conn):
            await asyncio.get_running_loop().sock_sendall(conn, data)
            conn.close()
            received = bytearray()
            prefixes = 0
            async for message in ws:
                assert message.type == aiohttp.WSMsgType.BINARY, message
                if message.data[0] == 0 and prefixes >= 2:
                    received += message.data[1:]
                else:
                    prefixes += 1  # each channel's port prefix comes first
                if len(received) >= len(data):
                    break
            assert bytes(received) == data
    asyncio.run(asyncio.wait_for(main(), 60))
