"""The trace's data: what was asked, what was seen, and what it means.

Plain dataclasses shared by every stage, so each stage can be tested alone:

- :class:`Place`: a resolved SRC or DST (a pod, a node, a Service, an address);
- :class:`Probe`: the one packet sent, with the tag that identifies its copies;
- :class:`Frame`: one frame as a capture socket saw it (kernel timestamp,
  namespace, interface, direction, bytes);
- :class:`TraceEvent`: one nftables trace event from a node namespace;
- :class:`Hop`, :class:`Change`, :class:`RuleMatch`, :class:`Verdict`: the
  correlated result, which ``report.py`` renders as a table or as JSON (the
  JSON schema is documented there; ``to_json`` methods here produce it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlab.trace.packets import Outer, Packet


@dataclass(frozen=True)
class PodRecord:
    """A pod as the trace needs it: where its namespace and host-side veth are."""

    namespace: str
    name: str
    node: str
    ip: str | None
    netns: str | None = None
    veth: str | None = None
    uid: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ServicePortRecord:
    name: str  # "" for a Service's single unnamed port
    port: int
    protocol: str  # tcp, udp
    node_port: int | None = None


@dataclass(frozen=True)
class ServiceRecord:
    namespace: str
    name: str
    cluster_ip: str | None
    ports: tuple[ServicePortRecord, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Place:
    """A resolved SRC or DST.

    ``kind`` is one of ``pod``, ``node``, ``external`` (a node outside the
    cluster), ``service`` (a ClusterIP), ``nodeport`` (a node's address and a
    Service's NodePort) or ``ip``. ``netns`` is where a source sends from.
    """

    kind: str
    name: str
    ip: str | None
    port: int | None = None
    node: str | None = None
    netns: str | None = None
    protocol: str | None = None  # a Service port's protocol, when the DST named one
    service: str | None = None  # ns/name:port of the Service a DST reaches
    query: str | None = None  # for a DST of ``dns`` or ``dns/NAME``: the name asked for

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "name": self.name, "ip": self.ip, "port": self.port,
               "node": self.node, "namespace": self.netns, "service": self.service}
        if self.query:
            out["query"] = self.query
        return out

    def describe(self) -> str:
        where = f" on {self.node}" if self.node and self.kind == "pod" else ""
        addr = f"{self.ip}:{self.port}" if self.ip and self.port else (self.ip or "?")
        if self.kind == "ip":
            return addr
        if self.kind == "service":
            asked = f", DNS query A {self.query}" if self.query else ""
            return f"svc/{self.name} ({addr}){asked}"
        return f"{self.kind} {self.name}{where} ({addr})"


@dataclass(frozen=True)
class Probe:
    """The probe packet and its tag.

    Every copy of the probe keeps ``ip_id`` (NAT and VXLAN never rewrite it)
    and either ``seq`` (TCP) or ``tag`` at the start of its payload (UDP,
    ICMP); a TCP answer acknowledges ``seq + 1``; an ICMP error quotes
    ``ip_id``. Together they pick the probe's copies out of all lab traffic.
    """

    proto: str  # tcp, udp, icmp
    src: str
    dst: str
    sport: int | None
    dport: int | None
    ip_id: int
    seq: int  # TCP sequence number, or ICMP echo sequence
    icmp_id: int = 0
    tag: bytes = b""
    ttl: int = 64

    def to_json(self) -> dict[str, Any]:
        return {"proto": self.proto, "src": self.src, "sport": self.sport, "dst": self.dst,
                "dport": self.dport, "ipId": self.ip_id, "seq": self.seq,
                "tag": self.tag.decode(errors="replace"), "ttl": self.ttl}


@dataclass(frozen=True)
class Frame:
    ts_ns: int  # kernel receive/transmit time (SO_TIMESTAMPNS), ns since the epoch
    netns: str
    ifname: str
    outgoing: bool  # PACKET_OUTGOING: the interface sent it; else it received it
    data: bytes
    pkttype: int = 0  # sll_pkttype: 0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing


@dataclass(frozen=True)
class TraceEvent:
    """One NFT_MSG_TRACE message (see ``nftrace.parse_messages``)."""

    netns: str
    trace_id: int
    family: str  # ip, bridge, inet, …
    table: str
    chain: str
    type: str  # rule, return, policy
    handle: int | None = None
    verdict: str | None = None  # accept, drop, continue, jump, goto, return, …
    target: str | None = None  # the chain of a jump/goto verdict
    policy: str | None = None
    iif: int | None = None
    oif: int | None = None
    mark: int | None = None
    network: bytes = b""
    transport: bytes = b""
    seq: int = 0  # arrival order on its socket


@dataclass(frozen=True)
class Change:
    """What changed since the previous hop of the same path."""

    kind: str  # dnat, snat, un-dnat, un-snat, ttl, encap, decap
    before: str
    after: str

    def __str__(self) -> str:
        if self.kind == "ttl":
            return f"TTL {self.before}→{self.after}"
        if self.kind == "encap":
            return f"ENCAP {self.after}"
        if self.kind == "decap":
            return f"DECAP {self.before}"
        return f"{self.kind.upper()} {self.before} → {self.after}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "from": self.before, "to": self.after}


@dataclass
class RuleMatch:
    """The nftables decision at one node, named after the Service it belongs to."""

    action: str  # dnat, reject, drop, masquerade, accept
    label: str  # plain words: "default/web:http -> 10.244.2.3:8080 (pod w2-a on worker2)"
    table: str = ""
    chain: str = ""
    handle: int | None = None
    text: str = ""  # the rule as ``nft list`` prints it, when it could be read
    service: str | None = None
    endpoint: str | None = None
    pod: str | None = None
    masquerade: bool = False
    nodeport: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "label": self.label, "table": self.table,
                "chain": self.chain, "handle": self.handle, "text": self.text,
                "service": self.service, "endpoint": self.endpoint, "pod": self.pod,
                "masquerade": self.masquerade, "nodePort": self.nodeport}


@dataclass
class Hop:
    path: str  # forward, reply
    index: int  # 1-based within its path
    ts_ns: int
    netns: str
    node: str | None
    pod: str | None
    iface: str
    direction: str  # ingress, egress, forward (bridged)
    point: str
    packet: Packet
    source: str = "capture"  # capture, or nftrace (a bridge hop no capture can see)
    offset_us: float = 0.0
    changes: list[Change] = field(default_factory=list)
    outer: Outer | None = None
    rule: RuleMatch | None = None
    steps: list[str] = field(default_factory=list)  # every nftables step at this node
    frame: bytes | None = None
    pcap: str | None = None

    @property
    def where(self) -> str:
        if self.pod:
            return f"{self.pod}"
        return self.node or "network"

    def to_json(self) -> dict[str, Any]:
        p = self.packet
        packet: dict[str, Any] = {
            "proto": p.proto_name, "src": p.src, "sport": p.sport, "dst": p.dst,
            "dport": p.dport, "ttl": p.ttl, "ipId": p.ip_id, "length": p.length,
            "summary": p.summary}
        if p.quoted is not None:
            q = p.quoted
            packet["quoted"] = {"proto": q.proto_name, "src": q.src, "sport": q.sport,
                                "dst": q.dst, "dport": q.dport, "ipId": q.ip_id}
        return {"path": self.path, "hop": self.index, "offsetUs": round(self.offset_us, 3),
                "timestampNs": self.ts_ns, "node": self.node, "pod": self.pod,
                "netns": self.netns, "interface": self.iface, "direction": self.direction,
                "point": self.point, "source": self.source, "packet": packet,
                "changes": [c.to_json() for c in self.changes],
                "outer": self.outer.to_json() if self.outer else None,
                "rule": self.rule.to_json() if self.rule else None,
                "nftrace": list(self.steps), "pcap": self.pcap}


@dataclass
class Verdict:
    result: str  # delivered, answered, lost
    reason: str
    last_hop: int | None = None  # the last forward hop seen ("lost after hop N")
    node: str | None = None  # where it was answered or lost
    netns: str | None = None
    answer: str | None = None  # syn-ack, echo-reply, udp-reply, tcp-rst, port-unreachable, …
    answered_by: str | None = None  # destination, rule, node
    rtt_us: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "reason": self.reason, "lastHop": self.last_hop,
                "node": self.node, "netns": self.netns, "answer": self.answer,
                "answeredBy": self.answered_by,
                "rttUs": round(self.rtt_us, 3) if self.rtt_us is not None else None}


@dataclass
class TraceResult:
    lab: str
    src: Place
    dst: Place
    probe: Probe
    hops: list[Hop]
    verdict: Verdict
    namespaces: list[str] = field(default_factory=list)  # where captures ran
    nftrace: list[str] = field(default_factory=list)  # node namespaces traced
    pcaps: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0
    warnings: list[str] = field(default_factory=list)
