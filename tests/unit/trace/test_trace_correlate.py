"""Correlation on synthetic captures: a ClusterIP probe across the overlay, and more."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from tracekit import (
    TAG,
    W1,
    W2,
    echo,
    eth,
    frame,
    icmp_probe,
    syn,
    synack,
    tcp_probe,
    udp_probe,
    view,
    vxlan,
)

from netlab.trace import correlate
from netlab.trace.model import TraceEvent

A, B, C, SVC = "10.244.1.2", "10.244.1.3", "10.244.2.2", "10.96.0.10"
A_NS, B_NS, C_NS = "u1-worker1.a-1", "u1-worker1.b-2", "u1-worker2.c-3"
ENDPOINT_CHAIN = "endpoint-ABCDEFGH-default/web/tcp/http__10.244.2.2/8080"
SERVICE_CHAIN = "service-ABCDEFGH-default/web/tcp/http"


def service_frames() -> list:
    """Pod a -> ClusterIP 10.96.0.10:80, DNATed on worker1 to pod c:8080 on worker2."""
    pre, post = syn(A, 40000, SVC, 80), syn(A, 40000, C, 8080)
    f = [
        frame(1000, A_NS, "eth0", True, eth(pre)),
        frame(2000, "u1-worker1", "vetha", False, eth(pre), pkttype=3),
        frame(2000, "u1-worker1", "cni0", False, eth(post)),  # br_netfilter DNATed it already
        frame(3000, "u1-worker1", "vxlan0", True, eth(syn(A, 40000, C, 8080, ttl=63))),
        frame(4000, "u1-worker1", "eth0", True, vxlan(syn(A, 40000, C, 8080, ttl=63))),
        frame(4500, "u1-net", "p-worker1", False, vxlan(syn(A, 40000, C, 8080, ttl=63)), 3),
        frame(5000, "u1-net", "p-client", True, vxlan(syn(A, 40000, C, 8080, ttl=63))),
        frame(5050, "u1-net", "p-worker2", True, vxlan(syn(A, 40000, C, 8080, ttl=63))),
        frame(5100, "u1-client", "eth0", False, vxlan(syn(A, 40000, C, 8080, ttl=63)), 3),
        frame(6000, "u1-worker2", "eth0", False, vxlan(syn(A, 40000, C, 8080, ttl=63))),
        frame(6000, "u1-worker2", "vxlan0", False, eth(syn(A, 40000, C, 8080, ttl=63))),
        frame(7000, "u1-worker2", "cni0", True, eth(syn(A, 40000, C, 8080, ttl=62))),
        frame(8000, "u1-worker2", "vethc", True, eth(syn(A, 40000, C, 8080, ttl=62))),
        frame(9000, C_NS, "eth0", False, eth(syn(A, 40000, C, 8080, ttl=62))),
        # the answer
        frame(10000, C_NS, "eth0", True, eth(synack(C, 8080, A, 40000))),
        frame(11000, "u1-worker2", "vethc", False, eth(synack(C, 8080, A, 40000))),
        frame(12000, "u1-worker2", "vxlan0", True, eth(synack(C, 8080, A, 40000, ttl=63))),
        frame(13000, "u1-worker2", "eth0", True, vxlan(synack(C, 8080, A, 40000, ttl=63),
                                                        W2, W1)),
        frame(14000, "u1-worker1", "eth0", False, vxlan(synack(C, 8080, A, 40000, ttl=63),
                                                         W2, W1)),
        frame(14000, "u1-worker1", "vxlan0", False, eth(synack(C, 8080, A, 40000, ttl=63))),
        frame(15000, "u1-worker1", "cni0", True, eth(synack(SVC, 80, A, 40000, ttl=62))),
        frame(16000, "u1-worker1", "vetha", True, eth(synack(SVC, 80, A, 40000, ttl=62))),
        frame(17000, A_NS, "eth0", False, eth(synack(SVC, 80, A, 40000, ttl=62))),
        # the source's kernel resets a connection it never opened: not part of the trace
        frame(18000, A_NS, "eth0", True, eth(IP(src=A, dst=SVC, id=0) /
                                             TCP(sport=40000, dport=80, flags="R", seq=1001))),
        # unrelated traffic
        frame(1500, "u1-worker1", "eth0", True, bytes(Ether() / ARP())),
        frame(2500, "u1-worker1", "eth0", True, eth(
            IP(src=W1, dst=W2, id=4242) / TCP(sport=6443, dport=1234, seq=1000, flags="A"))),
    ]
    return f


def proxy_events() -> list[TraceEvent]:
    header = bytes(syn(A, 40000, SVC, 80))
    base = {"netns": "u1-worker1", "trace_id": 77, "family": "ip", "table": "netlab-proxy"}
    return [
        TraceEvent(**{**base, "table": "netlab-trace-1-ab"}, chain="trace_pre", type="rule",
                   handle=3, verdict="continue", iif=5, network=header[:20],
                   transport=header[20:40], seq=1),
        TraceEvent(**base, chain="nat-prerouting", type="rule", handle=20, verdict="jump",
                   target="services", iif=5, network=header[:20], transport=header[20:40],
                   seq=2),
        TraceEvent(**base, chain="services", type="rule", handle=11, verdict="goto",
                   target=SERVICE_CHAIN, seq=3),
        TraceEvent(**base, chain=SERVICE_CHAIN, type="rule", handle=30, verdict="goto",
                   target=ENDPOINT_CHAIN, seq=4),
        TraceEvent(**base, chain=ENDPOINT_CHAIN, type="rule", handle=31, verdict="accept",
                   seq=5),
    ]


TEXTS = {("u1-worker1", "ip", "netlab-proxy", ENDPOINT_CHAIN): {
    31: 'meta l4proto tcp dnat to 10.244.2.2:8080 comment "default/web:http -> '
        '10.244.2.2:8080 pod c on worker2"'}}


def test_a_service_probe_is_followed_hop_by_hop_and_flooded_copies_are_left_out():
    hops = correlate.correlate(service_frames(), tcp_probe(), view())
    fwd = [h for h in hops if h.path == "forward"]
    assert [h.point for h in fwd] == [
        "sent", "from-pod", "to-stack", "to-overlay", "to-network", "underlay", "underlay",
        "from-network", "from-overlay", "from-stack", "to-pod", "received"]
    assert [h.index for h in fwd] == list(range(1, 13))
    assert not any(h.netns == "u1-client" or h.iface == "p-client" for h in hops)
    dnat = fwd[2].changes
    assert [(c.kind, c.before, c.after) for c in dnat] == [("dnat", "10.96.0.10:80",
                                                            "10.244.2.2:8080")]
    assert [c.kind for c in fwd[3].changes] == ["ttl"]
    overlay = fwd[3].outer
    assert (overlay.src, overlay.dst, overlay.dport, overlay.vni) == (W1, W2, 4789, 1)
    assert fwd[8].outer is not None and fwd[8].outer.src == W1  # from-overlay: from eth0
    assert fwd[0].offset_us == 0 and fwd[-1].offset_us == 8.0
    assert fwd[5].node is None and fwd[5].iface == "p-worker1"


def test_the_reply_shows_the_reverse_translation_and_the_sources_own_reset_is_ignored():
    hops = correlate.correlate(service_frames(), tcp_probe(), view())
    reply = [h for h in hops if h.path == "reply"]
    assert reply[0].point == "sent" and reply[0].pod == "default/c"
    assert reply[-1].point == "received" and reply[-1].netns == A_NS
    undnat = next(h for h in reply if any(c.kind == "un-dnat" for c in h.changes))
    assert (undnat.node, undnat.iface) == ("worker1", "cni0")
    change = next(c for c in undnat.changes if c.kind == "un-dnat")
    assert (change.before, change.after) == ("10.244.2.2:8080", "10.96.0.10:80")
    assert all("R" not in h.packet.summary or "ACK" in h.packet.summary for h in reply)
    assert len(reply) == 9


def test_the_proxy_rule_is_named_after_the_service_and_endpoint_where_the_dnat_shows():
    hops = correlate.correlate(service_frames(), tcp_probe(), view(), proxy_events(), TEXTS,
                               {"u1-worker1": {5: "vetha", 3: "cni0"}},
                               own_table="netlab-trace-1-ab")
    ruled = [h for h in hops if h.rule is not None]
    assert len(ruled) == 1
    hop = ruled[0]
    assert (hop.node, hop.iface, hop.point) == ("worker1", "cni0", "to-stack")
    assert hop.rule.action == "dnat"
    assert hop.rule.service == "default/web:http"
    assert hop.rule.endpoint == "10.244.2.2:8080"
    assert hop.rule.pod == "c on worker2"
    assert hop.rule.label == ("service default/web:http -> endpoint 10.244.2.2:8080 "
                              "(pod c on worker2)")
    assert hop.rule.handle == 31 and "dnat to 10.244.2.2:8080" in hop.rule.text
    assert any("netlab-proxy services" in s for s in hop.steps)
    assert not any("netlab-trace" in s for s in hop.steps)


def test_a_round_robin_dnat_map_is_named_after_the_packets_new_destination():
    """Without affinity the Service chain DNATs through a map: the trace names the
    rule, the packet seen after it names the endpoint, the map's comment the pod."""
    dnat_map = "dnat-ABCDEFGH-default/web/tcp/http"
    events = [*proxy_events()[:3],
              TraceEvent(netns="u1-worker1", trace_id=77, family="ip", table="netlab-proxy",
                         chain=SERVICE_CHAIN, type="rule", handle=30, verdict="accept", seq=4)]
    texts = {("u1-worker1", "ip", "netlab-proxy", SERVICE_CHAIN): {
        30: f"meta l4proto tcp dnat ip to numgen inc mod 2 map @{dnat_map} "
            'comment "round-robin over 2 endpoints"'},
        ("u1-worker1", "ip", "netlab-proxy", dnat_map): {
            0: 'comment "default/web:http -> 10.244.1.9:8080 pod d on worker1" : '
               "10.244.1.9 . 8080",
            1: 'comment "default/web:http -> 10.244.2.2:8080 pod c on worker2" : '
               "10.244.2.2 . 8080"}}
    hops = correlate.correlate(service_frames(), tcp_probe(), view(), events, texts,
                               {"u1-worker1": {5: "vetha", 3: "cni0"}},
                               own_table="netlab-trace-1-ab")
    [hop] = [h for h in hops if h.rule is not None]
    assert (hop.node, hop.iface, hop.point) == ("worker1", "cni0", "to-stack")
    assert (hop.rule.action, hop.rule.service, hop.rule.endpoint, hop.rule.pod) == (
        "dnat", "default/web:http", "10.244.2.2:8080", "c on worker2")
    assert hop.rule.label == ("service default/web:http -> endpoint 10.244.2.2:8080 "
                              "(pod c on worker2)")
    assert hop.rule.handle == 30 and f"map @{dnat_map}" in hop.rule.text


