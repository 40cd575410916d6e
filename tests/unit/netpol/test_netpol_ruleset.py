"""The policy table as text: what each node gets, labels, sets, and nft's own check of it."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from netpolkit import World, pod_ip, pod_node

from netlab.node.netpol import model, ruleset

CFG = {"worker1": ruleset.PolicyConfig("10.244.1.0/24"),
       "worker2": ruleset.PolicyConfig("10.244.2.0/24")}


def render(world: World, node: str = "worker1") -> str:
    return ruleset.render(CFG[node], model.compile_node(world.cluster(), node))


def nft_check(text: str) -> None:
    """nft parses and the kernel validates the script in a throwaway namespace
    (``unshare -n``: nothing is committed anywhere that outlives the check)."""
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"):
        pytest.skip("needs root, nft and unshare")
    proc = subprocess.run(["unshare", "-n", "nft", "-f", "-"], input=text, text=True,
                          capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_without_policies_the_table_passes_everything_and_never_fails_closed(
        world: World) -> None:
    text = render(world)
    assert "known-pods" in text and "drop" not in text
    assert "ingress-pods { type ipv4_addr : verdict; comment \"pods isolated for ingress\"; }" \
        in text
    nft_check(text)


def test_the_table_is_replaced_in_one_transaction(world: World) -> None:
    lines = render(world).splitlines()
    assert lines[:2] == ["add table ip netlab-policy", "delete table ip netlab-policy"]


def test_each_node_holds_only_its_own_pods(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}})
    for node in ("worker1", "worker2"):
        text = render(world, node)
        for name in ("a", "b", "c"):
            mine = pod_node("x", name) == node
            assert (f"{pod_ip('x', name)} comment \"x/{name}\" : goto" in text) == mine
        nft_check(text)


def test_hooks_and_priorities_run_after_dnat(world: World) -> None:
    text = render(world.add("x", "deny-all", {"podSelector": {}}))
    assert "egress-forward { type filter hook forward priority 5;" in text
    assert "egress-input { type filter hook input priority 5;" in text
    assert "ingress { type filter hook forward priority 10;" in text
    assert "hook output" not in text, "the node's own traffic (probes) is never judged"
    assert text.count("ct state established,related accept") == 3


def test_drop_rule_names_the_isolating_policies(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}})
    text = render(world, pod_node("x", "a"))
    assert 'drop comment "NetworkPolicy x/deny-all (ingress) isolates x/a"' in text
    world.add("x", "from-b", {"podSelector": {"matchLabels": {"pod": "a"}},
                              "ingress": [{"from": [{"podSelector":
                                                     {"matchLabels": {"pod": "b"}}}]}]})
    text = render(world, pod_node("x", "a"))
    assert 'drop comment "NetworkPolicies x/deny-all, x/from-b (ingress) isolate x/a"' in text


def test_many_policies_are_summarised_within_the_comment_limit() -> None:
    keys = tuple(("x", f"a-rather-long-policy-name-{i}") for i in range(10))
    comment = ruleset.drop_comment(keys, "ingress", "x/a")
    assert comment.endswith("and 8 more (ingress) isolate x/a") and len(comment) < 120


def test_fail_closed_rules_once_any_policy_exists(world: World) -> None:
    world.add("z", "deny-all", {"podSelector": {}})
    text = render(world, "worker1")
    assert ('ip daddr 10.244.1.0/24 ip daddr != @known-pods drop comment '
            '"pod not yet known to the policy agent (ingress)"') in text
    assert "ip saddr 10.244.1.0/24 ip saddr != @known-pods drop" in text
    known = [pod_ip(n, p) for n in "xyz" for p in "abc" if pod_node(n, p) == "worker1"]
    for ip in known:
        assert ip in text.split("known-pods {", 1)[1].split("}", 1)[0]


def test_a_pending_pod_is_not_known_so_it_fails_closed(world: World) -> None:
    world.pods[("x", "a")]["status"].pop("podIP")
    world.add("x", "deny-all", {"podSelector": {}})
    text = render(world, pod_node("x", "a"))
    known = text.split("known-pods {", 1)[1].split("}", 1)[0]
    assert pod_ip("x", "a") not in known


def test_peers_ports_and_named_ports_render_as_sets_and_matches(world: World) -> None:
    world.add("x", "mixed", {"podSelector": {}, "ingress": [{
        "from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                 {"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}],
        "ports": [{"port": 80, "protocol": "TCP"}, {"port": 1000, "endPort": 2000,
                                                    "protocol": "UDP"},
                  {"port": "serve-81-udp", "protocol": "UDP"}, {"protocol": "SCTP"}]}]})
    text = render(world, "worker1")
    assert "flags interval" in text and "192.168.0.0/24" in text and "192.168.1.0/24" not in text
    assert "meta l4proto tcp th dport 80 accept" in text
    assert "meta l4proto udp th dport 1000-2000 accept" in text
    assert "meta l4proto sctp accept" in text
    assert "named port serve-81-udp/udp" in text
    assert 'comment "x/mixed ingress rule 1: 80/tcp"' in text
    nft_check(text)


def test_single_peer_and_single_named_target_are_inline(world: World) -> None:
    world.add("x", "one", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{
        "from": [{"podSelector": {"matchLabels": {"pod": "b"}}}],
        "ports": [{"port": "serve-80-tcp"}]}]})
    text = render(world, pod_node("x", "a"))
    assert (f"ip saddr {pod_ip('x', 'b')} ip daddr {pod_ip('x', 'a')} meta l4proto tcp "
            "th dport 80 accept") in text
    assert "add set ip netlab-policy peers-" not in text
    nft_check(text)


def test_a_rule_whose_peers_select_nothing_renders_no_accept(world: World) -> None:
    world.add("x", "nobody", {"podSelector": {}, "ingress": [{"from": [{"podSelector": {
        "matchLabels": {"pod": "nobody"}}}]}]})
    text = render(world, "worker1")
    chain = next(line for line in text.splitlines() if "rules-" in line and "add chain" in line)
    assert "accept" not in chain
    nft_check(text)


def test_egress_rules_match_the_destination(world: World) -> None:
    world.add("x", "egress", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
        {"to": [{"ipBlock": {"cidr": "10.244.2.0/24"}}], "ports": [{"port": 53,
                                                                     "protocol": "UDP"}]}]})
    text = render(world, "worker1")
    assert "ip daddr 10.244.2.0/24 meta l4proto udp th dport 53 accept" in text
    assert "ip saddr vmap @egress-pods" in text
    nft_check(text)


def test_deny_all_everywhere_with_every_feature_passes_nft(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    world.add("y", "allow", {"podSelector": {}, "ingress": [{}], "egress": [{"to": [
        {"podSelector": {}, "namespaceSelector": {}}]}]})
    world.add("z", "named", {"podSelector": {}, "ingress": [{"ports": [
        {"port": "serve-80-tcp"}, {"port": "serve-81-tcp"}]}]})
    for node in ("worker1", "worker2"):
        nft_check(render(world, node))


def test_rules_with_the_same_peers_share_one_set(world: World) -> None:
    for name in ("one", "two"):
        world.add("x", name, {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {
            "matchLabels": {"ns": "y"}}}], "ports": [{"port": 80 if name == "one" else 81}]}]})
    text = render(world, "worker1")
    assert text.count("add set ip netlab-policy peers-") == 1
    assert 'comment "x/one ingress rule 1 peers"' in text
    assert text.count("ip saddr @peers-") == 2
    nft_check(text)


def nft_check_sequence(*scripts: str) -> None:
    """Each script applied after the other in one throwaway namespace."""
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"):
        pytest.skip("needs root, nft and unshare")
    files = []
    for i, text in enumerate(scripts):
        path = f"/tmp/netpol-ruleset-{os.getpid()}-{i}.nft"
        with open(path, "w") as f:
            f.write(text)
        files.append(path)
    try:
        proc = subprocess.run(["unshare", "-n", "sh", "-ec",
                               " && ".join(f"nft -f {p}" for p in files)],
                              text=True, capture_output=True, check=False)
        assert proc.returncode == 0, proc.stderr
    finally:
        for path in files:
            os.unlink(path)


def test_partial_script_rewrites_only_what_changed(world: World) -> None:
    world.add("x", "deny-all", {"podSelector": {}})
    world.add("x", "from-y", {"podSelector": POD_A_SELECTOR, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]})
    cfg = CFG[pod_node("x", "a")]
    before = ruleset.render_objects(cfg, model.compile_node(world.cluster(), "worker1"))
    assert ruleset.partial_script(cfg, before, before, {}) == ("", {})
    del world.policies[("x", "from-y")]
    world.add("x", "from-z", {"podSelector": POD_A_SELECTOR, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}]})
    after = ruleset.render_objects(cfg, model.compile_node(world.cluster(), "worker1"))
    script, garbage = ruleset.partial_script(cfg, before, after, {})
    assert "delete" not in script and "add table" not in script
    assert set(garbage) == {n for n in before if n not in after}
    assert any(n.startswith("rules-") and "from-y" in n for n in garbage)
    for name, kind in garbage.items():
        assert f"flush {kind} ip netlab-policy {name}" in script
    assert "known-pods" not in script, "unchanged objects are left alone"
    nft_check_sequence(ruleset.full_script(cfg, "worker1", before), script)
    # An object left as garbage and wanted again is refilled, not re-created.
    again, left = ruleset.partial_script(cfg, after, before, garbage)
    assert not set(left) & set(before)
    for name in garbage:
        assert f"flush {garbage[name]} ip netlab-policy {name}" in again
    nft_check_sequence(ruleset.full_script(cfg, "worker1", before), script, again)


POD_A_SELECTOR = {"matchLabels": {"pod": "a"}}
