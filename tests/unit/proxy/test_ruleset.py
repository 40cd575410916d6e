"""The nftables text: names, layout, and what a partial sync may and may not send.

The kernel tier applies these scripts for real (tests/kernel/proxy/test_nft.py);
here the text itself is checked, including the rule that matters most for
large tables: a partial sync never uses the commands that make nft 1.0.6
download the whole table first (``add rule``, ``add element``, ``delete``).
"""

from __future__ import annotations

import re

from netlab.node.proxy import ruleset
from netlab.node.proxy.model import Endpoint, ServicePort, ServicePortName
from netlab.node.proxy.ruleset import Garbage, ProxyConfig

CFG = ProxyConfig(pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/16",
                  local_pod_cidr="10.244.1.0/24")
WEB = ServicePortName("default", "web", "http", "tcp")


def port(*ips: str, name: ServicePortName = WEB, cluster_ip: str = "10.96.0.10",
         node_port: int | None = None, affinity: int | None = None) -> ServicePort:
    return ServicePort(name, cluster_ip, 80, node_port, affinity,
                       tuple(Endpoint(ip, 8080, f"pod-{ip}", "worker1") for ip in ips))


def test_chain_names_hash_the_service_port_like_kube_proxy():
    chain = ruleset.service_chain(WEB)
    assert re.fullmatch(r"service-[A-Z2-7]{8}-default/web/tcp/http", chain)
    assert chain == ruleset.service_chain(ServicePortName("default", "web", "http", "tcp"))
    assert chain != ruleset.service_chain(ServicePortName("default", "web", "http", "udp"))
    ep = Endpoint("10.244.1.5", 8080)
    assert re.fullmatch(r"endpoint-[A-Z2-7]{8}-default/web/tcp/http__10\.244\.1\.5/8080",
                        ruleset.endpoint_chain(WEB, ep))
    # A set's timeout cannot change in place, so it is part of the name's hash.
    assert ruleset.affinity_set(WEB, ep, 10) != ruleset.affinity_set(WEB, ep, 20)
    # A dispatch or DNAT map is named after its endpoint list.
    two = [ep, Endpoint("10.244.1.6", 8080)]
    assert ruleset.dispatch_map(WEB, [ep]) != ruleset.dispatch_map(WEB, two)
    assert ruleset.dnat_map(WEB, [ep]) != ruleset.dnat_map(WEB, two)


def test_full_ruleset_layout():
    text = ruleset.full_ruleset(CFG, [port("10.244.1.2", "10.244.2.3", node_port=30080)])
    lines = text.splitlines()
    assert lines[:2] == ["add table ip netlab-proxy", "delete table ip netlab-proxy"]
    svc = ruleset.service_chain(WEB)
    assert "ip daddr . meta l4proto . th dport vmap @service-ips" in text
    assert ("ip daddr != 127.0.0.0/8 ip daddr != 10.96.0.0/16 fib daddr type local "
            "meta l4proto . th dport vmap @service-nodeports") in text
    assert f"10.96.0.10 . tcp . 80 comment \"default/web:http\" : goto {svc}" in text
    assert f'tcp . 30080 comment "default/web:http" : goto {ruleset.external_chain(WEB)}' in text
    # No chain per endpoint: the service chain DNATs through a map of addresses.
    assert "endpoint-" not in text and "dispatch-" not in text
    dnat = ruleset.dnat_map(WEB, port("10.244.1.2", "10.244.2.3").endpoints)
    assert f"meta l4proto tcp dnat to numgen inc mod 2 map @{dnat}" in text
    assert ('0 comment "default/web:http -> 10.244.1.2:8080 pod pod-10.244.1.2 on worker1" '
            ": 10.244.1.2 . 8080") in text
    assert "masquerade fully-random" in text
    assert "ip saddr != 10.244.0.0/16 jump mark-for-masquerade" in text
    assert "reject with tcp reset" in text
    # Only the endpoint on this node's subnet can be its own client: one hairpin pair.
    assert "ct status dnat ip saddr . ip daddr @hairpin meta mark set" in text
    assert "elements = { 10.244.1.2 . 10.244.1.2 }" in text
    assert "10.244.2.3 . 10.244.2.3" not in text
    assert "hook prerouting priority dstnat" in text and "hook output priority -100" in text


def test_node_ports_on_listed_addresses_only():
    cfg = ProxyConfig(pod_cidr="10.244.0.0/16", node_ips=("192.168.100.3",))
    text = ruleset.full_ruleset(cfg, [])
    assert "elements = { 192.168.100.3 }" in text
    assert "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports" in text
    assert "fib daddr type local" not in text


def test_a_service_without_endpoints_marks_for_rejection():
    text = ruleset.full_ruleset(CFG, [port()])
    assert "meta mark set meta mark | 0x8000" in text
    assert "ct state new meta mark & 0x8000 != 0 goto no-endpoints" in text
    assert "dispatch-" not in text and "dnat to" not in text


