"""A NetworkPolicy drop in a trace: the verdict names the policy, the direction and the node."""

from __future__ import annotations

from test_trace_correlate import TEXTS, proxy_events, service_frames
from tracekit import syn, tcp_probe, view

from netlab.trace import correlate, rules
from netlab.trace.model import Place, TraceEvent
from netlab.trace.verdict import decide

A, C = "10.244.1.2", "10.244.2.2"
SRC = Place("pod", "default/a", A, node="worker1", netns="u1-worker1.a-1")
POD_CHAIN = "pod-ABCDEFGH-default/c/ingress"
DROP = 'drop comment "NetworkPolicy default/deny-all (ingress) isolates default/c"'


def _policy_events(comment_rule: str = DROP) -> tuple[list[TraceEvent], dict]:
    header = bytes(syn(A, 40000, C, 8080, ttl=63))
    base = {"netns": "u1-worker2", "trace_id": 91, "family": "ip", "table": "netlab-policy"}
    events = [
        TraceEvent(**base, chain="ingress", type="rule", handle=7, verdict="goto",
                   target=POD_CHAIN, network=header[:20], transport=header[20:40], seq=10),
        TraceEvent(**base, chain=POD_CHAIN, type="rule", handle=12, verdict="drop", seq=11)]
    texts = {("u1-worker2", "ip", "netlab-policy", POD_CHAIN): {12: comment_rule}}
    return events, texts


def test_a_policy_drop_at_the_destination_node_is_named_in_the_verdict():
    # The probe got as far as worker2's vxlan0: the ingress chain there dropped it.
    frames = [f for f in service_frames() if f.ts_ns <= 6000]
    events, texts = _policy_events()
    hops = correlate.correlate(frames, tcp_probe(), view(), proxy_events() + events,
                               {**TEXTS, **texts})
    verdict = decide(hops, tcp_probe(), SRC, view())
    assert (verdict.result, verdict.node) == ("lost", "worker2")
    assert verdict.reason == "dropped: NetworkPolicy default/deny-all (ingress) at worker2"
    dropped = [h for h in hops if h.rule is not None and h.rule.action == "drop"]
    assert dropped and dropped[0].rule.table == "netlab-policy"


def test_policy_drop_labels():
    assert rules.policy_drop_label(
        'drop comment "NetworkPolicies x/a, x/b (egress) isolate x/c"') == \
        "dropped: NetworkPolicies x/a, x/b (egress)"
    assert rules.policy_drop_label(
        'ip daddr 10.244.1.0/24 ip daddr != @known-pods drop comment '
        '"pod not yet known to the policy agent (ingress)"') == \
        "dropped: pod not yet known to the policy agent (ingress)"
    assert rules.policy_drop_label("drop") is None
    assert rules.policy_drop_label('drop comment "something else"') is None
