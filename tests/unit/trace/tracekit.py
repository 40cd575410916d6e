"""Helpers of the trace unit tests: a made-up lab, its pods, and synthetic frames.

Frames are built with scapy (tests may import it; netlab modules other than
``netlab.trace.probe`` may not), exactly as a capture socket would return
them: Ethernet first, VXLAN-encapsulated on a node's ``eth0`` and the
underlay.
"""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from netlab.topology import parse_topology, plan_lab
from netlab.topology.plan import LabPlan
from netlab.trace.labview import LabView
from netlab.trace.model import Frame, PodRecord, Probe

LAB = "u1"
TOPOLOGY = """
name: u1
cluster: {overlay: %s}
nodes:
  - {name: control-plane, role: control-plane}
  - {name: worker1, role: worker}
  - {name: worker2, role: worker}
  - {name: client, role: external}
"""
PODS = [
    PodRecord("default", "a", "worker1", "10.244.1.2", "u1-worker1.a-1", "vetha", "1"),
    PodRecord("default", "b", "worker1", "10.244.1.3", "u1-worker1.b-2", "vethb", "2"),
    PodRecord("default", "c", "worker2", "10.244.2.2", "u1-worker2.c-3", "vethc", "3"),
]
W1, W2 = "192.168.100.3", "192.168.100.4"
TAG = b"netlab-trace:0badcafe"


def plan(overlay: str = "vxlan") -> LabPlan:
    return plan_lab(parse_topology(TOPOLOGY % overlay, "u1.yaml"))


def view(overlay: str = "vxlan") -> LabView:
    return LabView(plan(overlay), PODS)


def tcp_probe(src: str = "10.244.1.2", dst: str = "10.96.0.10", dport: int = 80) -> Probe:
    return Probe(proto="tcp", src=src, dst=dst, sport=40000, dport=dport, ip_id=4242,
                 seq=1000, tag=TAG)


def icmp_probe(src: str = "10.244.1.2", dst: str = "10.244.1.3") -> Probe:
    return Probe(proto="icmp", src=src, dst=dst, sport=None, dport=None, ip_id=4343,
                 seq=7, icmp_id=99, tag=TAG)


def udp_probe(src: str = "10.244.1.2", dst: str = "10.244.2.2", dport: int = 53) -> Probe:
    return Probe(proto="udp", src=src, dst=dst, sport=40001, dport=dport, ip_id=4444,
                 seq=1, tag=TAG)


def eth(pkt: ScapyPacket) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt)


def vxlan(pkt: ScapyPacket, src: str = W1, dst: str = W2, vni: int = 1) -> bytes:
    inner = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt
    return bytes(Ether() / IP(src=src, dst=dst, id=777) / UDP(sport=51000, dport=4789)
                 / VXLAN(vni=vni, flags=0x08) / inner)


def syn(src: str, sport: int, dst: str, dport: int, ttl: int = 64, ip_id: int = 4242,
        seq: int = 1000) -> ScapyPacket:
    return IP(src=src, dst=dst, ttl=ttl, id=ip_id) / TCP(sport=sport, dport=dport, flags="S",
                                                         seq=seq)


def synack(src: str, sport: int, dst: str, dport: int, ttl: int = 64,
           ack: int = 1001) -> ScapyPacket:
    return IP(src=src, dst=dst, ttl=ttl, id=9) / TCP(sport=sport, dport=dport, flags="SA",
                                                     seq=5000, ack=ack)


def echo(src: str, dst: str, reply: bool = False, ttl: int = 64, ip_id: int = 4343,
         payload: bytes = TAG) -> ScapyPacket:
    return IP(src=src, dst=dst, ttl=ttl, id=ip_id) / ICMP(type=0 if reply else 8, id=99,
                                                          seq=7) / Raw(payload)


def frame(ts: int, netns: str, ifname: str, out: bool, data: bytes,
          pkttype: int | None = None) -> Frame:
    return Frame(ts_ns=ts, netns=netns, ifname=ifname, outgoing=out, data=data,
                 pkttype=4 if out else (0 if pkttype is None else pkttype))
