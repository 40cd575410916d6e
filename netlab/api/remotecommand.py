"""The remote-command streaming protocol of ``pods/exec`` and ``pods/attach``, pure.

Kubernetes streams an exec over a WebSocket whose subprotocol is
``v5.channel.k8s.io`` or ``v4.channel.k8s.io`` (kubectl from 1.30, the
official Python client). Every message starts with one byte naming its
channel: 0 stdin, 1 stdout, 2 stderr, 3 error (the command's end, as a Status),
4 resize (``{"Width": w, "Height": h}``). v5 adds a message ``[255, channel]``
that closes one channel: the client's stdin EOF. The Python client sends its
stdin as text frames when it is given a ``str``: the first character is then
the channel, so a text frame is read as its UTF-8 bytes.

kubectl before 1.30 speaks SPDY instead (``X-Stream-Protocol-Version`` v4, v3,
v2 or channel.k8s.io): one SPDY stream per channel, named by its ``streamType``
header (error, stdin, stdout, stderr, resize). The API server translates it to the
kubelet's WebSocket; the negotiation, which streams a request opens and what the
error stream carries per version are here.

This module holds the pieces both ends share (the kubelet serves the protocol,
the API server relays it): subprotocol negotiation, framing, the exec options
of a query string and the exit Status, as upstream's kubelet writes them
(``pkg/kubelet/cri/streaming/remotecommand``). No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
# Best first: what the server picks when a client offers both.
PROTOCOLS = (V5, V4)
# What kubectl before 1.30 asks for (and 1.30+ falls back to): an upgrade to SPDY,
# with these versions in X-Stream-Protocol-Version. The API server serves the SPDY
# session and speaks WebSocket to the kubelet (master/apiserver/spdyexec.py).
SPDY = "SPDY/3.1"
V3, V2, V1 = "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"
# Over SPDY, v5 means v4 (its close signal is WebSocket's), as in the kubelet.
SPDY_PROTOCOLS = (V5, V4, V3, V2, V1)
# SPDY carries each stream in its own SPDY stream, named by its streamType header.
STREAM_TYPE = "streamtype"
STREAM_ERROR, STREAM_STDIN, STREAM_STDOUT = "error", "stdin", "stdout"
STREAM_STDERR, STREAM_RESIZE = "stderr", "resize"

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5: [255, channel] closes that channel

NON_ZERO_EXIT_CODE = "NonZeroExitCode"  # remotecommandconsts.NonZeroExitCodeReason
EXIT_CODE_CAUSE = "ExitCode"  # remotecommandconsts.ExitCodeCauseType


class FrameError(ValueError):
    """A message that is not a valid channel message: the stream is closed."""


def offered_protocols(header: str | None) -> list[str]:
    """The subprotocols of a ``Sec-WebSocket-Protocol`` header, in the client's order."""
    return [p.strip() for p in (header or "").split(",") if p.strip()]


def _first_supported(offered: Iterable[str], supported: Iterable[str]) -> str | None:
    return next((p for p in offered if p in supported), None)


def negotiate(offered: Iterable[str]) -> str | None:
    """The protocol to speak (the first offered that the server supports, as the
    kubelet's wsstream handshake picks it), or None: refuse the handshake."""
    return _first_supported(offered, PROTOCOLS)


def refusal_message(offered: list[str]) -> str:
    """wsstream's handshake error for protocols it does not support."""
    return (f"requested protocol(s) are not supported: [{' '.join(offered)}]; "
            f"supports [{' '.join(PROTOCOLS)}]")


def negotiate_spdy(offered: Iterable[str]) -> str | None:
    """httpstream.Handshake's choice: the first version the client offers (comma
    separated, possibly in several headers) that the server supports, or None."""
    return _first_supported((p.strip() for v in offered for p in v.split(",")),
                            SPDY_PROTOCOLS)


def spdy_refusal_message(offered: list[str]) -> str:
    """httpstream.Handshake's 403 when no version matches."""
    return (f"unable to upgrade: unable to negotiate protocol: client supports "
            f"[{' '.join(offered)}], server accepts [{' '.join(SPDY_PROTOCOLS)}]")


