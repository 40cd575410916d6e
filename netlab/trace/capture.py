"""Packet capture in every namespace of a lab: AF_PACKET sockets with kernel timestamps.

One ``AF_PACKET``/``ETH_P_ALL`` socket per namespace, not bound to an
interface, sees every frame every interface of that namespace receives or
sends; ``recvmsg`` tells which interface (CPython names it with an ioctl on
the socket itself, so in the socket's own namespace) and whether it was sent
(``PACKET_OUTGOING``). ``SO_TIMESTAMPNS`` makes the kernel stamp each frame
when it crossed the interface, so hops in different namespaces can be put in
order and timed without the reader's scheduling getting in the way.

Each socket is *created* inside its namespace on a short-lived thread
(``netlab.kernel.netns.run_in_netns``); a socket keeps the namespace it was
made in, so all of them are then read from the caller's thread with one
``select`` loop, and the caller never changes namespace. The sockets are
the only resource: :meth:`CaptureSet.close` (a context manager exit) frees
them on every path out of a trace, Ctrl-C included.

The kernel stamps a frame as it crosses an interface only once timestamping is
switched on system-wide, and the first socket to ask for it switches it on from a
workqueue, later. A frame that crossed before is stamped when it is *read*, so
the hops come out in read order (one namespace after another: a reply reversed,
seen on a loaded machine). ``wait_for_kernel_stamps`` checks, before the probe is
sent, that stamping is on: a datagram to itself on loopback, read a little after
it was sent, must carry the time it was sent.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import time
from collections.abc import Iterable, Iterator
from typing import cast

from netlab.kernel import netns as nsmod
from netlab.trace.model import Frame
from netlab.trace.threads import run_all

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = 33
RCVBUF = 8 << 20  # lab traffic during a trace is small; this absorbs any burst
SNAPLEN = 65535
_TIMESPEC = struct.Struct("@qq")


def _open_packet_socket() -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:  # without CAP_NET_ADMIN: the ordinary limit
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


# How long the loopback datagram waits before it is read: a stamp this much older
# than the read was taken by the kernel as the datagram crossed lo.
STAMP_CHECK_GAP = 0.002


def _stamp(ancdata: list[tuple[int, int, bytes]]) -> int:
    for level, kind, value in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and \
                len(value) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(value)
            return sec * 1_000_000_000 + nsec
    return 0


def wait_for_kernel_stamps(timeout: float = 2.0) -> bool:
    """Whether the kernel stamps frames as they cross an interface, waiting up to
    ``timeout`` for the switch the first timestamping socket asked for (see the
    module docstring). Only loopback traffic, in the caller's namespace."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind(("127.0.0.1", 0))
        deadline = time.monotonic() + timeout
        while True:
            sock.sendto(b"stamp?", sock.getsockname())
            # The gap is the measurement itself: a stamp taken at the read would be
            # younger than it.
            time.sleep(STAMP_CHECK_GAP)
            _, ancdata, _, _ = sock.recvmsg(64, 64)
            read_at = time.time_ns()
            stamp = _stamp(ancdata)
            if stamp and read_at - stamp >= STAMP_CHECK_GAP * 1e9 * 0.75:
                return True
            if time.monotonic() >= deadline:
                return False
    finally:
        sock.close()


class CaptureSet:
    """Capture sockets in a set of namespaces, read together."""

    def __init__(self, namespaces: Iterable[str]):
        self.sockets: dict[int, tuple[str, socket.socket]] = {}
        self._selector = selectors.DefaultSelector()  # epoll: no FD_SETSIZE limit
        self.failed: dict[str, str] = {}  # namespace -> why no capture runs there
        names = [n for n in dict.fromkeys(namespaces)]
        opened: list[socket.socket | None] = [None] * len(names)

        def opener(i: int, name: str):
            def task() -> None:
                try:
                    opened[i] = nsmod.run_in_netns(name, _open_packet_socket)
                except OSError as exc:  # a pod removed meanwhile: trace the rest
                    self.failed[name] = exc.strerror or str(exc)
            return task

        try:
            run_all([opener(i, n) for i, n in enumerate(names)])
        finally:
            for name, sock in zip(names, opened):
                if sock is not None:
                    self.sockets[sock.fileno()] = (name, sock)
                    self._selector.register(sock, selectors.EVENT_READ, name)

    @property
    def namespaces(self) -> list[str]:
        return sorted(name for name, _ in self.sockets.values())

    def _read(self, name: str, sock: socket.socket) -> Iterator[Frame]:
        while True:
            try:
                data, ancdata, _, addr = sock.recvmsg(SNAPLEN, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the interface went away under us
                return
            ts = _stamp(ancdata)
            yield Frame(ts_ns=ts or time.time_ns(), netns=name, ifname=addr[0],
                        outgoing=addr[2] == PACKET_OUTGOING, data=data, pkttype=addr[2])

    def poll(self, timeout: float) -> list[Frame]:
        """Every frame captured so far, waiting up to ``timeout`` seconds for the first."""
        if not self.sockets:
            time.sleep(max(0.0, timeout))  # nothing to wait on; still honour the pacing
            return []
        frames: list[Frame] = []
        for key, _ in self._selector.select(max(0.0, timeout)):
            sock = cast(socket.socket, key.fileobj)  # only sockets are registered
            frames.extend(self._read(key.data, sock))
        return frames

    def drain(self) -> list[Frame]:
        """Whatever is queued on every socket, without waiting."""
        frames: list[Frame] = []
        for name, sock in list(self.sockets.values()):
            frames.extend(self._read(name, sock))
        return frames

    def close(self) -> None:
        self._selector.close()
        for _, sock in self.sockets.values():
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets.clear()

    def __enter__(self) -> CaptureSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
