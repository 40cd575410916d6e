"""The proxy seen from the pods and from outside: real connections through real tables."""

from __future__ import annotations

import collections
import socket
import time

from proxykit import (
    CLUSTER,
    ProxyLab,
    endpoints,
    service,
    tcp_request,
    udp_request,
    udp_socket,
)

from netlab.kernel import nft
from netlab.kernel.netns import run_in_netns
from netlab.node.proxy import ruleset
from netlab.node.proxy.describe import describe, summary
from netlab.node.proxy.syncer import Proxier, proxy_tables
from netlab.trace.resolve import services_from_table

HTTP = {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
UDP = {"name": "udp", "port": 80, "targetPort": 8080, "protocol": "UDP"}
EP_HTTP = {"name": "http", "port": 8080, "protocol": "TCP"}
EP_UDP = {"name": "udp", "port": 8080, "protocol": "UDP"}
SIX = ("w1-a", "w1-b", "w1-c", "w2-a", "w2-b", "w2-c")


def _pod_of(answer: str | None) -> str | None:
    return answer.split()[0] if answer else None


def test_round_robin_reaches_each_of_six_endpoints_exactly_ten_times(proxy_lab: ProxyLab):
    lab = proxy_lab
    ready = [lab.pods[p] for p in SIX]
    # A named targetPort ("http"), and a not-ready pod that must get nothing.
    lab.program(service("web", "10.96.0.10", [HTTP, UDP]),
                endpoints("web", ready, [EP_HTTP, EP_UDP], not_ready=[lab.pods["cp-a"]]))
    client = lab.pods["w2-b"].netns
    tcp = collections.Counter(_pod_of(tcp_request(client, "10.96.0.10", 80)) for _ in range(60))
    assert tcp == {p: 10 for p in SIX}, f"TCP spread over endpoints: {dict(tcp)}"
    udp = collections.Counter(_pod_of(udp_request(client, "10.96.0.10", 80, sport=42000 + i))
                              for i in range(60))
    assert udp == {p: 10 for p in SIX}, f"UDP spread over endpoints: {dict(udp)}"


def test_nodeport_from_outside_reaches_every_node_and_is_masqueraded(proxy_lab: ProxyLab):
    lab = proxy_lab
    lab.program(service("np", "10.96.0.11", [{"name": "http", "port": 80, "targetPort": 8080,
                                              "nodePort": 30080}], type_="NodePort"),
                endpoints("np", [lab.pods["w1-b"], lab.pods["w2-c"]], [EP_HTTP]))
    client = lab.ns("client")
    client_ip = str(lab.plan.node("client").underlay.ip)
    for node in CLUSTER:
        node_ip = str(lab.plan.node(node).underlay.ip)
        answers = [tcp_request(client, node_ip, 30080) for _ in range(4)]
        assert all(answers), f"NodePort on {node} did not answer: {answers}"
        assert {_pod_of(a) for a in answers} == {"w1-b", "w2-c"}, \
            f"via {node}, connections should land on endpoints on both workers: {answers}"
        peers = {a.split()[2] for a in answers if a}
        assert client_ip not in peers, "the endpoint saw the client's address: no masquerade"
        assert peers <= lab.node_addresses(node), \
            f"via {node} the endpoint saw {peers}, not addresses of {node}"


def test_a_pod_reaches_itself_through_its_service(proxy_lab: ProxyLab):
    lab = proxy_lab
    me = lab.pods["w1-a"]
    lab.program(service("self", "10.96.0.20", [HTTP]), endpoints("self", [me], [EP_HTTP]))
    answers = [tcp_request(me.netns, "10.96.0.20", 80) for _ in range(3)]
    assert [_pod_of(a) for a in answers] == ["w1-a"] * 3, answers
    # Hairpin: masqueraded to the node, or the pod would drop a packet from itself.
    assert answers[0].split()[2] == str(lab.plan.node("worker1").gateway.ip)


def test_a_pod_reaches_itself_among_several_endpoints(proxy_lab: ProxyLab):
    """Hairpin through the DNAT map (several endpoints, no chain per endpoint) and
    through an affinity endpoint chain: the pod answers itself from the node's
    address, while its connections to the other endpoint keep the pod's address."""
    lab = proxy_lab
    me, other = lab.pods["w1-a"], lab.pods["w2-a"]
    gateway = str(lab.plan.node("worker1").gateway.ip)
    lab.program(service("hp", "10.96.0.23", [HTTP, UDP]),
                endpoints("hp", [me, other], [EP_HTTP, EP_UDP]))
    answers = [tcp_request(me.netns, "10.96.0.23", 80) for _ in range(4)]
    answers += [udp_request(me.netns, "10.96.0.23", 80, sport=43000 + i) for i in range(4)]
    assert all(answers), answers
    peers = {(_pod_of(a), a.split()[2]) for a in answers if a}
    assert peers == {("w1-a", gateway), ("w2-a", me.ip)}, peers
    lab.program(service("hp-sticky", "10.96.0.24", [HTTP], affinity=600),
                endpoints("hp-sticky", [me], [EP_HTTP]))
    answer = tcp_request(me.netns, "10.96.0.24", 80)
    assert answer and answer.split()[:3:2] == ["w1-a", gateway], answer


def test_a_pod_reaches_a_service_whose_only_endpoint_is_on_its_own_bridge(proxy_lab: ProxyLab):
    lab = proxy_lab
    client, server = lab.pods["w1-a"], lab.pods["w1-b"]
    lab.program(service("local", "10.96.0.21", [HTTP, UDP]),
                endpoints("local", [server], [EP_HTTP, EP_UDP]))
    answer = tcp_request(client.netns, "10.96.0.21", 80)
    assert _pod_of(answer) == "w1-b", f"same-bridge Service over TCP: {answer}"
    assert answer.split()[2] == client.ip, "the server should see the client pod's own address"
    assert _pod_of(udp_request(client.netns, "10.96.0.21", 80)) == "w1-b"


def test_scale_down_then_empty(proxy_lab: ProxyLab):
    lab = proxy_lab
    four = [lab.pods[p] for p in ("w1-a", "w1-b", "w2-a", "w2-b")]
    lab.program(service("scale", "10.96.0.30", [HTTP]), endpoints("scale", four, [EP_HTTP]))
    client = lab.pods["w2-c"].netns
    assert {_pod_of(tcp_request(client, "10.96.0.30", 80)) for _ in range(8)} == \
        {"w1-a", "w1-b", "w2-a", "w2-b"}
    lab.program(endpoints("scale", [lab.pods["w1-a"], lab.pods["w2-a"]], [EP_HTTP]))
    reached = collections.Counter(_pod_of(tcp_request(client, "10.96.0.30", 80))
                                  for _ in range(20))
    assert reached == {"w1-a": 10, "w2-a": 10}, f"after scale-down: {dict(reached)}"
    lab.program(endpoints("scale", [], [EP_HTTP]))
    for src in (client, lab.ns("worker1")):  # from a pod, and from a node itself
        outcomes, times = [], []
        for _ in range(3):  # the fastest of three: a busy 2-core machine can stall a thread
            outcome, elapsed = _connect(src, "10.96.0.30", 80)
            outcomes.append(outcome)
            times.append(elapsed)
        assert outcomes == ["refused"] * 3, f"from {src}: {outcomes}"
        assert min(times) < 0.1, f"refusal took {min(times) * 1000:.0f} ms"


def _connect(src: str, ip: str, port: int) -> tuple[str, float]:
    sock = run_in_netns(src, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.settimeout(2)
    started = time.monotonic()
    try:
        sock.connect((ip, port))
        outcome = "connected"
    except ConnectionRefusedError:
        outcome = "refused"
    except OSError as exc:
        outcome = f"failed: {exc}"
    finally:
        sock.close()
    return outcome, time.monotonic() - started


def test_client_ip_affinity_pins_a_client_to_one_endpoint(proxy_lab: ProxyLab):
    lab = proxy_lab
    four = [lab.pods[p] for p in ("w1-b", "w1-c", "w2-a", "w2-c")]
    lab.program(service("sticky", "10.96.0.31", [HTTP], affinity=600),
                endpoints("sticky", four, [EP_HTTP]))
    for client in ("w1-a", "w2-b"):
        reached = {_pod_of(tcp_request(lab.pods[client].netns, "10.96.0.31", 80))
                   for _ in range(12)}
        assert len(reached) == 1 and None not in reached, f"{client} reached {reached}"


def test_two_ports_on_one_service(proxy_lab: ProxyLab):
    lab = proxy_lab
    lab.program(
        service("multi", "10.96.0.32", [{"name": "a", "port": 81, "targetPort": 8080},
                                        {"name": "b", "port": 82, "targetPort": "metrics"}]),
        endpoints("multi", [lab.pods["w2-a"]], [{"name": "a", "port": 8080},
                                                {"name": "b", "port": 9090}]))
    client = lab.pods["w1-c"].netns
    assert tcp_request(client, "10.96.0.32", 81).split()[:2] == ["w2-a", "8080"]
    assert tcp_request(client, "10.96.0.32", 82).split()[:2] == ["w2-a", "9090"]


def test_a_removed_udp_endpoint_loses_its_flows(proxy_lab: ProxyLab):
    lab = proxy_lab
    pair = [lab.pods["w1-c"], lab.pods["w2-c"]]
    lab.program(service("dns", "10.96.0.40", [UDP]), endpoints("dns", pair, [EP_UDP]))
    sock = udp_socket(lab.pods["w2-b"].netns)  # one socket: one flow, one conntrack entry
    try:
        first = _pod_of(udp_request("", "10.96.0.40", 80, sock=sock))
        assert _pod_of(udp_request("", "10.96.0.40", 80, sock=sock)) == first, "flow is sticky"
        survivor = [p for p in pair if p.name != first]
        lab.program(endpoints("dns", survivor, [EP_UDP]))
        # Without the flush, the entry would keep DNATing to the removed (still running) pod.
        assert _pod_of(udp_request("", "10.96.0.40", 80, sock=sock)) == survivor[0].name
    finally:
        sock.close()


def test_describe_labels_the_live_table(proxy_lab: ProxyLab):
    lab = proxy_lab
    lab.program(service("shown", "10.96.0.50", [HTTP]),
                endpoints("shown", [lab.pods["w1-b"]], [EP_HTTP]))
    text = describe(lab.proxiers["worker1"].ruleset_text())
    assert "default/shown:http (tcp)  ClusterIP 10.96.0.50:80" in text
    assert "#0 -> 10.244.1.11:8080  pod w1-b on worker1" in text
    # One endpoint, no affinity: the Service chain DNATs itself, under its own label.
    assert "# default/shown:http (tcp): Service chain, ClusterIP 10.96.0.50:80\n" \
           "\tchain service-" in text
    assert "dnat to 10.244.1.11:8080" in text and "default/shown/tcp/http__" not in text


def test_services_spread_over_shard_tables_all_answer(proxy_lab: ProxyLab, monkeypatch):
    """One shard table per Service (SHARD_PORTS lowered): ClusterIP, NodePort with
    masquerade, hairpin and refusal still work across tables, a partial sync
    changes one shard, and a smaller layout deletes the extra tables."""
    lab = proxy_lab
    monkeypatch.setattr(ruleset, "SHARD_PORTS", 1)
    lab.program(service("sh-a", "10.96.0.70", [HTTP]),
                endpoints("sh-a", [lab.pods["w2-a"]], [EP_HTTP]),
                service("sh-np", "10.96.0.71", [{"name": "http", "port": 80, "targetPort": 8080,
                                                 "nodePort": 30071}], type_="NodePort"),
                endpoints("sh-np", [lab.pods["w1-c"]], [EP_HTTP]),
                service("sh-self", "10.96.0.72", [HTTP]),
                endpoints("sh-self", [lab.pods["w1-a"]], [EP_HTTP]),
                service("sh-none", "10.96.0.73", [HTTP]), endpoints("sh-none", [], [EP_HTTP]))
    for proxier in lab.proxiers.values():
        proxier.force_full()
    lab.sync()
    worker1 = lab.ns("worker1")
    tables = proxy_tables(worker1)
    assert len(tables) == lab.proxiers["worker1"].cfg.shards >= 4, tables
    client = lab.pods["w2-b"].netns
    assert _pod_of(tcp_request(client, "10.96.0.70", 80)) == "w2-a"
    answer = tcp_request(lab.ns("client"), str(lab.plan.node("worker2").underlay.ip), 30071)
    assert answer and answer.split()[0] == "w1-c", answer
    assert answer.split()[2] in lab.node_addresses("worker2"), "NodePort not masqueraded"
    me = lab.pods["w1-a"]
    hairpin = tcp_request(me.netns, "10.96.0.72", 80)
    assert hairpin and hairpin.split()[2] == str(lab.plan.node("worker1").gateway.ip), hairpin
    assert _connect(client, "10.96.0.73", 80)[0] == "refused"
    lab.program(endpoints("sh-a", [lab.pods["w2-c"]], [EP_HTTP]))  # a partial sync
    assert _pod_of(tcp_request(client, "10.96.0.70", 80)) == "w2-c"
    listed = lab.proxiers["worker1"].ruleset_text() or ""
    shown = {p["service"]: p for p in summary(listed)}  # what `netlab proxy show` reads
    assert {"default/sh-a:http", "default/sh-np:http", "default/sh-self:http",
            "default/sh-none:http"} <= set(shown), sorted(shown)
    assert [e["address"] for e in shown["default/sh-a:http"]["endpoints"]] == \
        [f"{lab.pods['w2-c'].ip}:8080"]
    assert shown["default/sh-np:http"]["nodePort"] == 30071 and shown["default/sh-none:http"][
        "refuses"]
    traced = {s.name for s in services_from_table(listed)}  # what `netlab trace` reads
    assert {"sh-a", "sh-np", "sh-self", "sh-none"} <= traced, traced
    monkeypatch.undo()
    for proxier in lab.proxiers.values():
        proxier.force_full()
    lab.sync()
    assert proxy_tables(worker1) == ["netlab-proxy"]
    assert _pod_of(tcp_request(client, "10.96.0.70", 80)) == "w2-c"


def test_cleanup_removes_the_table(proxy_lab: ProxyLab):
    lab = proxy_lab
    ns = lab.ns("worker2")
    extra = Proxier(ns, None, "10.244.0.0/16", table="netlab-proxy-extra", min_interval=0)
    extra.update_service(service("x", "10.96.0.60", [HTTP]))
    assert extra.sync().ok
    assert nft.list_table(ns, "netlab-proxy-extra") is not None
    assert extra.cleanup()
    assert nft.list_table(ns, "netlab-proxy-extra") is None
    assert nft.list_table(ns, "netlab-proxy") is not None, "another table was touched"
