"""Upstream's NetworkPolicy semantics, cell by cell, on the e2e layout (x, y, z x a, b, c).

Each test builds policies as the API serves them and compares the whole truth
table (or the cells that matter) with what upstream's e2e suite expects.
"""

from __future__ import annotations

from netpolkit import ALL, World, expect, pod_ip

from netlab.node.netpol import model


def test_no_policy_allows_everything(world: World) -> None:
    assert world.table() == expect()


def test_default_deny_ingress_isolates_only_its_namespace_for_ingress(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}})
    denied = {(s, d) for s in ALL for d in ALL if d.startswith("x/") and s != d}
    assert world.table() == expect(denied_cells=denied)
    # x's pods may still send anywhere: the policy has no Egress type.
    assert world.can("x/a", "y/b")


def test_default_deny_all_blocks_both_directions(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    denied = {(s, d) for s in ALL for d in ALL
              if (d.startswith("x/") or s.startswith("x/")) and s != d}
    assert world.table() == expect(denied_cells=denied)


def test_policy_types_default_adds_egress_only_with_egress_rules(world: World) -> None:
    world.add("x", "egress-only-rules", {"podSelector": {"matchLabels": {"pod": "a"}},
                                         "egress": [{"to": [{"podSelector": {}}]}]})
    policy = model.parse_policy(world.policies[("x", "egress-only-rules")])
    assert policy.types == {"ingress", "egress"}
    # Ingress is isolated (no ingress rules), egress only to x's pods.
    assert not world.can("x/b", "x/a")
    assert world.can("x/a", "x/b") and not world.can("x/a", "y/a")
    world.add("x", "plain", {"podSelector": {}})
    assert model.parse_policy(world.policies[("x", "plain")]).types == {"ingress"}


def test_explicit_egress_type_without_rules_denies_all_egress(world: World) -> None:
    world.add("x", "deny-egress", {"podSelector": {"matchLabels": {"pod": "a"}},
                                   "policyTypes": ["Egress"]})
    assert not world.can("x/a", "y/a") and not world.can("x/a", "x/b")
    assert world.can("y/a", "x/a"), "Egress only: ingress stays open"


def test_allow_from_pod_selector_in_the_policy_namespace(world: World) -> None:
    world.add("x", "allow-b", {"podSelector": {"matchLabels": {"pod": "a"}},
                               "ingress": [{"from": [{"podSelector":
                                                      {"matchLabels": {"pod": "b"}}}]}]})
    denied = {(s, "x/a") for s in ALL if s not in ("x/a", "x/b")}
    assert world.table() == expect(denied_cells=denied)


def test_allow_from_namespace_selector(world: World) -> None:
    world.add("x", "allow-y", {"podSelector": {"matchLabels": {"pod": "a"}},
                               "ingress": [{"from": [{"namespaceSelector":
                                                      {"matchLabels": {"ns": "y"}}}]}]})
    denied = {(s, "x/a") for s in ALL if not s.startswith("y/") and s != "x/a"}
    assert world.table() == expect(denied_cells=denied)


def test_automatic_namespace_name_label(world: World) -> None:
    world.namespaces["y"]["metadata"]["labels"] = {}  # only the automatic label is left
    world.add("x", "allow-y", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
        "matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}]})
    assert world.can("y/c", "x/b") and not world.can("z/c", "x/b")


def test_pod_and_namespace_selector_in_one_peer_is_and(world: World) -> None:
    world.add("x", "and", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{
        "namespaceSelector": {"matchExpressions": [{"key": "ns", "operator": "In",
                                                    "values": ["y", "z"]}]},
        "podSelector": {"matchLabels": {"pod": "b"}}}]}]})
    allowed = {("y/b", "x/a"), ("z/b", "x/a")}
    denied = {(s, "x/a") for s in ALL if (s, "x/a") not in allowed and s != "x/a"}
    assert world.table() == expect(denied_cells=denied)


def test_pod_and_namespace_selector_in_two_peers_is_or(world: World) -> None:
    world.add("x", "or", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}},
        {"podSelector": {"matchLabels": {"pod": "b"}}}]}]})
    allowed = {(s, "x/a") for s in ALL if s.startswith("y/")} | {("x/b", "x/a")}
    denied = {(s, "x/a") for s in ALL if (s, "x/a") not in allowed and s != "x/a"}
    assert world.table() == expect(denied_cells=denied)


def test_match_expressions_not_in_and_exists(world: World) -> None:
    world.add("x", "expr", {"podSelector": {"matchExpressions": [
        {"key": "pod", "operator": "NotIn", "values": ["a"]}]},
        "ingress": [{"from": [{"podSelector": {"matchExpressions": [
            {"key": "pod", "operator": "Exists"}]}}]}]})
    assert world.can("x/a", "x/b") and not world.can("y/a", "x/b")
    assert world.can("y/a", "x/a"), "x/a is not selected (NotIn)"