def test_affinity_pins_known_clients_before_round_robin():
    text = ruleset.full_ruleset(CFG, [port("10.244.1.2", "10.244.1.3", affinity=60)])
    assert text.count("flags dynamic,timeout; timeout 60s;") == 2
    assert "update @affinity-" in text
    svc_line = next(line for line in text.splitlines()
                    if line.startswith(f"add chain ip netlab-proxy {ruleset.service_chain(WEB)} "))
    assert svc_line.index("ip saddr @affinity-") < svc_line.index("numgen inc mod 2")
    # Affinity keeps a chain per endpoint (as upstream's nftables proxier does).
    assert text.count("add chain ip netlab-proxy endpoint-") == 2


def test_partial_endpoint_change_uses_only_cheap_commands_and_leaves_garbage():
    old, new = port("10.244.1.2", "10.244.1.3"), port("10.244.1.3", "10.244.1.4")
    script, garbage = ruleset.partial_update(CFG, {WEB: (old, new)}, Garbage())
    verbs = {" ".join(line.split()[:2]) for line in script.splitlines()}
    assert verbs <= {"flush chain", "add chain", "add map", "add set"}, verbs
    assert f"flush chain ip netlab-proxy {ruleset.service_chain(WEB)}" in script
    assert f"add map ip netlab-proxy {ruleset.dnat_map(WEB, new.endpoints)} " in script
    # Only the new endpoint's hairpin pair is added; old pairs stay (they are harmless).
    assert "elements = { 10.244.1.4 . 10.244.1.4 }" in script
    assert not garbage.chains
    assert garbage.sets == {(ruleset.TABLE, ruleset.dnat_map(WEB, old.endpoints))}
    assert not garbage.elements


def test_partial_change_with_affinity_leaves_endpoint_chains_as_garbage():
    old, new = (port("10.244.1.2", "10.244.1.3", affinity=60),
                port("10.244.1.3", "10.244.1.4", affinity=60))
    script, garbage = ruleset.partial_update(CFG, {WEB: (old, new)}, Garbage())
    gone = ruleset.endpoint_chain(WEB, Endpoint("10.244.1.2", 8080))
    assert f"flush chain ip netlab-proxy {gone}" in script
    assert garbage.chains == {(ruleset.TABLE, gone)}
    assert garbage.sets == {(ruleset.TABLE, ruleset.dispatch_map(WEB, old.endpoints)),
                            (ruleset.TABLE, ruleset.affinity_set(WEB, old.endpoints[0], 60))}


def test_removing_a_service_empties_it_now_and_deletes_it_later():
    old = port("10.244.1.2", node_port=30080)
    script, garbage = ruleset.partial_update(CFG, {WEB: (old, None)}, Garbage())
    assert all(line.startswith("flush chain") for line in script.splitlines())
    assert garbage.elements == {
        (ruleset.TABLE, "service-ips", "10.96.0.10 . tcp . 80"):
            f"goto {ruleset.service_chain(WEB)}",
        (ruleset.TABLE, "service-nodeports", "tcp . 30080"):
            f"goto {ruleset.external_chain(WEB)}"}
    collect = garbage.collect_script().splitlines()
    kinds = [line.split()[1] for line in collect]
    # Elements first (they point at chains), then maps, then the chains.
    assert kinds == sorted(kinds, key=["element", "map", "set", "chain"].index)
    assert len([k for k in kinds if k == "chain"]) == 2  # service and NodePort chains


def test_garbage_revived_by_a_later_change_is_not_deleted():
    a, b = port("10.244.1.2"), port("10.244.1.3")
    _, garbage = ruleset.partial_update(CFG, {WEB: (a, b)}, Garbage())
    _, garbage = ruleset.partial_update(CFG, {WEB: (b, a)}, garbage)
    assert not garbage
    a, b = port("10.244.1.2", "10.244.1.3"), port("10.244.1.3")
    _, garbage = ruleset.partial_update(CFG, {WEB: (a, b)}, Garbage())
    assert garbage.sets == {(ruleset.TABLE, ruleset.dnat_map(WEB, a.endpoints))}
    _, garbage = ruleset.partial_update(CFG, {WEB: (b, a)}, garbage)
    assert not garbage


def test_a_cluster_ip_reused_before_collection_is_deleted_in_the_same_transaction():
    other = ServicePortName("default", "other", "http", "tcp")
    _, garbage = ruleset.partial_update(CFG, {WEB: (port("10.244.1.2"), None)}, Garbage())
    script, garbage = ruleset.partial_update(
        CFG, {other: (None, port("10.244.1.9", name=other))}, garbage)
    assert script.splitlines()[0] == \
        "delete element ip netlab-proxy service-ips { 10.96.0.10 . tcp . 80 }"
    assert (ruleset.TABLE, "service-ips", "10.96.0.10 . tcp . 80") not in garbage.elements


