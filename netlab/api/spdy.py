"""SPDY/3.1 framing, as much as Kubernetes' streaming needs: pure, no I/O.

kubectl's port-forward speaks SPDY/3.1 (``k8s.io/apimachinery/pkg/util/httpstream/
spdy``, over moby/spdystream): plainly after an HTTP upgrade, or (kubectl 1.31+)
as the bytes of binary WebSocket messages. No maintained Python SPDY library
exists, so this module is the framing: a ``Framer`` per connection turns bytes
into frames (``feed``) and frames into bytes (``encode``).

Wire format (draft-mbelshe-httpbis-spdy-00, version 3):

- control frame: ``1|version(15)|type(16)|flags(8)|length(24)|payload``;
- data frame: ``0|stream-id(31)|flags(8)|length(24)|data``; flag 0x01 is FIN.

Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams compressed with
SPDY/3's dictionary, one zlib context per direction for the whole connection,
each block ended by a sync flush; so every block must be decompressed in order,
even one whose stream is then refused. spdystream does no flow control, so
WINDOW_UPDATE is parsed and ignored by callers.

A malformed frame raises ``FrameError``: the connection is unusable (the shared
zlib context cannot be resynchronised), the caller sends GOAWAY and closes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Union

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM = 1, 2, 3
CANCEL, INTERNAL_ERROR = 5, 6
# GOAWAY status codes
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2

MAX_LENGTH = (1 << 24) - 1
# A DATA frame's header: the stream id (high bit 0), then flags and a 24-bit length.
_DATA_HEADER = struct.Struct(">II")
# A header block that inflates past this is refused: the peer is not a client.
MAX_HEADER_BYTES = 1 << 20

Headers = dict[str, list[str]]


class FrameError(ValueError):
    """The peer sent bytes that are not SPDY/3: close the connection."""


@dataclass
class DataFrame:
    stream_id: int
    data: bytes = b""
    flags: int = 0


@dataclass
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0
    associated: int = 0
    priority: int = 0


@dataclass
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass
class RstStream:
    stream_id: int
    status: int = CANCEL


@dataclass
class Settings:
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (flags, id, value)
    flags: int = 0


@dataclass
class Ping:
    id: int


@dataclass
class GoAway:
    last_stream_id: int = 0
    status: int = GOAWAY_OK


@dataclass
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass
class UnknownControl:
    """A control frame of a type SPDY/3 does not define: skipped, as the spec says."""
    type: int
    flags: int
    payload: bytes


Frame = Union[DataFrame, SynStream, SynReply, HeadersFrame, RstStream, Settings, Ping, GoAway,
              WindowUpdate, UnknownControl]


def data_header(stream_id: int, length: int, flags: int = 0) -> bytes:
    """The 8 bytes that precede a DATA frame's ``length`` bytes of payload: a relay sends
    them and the payload as two writes rather than copying the payload behind them."""
    if length > MAX_LENGTH:
        raise ValueError("data frame too long")
    return _DATA_HEADER.pack(stream_id & 0x7FFFFFFF, (flags << 24) | length)


def encode_header_block(headers: Headers) -> bytes:
    """The uncompressed block: a count, then length-prefixed lowercase names and
    values (several values of one name joined by NUL)."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        raw_name = name.lower().encode()
        raw_value = "\x00".join(values).encode()
        out += [struct.pack(">I", len(raw_name)), raw_name,
                struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(out)


def decode_header_block(block: bytes) -> Headers:
    def take(at: int) -> tuple[bytes, int]:
        if at + 4 > len(block):
            raise FrameError("truncated header block")
        (n,) = struct.unpack_from(">I", block, at)
        at += 4
        if at + n > len(block):
            raise FrameError("truncated header block")
        return block[at:at + n], at + n

    if len(block) < 4:
        raise FrameError("truncated header block")
    (count,) = struct.unpack_from(">I", block, 0)
    at, headers = 4, {}
    for _ in range(count):
        raw_name, at = take(at)
        raw_value, at = take(at)
        try:
            name, value = raw_name.decode(), raw_value.decode()
        except UnicodeDecodeError:
            raise FrameError("header is not UTF-8") from None
        if not name or name != name.lower():
            raise FrameError("header was not lowercased")
        if name in headers:
            raise FrameError("multiple headers with same name")
        headers[name] = value.split("\x00")
    return headers


class Framer:
    """One end of one SPDY/3 connection: its parser state and both zlib contexts."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                         DICTIONARY)
        self.broken = False

    # -- reading --------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Frame]:
        """Every whole frame in what has arrived so far; the rest waits for more."""
        if self.broken:
            raise FrameError("the connection already failed")
        self._buffer += data
        frames: list[Frame] = []
        try:
            while len(self._buffer) >= 8:
                (length,) = struct.unpack_from(">I", self._buffer, 4)
                length &= MAX_LENGTH
                if len(self._buffer) < 8 + length:
                    break
                head = bytes(self._buffer[:8])
                payload = bytes(self._buffer[8:8 + length])
                del self._buffer[:8 + length]
                frames.append(self._parse(head, payload))
        except FrameError:
            self.broken = True
            raise
        return frames

    def _parse(self, head: bytes, payload: bytes) -> Frame:
        first, flags = struct.unpack_from(">IB", head, 0)
        if not first & 0x80000000:
            return DataFrame(first & 0x7FFFFFFF, payload, flags)
        version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise FrameError(f"unsupported SPDY version {version}")

        def need(n: int, exact: bool = False) -> None:
            if len(payload) < n or (exact and len(payload) != n):
                raise FrameError(f"invalid control frame (type {kind}, {len(payload)} bytes)")

        if kind == SYN_STREAM:
            need(10)
            sid, assoc, prio = struct.unpack_from(">IIB", payload, 0)
            return SynStream(_stream_id(sid), self._headers(payload[10:]), flags,
                             assoc & 0x7FFFFFFF, prio >> 5)
        if kind in (SYN_REPLY, HEADERS):
            need(4)
            sid = _stream_id(struct.unpack_from(">I", payload, 0)[0])
            block = self._headers(payload[4:])
            return (SynReply if kind == SYN_REPLY else HeadersFrame)(sid, block, flags)
        if kind == RST_STREAM:
            need(8, exact=True)
            sid, status = struct.unpack_from(">II", payload, 0)
            return RstStream(_stream_id(sid), status)
        if kind == SETTINGS:
            need(4)
            (count,) = struct.unpack_from(">I", payload, 0)
            need(4 + 8 * count, exact=True)
            entries = []
            for i in range(count):
                flag_id, value = struct.unpack_from(">II", payload, 4 + 8 * i)
                entries.append((flag_id >> 24, flag_id & 0xFFFFFF, value))
            return Settings(entries, flags)
        if kind == PING:
            need(4, exact=True)
            return Ping(struct.unpack_from(">I", payload, 0)[0])
        if kind == GOAWAY:
            need(8, exact=True)
            last, status = struct.unpack_from(">II", payload, 0)
            return GoAway(last & 0x7FFFFFFF, status)
        if kind == WINDOW_UPDATE:
            need(8, exact=True)
            sid, delta = struct.unpack_from(">II", payload, 0)
            return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        return UnknownControl(kind, flags, payload)

    def _headers(self, compressed: bytes) -> Headers:
        try:
            block = self._inflate.decompress(compressed, MAX_HEADER_BYTES)
        except zlib.error as err:
            raise FrameError(f"header block does not inflate: {err}") from None
        if self._inflate.unconsumed_tail:
            raise FrameError("header block too large")
        return decode_header_block(block)

    # -- writing --------------------------------------------------------------------------

    def encode(self, frame: Frame) -> bytes:
        """The bytes of ``frame``; header blocks go through this side's zlib context,
        so frames must be sent in the order they are encoded."""
        if isinstance(frame, DataFrame):
            return data_header(frame.stream_id, len(frame.data), frame.flags) + frame.data
        if isinstance(frame, SynStream):
            payload = struct.pack(">IIBB", frame.stream_id, frame.associated,
                                  (frame.priority & 7) << 5, 0) + self._compress(frame.headers)
            return _control(SYN_STREAM, frame.flags, payload)
        if isinstance(frame, (SynReply, HeadersFrame)):
            kind = SYN_REPLY if isinstance(frame, SynReply) else HEADERS
            return _control(kind, frame.flags, struct.pack(">I", frame.stream_id)
                            + self._compress(frame.headers))
        if isinstance(frame, RstStream):
            return _control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = b"".join(struct.pack(">II", (f << 24) | i, v) for f, i, v in frame.entries)
            return _control(SETTINGS, frame.flags, struct.pack(">I", len(frame.entries)) + body)
        if isinstance(frame, Ping):
            return _control(PING, 0, struct.pack(">I", frame.id))
        if isinstance(frame, GoAway):
            return _control(GOAWAY, 0, struct.pack(">II", frame.last_stream_id, frame.status))
        if isinstance(frame, WindowUpdate):
            return _control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))
        return _control(frame.type, frame.flags, frame.payload)

    def _compress(self, headers: Headers) -> bytes:
        block = encode_header_block(headers)
        return self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise ValueError("control frame too long")
    return struct.pack(">HHB", 0x8000 | VERSION, kind, flags) + \
        len(payload).to_bytes(3, "big") + payload


def _stream_id(raw: int) -> int:
    sid = raw & 0x7FFFFFFF
    if sid == 0:
        raise FrameError("stream id zero is disallowed")
    return sid


def header(headers: Headers, name: str) -> str:
    """The first value of header ``name`` (lowercase), or ""."""
    values = headers.get(name.lower()) or [""]
    return values[0]


# SPDY/3's zlib dictionary for header compression (the SPDY/3 draft, section 2.6.10.1).
DICTIONARY = (
    b'\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00'
    b'\x00\x00\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-chars'
    b'et\x00\x00\x00\x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\raccept-rang'
    b'es\x00\x00\x00\x03age\x00\x00\x00\x05allow\x00\x00\x00\rauthorization\x00\x00\x00\rcache-'
    b'control\x00\x00\x00\nconnection\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encodi'
    b'ng\x00\x00\x00\x10content-language\x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-l'
    b'ocation\x00\x00\x00\x0bcontent-md5\x00\x00\x00\rcontent-range\x00\x00\x00\x0ccontent-type'
    b'\x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires\x00'
    b'\x00\x00\x04from\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-s'
    b'ince\x00\x00\x00\rif-none-match\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-sinc'
    b'e\x00\x00\x00\rlast-modified\x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00'
    b'\x00\x06pragma\x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization\x00'
    b'\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\x00\x00\x00\x06server'
    b'\x00\x00\x00\x02te\x00\x00\x00\x07trailer\x00\x00\x00\x11transfer-encoding\x00\x00\x00'
    b'\x07upgrade\x00\x00\x00\nuser-agent\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00'
    b'\x07warning\x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03get\x00'
    b'\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1'
    b'\x00\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\nset-cookie\x00\x00\x00\nkeep-alive'
    b'\x00\x00\x00\x06origin1001012012022052063003023033043053063074024054064074084094104114124'
    b'13414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanent'
    b'ly400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 N'
    b'ot Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:'
    b'00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/g'
    b'if,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age='
    b'gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.'
)
