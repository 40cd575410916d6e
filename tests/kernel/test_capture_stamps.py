"""The trace's capture stamps frames when they cross an interface, not when they are
read: hops in different namespaces are ordered by those stamps, so a frame read late
must still carry its own time."""

from __future__ import annotations

import socket
import time

from netlab.kernel import links, netns
from netlab.trace.capture import CaptureSet, wait_for_kernel_stamps


def _lo_up() -> None:
    with links.netlink() as ipr:
        links.ensure_up(ipr, "lo")


def _send_to_self() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.sendto(b"crossing lo", sock.getsockname())


def test_a_frame_read_late_carries_the_time_it_crossed(make_netns):
    ns = make_netns("stamps", _lo_up)
    with CaptureSet([ns]) as captures:
        assert wait_for_kernel_stamps(), "the kernel never stamped a loopback datagram"
        sent_at = time.time_ns()
        netns.run_in_netns(ns, _send_to_self)
        late = 0.05
        time.sleep(late)  # the point of the test: read well after the crossing
        frames = [f for f in captures.poll(5.0) if b"crossing lo" in f.data]
        read_at = time.time_ns()
    assert frames, "the datagram was not captured"
    for frame in frames:
        assert sent_at <= frame.ts_ns <= read_at - late * 1e9 * 0.8, \
            (sent_at, frame.ts_ns, read_at)
