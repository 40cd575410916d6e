"""The probe: one real packet, tagged, sent from inside the source's namespace.

The probe is a TCP SYN, a UDP datagram or an ICMP echo request, built with
scapy (imported here, on first use only: it costs half a second, and nothing
but a trace should pay for it) and sent through a raw IPv4 socket
(``IPPROTO_RAW``, so the header is ours) opened inside the source's
namespace. The kernel still routes it and runs it through netfilter's
``output`` and ``postrouting`` hooks there, so a node's own traffic to a
ClusterIP is DNATed as any other would be.

Its tag (see :class:`~netlab.trace.model.Probe`): a random IP ID, a random
TCP sequence number, and for UDP and ICMP a payload that starts with
``netlab-trace:<hex>``.

For TCP and UDP the source port is taken by binding a socket of that
protocol in the source namespace: the port is then free, and for UDP the
socket also receives the answer, so the source's kernel does not answer it
with a port unreachable of its own. (For TCP the source's kernel resets the
connection when the SYN-ACK arrives; the correlation ignores that RST.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket

from netlab.kernel.netns import run_in_netns
from netlab.trace.model import Probe

TAG_PREFIX = b"netlab-trace:"


class SendError(OSError):
    """The probe could not leave its source (typically: no route)."""


def new_probe(proto: str, src: str, dst: str, sport: int | None, dport: int | None,
              payload: bytes | None = None) -> Probe:
    """A probe with a fresh random tag (pure but for the randomness). A UDP ``payload``
    (a DNS query, with its random id) is the tag itself: the server answers it."""
    token = secrets.token_hex(4).encode()
    return Probe(proto=proto, src=src, dst=dst, sport=sport if proto != "icmp" else None,
                 dport=dport if proto != "icmp" else None,
                 ip_id=secrets.randbelow(0xFFFE) + 1,  # 0 would make the kernel pick one
                 seq=secrets.randbits(32) if proto == "tcp" else secrets.randbelow(0xFFFF) + 1,
                 icmp_id=secrets.randbelow(0xFFFF) + 1,
                 tag=payload if payload and proto == "udp" else TAG_PREFIX + token)


def dns_query(name: str) -> bytes:
    """A recursive A query for ``name`` with a random id: a DNS probe's payload."""
    import dns.message

    return dns.message.make_query(name, "A").to_wire()


def build(probe: Probe) -> bytes:
    """The probe's bytes, from the IP header on."""
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # no banner noise on stderr
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.packet import Raw

    ip = IP(src=probe.src, dst=probe.dst, id=probe.ip_id, ttl=probe.ttl, flags="DF")
    if probe.proto == "tcp":
        pkt = ip / TCP(sport=probe.sport, dport=probe.dport, flags="S", seq=probe.seq,
                       window=64240, options=[("MSS", 1460)])
    elif probe.proto == "udp":
        pkt = ip / UDP(sport=probe.sport, dport=probe.dport) / Raw(probe.tag)
    else:
        pkt = ip / ICMP(type=8, id=probe.icmp_id, seq=probe.seq) / Raw(probe.tag)
    return bytes(pkt)


def source_address(netns: str, dst: str, port: int | None) -> str:
    """The address the kernel in ``netns`` would send from to ``dst`` (a route
    lookup through a connected UDP socket: nothing is sent)."""
    def lookup() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((dst, port or 9))
            return sock.getsockname()[0]

    try:
        return run_in_netns(netns, lookup)
    except OSError as exc:
        raise SendError(exc.errno, f"no route from {netns} to {dst}: "
                        f"{exc.strerror or exc}") from exc


def reserve_port(netns: str, proto: str, address: str) -> socket.socket:
    """A socket bound to a free port of ``address`` in ``netns``; its port is the
    probe's source port. Close it when the trace ends."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM

    def bind() -> socket.socket:
        sock = socket.socket(socket.AF_INET, kind)
        try:
            sock.bind((address, 0))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    return run_in_netns(netns, bind)


def send(netns: str, packet: bytes, dst: str) -> None:
    """Send the prepared packet from ``netns`` through a raw socket."""
    def raw() -> socket.socket:
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    sock = run_in_netns(netns, raw)
    try:
        sock.sendto(packet, (dst, 0))
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            raise SendError(exc.errno, f"no route from {netns} to {dst}") from exc
        raise SendError(exc.errno, f"sending from {netns}: {os.strerror(exc.errno or 0)}") \
            from exc
    finally:
        with contextlib.suppress(OSError):
            sock.close()
