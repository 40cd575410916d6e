"""The trace's verdict: delivered, answered, or lost after hop N, and why.

- **delivered**: the destination answered positively (SYN-ACK, echo reply, a
  UDP reply), or the probe reached it and nothing came back (a UDP server
  need not answer);
- **answered**: a refusal came back: a TCP reset or an ICMP port/admin
  unreachable, either from the destination (nothing listens) or from a node's
  rule (kube-proxy rejects connections to a Service without endpoints);
- **lost**: the probe stopped somewhere (a NetworkPolicy drop reads
  ``dropped: NetworkPolicy x/deny-all (ingress) at worker2``). ICMP net/host unreachable from a
  node counts here (the node dropped it for want of a route and said so).

The reason is said in plain words, from the evidence at the last place the
probe was seen: a ``drop`` verdict in the node's nftables trace; a route
lookup at that node (``route_check``, done by the engine) that fails, and,
when the lab runs without an overlay and the destination is another node's
pod, that this is why ("no route: overlay is none"); or where on the
physical network the trail ends.

Pure given ``route_check``: unit tests pass a fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import Callable

from netlab.node.netpol import ruleset as policy_ruleset
from netlab.trace.labview import LabView
from netlab.trace.model import Hop, Place, Probe, Verdict
from netlab.trace.packets import (
    ICMP_ECHO_REPLY,
    ICMP_ERRORS,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    TCP_RST,
    TCP_SYN,
    Packet,
    icmp_name,
)

RouteCheck = Callable[[str, str], "str | None"]  # (netns, dst) -> None, or why no route

POSITIVE = ("syn-ack", "echo-reply", "udp-reply")
REFUSALS = ("tcp-rst", "port-unreachable", "admin-prohibited", "host-prohibited",
            "net-prohibited", "protocol-unreachable")


def answer_kind(p: Packet) -> str:
    if p.proto == PROTO_TCP:
        if p.tcp_flags & TCP_RST:
            return "tcp-rst"
        return "syn-ack" if p.tcp_flags & TCP_SYN else "tcp"
    if p.proto == PROTO_ICMP:
        if p.icmp_type == ICMP_ECHO_REPLY:
            return "echo-reply"
        return icmp_name(p.icmp_type, p.icmp_code)
    if p.proto == PROTO_UDP:
        return "udp-reply"
    return p.proto_name


def _who(hop: Hop) -> str:
    if hop.pod:
        return f"pod {hop.pod}" + (f" on {hop.node}" if hop.node else "")
    return f"node {hop.node}" if hop.node else "the physical network"


def _at(hop: Hop) -> str:
    return hop.node or "the physical network"


def _destination_netns(view: LabView, ip: str) -> str | None:
    pod = view.pod_by_ip(ip)
    if pod is not None:
        return pod.netns
    for node in view.plan.nodes:
        addresses = {str(node.underlay.ip), *(str(u.address.ip) for u in node.uplinks)}
        if node.gateway is not None:
            addresses |= {str(node.gateway.ip), str(node.vtep_ip)}
        if ip in addresses:
            return node.netns
    return None


def _no_route_reason(view: LabView, node: str | None, dst: str, why: str) -> str:
    plan = view.plan
    try:
        address = IPv4Address(dst)
    except ValueError:
        address = None
    owner = next((n for n in plan.nodes if address is not None and n.pod_subnet is not None
                  and address in n.pod_subnet), None)
    if plan.overlay == "none" and owner is not None and owner.name != node:
        return (f"no route: overlay is none, so {node} has no route to {owner.pod_subnet} "
                f"({owner.name}'s pods)")
    return f"no route: {node} has no route to {dst} ({why})"


def decide(hops: Sequence[Hop], probe: Probe, src: Place, view: LabView,
           route_check: RouteCheck | None = None, send_error: str | None = None) -> Verdict:
    """The verdict for a trace's hops (see the module docstring)."""
    if send_error:
        return Verdict("lost", f"the probe could not be sent from {src.name}: {send_error}",
                       last_hop=0, node=src.node, netns=src.netns)
    fwd = [h for h in hops if h.path == "forward"]
    rep = [h for h in hops if h.path == "reply" and h.source == "capture"]
    if not fwd:
        return Verdict("lost", f"the probe was sent from {src.name} but no capture saw it",
                       last_hop=0, node=src.node, netns=src.netns)
    last = fwd[-1]
    seen = [h for h in fwd if h.source == "capture"]
    rtt = None
    if rep:
        back = [h for h in rep if h.netns == src.netns and h.direction == "ingress"]
        if back:
            rtt = (back[0].ts_ns - seen[0].ts_ns) / 1000.0
    rejected = next((h for h in fwd if h.rule is not None and h.rule.action == "reject"), None)
    dropped = next((h for h in fwd if h.rule is not None and h.rule.action == "drop"), None)
    if rep:
        first = rep[0]
        kind = answer_kind(first.packet)
        came_back = rtt is not None
        lost_back = "" if came_back else (
            f"; the answer was lost on its way back after reply hop {rep[-1].index} "
            f"({_at(rep[-1])})")
        if kind in POSITIVE:
            return Verdict("delivered", f"{kind} from {_who(first)}{lost_back}",
                           last_hop=last.index, node=first.node, netns=first.netns,
                           answer=kind, answered_by="destination", rtt_us=rtt)
        if rejected is not None and rejected.rule is not None and kind in REFUSALS:
            return Verdict("answered", f"{rejected.rule.label} (at {_at(rejected)}: {kind})"
                           f"{lost_back}", last_hop=rejected.index, node=rejected.node,
                           netns=rejected.netns, answer=kind, answered_by="rule", rtt_us=rtt)
        if kind in REFUSALS:
            dst_ns = _destination_netns(view, last.packet.dst)
            port = last.packet.dport
            if first.netns == dst_ns or first.pod:
                what = (f"nothing listens on {probe.proto} port {port}" if port else
                        "refused")
                return Verdict("answered", f"{kind} from {_who(first)}: {what}{lost_back}",
                               last_hop=last.index, node=first.node, netns=first.netns,
                               answer=kind, answered_by="destination", rtt_us=rtt)
            return Verdict("answered", f"{kind} from {_who(first)} (a rule there refused it)"
                           f"{lost_back}", last_hop=last.index, node=first.node,
                           netns=first.netns, answer=kind, answered_by="node", rtt_us=rtt)
        # A router's ICMP error (no route, TTL): the probe died where it was sent from.
        if first.packet.proto == PROTO_ICMP and first.packet.icmp_type in ICMP_ERRORS:
            verdict = _lost(fwd, view, route_check, dropped)
            verdict.answer = kind
            verdict.answered_by = "node"
            verdict.reason += f" ({_who(first)} answered {kind})"
            return verdict
    return _lost(fwd, view, route_check, dropped, probe)