def spdy_streams(protocol: str, opts: StreamOptions) -> set[str]:
    """The streams a SPDY client opens for ``opts`` (upstream's expectedStreams): the
    error stream, one per stdio stream asked for, and resize under a tty from v3 on."""
    streams = {STREAM_ERROR}
    streams |= {name for name, wanted in ((STREAM_STDIN, opts.stdin),
                                          (STREAM_STDOUT, opts.stdout),
                                          (STREAM_STDERR, opts.stderr)) if wanted}
    if opts.tty and protocol in (V5, V4, V3):
        streams.add(STREAM_RESIZE)
    return streams


def spdy_error_text(protocol: str, status_json: bytes) -> bytes:
    """What the error stream carries for the kubelet's Status: v4 (and v5) the Status
    JSON itself; v1 to v3 the message of a failure and nothing for success, as the
    kubelet's v1WriteStatusFunc writes it."""
    if protocol in (V5, V4):
        return status_json
    try:
        status = json.loads(status_json)
    except ValueError:
        return status_json
    if not isinstance(status, dict) or status.get("status") == "Success":
        return b""
    return str(status.get("message", "")).encode()


def frame(channel: int, data: bytes) -> bytes:
    """One binary message on ``channel``."""
    return bytes((channel,)) + data


def close_frame(channel: int) -> bytes:
    """v5's close signal for ``channel``."""
    return bytes((CLOSE, channel))


def parse_frame(message: bytes | str) -> tuple[int, bytes]:
    """(channel, payload) of a message, binary or text; FrameError if it has no channel."""
    data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    if not data:
        raise FrameError("empty message: no channel byte")
    return data[0], data[1:]


def parse_resize(payload: bytes) -> tuple[int, int]:
    """(width, height) of a resize message; FrameError on anything else."""
    try:
        size = json.loads(payload)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, TypeError, KeyError) as err:
        raise FrameError(f"invalid resize message: {err}") from None
    if not (0 <= width <= 0xFFFF and 0 <= height <= 0xFFFF):
        raise FrameError(f"invalid terminal size {width}x{height}")
    return width, height


def success_status() -> dict[str, Any]:
    """What the error channel carries when the command exited 0."""
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, argv: list[str]) -> dict[str, Any]:
    """The error channel's message for an exit code (0 is Success), as the kubelet
    writes it: kubectl and the Python client read the code from the cause."""
    if code == 0:
        return success_status()
    return {"metadata": {}, "status": "Failure",
            "message": ("command terminated with non-zero exit code: error executing command "
                        f"[{' '.join(argv)}], exit code {code}"),
            "reason": NON_ZERO_EXIT_CODE,
            "details": {"causes": [{"reason": EXIT_CODE_CAUSE, "message": str(code)}]}}


def error_status(message: str) -> dict[str, Any]:
    """An InternalError Status, for an exec that could not run at all."""
    return {"metadata": {}, "status": "Failure", "message": message,
            "reason": "InternalError", "details": {"causes": [{"message": message}]},
            "code": 500}


def encode_status(status: dict[str, Any]) -> bytes:
    return json.dumps(status, separators=(",", ":")).encode()


def _flag(query: Mapping[str, str], key: str) -> bool:
    # strconv.ParseBool's true spellings: kubectl sends "true", the Python client "True".
    return (query.get(key) or "").lower() in ("1", "t", "true")


@dataclass(frozen=True)
class StreamOptions:
    """What an exec or attach asks for: ``command`` (exec only) and the streams."""

    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    container: str


def stream_options(query: Any, *, exec_: bool) -> StreamOptions:
    """The options of an exec/attach query (``command`` repeated); ValueError with
    upstream's message when they are unusable."""
    getall = getattr(query, "getall", None)
    command = tuple(getall("command", []) if getall else query.get("command") or [])
    if exec_ and not command:
        raise ValueError("you must specify at least 1 command")
    tty = _flag(query, "tty")
    stdout = _flag(query, "stdout")
    # As the kubelet: a tty merges stderr into stdout.
    stderr = _flag(query, "stderr") and not tty
    stdin = _flag(query, "stdin")
    if not (stdin or stdout or stderr):
        raise ValueError("you must specify at least 1 of stdin, stdout, stderr")
    return StreamOptions(command=command, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty,
                         container=query.get("container") or "")
