"""Verdicts from synthetic hops: delivered, answered (by whom), lost after hop N (why)."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.packet import Raw
from test_trace_correlate import TEXTS, proxy_events, service_frames
from tracekit import (
    TAG,
    W1,
    W2,
    echo,
    eth,
    frame,
    icmp_probe,
    syn,
    tcp_probe,
    udp_probe,
    view,
    vxlan,
)

from netlab.trace import correlate
from netlab.trace.model import Place, TraceEvent
from netlab.trace.verdict import decide

A, C = "10.244.1.2", "10.244.2.2"
A_NS, C_NS = "u1-worker1.a-1", "u1-worker2.c-3"
SRC = Place("pod", "default/a", A, node="worker1", netns=A_NS)


def _no_route(netns: str, dst: str) -> str | None:
    return "Network is unreachable" if (netns, dst) == ("u1-worker1", C) else None


def test_overlay_none_is_lost_after_the_source_node_for_want_of_a_route():
    probe = icmp_probe(dst=C)
    out = echo(A, C)
    unreachable = IP(src="10.244.1.1", dst=A, id=3) / ICMP(type=3, code=0) / bytes(out)[:28]
    frames = [frame(1, A_NS, "eth0", True, eth(out)),
              frame(2, "u1-worker1", "vetha", False, eth(out)),
              frame(2, "u1-worker1", "cni0", False, eth(out)),
              frame(5, "u1-worker1", "cni0", True, eth(unreachable)),
              frame(6, "u1-worker1", "vetha", True, eth(unreachable)),
              frame(7, A_NS, "eth0", False, eth(unreachable))]
    v = view("none")
    hops = correlate.correlate(frames, probe, v)
    verdict = decide(hops, probe, SRC, v, _no_route)
    assert (verdict.result, verdict.last_hop, verdict.node) == ("lost", 3, "worker1")
    assert verdict.reason.startswith("no route: overlay is none, so worker1 has no route to "
                                     "10.244.2.0/24 (worker2's pods)")
    assert verdict.answer == "net-unreachable" and verdict.answered_by == "node"


def test_without_an_answer_the_last_node_is_checked_for_a_route():
    probe = icmp_probe(dst="10.244.9.9")
    frames = [frame(1, A_NS, "eth0", True, eth(echo(A, "10.244.9.9"))),
              frame(2, "u1-worker1", "vetha", False, eth(echo(A, "10.244.9.9")))]
    hops = correlate.correlate(frames, probe, view())
    verdict = decide(hops, probe, SRC, view(), lambda ns, dst: "Network is unreachable")
    assert verdict.result == "lost" and verdict.last_hop == 2
    assert verdict.reason == ("no route: worker1 has no route to 10.244.9.9 "
                              "(Network is unreachable)")


def test_a_syn_ack_is_delivered_with_its_round_trip():
    probe = tcp_probe()
    hops = correlate.correlate(service_frames(), probe, view(), proxy_events(), TEXTS)
    verdict = decide(hops, probe, SRC, view())
    assert (verdict.result, verdict.answer, verdict.answered_by) == \
        ("delivered", "syn-ack", "destination")
    assert verdict.reason == "syn-ack from pod default/c on worker2"
    assert verdict.rtt_us == 16.0  # first sighting 1000 ns, answer back in the pod at 17000


def test_a_service_without_endpoints_is_answered_by_the_rule_at_the_first_node():
    probe = tcp_probe(dst="10.96.0.11")
    out = syn(A, 40000, "10.96.0.11", 80)
    rst = IP(src="10.96.0.11", dst=A, id=0) / TCP(sport=80, dport=40000, flags="RA", ack=1001)
    frames = [frame(1, A_NS, "eth0", True, eth(out)),
              frame(2, "u1-worker1", "vetha", False, eth(out)),
              frame(2, "u1-worker1", "cni0", False, eth(out)),
              frame(9, "u1-worker1", "vetha", True, eth(rst)),
              frame(10, A_NS, "eth0", False, eth(rst))]
    header = bytes(out)
    chain = "service-QQQQQQQQ-default/empty/tcp/http"
    base = {"netns": "u1-worker1", "trace_id": 5, "family": "ip", "table": "netlab-proxy"}
    events = [TraceEvent(**base, chain="services", type="rule", handle=1, verdict="goto",
                         target=chain, iif=5, network=header[:20], transport=header[20:40],
                         seq=1),
              TraceEvent(**base, chain=chain, type="rule", handle=2, verdict="continue", seq=2),
              TraceEvent(**base, chain="filter-forward", type="rule", handle=3, verdict="goto",
                         target="no-endpoints", seq=3),
              TraceEvent(**base, chain="no-endpoints", type="rule", handle=4, verdict="drop",
                         seq=4)]
    hops = correlate.correlate(frames, probe, view(), events, {},
                               {"u1-worker1": {5: "vetha"}})
    verdict = decide(hops, probe, SRC, view())
    assert (verdict.result, verdict.answered_by, verdict.node) == ("answered", "rule", "worker1")
    assert verdict.reason.startswith("rejected: service default/empty:http has no endpoints")
    assert verdict.answer == "tcp-rst" and verdict.last_hop == 3


def test_a_reset_from_the_pod_itself_means_nothing_listens():
    probe = tcp_probe(dst=C, dport=8080)
    rst = IP(src=C, dst=A, id=0) / TCP(sport=8080, dport=40000, flags="RA", ack=1001)
    frames = [frame(1, A_NS, "eth0", True, eth(syn(A, 40000, C, 8080))),
              frame(5, C_NS, "eth0", False, eth(syn(A, 40000, C, 8080, ttl=62))),
              frame(6, C_NS, "eth0", True, eth(rst)), frame(9, A_NS, "eth0", False, eth(rst))]
    verdict = decide(correlate.correlate(frames, probe, view()), probe, SRC, view())
    assert (verdict.result, verdict.answered_by) == ("answered", "destination")
    assert verdict.reason == ("tcp-rst from pod default/c on worker2: nothing listens on "
                              "tcp port 8080")


def test_a_datagram_that_arrives_unanswered_is_delivered():
    probe = udp_probe()
    out = IP(src=A, dst=C, id=4444) / UDP(sport=40001, dport=53) / Raw(TAG)
    frames = [frame(1, A_NS, "eth0", True, eth(out)), frame(5, C_NS, "eth0", False, eth(out))]
    verdict = decide(correlate.correlate(frames, probe, view()), probe, SRC, view())
    assert verdict.result == "delivered"
    assert verdict.reason == ("arrived at pod default/c on worker2; no reply (nothing answered "
                              "the datagram)")


def test_lost_on_the_physical_network_and_never_sent():
    probe = tcp_probe(dst=C, dport=8080)
    frames = [frame(1, A_NS, "eth0", True, eth(syn(A, 40000, C, 8080))),
              frame(2, "u1-worker1", "eth0", True, vxlan(syn(A, 40000, C, 8080), W1, W2))]
    verdict = decide(correlate.correlate(frames, probe, view()), probe, SRC, view())
    assert verdict.result == "lost" and verdict.last_hop == 2
    assert verdict.reason == ("lost on the physical network: worker1 sent it towards "
                              f"{W2} and nothing received it")
    never = decide([], probe, SRC, view(), send_error="no route")
    assert (never.result, never.last_hop) == ("lost", 0)
