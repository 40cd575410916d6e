"""The nftables side of a trace, without a kernel: the rules, the events, the listings."""

from __future__ import annotations

import struct

from tracekit import syn, tcp_probe

from netlab.trace import nftrace, rules
from netlab.trace.model import TraceEvent


def _attr(kind: int, payload: bytes, nested: bool = False) -> bytes:
    length = 4 + len(payload)
    raw = struct.pack("=HH", length, kind | (0x8000 if nested else 0)) + payload
    return raw + b"\0" * ((4 - length % 4) % 4)


def _message(family: int, attrs: bytes, kind: int = nftrace.TRACE_MSG_TYPE) -> bytes:
    body = bytes([family, 0]) + b"\0\0" + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_trace_messages_decode_into_events():
    header = bytes(syn("10.244.1.2", 40000, "10.96.0.10", 80))
    verdict = _attr(1, struct.pack("!i", -4)) + _attr(2, b"service-X-default/web/tcp/\0")
    attrs = (_attr(1, b"netlab-proxy\0") + _attr(2, b"services\0")
             + _attr(3, struct.pack("!Q", 11)) + _attr(4, struct.pack("!I", 3))
             + _attr(5, verdict, nested=True) + _attr(6, struct.pack("!I", 0xDEADBEEF))
             + _attr(8, header[:20]) + _attr(9, header[20:40])
             + _attr(10, struct.pack("!I", 5)) + _attr(14, struct.pack("!I", 0x4000)))
    policy = _attr(1, b"t\0") + _attr(2, b"c\0") + _attr(4, struct.pack("!I", 1)) \
        + _attr(6, struct.pack("!I", 1)) + _attr(16, struct.pack("!I", 0))
    data = _message(2, attrs) + _message(7, policy) + _message(2, b"", kind=0x0A00)
    events = nftrace.parse_messages(data, "lab-worker1", seq=10)
    assert len(events) == 2
    e = events[0]
    assert (e.family, e.table, e.chain, e.handle, e.type) == \
        ("ip", "netlab-proxy", "services", 11, "rule")
    assert (e.verdict, e.target, e.trace_id, e.iif, e.mark) == \
        ("goto", "service-X-default/web/tcp/", 0xDEADBEEF, 5, 0x4000)
    assert e.network == header[:20] and e.seq == 11
    assert (events[1].family, events[1].type, events[1].policy) == ("bridge", "policy", "drop")


def test_the_rules_trace_the_tagged_flow_only_and_its_connection():
    script = nftrace.rules_script("netlab-trace-1-ab", tcp_probe(), ("10.244.2.2", "10.244.1.2"))
    assert "add rule ip netlab-trace-1-ab trace_pre ip id 4242 ip protocol tcp ct mark set " \
           "ct mark or 0x00100000" in script
    assert "ct mark and 0x00100000 != 0 meta nftrace set 1" in script
    assert "hook output priority -150" in script and "hook prerouting priority -150" in script
    assert "add chain bridge netlab-trace-1-ab trace_fwd { type filter hook forward" in script
    assert "ip saddr 10.244.2.2 ip daddr 10.244.1.2 meta nftrace set 1" in script
    assert nftrace.table_name(123, "abc") == "netlab-trace-123-abc"


def test_listed_rules_are_found_by_handle():
    listing = (
        "table ip netlab-proxy { # handle 7\n"
        "\tchain endpoint-ABCDEFGH-default/web/tcp/http__10.244.2.2/8080 { # handle 12\n"
        "\t\tcomment \"default/web:http endpoint 10.244.2.2:8080\"\n"
        "\t\tmeta l4proto tcp dnat to 10.244.2.2:8080 comment \"default/web:http -> "
        "10.244.2.2:8080 pod c on worker2\" # handle 13\n"
        "\t}\n"
        "\tchain services { # handle 2\n"
        "\t\tip daddr . meta l4proto . th dport vmap @service-ips # handle 5\n"
        "\t}\n}\n")
    parsed = nftrace.parse_table_listing(listing)
    chain = "endpoint-ABCDEFGH-default/web/tcp/http__10.244.2.2/8080"
    assert parsed[chain] == {13: 'meta l4proto tcp dnat to 10.244.2.2:8080 comment '
                                 '"default/web:http -> 10.244.2.2:8080 pod c on worker2"'}
    assert parsed["services"] == {5: "ip daddr . meta l4proto . th dport vmap @service-ips"}