def test_unchanged_ports_produce_no_transaction():
    same = port("10.244.1.2")
    assert ruleset.partial_update(CFG, {WEB: (same, same)}, Garbage())[0] == ""


def test_dedupe_keeps_the_first_holder_of_a_cluster_ip_or_node_port():
    a = port("10.244.1.2", name=ServicePortName("default", "a", "", "tcp"), node_port=30001)
    b = port("10.244.1.3", name=ServicePortName("default", "b", "", "tcp"),
             cluster_ip="10.96.0.99", node_port=30001)
    c = port("10.244.1.4", name=ServicePortName("default", "c", "", "tcp"), cluster_ip="10.96.0.7")
    kept, clashing = ruleset.dedupe([c, b, a])
    assert [p.name.name for p in kept] == ["a", "c"] and [p.name.name for p in clashing] == ["b"]


def test_a_lone_endpoint_needs_no_map():
    text = ruleset.full_ruleset(CFG, [port("10.244.1.2")])
    assert "dispatch-" not in text and "dnat-" not in text and "numgen" not in text
    assert ('meta l4proto tcp dnat to 10.244.1.2:8080 '
            'comment "default/web:http -> 10.244.1.2:8080 pod pod-10.244.1.2 on worker1"') in text
    assert ruleset.port_objects(port("10.244.1.2")).sets == frozenset()
    only = ruleset.endpoint_chain(WEB, Endpoint("10.244.1.2", 8080))
    text = ruleset.full_ruleset(CFG, [port("10.244.1.2", affinity=60)])
    assert f'goto {only} comment "the only endpoint"' in text


def test_map_keys_encode_as_the_kernel_stores_them():
    from netlab.kernel.nft import encode_key

    assert encode_key("10.96.0.10 . tcp . 80") == \
        bytes([10, 96, 0, 10, 6, 0, 0, 0, 0, 80, 0, 0])
    assert encode_key("udp . 30053") == bytes([17, 0, 0, 0, 0x75, 0x65, 0, 0])


def _named(i: int) -> ServicePort:
    return port("10.244.1.2", "10.244.2.2", name=ServicePortName("default", f"s{i}", "", "tcp"),
                cluster_ip=f"10.96.1.{i}", node_port=30000 + i)


def test_sharded_services_each_live_in_one_shard_table_with_its_own_hooks():
    cfg = ProxyConfig(pod_cidr="10.244.0.0/16", shards=3)
    ports = [_named(i) for i in range(12)]
    text = ruleset.full_ruleset(cfg, ports)
    # Leftover shards of a larger layout go in the same transaction.
    assert f"delete table ip netlab-proxy-{ruleset.MAX_SHARDS - 1}" in text
    for shard, table in enumerate(["netlab-proxy", "netlab-proxy-1", "netlab-proxy-2"]):
        assert f"add chain ip {table} nat-prerouting {{ type nat hook prerouting" in text
        assert f"add chain ip {table} nat-output {{ type nat hook output" in text
        assert f"add chain ip {table} services {{" in text
        mine = [p for p in ports if cfg.shard_of(p.name) == shard]
        assert mine, "12 Services should land in each of 3 shards"
        for p in mine:
            assert f"add chain ip {table} {ruleset.service_chain(p.name)} " in text
            assert f"add map ip {table} service-ips {{" in text
    # What acts on marks is shared: only in the main table.
    assert text.count("type filter hook input") == 1
    assert text.count("hook postrouting") == 1
    assert "add chain ip netlab-proxy-3 " not in text


def test_a_partial_sync_touches_only_the_changed_services_shard():
    cfg = ProxyConfig(pod_cidr="10.244.0.0/16", shards=4)
    p = _named(5)
    table = cfg.shard_table(cfg.shard_of(p.name))
    moved = ServicePort(p.name, p.cluster_ip, p.port, p.node_port, None, p.endpoints[:1])
    script, garbage = ruleset.partial_update(cfg, {p.name: (p, moved)}, Garbage())
    assert {line.split()[3] for line in script.splitlines()} == {table}, script
    assert {t for t, _ in garbage.sets} == {table}  # the DNAT map of two endpoints
    _, garbage = ruleset.partial_update(cfg, {p.name: (moved, None)}, garbage)
    assert garbage.collect_script().splitlines()[0].startswith(f"delete element ip {table} ")


def test_shard_count_grows_with_service_ports_and_is_capped():
    assert ruleset.shard_count(0) == ruleset.shard_count(ruleset.SHARD_PORTS) == 1
    assert ruleset.shard_count(ruleset.SHARD_PORTS + 1) == 2
    assert ruleset.shard_count(10 ** 9) == ruleset.MAX_SHARDS
