"""From raw sightings to hops: which frames are the probe, in what order, what changed.

Pure: frames, trace events and the lab's layout in; :class:`~netlab.trace.model.Hop`
rows out. Everything the kernel was asked for happened before this runs, so
the whole of the trace's reasoning is unit-tested on synthetic packets.

1. **Pick the probe's copies.** A frame is a copy of the probe (path
   ``forward``) when it carries the probe's IP ID and protocol plus its TCP
   sequence number, or its payload tag for UDP and ICMP: NAT rewrites
   addresses and ports, VXLAN wraps the packet, but none of them touch those.
   A frame is the answer (path ``reply``) when it acknowledges the probe's
   sequence number (SYN-ACK, RST), echoes its tag (echo reply), quotes its IP
   ID (ICMP errors), or, for UDP, has the reverse addresses of a copy of the
   probe seen anywhere (which covers every NAT'ed form of the reply). The
   source's own RST, sent when a SYN-ACK reaches a probe that no socket
   owns, matches neither and stays out.
2. **Order them** by kernel timestamp. A skb seen by two taps at once (a
   bridge port and the bridge, ``eth0`` and ``vxlan0`` after decapsulation)
   has one timestamp; the outer device goes first.
3. **Say what changed** since the previous hop of the same path: DNAT and
   SNAT on the way there, their reversal on the way back, TTL, encapsulation.
4. **Attach the nftables trace** of each node to the hops at that node: the
   events of one packet at one node (one trace id) are matched to the run of
   hops the same packet made there, and their deciding rule goes on the last
   of them, where the decision shows. A bridge ``forward`` event becomes a
   ``bridged`` hop of its own on ``cni0``: the one crossing no capture sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from netlab.topology.plan import POD_BRIDGE
from netlab.trace import rules
from netlab.trace.labview import LabView, Location
from netlab.trace.model import Change, Frame, Hop, Probe, TraceEvent
from netlab.trace.packets import (
    ICMP_ECHO,
    ICMP_ECHO_REPLY,
    ICMP_ERRORS,
    PROTO_ICMP,
    PROTO_NUMBERS,
    PROTO_TCP,
    PROTO_UDP,
    TCP_ACK,
    TCP_RST,
    TCP_SYN,
    Packet,
    parse_frame,
    parse_ip_header,
)

PACKET_OTHERHOST = 3
Flow = tuple[str, "int | None", str, "int | None", int]


class Classifier:
    """Tells the probe's copies and its answers from everything else."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self.proto = PROTO_NUMBERS[probe.proto]
        self.forward_flows: set[Flow] = set()

    def is_forward(self, p: Packet, headers_only: bool = False) -> bool:
        probe = self.probe
        if p.ip_id != probe.ip_id or p.proto != self.proto:
            return False
        if headers_only:  # a trace event's headers: the payload may be cut short
            return True
        if p.proto == PROTO_TCP:
            return p.seq == probe.seq and bool(p.tcp_flags & TCP_SYN) \
                and not p.tcp_flags & TCP_ACK
        if p.proto == PROTO_ICMP:
            return p.icmp_type == ICMP_ECHO and p.payload.startswith(probe.tag)
        return p.payload.startswith(probe.tag)

    def is_reply(self, p: Packet, transport: bytes | None = None) -> bool:
        """``transport``: the raw transport header of a trace event, which the
        kernel cuts at 20 bytes: too short for an ICMP error's quote to decode,
        or for the whole tag of an echo reply."""
        probe = self.probe
        if p.proto == PROTO_ICMP and p.icmp_type in ICMP_ERRORS:
            q = p.quoted
            if q is None and transport is not None and len(transport) >= 18:
                quoted_id = int.from_bytes(transport[12:14], "big")
                return quoted_id == probe.ip_id and transport[17] == self.proto
            return q is not None and q.ip_id == probe.ip_id and q.proto == self.proto
        if p.proto != self.proto:
            return False
        if p.proto == PROTO_TCP:
            return bool(p.tcp_flags & TCP_ACK) and bool(p.tcp_flags & (TCP_SYN | TCP_RST)) \
                and p.ack == (probe.seq + 1) & 0xFFFFFFFF
        if p.proto == PROTO_ICMP:
            if p.icmp_type != ICMP_ECHO_REPLY:
                return False
            if transport is not None:  # a cut payload: what there is must match
                return len(p.payload) >= 8 and probe.tag.startswith(p.payload[:len(probe.tag)])
            return p.payload.startswith(probe.tag)
        if p.proto == PROTO_UDP:
            return (p.dst, p.dport, p.src, p.sport, p.proto) in self.forward_flows
        return False

    def classify(self, p: Packet) -> str | None:
        if self.is_forward(p):
            self.forward_flows.add(p.flow)
            return "forward"
        if self.is_reply(p):
            return "reply"
        return None