def test_ingress_empty_rule_allows_everything(world: World) -> None:
    world.add("x", "deny", {"podSelector": {}})
    world.add("x", "allow-all", {"podSelector": {}, "ingress": [{}]})
    assert world.table() == expect()


def test_empty_from_list_allows_every_peer_on_its_ports(world: World) -> None:
    world.add("x", "port-only", {"podSelector": {}, "ingress": [{"from": [],
                                                                 "ports": [{"port": 81}]}]})
    assert world.can("z/c", "x/a", 81) and not world.can("z/c", "x/a", 80)


def test_allow_on_a_port_and_protocol(world: World) -> None:
    world.add("x", "p81", {"podSelector": {"matchLabels": {"pod": "a"}},
                           "ingress": [{"ports": [{"port": 81, "protocol": "TCP"}]}]})
    assert world.can("y/a", "x/a", 81, "tcp")
    assert not world.can("y/a", "x/a", 80, "tcp")
    assert not world.can("y/a", "x/a", 81, "udp"), "a TCP rule does not allow UDP"
    assert not world.can("y/a", "x/a", 81, "sctp")


def test_udp_only_rule_does_not_allow_tcp(world: World) -> None:
    world.add("x", "udp", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "UDP"}]}]})
    assert world.can("y/a", "x/a", 80, "udp") and world.can("y/a", "x/a", 81, "udp")
    assert not world.can("y/a", "x/a", 80, "tcp")


def test_sctp_port(world: World) -> None:
    world.add("x", "sctp", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "SCTP",
                                                                        "port": 80}]}]})
    assert world.can("y/a", "x/a", 80, "sctp") and not world.can("y/a", "x/a", 80, "tcp")


def test_named_port_resolves_per_target_pod(world: World) -> None:
    # x/b names its port 81 "serve-80-tcp": the name, not the number, decides.
    world.pods[("x", "b")]["spec"]["containers"][0]["ports"] = [
        {"name": "serve-80-tcp", "containerPort": 81, "protocol": "TCP"}]
    world.add("x", "named", {"podSelector": {}, "ingress": [{"ports": [
        {"port": "serve-80-tcp"}]}]})
    assert world.can("y/a", "x/a", 80) and not world.can("y/a", "x/a", 81)
    assert world.can("y/a", "x/b", 81) and not world.can("y/a", "x/b", 80)
    assert not world.can("y/a", "x/c", 80, "udp"), "the name carries TCP"


def test_named_port_with_wrong_protocol_resolves_nothing(world: World) -> None:
    world.add("x", "named-udp", {"podSelector": {}, "ingress": [{"ports": [
        {"port": "serve-80-tcp", "protocol": "UDP"}]}]})
    assert not world.can("y/a", "x/a", 80, "udp") and not world.can("y/a", "x/a", 80, "tcp")


def test_named_port_on_egress_resolves_on_the_destination(world: World) -> None:
    world.pods[("y", "b")]["spec"]["containers"][0]["ports"] = [
        {"name": "serve-80-tcp", "containerPort": 81, "protocol": "TCP"}]
    world.add("x", "named-egress", {"podSelector": {"matchLabels": {"pod": "a"}},
                                    "policyTypes": ["Egress"],
                                    "egress": [{"ports": [{"port": "serve-80-tcp"}]}]})
    assert world.can("x/a", "y/a", 80) and not world.can("x/a", "y/a", 81)
    assert world.can("x/a", "y/b", 81) and not world.can("x/a", "y/b", 80)


def test_end_port_range(world: World) -> None:
    world.add("x", "range", {"podSelector": {}, "ingress": [{"ports": [
        {"port": 80, "endPort": 81, "protocol": "TCP"}]}]})
    assert world.can("y/a", "x/a", 80) and world.can("y/a", "x/a", 81)
    assert not world.can("y/a", "x/a", 82) and not world.can("y/a", "x/a", 79)


def test_egress_ip_block_with_except(world: World) -> None:
    world.add("x", "to-y", {"podSelector": {"matchLabels": {"pod": "a"}},
                            "policyTypes": ["Egress"],
                            "egress": [{"to": [{"ipBlock": {
                                "cidr": "10.244.2.0/24",
                                "except": [f"{pod_ip('y', 'b')}/32"]}}]}]})
    assert world.can("x/a", "y/a") and world.can("x/a", "y/c")
    assert not world.can("x/a", "y/b"), "the except range is carved out"
    assert not world.can("x/a", "z/a") and not world.can("x/a", "x/b")


