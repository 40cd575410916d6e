"""Decoding captured frames: Ethernet, IPv4, TCP/UDP/ICMP, and VXLAN around them.

The capture sees every frame of every lab namespace while a trace runs, most
of them unrelated (heartbeats, ARP), so decoding must be cheap and must never
raise on a frame it does not understand. This is a hand-written ``struct``
decoder rather than scapy: scapy builds the probe (``probe.py``), but
dissecting thousands of frames with it would cost more than the trace itself,
and this module must stay importable without it (unit tests feed it synthetic
frames).

A VXLAN frame (UDP to the lab's VXLAN port, I flag set) is decoded down to the
inner packet, and the outer headers are kept in :class:`Outer`, so a copy of
the probe is recognised whether it is seen on ``vxlan0`` (inner only) or on
``eth0`` and the underlay (encapsulated). ICMP errors keep the header they
quote (:attr:`Packet.quoted`), which is how a "port unreachable" is tied to
the probe that caused it.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, replace
from typing import Any

ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17
PROTO_NAMES = {PROTO_ICMP: "icmp", PROTO_TCP: "tcp", PROTO_UDP: "udp"}
PROTO_NUMBERS = {v: k for k, v in PROTO_NAMES.items()}
DEFAULT_VXLAN_PORT = 4789

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
ICMP_ECHO_REPLY, ICMP_UNREACH, ICMP_ECHO, ICMP_TIME_EXCEEDED = 0, 3, 8, 11
ICMP_ERRORS = (ICMP_UNREACH, ICMP_TIME_EXCEEDED, 12)  # 12: parameter problem
UNREACH_CODES = {0: "net-unreachable", 1: "host-unreachable", 2: "protocol-unreachable",
                 3: "port-unreachable", 4: "fragmentation-needed", 9: "net-prohibited",
                 10: "host-prohibited", 13: "admin-prohibited"}


@dataclass(frozen=True)
class Outer:
    """The underlay headers of a VXLAN-encapsulated frame."""

    src: str
    dst: str
    sport: int
    dport: int
    vni: int

    def to_json(self) -> dict[str, object]:
        return {"src": self.src, "dst": self.dst, "sport": self.sport, "dport": self.dport,
                "vni": self.vni}


@dataclass(frozen=True)
class Packet:
    """One IPv4 packet (the inner one, for VXLAN), decoded as far as the trace needs."""

    src: str
    dst: str
    proto: int
    ttl: int
    ip_id: int
    length: int
    sport: int | None = None  # TCP/UDP ports
    dport: int | None = None
    tcp_flags: int = 0
    seq: int = 0
    ack: int = 0
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None  # echo request/reply identifier and sequence
    icmp_seq: int | None = None
    payload: bytes = b""
    quoted: Packet | None = None  # the header an ICMP error quotes
    outer: Outer | None = None

    @property
    def proto_name(self) -> str:
        return PROTO_NAMES.get(self.proto, str(self.proto))

    @property
    def flow(self) -> tuple[str, int | None, str, int | None, int]:
        """(src, sport, dst, dport, proto): what NAT rewrites."""
        return (self.src, self.sport, self.dst, self.dport, self.proto)

    def endpoint(self, which: str) -> str:
        """``10.96.0.10:80`` (or the bare address for ICMP)."""
        ip, port = (self.src, self.sport) if which == "src" else (self.dst, self.dport)
        return f"{ip}:{port}" if port is not None else ip

    @property
    def summary(self) -> str:
        """What kind of packet this is, in a word or two: ``SYN``, ``echo-request``…"""
        if self.proto == PROTO_TCP:
            return tcp_flag_names(self.tcp_flags)
        if self.proto == PROTO_ICMP:
            return icmp_name(self.icmp_type, self.icmp_code)
        return self.proto_name


def tcp_flag_names(flags: int) -> str:
    names = [n for bit, n in ((TCP_SYN, "SYN"), (TCP_RST, "RST"), (TCP_FIN, "FIN"),
                              (TCP_PSH, "PSH"), (TCP_ACK, "ACK")) if flags & bit]
    return "-".join(names) or "none"


def icmp_name(icmp_type: int | None, code: int | None) -> str:
    if icmp_type == ICMP_ECHO:
        return "echo-request"
    if icmp_type == ICMP_ECHO_REPLY:
        return "echo-reply"
    if icmp_type == ICMP_UNREACH:
        return UNREACH_CODES.get(code or 0, f"unreachable/{code}")
    if icmp_type == ICMP_TIME_EXCEEDED:
        return "time-exceeded"
    return f"icmp/{icmp_type}/{code}"


def _ip(raw: bytes) -> str:
    return socket.inet_ntoa(raw)


def parse_ipv4(data: bytes, offset: int = 0, truncated: bool = False,
               nested: bool = False) -> Packet | None:
    """Decode the IPv4 packet at ``offset``; None for anything else or a truncated header.

    ``truncated``: ``data`` holds only the first bytes of the packet (an ICMP
    error's quote, a trace event's headers), so its length field is not checked.
    ``nested``: this is a quote already, whose own quote is not decoded.
    """
    if len(data) < offset + 20 or data[offset] >> 4 != 4:
        return None
    ihl = (data[offset] & 0x0F) * 4
    if ihl < 20 or len(data) < offset + ihl:
        return None
    total, ip_id = struct.unpack_from("!HH", data, offset + 2)
    ttl, proto = data[offset + 8], data[offset + 9]
    src, dst = _ip(data[offset + 12:offset + 16]), _ip(data[offset + 16:offset + 20])
    frag = struct.unpack_from("!H", data, offset + 6)[0] & 0x1FFF
    end = len(data) if truncated else min(len(data), offset + max(total, ihl))
    l4 = offset + ihl
    fields: dict[str, Any] = {}  # Packet fields of several types, by keyword
    if frag == 0 and proto in (PROTO_TCP, PROTO_UDP) and end - l4 >= 8:
        sport, dport = struct.unpack_from("!HH", data, l4)
        fields.update(sport=sport, dport=dport)
        if proto == PROTO_TCP:
            seq = struct.unpack_from("!I", data, l4 + 4)[0]
            fields["seq"] = seq
            if end - l4 >= 14:
                fields["ack"] = struct.unpack_from("!I", data, l4 + 8)[0]
                fields["tcp_flags"] = data[l4 + 13]
            header = (data[l4 + 12] >> 4) * 4 if end - l4 >= 13 else 20
            fields["payload"] = bytes(data[l4 + header:end])
        else:
            fields["payload"] = bytes(data[l4 + 8:end])
    elif frag == 0 and proto == PROTO_ICMP and end - l4 >= 8:
        icmp_type, code = data[l4], data[l4 + 1]
        fields.update(icmp_type=icmp_type, icmp_code=code)
        if icmp_type in (ICMP_ECHO, ICMP_ECHO_REPLY):
            ident, seq = struct.unpack_from("!HH", data, l4 + 4)
            fields.update(icmp_id=ident, icmp_seq=seq, payload=bytes(data[l4 + 8:end]))
        elif icmp_type in ICMP_ERRORS and not nested:
            fields["quoted"] = parse_ipv4(data[:end], l4 + 8, truncated=True, nested=True)
    return Packet(src=src, dst=dst, proto=proto, ttl=ttl, ip_id=ip_id, length=total,
                  **fields)


def parse_frame(frame: bytes, vxlan_port: int = DEFAULT_VXLAN_PORT) -> Packet | None:
    """Decode an Ethernet frame carrying IPv4 (VXLAN decoded to its inner packet)."""
    if len(frame) < 34:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    offset = 14
    if ethertype == ETH_P_8021Q:
        ethertype = struct.unpack_from("!H", frame, 16)[0]
        offset = 18
    if ethertype != ETH_P_IP:
        return None
    packet = parse_ipv4(frame, offset)
    if packet is None:
        return None
    if packet.proto == PROTO_UDP and packet.dport == vxlan_port and len(packet.payload) >= 8 \
            and packet.payload[0] & 0x08:
        vni = int.from_bytes(packet.payload[4:7], "big")
        inner = parse_frame(packet.payload[8:], vxlan_port=-1)  # no VXLAN in VXLAN
        if inner is not None:
            outer = Outer(packet.src, packet.dst, packet.sport or 0, packet.dport or 0, vni)
            return replace(inner, outer=outer)
    return packet


def parse_ip_header(network: bytes, transport: bytes) -> Packet | None:
    """Decode the headers an nftables trace event carries (network, then transport)."""
    return parse_ipv4(network + transport, 0, truncated=True) if network else None