def test_a_dnat_maps_elements_are_listed_by_index():
    listing = (
        "table ip netlab-proxy { # handle 7\n"
        "\tmap dnat-ABCDEFGH-default/api/tcp/https { # handle 9\n"
        "\t\ttypeof numgen inc mod 2 : ip daddr . th dport\n"
        "\t\tcomment \"default/api:https round-robin\"\n"
        "\t\telements = { 0 comment \"default/api:https -> 10.244.1.7:8443 pod api-a on "
        "worker1\" : 10.244.1.7 . 8443,\n"
        "\t\t\t     1 : 10.244.2.8 . 8443 }\n"
        "\t}\n"
        "\tmap service-ips { # handle 2\n"
        "\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
        "\t}\n}\n")
    parsed = nftrace.parse_table_listing(listing)
    assert parsed == {"dnat-ABCDEFGH-default/api/tcp/https": {
        0: 'comment "default/api:https -> 10.244.1.7:8443 pod api-a on worker1" : '
           "10.244.1.7 . 8443",
        1: ": 10.244.2.8 . 8443"}}


def test_proxy_chains_name_their_service_and_endpoint():
    assert rules.chain_service("service-ABCDEFGH-default/web/tcp/http") == \
        ("default/web:http", None)
    assert rules.chain_service("external-ABCDEFGH-default/web/tcp/") == ("default/web", None)
    assert rules.chain_service("endpoint-ABCDEFGH-kube-system/dns/udp/dns__10.244.1.5/53") == \
        ("kube-system/dns:dns", "10.244.1.5:53")
    assert rules.chain_service("services") is None


def test_a_nodeport_with_masquerade_and_a_drop_elsewhere():
    def ev(chain: str, verdict: str = "continue", table: str = "netlab-proxy",
           kind: str = "rule", handle: int = 1, target: str | None = None) -> TraceEvent:
        return TraceEvent("n", 1, "ip", table, chain, kind, handle, verdict, target)

    ext = "external-ABCDEFGH-default/np/tcp/http"
    ep = "endpoint-ABCDEFGH-default/np/tcp/http__10.244.2.3/8080"
    match = rules.summarize([ev("services", "goto", target=ext), ev(ext, "jump"),
                             ev(ep, "accept"), ev("masquerading", "accept")], {})
    assert match is not None and (match.action, match.nodeport, match.masquerade) == \
        ("dnat", True, True)
    assert match.label == ("NodePort of default/np:http -> endpoint 10.244.2.3:8080, "
                           "masquerade")
    svc = "service-ABCDEFGH-default/one/tcp/http"
    lone = rules.summarize([ev("services", "goto", target=svc), ev(svc, "accept", handle=4)],
                           {("n", "ip", "netlab-proxy", svc): {
                               4: 'meta l4proto tcp dnat to 10.244.1.5:8080 comment '
                                  '"default/one:http -> 10.244.1.5:8080 pod p on worker1"'}})
    assert lone is not None and (lone.action, lone.endpoint, lone.pod) == (
        "dnat", "10.244.1.5:8080", "p on worker1")
    unread = rules.summarize([ev("services", "goto", target=svc), ev(svc, "accept", handle=4)], {})
    assert unread is not None and (unread.action, unread.endpoint) == ("dnat", None)
    assert unread.label == "service default/one:http -> endpoint ?"
    dropped = rules.summarize([ev("input", "drop", table="filter", handle=9)],
                              {("n", "ip", "filter", "input"): {9: "tcp dport 80 drop"}})
    assert dropped is not None and dropped.action == "drop"
    assert dropped.label == "dropped by ip filter input rule 9 'tcp dport 80 drop'"
    assert rules.summarize([ev("nat-postrouting", "accept", kind="policy")], {}) is None