def test_ingress_ip_block_matches_pod_sources_too(world: World) -> None:
    world.add("x", "from-z", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {
        "cidr": "10.244.3.0/24"}}]}]})
    assert world.can("z/a", "x/a") and not world.can("y/a", "x/a")


def test_block_cidrs_subtracts_excepts() -> None:
    nets = model.block_cidrs("10.0.0.0/24", ["10.0.0.0/26", "10.0.0.128/25"])
    assert [str(n) for n in nets] == ["10.0.0.64/26"]
    assert [str(n) for n in model.block_cidrs("10.0.0.0/24", ["10.1.0.0/16"])] == ["10.0.0.0/24"]
    assert model.block_cidrs("fd00::/64", []) == []


def test_stacked_policies_add_up(world: World) -> None:
    world.add("x", "from-b", {"podSelector": {"matchLabels": {"pod": "a"}},
                              "ingress": [{"from": [{"podSelector": {"matchLabels":
                                                                     {"pod": "b"}}}]}]})
    world.add("x", "from-c", {"podSelector": {"matchLabels": {"pod": "a"}},
                              "ingress": [{"from": [{"podSelector": {"matchLabels":
                                                                     {"pod": "c"}}}]}]})
    assert world.can("x/b", "x/a") and world.can("x/c", "x/a") and not world.can("y/a", "x/a")
    decision = world.decision("x/c", "x/a")
    assert decision.ingress.policies == ["x/from-b", "x/from-c"]
    assert decision.ingress.allowed_by == ["x/from-c ingress rule 1"]


def test_egress_deny_at_the_client_even_when_the_server_allows(world: World) -> None:
    world.add("y", "deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
    world.add("x", "allow-all", {"podSelector": {}, "ingress": [{}]})
    decision = world.decision("y/a", "x/a")
    assert not decision.allowed and decision.ingress.allowed and not decision.egress.allowed
    assert decision.summary().startswith("denied: NetworkPolicy y/deny-egress (egress)")


def test_pod_label_change_moves_it_in_and_out_of_selection(world: World) -> None:
    world.add("x", "from-b", {"podSelector": {"matchLabels": {"pod": "a"}},
                              "ingress": [{"from": [{"podSelector": {"matchLabels":
                                                                     {"pod": "b"}}}]}]})
    assert not world.can("x/c", "x/a")
    world.pods[("x", "c")]["metadata"]["labels"] = {"pod": "b"}
    assert world.can("x/c", "x/a")
    world.pods[("x", "a")]["metadata"]["labels"] = {"pod": "other"}
    assert world.can("y/a", "x/a"), "no longer selected: open again"


def test_namespace_label_change(world: World) -> None:
    world.add("x", "from-team", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
        "matchLabels": {"team": "blue"}}}]}]})
    assert not world.can("y/a", "x/a")
    world.namespaces["y"]["metadata"]["labels"]["team"] = "blue"
    assert world.can("y/a", "x/a") and not world.can("z/a", "x/a")


def test_deleting_the_policy_restores_access(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}})
    assert not world.can("y/a", "x/a")
    del world.policies[("x", "deny-all")]
    assert world.table() == expect()


def test_selector_matching_nothing_isolates_nothing(world: World) -> None:
    world.add("x", "nobody", {"podSelector": {"matchLabels": {"pod": "nobody"}}})
    world.add("x", "from-nobody", {"podSelector": {"matchLabels": {"pod": "a"}},
                                   "ingress": [{"from": [{"podSelector": {"matchLabels":
                                                                          {"pod": "nobody"}}}]}]})
    assert world.can("y/a", "x/b")
    assert not world.can("y/a", "x/a") and not world.can("x/b", "x/a")


def test_policy_in_a_deleted_namespace_still_selects_by_name(world: World) -> None:
    # Until the namespace controller deletes them, its policies stand; the
    # namespace's automatic label is assumed for it.
    del world.namespaces["y"]
    world.add("x", "from-y", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
        "matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}]})
    assert world.can("y/a", "x/a") and not world.can("z/a", "x/a")


def test_a_pod_may_always_reach_itself(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert world.can("x/a", "x/a")
    assert world.decision("x/a", "x/a").ingress.note == "a pod may always reach itself"


def test_its_own_node_may_reach_an_isolated_pod() -> None:
    world = World().add("x", "deny-all", {"podSelector": {}})
    cluster = world.cluster()
    dst = pod_ip("x", "a")
    node = cluster.by_ip[dst].node
    decision = model.decide(cluster, "192.168.100.3", dst, "tcp", 80,
                            node_ips={"192.168.100.3": node})
    assert decision.allowed and "its own node" in decision.ingress.note
    other = model.decide(cluster, "192.168.100.9", dst, "tcp", 80,
                         node_ips={"192.168.100.9": "elsewhere"})
    assert not other.allowed


def test_pods_without_address_host_network_or_finished_are_no_peers(world: World) -> None:
    world.add("x", "from-y", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
        "matchLabels": {"ns": "y"}}}]}]})
    world.pods[("y", "b")]["status"]["phase"] = "Succeeded"
    world.pods[("y", "c")]["spec"]["hostNetwork"] = True
    cluster = world.cluster()
    rule = cluster.compiled(cluster.policies[0], "ingress")[0]
    assert rule.peers == (pod_ip('y', 'a'),)


