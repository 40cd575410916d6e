"""The server end of a SPDY/3.1 connection, shared by port-forward and exec/attach.

kubectl before 1.30 streams ``pods/exec``, ``pods/attach`` and (every kubectl)
``pods/portforward`` over SPDY/3.1 (``k8s.io/apimachinery/pkg/util/httpstream/
spdy`` on moby/spdystream): an HTTP upgrade, a 101, then SPDY frames on the raw
connection (or, for port-forward from kubectl 1.31, inside binary WebSocket
messages). What every such session needs lives here:

- ``spdy_upgrade``: the 101 with the negotiated ``X-Stream-Protocol-Version``, then
  the raw connection taken from aiohttp (``protocol.set_parser``) through
  ``RawParser``, whose queue is bounded so a slow session slows the client by TCP;
- ``SpdyConnection``: the read loop over ``netlab.api.spdy``'s ``Framer``. It answers
  PING, stops at the peer's GOAWAY, and ends the session with GOAWAY on a malformed
  frame (the connection's shared zlib context cannot recover); frames go out whole
  and in encoding order. Subclasses (``portforward.SpdySession``,
  ``spdyexec.ExecSession``) act on the streams' frames in ``handle``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Callable, Optional, Union

from aiohttp import web

from netlab.api import spdy

log = logging.getLogger(__name__)

# What a raw SPDY upgrade may hold of the client's bytes before it stops reading the socket.
RAW_QUEUE_LIMIT = 4 << 20
# The Upgrade header of a SPDY connection, asked and answered.
UPGRADE = "SPDY/3.1"

Read = Callable[[], Awaitable[bytes]]
# What goes out: a relay passes views of what it received rather than copies.
Buffer = Union[bytes, bytearray, memoryview]
Write = Callable[[Buffer], Awaitable[None]]


class RawParser:
    """Stands in for aiohttp's payload parser after the 101: the raw bytes, queued.

    The socket is read as fast as it delivers, so what the session has not taken yet is
    counted: above ``limit`` queued bytes the transport stops reading (TCP's window then
    holds the client back), and it reads again once the session drained half of it.
    """

    def __init__(self, transport: Optional[asyncio.Transport],
                 limit: int = RAW_QUEUE_LIMIT) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport, self.limit = transport, limit
        self.queued = 0
        self.paused = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        chunk = bytes(data)
        self.queue.put_nowait(chunk)
        self.queued += len(chunk)
        if not self.paused and self.queued > self.limit and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")

    async def read(self) -> bytes:
        """The next piece the client sent (b"" at its end)."""
        chunk = await self.queue.get()
        self.queued -= len(chunk)
        if self.paused and self.queued <= self.limit // 2:
            self.paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return chunk


async def spdy_upgrade(request: web.Request, protocol: str,
                       serve: Callable[[Read, Write], Awaitable[None]]) -> web.StreamResponse:
    """Answer 101 (``protocol``: the negotiated ``X-Stream-Protocol-Version``, or ""),
    then run ``serve(read, write)`` on the raw connection and close it afterwards."""
    headers = {"Connection": "Upgrade", "Upgrade": UPGRADE}
    if protocol:
        headers["X-Stream-Protocol-Version"] = protocol
    response = web.StreamResponse(status=101, reason="Switching Protocols", headers=headers)
    await response.prepare(request)
    transport = request.transport
    parser = RawParser(transport)
    request.protocol.set_parser(parser)  # type: ignore[arg-type]
    request.protocol.keep_alive(False)

    async def write(data: Buffer) -> None:
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        await response.write(data)

    try:
        await serve(parser.read, write)
    finally:
        if transport is not None:
            transport.close()
    return response


def _retrieve(task: asyncio.Future[None]) -> None:
    """Mark a finished task's exception as seen (asyncio logs unseen ones)."""
    if not task.cancelled():
        task.exception()


class SpdyConnection:
    """One SPDY/3.1 connection, server side: subclasses handle the streams' frames."""

    name = "SPDY"  # for the log

    def __init__(self, read: Read, write: Write) -> None:
        self.read, self._write = read, write
        self.framer = spdy.Framer()
        self.lock = asyncio.Lock()  # frames go out whole and in encoding order
        self.last_stream = 0
        self.gone_away = False

    async def send(self, *frames: spdy.Frame) -> None:
        async with self.lock:
            await self._write(b"".join(self.framer.encode(f) for f in frames))

    async def send_data(self, stream_id: int, data: Buffer, flags: int = 0) -> None:
        """One DATA frame: its header, then ``data`` as it is, without copying it behind
        the header (for a relay's bulk bytes, the copy cost as much as the TLS).

        The two writes are one task, shielded: a relay cancelled between them (its
        other direction ended) must not leave a header without its payload, which
        would garble every later frame of the connection."""
        task = asyncio.ensure_future(self._send_data(stream_id, data, flags))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # The frame still goes out whole; a failure then is the connection's end,
            # which the session's reader sees: nothing to report from here.
            task.add_done_callback(_retrieve)
            raise

    async def _send_data(self, stream_id: int, data: Buffer, flags: int) -> None:
        async with self.lock:
            await self._write(spdy.data_header(stream_id, len(data), flags))
            if len(data):
                await self._write(data)

    async def run(self) -> None:
        """Read frames until the client closes, says GOAWAY, sends garbage or ``handle``
        says stop; then ``cleanup``."""
        try:
            while data := await self.read():
                try:
                    frames = self.framer.feed(data)
                except spdy.FrameError as err:
                    log.info("%s: closing a SPDY connection: %s", self.name, err)
                    await self.go_away(spdy.GOAWAY_PROTOCOL_ERROR)
                    return
                for frame in frames:
                    if isinstance(frame, spdy.SynStream):
                        self.last_stream = max(self.last_stream, frame.stream_id)
                    if isinstance(frame, spdy.Ping):
                        await self.send(frame)
                    elif isinstance(frame, spdy.GoAway) or not await self.handle(frame):
                        return
        except (ConnectionError, OSError):
            return
        finally:
            await self.cleanup()

    async def go_away(self, status: int) -> None:
        """Tell the client this connection ends, once (best effort: it may be gone)."""
        if self.gone_away:
            return
        self.gone_away = True
        with contextlib.suppress(Exception):
            await self.send(spdy.GoAway(self.last_stream, status))

    async def handle(self, frame: spdy.Frame) -> bool:
        """Act on one frame (not PING or GOAWAY); False ends the session."""
        raise NotImplementedError

    async def cleanup(self) -> None:
        """The session ended: stop what it started."""