def test_a_bridge_forward_event_becomes_the_cni0_hop_between_two_veths():
    probe = icmp_probe()
    frames = [
        frame(100, A_NS, "eth0", True, eth(echo(A, B))),
        frame(200, "u1-worker1", "vetha", False, eth(echo(A, B)), pkttype=3),
        frame(300, "u1-worker1", "vethb", True, eth(echo(A, B))),
        frame(400, B_NS, "eth0", False, eth(echo(A, B))),
        frame(500, B_NS, "eth0", True, eth(echo(B, A, reply=True, ip_id=1))),
        frame(600, "u1-worker1", "vethb", False, eth(echo(B, A, reply=True, ip_id=1)), 3),
        frame(700, "u1-worker1", "vetha", True, eth(echo(B, A, reply=True, ip_id=1))),
        frame(800, A_NS, "eth0", False, eth(echo(B, A, reply=True, ip_id=1))),
    ]
    fwd_hdr, rep_hdr = bytes(echo(A, B)), bytes(echo(B, A, reply=True, ip_id=1))
    events = [
        TraceEvent("u1-worker1", 1, "bridge", "netlab-trace-1-ab", "trace_pre", "rule", 2,
                   "continue", iif=5, network=fwd_hdr[:20], transport=fwd_hdr[20:40], seq=1),
        TraceEvent("u1-worker1", 1, "bridge", "netlab-trace-1-ab", "trace_fwd", "rule", None,
                   "continue", iif=5, oif=6, network=fwd_hdr[:20], transport=fwd_hdr[20:40],
                   seq=2),
        # the kernel cuts a trace event's transport header at 20 bytes: a partial tag
        TraceEvent("u1-worker1", 2, "bridge", "netlab-trace-1-ab", "trace_fwd", "rule", None,
                   "continue", iif=6, oif=5, network=rep_hdr[:20], transport=rep_hdr[20:40],
                   seq=3),
    ]
    hops = correlate.correlate(frames, probe, view(), events,
                               ifnames={"u1-worker1": {5: "vetha", 6: "vethb"}},
                               own_table="netlab-trace-1-ab")
    fwd = [(h.iface, h.point, h.source) for h in hops if h.path == "forward"]
    assert fwd == [("eth0", "sent", "capture"), ("vetha", "from-pod", "capture"),
                   ("cni0", "bridged", "nftrace"), ("vethb", "to-pod", "capture"),
                   ("eth0", "received", "capture")]
    reply = [h.point for h in hops if h.path == "reply"]
    assert reply == ["sent", "from-pod", "bridged", "to-pod", "received"]
    bridged = next(h for h in hops if h.point == "bridged")
    assert bridged.steps == ["bridge cni0: vetha -> vethb"] and bridged.frame is None