def test_policy_only_selects_pods_of_its_namespace(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {"matchLabels": {"pod": "a"}}})
    assert not world.can("z/a", "x/a") and world.can("z/b", "y/a")


def test_unusable_protocol_matches_nothing(world: World) -> None:
    world.add("x", "icmp-only", {"podSelector": {}, "ingress": [{"ports": [
        {"protocol": "ICMP", "port": 80}]}]})
    assert not world.can("y/a", "x/a", 80, "tcp") and not world.can("y/a", "x/a", 80, "udp")


def test_rule_without_ports_allows_icmp_too(world: World) -> None:
    world.add("x", "from-y", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
        "matchLabels": {"ns": "y"}}}]}]})
    assert world.decision("y/a", "x/a", 0, "icmp").allowed
    world.add("x", "ports", {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]})
    assert not world.decision("z/a", "x/a", 0, "icmp").allowed


def test_summary_names_the_deciding_policies(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}})
    world.add("x", "from-b", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {
        "matchLabels": {"pod": "b"}}}], "ports": [{"port": 80}]}]})
    assert world.decision("x/b", "x/a").summary() == \
        "allowed (egress: x/b not isolated; ingress allowed by x/from-b ingress rule 1)"
    assert world.decision("y/b", "x/a").summary() == \
        "denied: NetworkPolicies x/deny-all, x/from-b (ingress) isolate x/a; no rule allows this"


def test_set_policy_keeps_every_answer_equal_to_a_fresh_compile(world: World) -> None:
    cluster = world.cluster()
    for ref in ALL:
        for direction in ("ingress", "egress"):
            cluster.isolating_keys(cluster.by_ip[pod_ip(*ref.split("/"))], direction)
    changes = [("x", "deny-all", {"podSelector": {}}),
               ("x", "a-only", {"podSelector": {"matchLabels": {"pod": "a"}},
                                "policyTypes": ["Egress"]}),
               ("x", "deny-all", {"podSelector": {"matchLabels": {"pod": "b"}}}),
               ("y", "all", {"podSelector": {}, "ingress": [{}]}),
               ("x", "a-only", None)]
    for ns, name, spec in changes:
        if spec is None:
            del world.policies[(ns, name)]
            cluster.set_policy((ns, name), None)
        else:
            world.add(ns, name, spec)
            cluster.set_policy((ns, name), model.parse_policy(world.policies[(ns, name)]))
        fresh = world.cluster()
        for ref in ALL:
            pod = fresh.by_ip[pod_ip(*ref.split("/"))]
            for direction in ("ingress", "egress"):
                assert [p.key for p in cluster.isolating(pod, direction)] == \
                    [p.key for p in fresh.isolating(pod, direction)], (ns, name, ref, direction)
                assert cluster.isolating_keys(pod, direction) == \
                    fresh.isolating_keys(pod, direction)
        assert [p.key for p in cluster.policies] == [p.key for p in fresh.policies]


def test_an_address_no_pod_holds_fails_closed_once_policies_exist(world: World) -> None:
    subnets = {"worker1": "10.244.1.0/24", "worker2": "10.244.2.0/24"}
    cluster = world.cluster()
    open_ = model.decide(cluster, pod_ip("x", "a"), "10.244.1.99", "tcp", 80,
                         pod_subnets=subnets)
    assert open_.allowed, "no policy anywhere: nothing fails closed"
    world.add("z", "deny-all", {"podSelector": {}})
    cluster = world.cluster()
    closed = model.decide(cluster, pod_ip("x", "a"), "10.244.1.99", "tcp", 80,
                          pod_subnets=subnets)
    assert not closed.allowed and "no pod the agent knows has 10.244.1.99" in closed.summary()
    gateway = model.decide(cluster, pod_ip("x", "a"), "10.244.1.1", "tcp", 80,
                           pod_subnets=subnets)
    assert gateway.allowed, "the node's own address on the bridge is not a pod's"
