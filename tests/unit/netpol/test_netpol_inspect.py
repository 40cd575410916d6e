"""What ``netlab policy check`` and ``show`` do with the compiled rules: names to
addresses, a Service judged per endpoint after DNAT, the printed lines, the table header."""

from __future__ import annotations

import pytest
from netpolkit import World, pod_ip, pod_node

from netlab.node.netpol import inspect

NODES = {"worker1": "192.168.100.3", "worker2": "192.168.100.4"}
SUBNETS = {"worker1": "10.244.1.0/24", "worker2": "10.244.2.0/24"}


def service(ns: str, name: str, ports: list[dict]) -> dict:
    return {"metadata": {"namespace": ns, "name": name}, "spec": {"ports": ports}}


def slice_(ns: str, svc: str, ports: list[dict], ips: list[tuple[str, bool]]) -> dict:
    return {"metadata": {"namespace": ns, "name": f"{svc}-abcde",
                         "labels": {inspect.SLICE_LABEL: svc}},
            "ports": ports,
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in ips]}


def test_names_resolve_to_addresses(world: World) -> None:
    cluster = world.cluster()
    [a] = inspect.resolve("x/a", cluster, NODES, "default")
    assert (a.ip, a.label, a.node) == (pod_ip("x", "a"), "pod x/a", pod_node("x", "a"))
    [b] = inspect.resolve("b", cluster, NODES, "y")
    assert b.label == "pod y/b"
    [node] = inspect.resolve("worker1", cluster, NODES, "default")
    assert (node.ip, node.label) == ("192.168.100.3", "node worker1")
    [ip] = inspect.resolve(pod_ip("z", "c"), cluster, NODES, "default")
    assert ip.label == "pod z/c"
    [other] = inspect.resolve("10.1.2.3", cluster, NODES, "default")
    assert other.label == "10.1.2.3" and other.node is None
    with pytest.raises(inspect.CheckError, match="no pod, node or address"):
        inspect.resolve("x/nope", cluster, NODES, "default")


def test_a_service_is_judged_per_ready_endpoint_after_dnat(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}})
    cluster = world.cluster()
    services = [service("x", "web", [{"name": "http", "port": 80, "protocol": "TCP"},
                                     {"name": "dns", "port": 80, "protocol": "UDP"}])]
    slices = [slice_("x", "web", [{"name": "http", "port": 8080, "protocol": "TCP"}],
                     [(pod_ip("x", "a"), True), (pod_ip("x", "b"), True),
                      (pod_ip("x", "c"), False)])]
    targets = inspect.resolve("svc/x/web", cluster, NODES, "default", services, slices, 80,
                              "tcp")
    assert [(t.label, t.port) for t in targets] == [("svc x/web -> pod x/a", 8080),
                                                     ("svc x/web -> pod x/b", 8080)]
    [src] = inspect.resolve("y/a", cluster, NODES, "default")
    results = [inspect.check(cluster, src, t, 80, "tcp", NODES, SUBNETS) for t in targets]
    assert all(not r.decision.allowed and r.decision.port == 8080 for r in results)
    with pytest.raises(inspect.CheckError, match="no port 81/tcp"):
        inspect.resolve("svc/x/web", cluster, NODES, "default", services, slices, 81, "tcp")
    with pytest.raises(inspect.CheckError, match="no Service"):
        inspect.resolve("svc/web", cluster, NODES, "y", services, slices, 80, "tcp")


def test_ports_parse() -> None:
    assert inspect.parse_port("80/tcp") == (80, "tcp")
    assert inspect.parse_port("53/UDP") == (53, "udp")
    assert inspect.parse_port("9000/sctp") == (9000, "sctp")
    assert inspect.parse_port("8080") == (8080, "tcp")
    assert inspect.parse_port("icmp") == (None, "icmp")
    for bad in ("http", "0/tcp", "70000/tcp", "80/gre"):
        with pytest.raises(inspect.CheckError):
            inspect.parse_port(bad)


def test_lines_name_each_side_and_the_deciding_policies(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}})
    world.add("x", "from-b", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {
        "matchLabels": {"pod": "b"}}}]}]})
    world.add("y", "no-egress", {"podSelector": {"matchLabels": {"pod": "c"}},
                                 "policyTypes": ["Egress"]})
    cluster = world.cluster()

    def lines(src: str, dst: str, port: int = 80) -> list[str]:
        [s] = inspect.resolve(src, cluster, NODES, "default")
        [d] = inspect.resolve(dst, cluster, NODES, "default")
        return inspect.check(cluster, s, d, port, "tcp", NODES, SUBNETS).lines()

    allowed = lines("x/b", "x/a")
    assert allowed[0].endswith("80/tcp: allowed")
    assert allowed[1].endswith("x/b is not isolated")
    assert allowed[2].endswith("allowed by x/from-b ingress rule 1")
    denied = lines("y/a", "x/a")
    assert denied[0].endswith(": denied")
    assert denied[2].endswith("denied: NetworkPolicies x/deny-all, x/from-b (ingress) isolate "
                              "x/a; no rule allows this")
    egress = lines("y/c", "z/a")
    assert "egress at" in egress[1] and "NetworkPolicy y/no-egress (egress) isolates y/c" \
        in egress[1]
    node = lines("worker1" if pod_node("x", "a") == "worker1" else "worker2", "x/a")
    assert node[0].endswith(": allowed") and "its own node" in node[2]
    json = inspect.check(cluster, *inspect.resolve("y/a", cluster, NODES, "default"),
                         *inspect.resolve("x/a", cluster, NODES, "default"),
                         port=80, protocol="tcp", nodes=NODES).to_json()
    assert json["allowed"] is False and json["ingress"]["policies"] == ["x/deny-all",
                                                                         "x/from-b"]


LISTING = '''table ip netlab-policy {
	map ingress-pods {
		type ipv4_addr : verdict
		comment "pods isolated for ingress"
		elements = { 10.244.1.2 comment "x/a" : goto pod-UMLM545U-x/a/ingress, ''' \
    '''10.244.1.3 comment "x/b" : goto pod-5LPP7PGV-x/b/ingress }
	}

	map egress-pods {
		type ipv4_addr : verdict
		comment "pods isolated for egress"
	}
}
'''


def test_show_lists_the_isolated_pods_above_the_table() -> None:
    text = inspect.describe_table(LISTING)
    assert text.splitlines()[:2] == [
        "# isolated for ingress: x/a (10.244.1.2), x/b (10.244.1.3)",
        "# isolated for egress: none"]
    assert text.endswith(LISTING)
