"""The remote-command channel protocol: framing, negotiation, options and exit Statuses."""

from __future__ import annotations

import json

import pytest
from multidict import MultiDict

from netlab.api import remotecommand as rc


def test_frames_binary_and_text():
    assert rc.frame(rc.STDOUT, b"hi") == b"\x01hi"
    assert rc.parse_frame(b"\x00abc") == (0, b"abc")
    # The Python client's text frames: the first character is the channel.
    assert rc.parse_frame("\x00h\u00e9") == (0, "h\u00e9".encode())
    assert rc.parse_frame(b"\x04") == (4, b"")
    assert rc.close_frame(rc.STDIN) == b"\xff\x00"
    with pytest.raises(rc.FrameError):
        rc.parse_frame(b"")
    with pytest.raises(rc.FrameError):
        rc.parse_frame("")


def test_negotiation_picks_the_clients_first_supported():
    assert rc.negotiate(rc.offered_protocols("v5.channel.k8s.io, v4.channel.k8s.io")) == rc.V5
    assert rc.negotiate(rc.offered_protocols("v4.channel.k8s.io,v5.channel.k8s.io")) == rc.V4
    assert rc.negotiate(["base64.channel.k8s.io", "v4.channel.k8s.io"]) == rc.V4
    assert rc.negotiate(["channel.k8s.io"]) is None
    assert rc.negotiate(rc.offered_protocols(None)) is None
    assert rc.refusal_message(["v9.channel.k8s.io"]) == (
        "requested protocol(s) are not supported: [v9.channel.k8s.io]; "
        "supports [v5.channel.k8s.io v4.channel.k8s.io]")


def test_exit_statuses_as_the_kubelet_writes_them():
    assert rc.exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    failure = json.loads(rc.encode_status(rc.exit_status(3, ["sh", "-c", "exit 3"])))
    assert failure["status"] == "Failure" and failure["reason"] == "NonZeroExitCode"
    assert failure["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}
    assert failure["message"].startswith("command terminated with non-zero exit code: ")
    assert "kind" not in failure  # metav1.Status marshalled without its TypeMeta


def test_resize_messages():
    assert rc.parse_resize(b'{"Width":120,"Height":40}') == (120, 40)
    for bad in (b"", b"{}", b"[1,2]", b'{"Width":"x","Height":1}', b'{"Width":-1,"Height":1}',
                b"\xff\xfe", b'{"Width":70000,"Height":1}'):
        with pytest.raises(rc.FrameError):
            rc.parse_resize(bad)


def test_stream_options():
    query = MultiDict([("command", "sh"), ("command", "-c"), ("command", "exit 3"),
                       ("stdin", "true"), ("stdout", "True"), ("stderr", "1"), ("tty", "false"),
                       ("container", "c")])
    opts = rc.stream_options(query, exec_=True)
    assert opts.command == ("sh", "-c", "exit 3") and opts.container == "c"
    assert opts.stdin and opts.stdout and opts.stderr and not opts.tty
    # A tty carries stderr in stdout, as the kubelet has it.
    tty = MultiDict([(k, "true" if k == "tty" else v) for k, v in query.items()])
    assert not rc.stream_options(tty, exec_=True).stderr
    with pytest.raises(ValueError, match="at least 1 command"):
        rc.stream_options(MultiDict(stdout="true"), exec_=True)
    with pytest.raises(ValueError, match="at least 1 of stdin, stdout, stderr"):
        rc.stream_options(MultiDict(command="true"), exec_=True)
    assert rc.stream_options(MultiDict(stdout="true"), exec_=False).command == ()


def test_spdy_negotiation_streams_and_error_text():
    # The client's order, comma separated or in several headers, as httpstream.Handshake.
    assert rc.negotiate_spdy(["v9.x, v3.channel.k8s.io", "v4.channel.k8s.io"]) == rc.V3
    assert rc.negotiate_spdy(["v9.x"]) is None
    tty = rc.StreamOptions(("sh",), stdin=True, stdout=True, stderr=False, tty=True,
                           container="")
    assert rc.spdy_streams(rc.V4, tty) == {"error", "stdin", "stdout", "resize"}
    assert rc.spdy_streams(rc.V2, tty) == {"error", "stdin", "stdout"}  # no resize before v3
    failure = rc.encode_status(rc.exit_status(3, ["false"]))
    assert rc.spdy_error_text(rc.V4, failure) == failure
    assert rc.spdy_error_text(rc.V3, failure) == (
        b"command terminated with non-zero exit code: error executing command [false], "
        b"exit code 3")
    assert rc.spdy_error_text(rc.V1, rc.encode_status(rc.success_status())) == b""