@dataclass(frozen=True)
class Sighting:
    frame: Frame
    packet: Packet
    path: str
    location: Location

    @property
    def key(self) -> tuple[int, int]:
        return (self.frame.ts_ns, self.location.tie_rank(self.frame.outgoing))


def sightings(frames: Iterable[Frame], probe: Probe, view: LabView,
              vxlan_port: int = 4789) -> list[Sighting]:
    """The probe's copies and answers among ``frames``, in time order, one per
    (path, namespace, interface, direction): a retransmission adds nothing."""
    parsed = []
    for frame in frames:
        packet = parse_frame(frame.data, vxlan_port)
        if packet is not None:
            parsed.append((frame, packet))
    parsed.sort(key=lambda fp: fp[0].ts_ns)
    classifier = Classifier(probe)
    for _, packet in parsed:  # every forward flow first: UDP replies are matched against them
        if classifier.is_forward(packet):
            classifier.forward_flows.add(packet.flow)
    seen: set[tuple[str, str, str, bool]] = set()
    out = []
    flooded: set[tuple[str, str | None]] = set()  # (path, node) that got a flooded copy
    for frame, packet in parsed:
        path = "forward" if classifier.is_forward(packet) else \
            "reply" if classifier.is_reply(packet) else None
        if path is None:
            continue
        location = view.locate(frame.netns, frame.ifname)
        if _flooded_copy(frame, location):
            flooded.add((path, location.node))
            continue
        key = (path, frame.netns, frame.ifname, frame.outgoing)
        if key in seen:
            continue
        seen.add(key)
        out.append(Sighting(frame, packet, path, location))
    # The physical network's bridge floods a frame to every port until it learns
    # where its destination is: the copies sent to nodes that dropped it as not
    # theirs are not hops of the probe's path.
    out = [s for s in out if not (s.location.kind == "underlay" and s.frame.outgoing
                                  and (s.path, s.location.node) in flooded)]
    # Forward before reply on a tie: an answer never precedes its question.
    out.sort(key=lambda s: (*s.key, s.path != "forward"))
    return out


def _flooded_copy(frame: Frame, location: Location) -> bool:
    """A frame a host's own interface received only because a bridge flooded it
    (PACKET_OTHERHOST on an interface that is not a bridge port): the host drops it."""
    return not frame.outgoing and frame.pkttype == PACKET_OTHERHOST \
        and location.iface_kind in ("uplink", "pod-eth0", "overlay", "bridge")


def _changes(path: str, prev: Packet, cur: Packet) -> list[Change]:
    out = []
    if (prev.dst, prev.dport) != (cur.dst, cur.dport):
        out.append(Change("dnat" if path == "forward" else "un-snat",
                          prev.endpoint("dst"), cur.endpoint("dst")))
    if (prev.src, prev.sport) != (cur.src, cur.sport):
        out.append(Change("snat" if path == "forward" else "un-dnat",
                          prev.endpoint("src"), cur.endpoint("src")))
    if cur.ttl < prev.ttl:
        out.append(Change("ttl", str(prev.ttl), str(cur.ttl)))
    if cur.outer is not None and prev.outer is None:
        o = cur.outer
        out.append(Change("encap", "", f"vni {o.vni} {o.src} → {o.dst}:{o.dport}"))
    elif prev.outer is not None and cur.outer is None:
        out.append(Change("decap", f"vni {prev.outer.vni}", ""))
    return out