def test_udp_answers_are_matched_by_reversed_addresses_and_icmp_errors_by_their_quote():
    probe = udp_probe()
    out = IP(src=A, dst=C, id=4444) / UDP(sport=40001, dport=53) / Raw(TAG)
    answer = IP(src=C, dst=A, id=31337) / UDP(sport=53, dport=40001) / Raw(b"answer")
    other = IP(src=C, dst=A, id=31338) / UDP(sport=53, dport=40002) / Raw(b"someone else")
    frames = [frame(1, A_NS, "eth0", True, eth(out)),
              frame(2, A_NS, "eth0", False, eth(answer)),
              frame(3, A_NS, "eth0", False, eth(other))]
    hops = correlate.correlate(frames, probe, view())
    assert [(h.path, h.packet.summary) for h in hops] == [("forward", "udp"), ("reply", "udp")]
    unreachable = IP(src=C, dst=A, id=5) / ICMP(type=3, code=3) / bytes(out)[:28]
    hops = correlate.correlate([frames[0], frame(2, A_NS, "eth0", False, eth(unreachable))],
                               probe, view())
    assert hops[1].path == "reply" and hops[1].packet.summary == "port-unreachable"
    assert hops[1].packet.quoted.ip_id == 4444


def test_a_retransmission_adds_no_hop():
    probe = tcp_probe(dst=C, dport=8080)
    first = frame(1, A_NS, "eth0", True, eth(syn(A, 40000, C, 8080)))
    again = frame(9, A_NS, "eth0", True, eth(syn(A, 40000, C, 8080)))
    assert len(correlate.correlate([first, again], probe, view())) == 1


def test_a_routers_uplinks_and_bridge_ports_are_named_on_a_routed_underlay():
    from pathlib import Path

    from netlab.topology import load_topology, plan_lab
    from netlab.trace.labview import LabView

    racks = plan_lab(load_topology(
        Path(__file__).resolve().parents[3] / "topologies" / "multi-rack.yaml"))
    where = LabView(racks, [])
    router = racks.node("router").netns
    for ifname in ("eth0", "eth1"):
        loc = where.locate(router, ifname)
        assert (loc.kind, loc.node, loc.iface_kind) == ("router", "router", "uplink")
    assert where.locate(router, "eth1").point(True) == "to-network"
    for port in ("p-router", "p1-router"):
        loc = where.locate(racks.underlay_netns, port)
        assert (loc.kind, loc.node, loc.iface_kind) == ("underlay", "router", "port")
    assert router in where.namespaces()
