"""SPDY ``pods/exec`` and ``pods/attach``: kubectl 1.27 to 1.29 (and 1.30+'s fallback).

Those kubectls upgrade the request to SPDY/3.1 and offer versions in
``X-Stream-Protocol-Version`` (v4.channel.k8s.io, v3, v2, channel.k8s.io); the
first one the server supports is answered in the 101 (httpstream.Handshake).
The kubelets speak WebSocket only, so the API server serves the SPDY session
itself and translates it to the kubelet's ``v5.channel.k8s.io`` WebSocket, which
``streaming.remote_command`` dialled before the upgrade (so a missing container
is still a plain Status error, as before).

The client opens one SPDY stream per channel, named by its ``streamType``
header: error, and stdin, stdout, stderr as the query asks, plus resize under a
tty (v3 on). As upstream's kubelet (``waitForStreams``), the session waits for
exactly those streams, for at most ``STREAM_CREATION_TIMEOUT``, and then:

- stdin DATA -> channel 0; stdin's FIN -> v5's close of channel 0, the command's
  stdin EOF (``kubectl exec -i`` with piped input);
- resize DATA, a stream of JSON ``{"Width","Height"}`` objects -> channel 4, one
  message each (upstream stops reading resizes at the first undecodable one);
- channel 1 and 2 -> DATA on stdout and stderr; channel 3, the kubelet's Status ->
  DATA on the error stream: the Status JSON for v4, the failure's message for v1 to v3
  (``remotecommand.spdy_error_text``).

When the kubelet closes the WebSocket (the command ended, its Status sent), every
stream gets FIN: kubectl reads stdout and stderr to their end, then the error
stream, exits with the command's code and closes the connection; it gets
``CLOSE_GRACE`` to do so before GOAWAY and the close. When kubectl goes away
first, the kubelet WebSocket is closed, so the kubelet ends the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Optional

import aiohttp

from netlab.api import remotecommand as rc
from netlab.api import spdy
from netlab.master.apiserver.spdysession import Read, SpdyConnection, Write

log = logging.getLogger(__name__)

# upstream's streamCreationTimeout (the kubelet's default is 30s)
STREAM_CREATION_TIMEOUT = 30.0
# After the last FIN: how long kubectl has to read its streams and close the connection.
CLOSE_GRACE = 10.0
# Kubelet output goes to kubectl in DATA frames of at most this size.
CHUNK = 1 << 20
# Client messages (stdin, resizes) waiting for the kubelet. When full, reading the SPDY
# connection waits: TCP's backpressure reaches kubectl (spdystream has no flow control).
INBOUND_FRAMES = 16
# A resize stream that buffers this much without a whole JSON object is not a terminal.
MAX_RESIZE_BUFFER = 4096

_EOF = (rc.CLOSE, b"")  # the inbound queue's stdin EOF


class ExecSession(SpdyConnection):
    """One SPDY exec or attach, bridged to ``upstream`` (the kubelet's WebSocket)."""

    name = "exec"

    def __init__(self, read: Read, write: Write, protocol: str, expected: set[str],
                 upstream: Any, *, creation_timeout: float = STREAM_CREATION_TIMEOUT,
                 close_grace: float = CLOSE_GRACE) -> None:
        super().__init__(read, write)
        self.protocol, self.expected, self.upstream = protocol, expected, upstream
        self.creation_timeout, self.close_grace = creation_timeout, close_grace
        self.streams: dict[str, int] = {}  # streamType -> stream id
        self.types: dict[int, str] = {}
        self.ready = asyncio.Event()
        self.inbound: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue(INBOUND_FRAMES)
        self.resizes = bytearray()
        self.resizes_broken = False
        self.stdin_closed = False
        self.ended = False  # the command ended: nobody forwards client messages any more

    async def serve(self) -> None:
        """Run the session until the command ended and kubectl closed (or had its
        grace), or kubectl went away, or the streams never came."""
        reader = asyncio.ensure_future(self.run())
        bridge = asyncio.ensure_future(self._bridge())
        try:
            await asyncio.wait({reader, bridge}, return_when=asyncio.FIRST_COMPLETED)
            if bridge.done() and not bridge.cancelled() and bridge.exception() is None \
                    and bridge.result() and not reader.done():
                await asyncio.wait({reader}, timeout=self.close_grace)
        finally:
            for task in (bridge, reader):
                task.cancel()
            for task in (bridge, reader):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.go_away(spdy.GOAWAY_OK)
            with contextlib.suppress(Exception):
                await self.upstream.close()

    # -- kubectl's frames -----------------------------------------------------------------

    async def handle(self, frame: spdy.Frame) -> bool:
        if isinstance(frame, spdy.SynStream):
            await self._syn_stream(frame)
        elif isinstance(frame, spdy.DataFrame):
            kind = self.types.get(frame.stream_id)
            if self.ended:
                pass  # late stdin or resizes: the command is gone
            elif kind == rc.STREAM_STDIN:
                if frame.data and not self.stdin_closed:
                    await self.inbound.put((rc.STDIN, frame.data))
                if frame.flags & spdy.FLAG_FIN:
                    await self._stdin_eof()
            elif kind == rc.STREAM_RESIZE:
                await self._resize_data(frame.data)
            # Nothing else is read from the client: DATA on the output streams is dropped.
        elif isinstance(frame, spdy.RstStream) and not self.ended and \
                self.types.get(frame.stream_id) == rc.STREAM_STDIN:
            await self._stdin_eof()
        # SETTINGS, WINDOW_UPDATE (spdystream has no flow control), HEADERS: nothing to do
        return True

    async def _syn_stream(self, frame: spdy.SynStream) -> None:
        sid = frame.stream_id
        kind = spdy.header(frame.headers, rc.STREAM_TYPE)
        if kind not in self.expected or kind in self.streams or sid in self.types:
            # A stream the request did not ask for, or a second of a kind.
            log.info("exec: refusing a SPDY stream of type %r", kind)
            await self.send(spdy.RstStream(sid, spdy.PROTOCOL_ERROR))
            return
        self.streams[kind], self.types[sid] = sid, kind
        await self.send(spdy.SynReply(sid))
        if set(self.streams) == self.expected:
            self.ready.set()

    async def _stdin_eof(self) -> None:
        if not self.stdin_closed:
            self.stdin_closed = True
            await self.inbound.put(_EOF)

    async def _resize_data(self, data: bytes) -> None:
        """Decode what has arrived of the resize stream's JSON objects, as Go's
        json.Decoder over the stream does (kubectl writes one object per DATA frame); the
        first object that is not a size ends resizing, as upstream's handleResizeEvents."""
        if self.resizes_broken:
            return
        self.resizes += data
        # Decoded once per frame and walked through: a frame of many sizes stays linear.
        text = bytes(self.resizes).decode("utf-8", "replace")
        decoder, at = json.JSONDecoder(), 0
        while True:
            while at < len(text) and text[at].isspace():
                at += 1
            if at == len(text):
                break
            try:
                size, at = decoder.raw_decode(text, at)
            except ValueError:
                # Part of an object, more to come; past the bound it is not a terminal.
                if len(text) - at > MAX_RESIZE_BUFFER:
                    self._stop_resizing()
                    return
                break
            try:
                width, height = rc.parse_resize(json.dumps(size).encode())
            except rc.FrameError:
                self._stop_resizing()
                return
            await self.inbound.put((rc.RESIZE, json.dumps(
                {"Width": width, "Height": height}).encode()))
            if self.ended:
                return
        self.resizes = bytearray(text[at:].encode())

    def _stop_resizing(self) -> None:
        log.info("exec: ignoring the rest of a resize stream")
        self.resizes_broken = True
        self.resizes.clear()

    # -- the kubelet's side ---------------------------------------------------------------

    async def _bridge(self) -> bool:
        """Translate both ways once the streams are there; True when the command ended."""
        try:
            await asyncio.wait_for(self.ready.wait(), self.creation_timeout)
        except asyncio.TimeoutError:
            log.info("exec: timed out waiting for client to create streams")
            return False
        up = asyncio.ensure_future(self._up())
        try:
            await self._down()
        finally:
            self.ended = True
            up.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await up
            while not self.inbound.empty():  # unblock a reader waiting to queue more
                self.inbound.get_nowait()
        # Output first, then the error stream: kubectl reads it after stdout and stderr.
        order = (rc.STREAM_STDOUT, rc.STREAM_STDERR, rc.STREAM_ERROR, rc.STREAM_STDIN,
                 rc.STREAM_RESIZE)
        await self.send(*(spdy.DataFrame(self.streams[kind], b"", spdy.FLAG_FIN)
                          for kind in order if kind in self.streams))
        return True

    async def _down(self) -> None:
        """The kubelet's messages to kubectl's streams, until the kubelet closes."""
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            async for message in self.upstream:
                if message.type != aiohttp.WSMsgType.BINARY:
                    return
                if not message.data:
                    continue
                # A view, not a slice: the output goes out as the kubelet sent it, its
                # header and payload written separately (send_data), never copied here.
                channel, payload = message.data[0], memoryview(message.data)[1:]
                sid: Optional[int] = None
                if channel == rc.STDOUT:
                    sid = self.streams.get(rc.STREAM_STDOUT)
                elif channel == rc.STDERR:
                    sid = self.streams.get(rc.STREAM_STDERR)
                elif channel == rc.ERROR:
                    sid = self.streams.get(rc.STREAM_ERROR)
                    payload = memoryview(rc.spdy_error_text(self.protocol, bytes(payload)))
                if sid is None:
                    continue
                for at in range(0, len(payload), CHUNK):
                    await self.send_data(sid, payload[at:at + CHUNK])

    async def _up(self) -> None:
        """kubectl's stdin and resizes to the kubelet."""
        v5 = getattr(self.upstream, "protocol", None) == rc.V5
        while True:
            channel, payload = await self.inbound.get()
            if channel == rc.CLOSE:
                # v5's close signal; a v4 kubelet has none, its command's stdin stays open.
                if v5:
                    await self.upstream.send_bytes(rc.close_frame(rc.STDIN))
                continue
            await self.upstream.send_bytes(rc.frame(channel, payload))