def build_hops(found: Sequence[Sighting]) -> list[Hop]:
    """Rows, numbered per path, with offsets from the first sighting and changes."""
    if not found:
        return []
    t0 = found[0].frame.ts_ns
    hops: list[Hop] = []
    for s in found:
        loc = s.location
        # An underlay port is named after its node, but it is the physical
        # network's interface: the node column stays empty there.
        hops.append(Hop(path=s.path, index=0, ts_ns=s.frame.ts_ns, netns=s.frame.netns,
                        node=loc.node if loc.kind != "underlay" else None, pod=loc.pod,
                        iface=s.frame.ifname,
                        direction="egress" if s.frame.outgoing else "ingress",
                        point=loc.point(s.frame.outgoing), packet=s.packet,
                        offset_us=(s.frame.ts_ns - t0) / 1000.0, outer=s.packet.outer,
                        frame=s.frame.data))
    renumber(hops)
    for path in ("forward", "reply"):
        prev: Packet | None = None
        for hop in (h for h in hops if h.path == path):
            if prev is not None:
                hop.changes = _changes(path, prev, hop.packet)
            prev = hop.packet
    _fill_overlay_outer(hops)
    return hops


def renumber(hops: list[Hop]) -> None:
    counters = {"forward": 0, "reply": 0}
    for hop in hops:
        counters[hop.path] += 1
        hop.index = counters[hop.path]


def _fill_overlay_outer(hops: list[Hop]) -> None:
    """``vxlan0`` sees the inner frame only; its outer headers are those of the
    encapsulated copy the same node sent (or received) on ``eth0``."""
    for i, hop in enumerate(hops):
        if hop.outer is not None or hop.point not in ("to-overlay", "from-overlay"):
            continue
        same = [(j, h) for j, h in enumerate(hops) if h.path == hop.path
                and h.netns == hop.netns and h.packet.outer is not None]
        if hop.point == "to-overlay":
            after = [h for j, h in same if j > i]
            hop.outer = after[0].packet.outer if after else None
        else:
            before = [h for j, h in same if j < i]
            hop.outer = before[-1].packet.outer if before else None


# --- nftables trace events ----------------------------------------------------------------------

def _visits(hops: Sequence[Hop]) -> list[list[Hop]]:
    """Runs of consecutive hops of one path in one namespace."""
    out: list[list[Hop]] = []
    for path in ("forward", "reply"):
        run: list[Hop] = []
        for hop in (h for h in hops if h.path == path):
            if run and run[-1].netns != hop.netns:
                out.append(run)
                run = []
            run.append(hop)
        if run:
            out.append(run)
    return out


def _group(events: Iterable[TraceEvent]) -> list[list[TraceEvent]]:
    groups: dict[tuple[str, int], list[TraceEvent]] = {}
    for e in sorted(events, key=lambda e: (e.netns, e.seq)):
        groups.setdefault((e.netns, e.trace_id), []).append(e)
    return list(groups.values())


