"""SPDY/3.1 framing (netlab.api.spdy) and the port-forward helpers (netlab.api.portforward).

The known bytes are kubectl 1.33's own: the first SYN_STREAM of a port-forward
(its header block compressed by Go's zlib with SPDY/3's dictionary), the empty
DATA frame with FIN that closes the error stream, and the next SYN_STREAM whose
block only inflates in the same zlib context; and the SYN_REPLY kubectl accepted
from netlab.
"""

from __future__ import annotations

import contextlib
import random
import struct
import zlib

import pytest

from netlab.api import portforward as pf
from netlab.api import spdy

# kubectl 1.33 -> server, as written to its tunnelling WebSocket (kubectl -v=8).
KUBECTL_SYN_ERROR = bytes.fromhex(
    "80030001 0000003e 00000001 00000000 0000"
    "78f9e3c6a7c20225 3a703a2b294a4dcc 851625aca9a08086 14cb45e01c606160"
    "61c0c0c0c0590489 c64c50f266340000 0000ffff".replace(" ", ""))
KUBECTL_FIN_ERROR = bytes.fromhex("0000000101000000")
KUBECTL_SYN_DATA = bytes.fromhex(
    "80030001 00000018 00000003 00000000 0000 c2aa19540e2512d60b000000ffff".replace(" ", ""))
# netlab -> kubectl: the SYN_REPLY (no headers) kubectl took for stream 1.
SYN_REPLY_1 = bytes.fromhex("8003000200000014000000017 8f9e3c6a7c202a62306000000 00ffff"
                            .replace(" ", ""))


def test_dictionary_is_spdy3s():
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 3821447106  # the DICTID in every block's header
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options")


def test_kubectls_frames_decode_in_one_zlib_context():
    framer = spdy.Framer()
    frames = framer.feed(KUBECTL_SYN_ERROR + KUBECTL_FIN_ERROR + KUBECTL_SYN_DATA)
    assert frames == [
        spdy.SynStream(1, {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]}),
        spdy.DataFrame(1, b"", spdy.FLAG_FIN),
        spdy.SynStream(3, {"streamtype": ["data"], "port": ["8080"], "requestid": ["0"]}),
    ]
    # The second block refers back to the first: alone it does not inflate.
    with pytest.raises(spdy.FrameError):
        spdy.Framer().feed(KUBECTL_SYN_DATA)


def test_frames_split_anywhere_are_reassembled():
    raw = KUBECTL_SYN_ERROR + KUBECTL_FIN_ERROR + KUBECTL_SYN_DATA
    framer, frames = spdy.Framer(), []
    for byte in raw:
        frames += framer.feed(bytes((byte,)))
    assert [type(f).__name__ for f in frames] == ["SynStream", "DataFrame", "SynStream"]


def test_the_syn_reply_kubectl_accepted():
    assert spdy.Framer().encode(spdy.SynReply(1)) == SYN_REPLY_1


@pytest.mark.parametrize("frame", [
    spdy.DataFrame(7, b"hello", spdy.FLAG_FIN),
    spdy.SynStream(5, {"streamtype": ["data"], "v": ["a", "b"]}, spdy.FLAG_UNIDIRECTIONAL,
                   associated=3, priority=7),
    spdy.SynReply(5, {"x": ["y"]}, spdy.FLAG_FIN),
    spdy.HeadersFrame(5, {"a": ["b"]}),
    spdy.RstStream(9, spdy.REFUSED_STREAM),
    spdy.Settings([(1, 4, 100), (0, 7, 65536)], 0),
    spdy.Ping(11),
    spdy.GoAway(13, spdy.GOAWAY_PROTOCOL_ERROR),
    spdy.WindowUpdate(5, 4096),
])
def test_every_frame_round_trips(frame):
    writer, reader = spdy.Framer(), spdy.Framer()
    assert reader.feed(writer.encode(frame)) == [frame]
    # A second header block in the same contexts decodes too.
    again = reader.feed(writer.encode(frame))
    assert again == [frame]


def test_data_frame_layout():
    assert spdy.Framer().encode(spdy.DataFrame(3, b"ab", spdy.FLAG_FIN)) == \
        bytes.fromhex("00000003" "01" "000002") + b"ab"
    assert spdy.Framer().encode(spdy.Ping(1)) == bytes.fromhex("8003000600000004 00000001"
                                                               .replace(" ", ""))


def test_unknown_control_frames_are_passed_over():
    raw = struct.pack(">HHI", 0x8003, 0x00FF, 3) + b"xyz"
    assert spdy.Framer().feed(raw + spdy.Framer().encode(spdy.Ping(3))) == [
        spdy.UnknownControl(0xFF, 0, b"xyz"), spdy.Ping(3)]


@pytest.mark.parametrize("raw", [
    struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1",  # SPDY/2
    struct.pack(">HHI", 0x8003, spdy.PING, 3) + b"\0\0\1",  # short PING
    struct.pack(">HHI", 0x8003, spdy.RST_STREAM, 8) + b"\0" * 8,  # stream 0
    struct.pack(">HHI", 0x8003, spdy.SETTINGS, 4) + b"\0\0\0\5",  # 5 entries, none there
    struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, 14) + b"\0\0\0\1" + b"\0" * 6 + b"junk",
    struct.pack(">HHI", 0x8003, spdy.SYN_REPLY, 2) + b"\0\1",
])
def test_malformed_frames_raise_frame_error(raw):
    framer = spdy.Framer()
    with pytest.raises(spdy.FrameError):
        framer.feed(raw)
    with pytest.raises(spdy.FrameError):  # and the connection stays failed
        framer.feed(spdy.Framer().encode(spdy.Ping(1)))


def test_header_blocks_are_checked():
    with pytest.raises(spdy.FrameError, match="lowercased"):
        spdy.decode_header_block(struct.pack(">II", 1, 1) + b"A" + struct.pack(">I", 0))
    with pytest.raises(spdy.FrameError, match="same name"):
        spdy.decode_header_block(struct.pack(">I", 2) + 2 * (struct.pack(">I", 1) + b"a"
                                                              + struct.pack(">I", 0)))
    with pytest.raises(spdy.FrameError, match="truncated"):
        spdy.decode_header_block(struct.pack(">II", 1, 99))


def test_random_bytes_never_escape_as_anything_but_frame_error():
    rng = random.Random(20261207)
    valid = KUBECTL_SYN_ERROR + KUBECTL_FIN_ERROR + KUBECTL_SYN_DATA
    for _ in range(2000):
        raw = bytearray(valid)
        for _ in range(rng.randrange(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        raw += rng.randbytes(rng.randrange(20))
        with contextlib.suppress(spdy.FrameError):
            spdy.Framer().feed(bytes(raw))


def test_port_prefix_and_ports_query():
    assert pf.port_prefix(8080) == b"\x90\x1f"  # little-endian, as upstream writes it
    assert pf.parse_ports(["8080,8081", "9"]) == [8080, 8081, 9]
    with pytest.raises(ValueError, match="at least 1 port"):
        pf.parse_ports([])
    with pytest.raises(ValueError, match="must be > 0 and < 65536"):
        pf.parse_ports(["0"])
    with pytest.raises(ValueError, match="invalid syntax"):
        pf.parse_ports(["http"])