def _lost(fwd: Sequence[Hop], view: LabView, route_check: RouteCheck | None,
          dropped: Hop | None, probe: Probe | None = None) -> Verdict:
    last = fwd[-1]
    if dropped is not None and dropped.rule is not None:
        reason = dropped.rule.label
        if dropped.rule.table == policy_ruleset.TABLE:
            # A policy drop names where it happened: ingress at the destination's
            # node, egress at the source's.
            reason += f" at {_at(dropped)}"
        return Verdict("lost", reason, last_hop=dropped.index, node=dropped.node,
                       netns=dropped.netns)
    dst = last.packet.dst
    dst_ns = _destination_netns(view, dst)
    if last.netns == dst_ns and last.direction == "ingress":
        who = _who(last)
        if probe is not None and probe.proto == "udp":
            reason = f"arrived at {who}; no reply (nothing answered the datagram)"
        else:
            reason = f"arrived at {who}, which sent nothing back"
        return Verdict("delivered", reason, last_hop=last.index, node=last.node,
                       netns=last.netns)
    verdict = Verdict("lost", "", last_hop=last.index, node=last.node, netns=last.netns)
    point = last.point
    if point in ("to-overlay", "to-network") or (point == "underlay" and
                                                 last.direction == "ingress"):
        target = last.outer.dst if last.outer else dst
        verdict.reason = (f"lost on the physical network: {_at(last)} sent it towards "
                          f"{target} and nothing received it")
    elif point == "underlay":
        node, ifname = next(((n.name, u.ifname) for n in view.plan.nodes for u in n.uplinks
                             if u.port == last.iface), ("?", "eth0"))
        verdict.reason = (f"the physical network delivered it to {last.iface}, but node "
                          f"{node} did not receive it on {ifname}")
    elif point in ("to-pod", "from-stack"):
        verdict.reason = f"{_at(last)} handed it to the pod, which did not receive it"
    elif point == "sent":
        verdict.reason = f"{_who(last)} sent it, but its node did not receive it"
    elif last.node is not None and last.direction in ("ingress", "forward"):
        why = route_check(last.netns, dst) if route_check else None
        if why:
            verdict.reason = _no_route_reason(view, last.node, dst, why)
        else:
            verdict.reason = (f"{last.node} received it and neither forwarded nor answered it "
                              "(no rule dropped it that the trace saw)")
    else:
        verdict.reason = f"last seen at {_who(last)} ({last.iface}, {last.direction})"
    return verdict