def attach_trace(hops: list[Hop], events: Iterable[TraceEvent], probe: Probe,
                 texts: rules.RuleTexts | None = None,
                 ifnames: Mapping[str, Mapping[int, str]] | None = None,
                 own_table: str | None = None) -> list[Hop]:
    """Put each node's nftables verdicts on its hops, and add the ``bridged`` hops."""
    texts = texts or {}
    ifnames = ifnames or {}
    classifier = Classifier(probe)
    classifier.forward_flows = {h.packet.flow for h in hops if h.path == "forward"}
    visits = _visits(hops)
    per_visit: dict[int, list[TraceEvent]] = {}
    bridged: list[tuple[Hop, TraceEvent]] = []
    for group in _group(events):
        header = next((e for e in group if e.network), None)
        if header is None:
            continue
        packet = parse_ip_header(header.network, header.transport)
        if packet is None:
            continue
        path = "forward" if classifier.is_forward(packet, headers_only=True) else \
            "reply" if classifier.is_reply(packet, header.transport) else None
        if path is None:
            continue
        names = ifnames.get(group[0].netns, {})
        iif = names.get(header.iif) if header and header.iif else None
        candidates = [v for v in visits if v[0].path == path and v[0].netns == group[0].netns]
        if not candidates:
            continue
        visit = next((v for v in candidates if any(h.iface == iif and h.direction == "ingress"
                                                   for h in v)), None) if iif else \
            next((v for v in candidates if v[0].direction == "egress"), None)
        visit = visit or candidates[0]
        per_visit.setdefault(id(visit[-1]), []).extend(group)
        for e in group:
            if e.family == "bridge" and e.chain == "trace_fwd" and e.iif and e.oif:
                entry = next((h for h in visit if h.iface == names.get(e.iif)
                              and h.direction == "ingress"), visit[0])
                bridged.append((entry, e))
                break
    for visit in visits:
        visit_events = per_visit.get(id(visit[-1]))
        if not visit_events:
            continue
        _annotate(visit, visit_events, texts, own_table)
    for entry, event in bridged:
        names = ifnames.get(entry.netns, {})
        out_if = names.get(event.oif or 0, f"if{event.oif}")
        hop = replace(entry, iface=POD_BRIDGE, direction="forward", point="bridged",
                      source="nftrace", changes=[], rule=None, steps=[
                          f"bridge {POD_BRIDGE}: {entry.iface} -> {out_if}"], frame=None,
                      pod=None)
        at = next(i for i, h in enumerate(hops) if h is entry)
        hops.insert(at + 1, hop)
    renumber(hops)
    return hops


# The change a decision shows as; its rule goes on the first hop showing it.
_SHOWS_AS = {"dnat": "dnat", "masquerade": "snat"}


def _annotate(visit: list[Hop], group: list[TraceEvent], texts: rules.RuleTexts,
              own_table: str | None) -> None:
    """The rule on the hop where its effect first shows (DNAT may already show on
    ``cni0``: with br_netfilter the bridge runs prerouting before passing the
    frame up), else on the visit's last hop, where the decision took effect."""
    match = rules.summarize(group, texts, own_table)
    steps = [rules.step_text(e, texts) for e in group
             if e.table != own_table and not e.table.startswith("netlab-trace-")]
    target = visit[-1]
    if match is not None:
        kind = _SHOWS_AS.get(match.action)
        target = next((h for h in visit if any(c.kind == kind for c in h.changes)), target)
        change = next((c for c in target.changes if c.kind == "dnat"), None)
        if match.action == "dnat" and match.endpoint is None and change is not None:
            # A round-robin DNAT map: the trace names the rule, the packet the pick.
            family = next((e.family for e in group if e.table == match.table), "ip")
            match = rules.with_endpoint(match, change.after, group[0].netns, family, texts)
    target.rule, target.steps = match, steps


def correlate(frames: Iterable[Frame], probe: Probe, view: LabView,
              events: Iterable[TraceEvent] = (), texts: rules.RuleTexts | None = None,
              ifnames: Mapping[str, Mapping[int, str]] | None = None,
              own_table: str | None = None, vxlan_port: int = 4789) -> list[Hop]:
    """All of the above: frames and events in, hops out."""
    hops = build_hops(sightings(frames, probe, view, vxlan_port))
    return attach_trace(hops, events, probe, texts, ifnames, own_table)
