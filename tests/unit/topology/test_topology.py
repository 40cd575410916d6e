"""Good topologies: defaults, the demo, every accepted spelling, and the address plan."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from netlab.topology import TopologyError, load_topology, parse_topology, plan_lab
from netlab.topology.model import Taint, Topology
from netlab.topology.plan import IFNAMSIZ, underlay_port, vtep_mac
from netlab.topology.validate import Problem

DEMO = Path(__file__).resolve().parents[3] / "topologies" / "demo.yaml"
GiB = 2**30


def write(tmp_path: Path, text: str, name: str = "lab.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, name: str = "lab.yaml") -> Topology:
    return load_topology(write(tmp_path, text, name))


MINIMAL = """\
nodes:
  - name: cp
    role: control-plane
  - name: w1
"""


# --- defaults and the demo ---------------------------------------------------------------

def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    topo = load(tmp_path, MINIMAL, "mini.yaml")

    assert topo.name == "mini"
    assert topo.network.subnet == IPv4Network("192.168.100.0/24")
    assert topo.network.mtu == 1500
    assert topo.cluster.pod_subnet == IPv4Network("10.244.0.0/16")
    assert topo.cluster.service_subnet == IPv4Network("10.96.0.0/16")
    assert (topo.cluster.overlay, topo.cluster.vni, topo.cluster.vxlan_port) == ("vxlan", 1, 4789)
    assert topo.workloads == ()
    assert (topo.cluster.dns_domain, topo.cluster.dns_upstream) == ("cluster.local", None)
    assert topo.source == tmp_path / "mini.yaml"
    worker = topo.node("w1")
    assert worker.role == "worker"  # the default role
    assert (worker.cpu_millis, worker.memory_bytes, worker.max_pods) == (2000, 2 * GiB, 110)
    assert worker.labels == {} and worker.taints == ()
    assert topo.control_plane.name == "cp"
    assert [n.name for n in topo.cluster_nodes] == ["cp", "w1"]


def test_demo_topology_loads_and_plans() -> None:
    topo = load_topology(DEMO)

    assert topo.name == "demo"
    assert [(n.name, n.role) for n in topo.nodes] == [
        ("control-plane", "control-plane"), ("worker1", "worker"), ("worker2", "worker"),
        ("client", "external")]
    assert topo.node("worker1").memory_bytes == 4 * GiB
    assert not topo.node("client").in_cluster
    plan = plan_lab(topo)
    assert plan.namespaces == ("demo-net", "demo-control-plane", "demo-worker1", "demo-worker2",
                               "demo-client")
    assert plan.pod_mtu == 1450


def test_name_defaults_to_the_file_stem_and_an_explicit_name_wins(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL, "edge-1.yaml").name == "edge-1"
    assert load(tmp_path, "name: core\n" + MINIMAL, "edge-2.yaml").name == "core"


def test_bad_file_stem_says_the_name_came_from_the_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as info:
        load(tmp_path, MINIMAL, "My_Topology.yaml")
    (problem,) = info.value.problems
    assert problem.path == "name"
    assert problem.line is None  # there is no 'name:' line to point at
    assert problem.message == "'My_Topology' (taken from the file name) is not a DNS-1123 label"
    assert "add a 'name:' line" in problem.fix


def test_parse_topology_without_a_file(tmp_path: Path) -> None:
    topo = parse_topology("name: inline\n" + MINIMAL, "<stdin>")
    assert topo.name == "inline" and topo.source is None
    with pytest.raises(TopologyError, match="the lab has no name"):
        parse_topology(MINIMAL, "<stdin>")


def test_missing_file_is_a_topology_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"nope\.yaml: \(file\): the file does not exist"):
        load_topology(tmp_path / "nope.yaml")


# --- node details ------------------------------------------------------------------------

def test_taints_in_string_and_mapping_form(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
nodes:
  - {name: cp, role: control-plane, taints: ["node-role.kubernetes.io/control-plane:NoSchedule"]}
  - name: w1
    taints:
      - dedicated=gpu:NoExecute
      - {key: example.com/slow, value: "yes", effect: PreferNoSchedule}
      - {key: spot, effect: NoSchedule}
""")
    assert topo.node("cp").taints == (
        Taint(key="node-role.kubernetes.io/control-plane", effect="NoSchedule"),)
    assert topo.node("w1").taints == (
        Taint(key="dedicated", value="gpu", effect="NoExecute"),
        Taint(key="example.com/slow", value="yes", effect="PreferNoSchedule"),
        Taint(key="spot", effect="NoSchedule"),
    )
    assert topo.node("w1").taints[0].to_api() == {
        "key": "dedicated", "value": "gpu", "effect": "NoExecute"}
    assert topo.node("w1").taints[2].to_api() == {"key": "spot", "effect": "NoSchedule"}


def test_labels_are_kept_as_strings(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
nodes:
  - {name: cp, role: control-plane}
  - name: w1
    labels:
      topology.kubernetes.io/zone: zone-a
      gpu: true
      rack: 7
      empty: ""
""")
    assert topo.node("w1").labels == {
        "topology.kubernetes.io/zone": "zone-a", "gpu": "true", "rack": "7", "empty": ""}


def test_yaml_merge_keys_may_override_without_being_duplicates(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
nodes:
  - {name: cp, role: control-plane}
  - &big {name: w1, cpu: 8, memory: 16Gi}
  - {<<: *big, name: w2}
""")
    assert topo.node("w2").cpu_millis == 8000
    assert topo.node("w2").memory_bytes == 16 * GiB


def test_node_quantities(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
nodes:
  - {name: cp, role: control-plane, cpu: 500m, memory: 1.5Gi}
  - {name: w1, cpu: 2, memory: 128M}
  - {name: w2, cpu: "0.25", memory: 1e3}
""")
    assert (topo.node("cp").cpu_millis, topo.node("cp").memory_bytes) == (500, 1610612736)
    assert (topo.node("w1").cpu_millis, topo.node("w1").memory_bytes) == (2000, 128_000_000)
    assert (topo.node("w2").cpu_millis, topo.node("w2").memory_bytes) == (250, 1000)


# --- workloads ---------------------------------------------------------------------------

def test_workloads_from_a_multi_document_file_and_inline(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "web.yaml").write_text("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 2}
---
---
apiVersion: v1
kind: Service
metadata: {name: web}
""")
    topo = load(tmp_path, MINIMAL + """\
workloads:
  - apps/web.yaml
  - apiVersion: v1
    kind: Pod
    metadata: {generateName: probe-}
""")
    assert [(w.manifest["kind"], w.origin) for w in topo.workloads] == [
        ("Deployment", "workloads[0] (apps/web.yaml, document 1)"),
        ("Service", "workloads[0] (apps/web.yaml, document 2)"),
        ("Pod", "workloads[1]"),
    ]
    assert topo.workloads[0].manifest["spec"] == {"replicas": 2}


def test_workload_path_is_relative_to_the_topology_not_the_cwd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "ns.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    path = write(tmp_path / "lab", MINIMAL + "workloads: [ns.yaml]\n")
    monkeypatch.chdir(tmp_path)
    assert load_topology(path).workloads[0].manifest["kind"] == "Namespace"


def test_empty_workload_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "none.yaml").write_text("# nothing yet\n")
    with pytest.raises(TopologyError, match=r"workload file 'none\.yaml' holds no manifests"):
        load(tmp_path, MINIMAL + "workloads: [none.yaml]\n")


# --- the address plan --------------------------------------------------------------------

PLAN_TOPOLOGY = """\
name: plan
network: {subnet: 172.20.0.0/24}
nodes:
  - {name: w1}
  - {name: client, role: external}
  - {name: w2}
  - {name: boss, role: control-plane}
"""


def test_control_plane_comes_first_even_when_listed_last(tmp_path: Path) -> None:
    plan = plan_lab(load(tmp_path, PLAN_TOPOLOGY))

    assert [n.name for n in plan.nodes] == ["boss", "w1", "client", "w2"]
    boss = plan.node("boss")
    assert boss.underlay == IPv4Interface("172.20.0.2/24")
    assert boss.pod_subnet == IPv4Network("10.244.0.0/24")
    assert boss.gateway == IPv4Interface("10.244.0.1/24")
    assert boss.vtep_ip == IPv4Address("10.244.0.0")
    assert boss.netns == "plan-boss"
    assert plan.node("w1").pod_subnet == IPv4Network("10.244.1.0/24")
    # The external client takes an underlay address but no /24: w2 gets the next one.
    assert plan.node("w2").underlay == IPv4Interface("172.20.0.5/24")
    assert plan.node("w2").pod_subnet == IPv4Network("10.244.2.0/24")
    addresses = [n.underlay.ip for n in plan.nodes]
    assert len(set(addresses)) == len(addresses)
    assert IPv4Address("172.20.0.1") not in addresses  # kept free, as kind keeps a gateway


def test_external_node_has_an_underlay_address_but_no_pod_network(tmp_path: Path) -> None:
    client = plan_lab(load(tmp_path, PLAN_TOPOLOGY)).node("client")
    assert client.underlay == IPv4Interface("172.20.0.4/24")
    assert client.pod_subnet is None and client.gateway is None and client.vtep_ip is None
    assert client.vtep_mac is None and not client.in_cluster
    assert client.netns == "plan-client"


def test_peers_exclude_self_and_external_nodes(tmp_path: Path) -> None:
    plan = plan_lab(load(tmp_path, PLAN_TOPOLOGY))

    peers = plan.peers_of("w1")
    assert [p.node for p in peers] == ["boss", "w2"]
    w2 = peers[1]
    assert w2.underlay_ip == IPv4Address("172.20.0.5")
    assert w2.pod_subnet == IPv4Network("10.244.2.0/24")
    assert w2.vtep_ip == IPv4Address("10.244.2.0")
    assert w2.vtep_mac == plan.node("w2").vtep_mac
    assert [p.node for p in plan.peers_of("boss")] == ["w1", "w2"]


def test_overlay_none_has_no_peers_and_full_mtu_pods(tmp_path: Path) -> None:
    plan = plan_lab(load(tmp_path, PLAN_TOPOLOGY + "cluster: {overlay: none}\n"))
    assert plan.overlay == "none"
    assert all(plan.peers_of(n.name) == [] for n in plan.nodes)
    assert plan.pod_mtu == plan.underlay_mtu == 1500


def test_port_names_fit_ifnamsiz_and_stay_unique(tmp_path: Path) -> None:
    long_a = "a" * 62 + "x"
    long_b = "a" * 62 + "y"
    topo = load(tmp_path, f"""\
name: ports
nodes:
  - {{name: cp, role: control-plane}}
  - {{name: {long_a}}}
  - {{name: {long_b}}}
  - {{name: thirteen-char}}
""")
    ports = [n.port for n in plan_lab(topo).nodes]
    assert all(len(port) <= IFNAMSIZ for port in ports)
    assert all(re.fullmatch(r"[a-z0-9-]+", port) for port in ports)
    assert len(set(ports)) == len(ports)
    assert ports[0] == "p-cp"
    assert ports[3] == "p-thirteen-char"  # exactly 15: still readable
    assert underlay_port(long_a) == underlay_port(long_a)


def test_vtep_macs_are_unicast_locally_administered_and_stable(tmp_path: Path) -> None:
    plan = plan_lab(load(tmp_path, PLAN_TOPOLOGY))
    again = plan_lab(load(tmp_path, PLAN_TOPOLOGY))

    macs = [n.vtep_mac for n in plan.nodes if n.in_cluster]
    assert macs == [n.vtep_mac for n in again.nodes if n.in_cluster]
    assert len(set(macs)) == len(macs)
    for mac in macs:
        assert mac is not None and re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac)
        first = int(mac[:2], 16)
        assert first & 0x01 == 0, f"{mac} is multicast"
        assert first & 0x02 == 0x02, f"{mac} is not locally administered"
    # The same node name in another lab gets another MAC.
    assert vtep_mac("plan", "w1") != vtep_mac("other", "w1")


# --- error output ------------------------------------------------------------------------

def test_problem_format_does_not_double_punctuation() -> None:
    problem = Problem("nodes[0].rol", 7, "unknown key 'rol' (did you mean 'role'?)",
                      "rename it to 'role'.")
    assert problem.format("t.yaml") == (
        "t.yaml:7: nodes[0].rol: unknown key 'rol' (did you mean 'role'?). "
        "Fix: rename it to 'role'.")
    assert Problem("(file)", None, "gone", "check it").format("t.yaml") == (
        "t.yaml: (file): gone. Fix: check it.")


def test_all_problems_are_reported_in_file_order_of_sections(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as info:
        load(tmp_path, """\
name: ok
network: {mtu: 100}
cluster: {overlay: calico}
nodes:
  - {name: cp, role: control-plane, cpu: 0}
  - {name: w1}
workloads: [missing.yaml]
""")
    err = info.value
    assert [p.path for p in err.problems] == [
        "network.mtu", "cluster.overlay", "nodes[0].cpu", "workloads[0]"]
    assert [p.line for p in err.problems] == [2, 3, 5, 7]
    assert str(err).startswith(f"{tmp_path / 'lab.yaml'}: 4 errors in the topology\n")


@pytest.mark.parametrize("spelling, store, members", [
    ("", "sqlite", 0),
    ("cluster: {store: sqlite}\n", "sqlite", 0),
    ("cluster: {store: etcd}\n", "etcd", 1),
    ("cluster: {store: {etcd: {members: 1}}}\n", "etcd", 1),
    ("cluster: {store: {etcd: {}}}\n", "etcd", 1),
    ("cluster: {store: {etcd: {members: 3}}}\n", "etcd", 3),
])
def test_store_spellings(tmp_path: Path, spelling: str, store: str, members: int) -> None:
    topo = load(tmp_path, MINIMAL + "  - {name: w3}\n" + spelling)
    assert (topo.cluster.store, topo.cluster.etcd_members) == (store, members)


def test_three_members_run_on_the_control_plane_then_the_first_workers(tmp_path: Path) -> None:
    topo = load(tmp_path, "cluster: {store: {etcd: {members: 3}}}\nnodes:\n"
                "  - {name: a}\n  - {name: cp, role: control-plane}\n  - {name: b}\n"
                "  - {name: c}\n")
    assert [n.name for n in topo.etcd_member_nodes] == ["cp", "a", "b"]


def test_cluster_dns_domain_and_an_upstream_inside_the_lab(tmp_path: Path) -> None:
    topo = load(tmp_path, "cluster:\n  dnsDomain: Lab.Example.\n"
                "  dns: {upstream: '192.168.100.9:5353'}\n" + MINIMAL)
    assert (topo.cluster.dns_domain, topo.cluster.dns_upstream) == ("lab.example",
                                                                    "192.168.100.9:5353")


@pytest.mark.parametrize("upstream, message", [
    ("8.8.8.8", "8.8.8.8 is outside the lab"),
    ("dns.google", "'dns.google' is not an IPv4 address"),
    ("10.244.0.53:0", "'0' is not a port"),
])
def test_a_dns_upstream_outside_the_lab_is_refused(tmp_path: Path, upstream: str,
                                                   message: str) -> None:
    with pytest.raises(TopologyError) as err:
        load(tmp_path, f"cluster:\n  dns: {{upstream: '{upstream}'}}\n" + MINIMAL)
    [problem] = err.value.problems
    assert problem.path == "cluster.dns.upstream" and problem.line == 2
    assert message in problem.message and "inside the lab" in problem.fix


# --- several physical networks (racks) joined by routers --------------------------------

RACKS = """\
name: racks
networks:
  - {name: rack1, subnet: 192.168.10.0/24, mtu: 9000}
  - {name: rack2, subnet: 192.168.20.0/24, mtu: 1500}
  - {name: rack3, subnet: 192.168.30.0/24}
nodes:
  - {name: w1, network: rack1}
  - {name: cp, role: control-plane, network: rack1}
  - {name: w2, network: rack2}
  - {name: w3, network: rack3}
  - {name: r12, role: router, networks: [rack1, rack2]}
  - {name: r23, role: router, networks: [rack2, rack3]}
"""


def test_routed_racks_get_addresses_uplinks_and_routes(tmp_path: Path) -> None:
    plan = plan_lab(load(tmp_path, RACKS))
    cp, w2, w3 = plan.node("cp"), plan.node("w2"), plan.node("w3")
    r12, r23 = plan.node("r12"), plan.node("r23")
    # Per network, control-plane first from .2; each network's first router takes .1.
    assert (cp.underlay, plan.node("w1").underlay) == (
        IPv4Interface("192.168.10.2/24"), IPv4Interface("192.168.10.3/24"))
    assert [u.address for u in r12.uplinks] == [IPv4Interface("192.168.10.1/24"),
                                                IPv4Interface("192.168.20.1/24")]
    assert [u.address for u in r23.uplinks] == [IPv4Interface("192.168.20.3/24"),
                                                IPv4Interface("192.168.30.1/24")]
    assert [(u.ifname, u.port, u.bridge) for u in r12.uplinks] == [
        ("eth0", "p-r12", "br-rack1"), ("eth1", "p1-r12", "br-rack2")]
    assert not r12.in_cluster and r12.pod_subnet is None
    # Two hops away: rack3 from rack1 goes via r12, the first router on the way.
    assert [(str(r.subnet), str(r.via)) for r in cp.routes] == [
        ("192.168.20.0/24", "192.168.10.1"), ("192.168.30.0/24", "192.168.10.1")]
    assert [(str(r.subnet), str(r.via)) for r in w3.routes] == [
        ("192.168.10.0/24", "192.168.30.1"), ("192.168.20.0/24", "192.168.30.1")]
    assert [(str(r.subnet), str(r.via)) for r in w2.routes] == [
        ("192.168.10.0/24", "192.168.20.1"), ("192.168.30.0/24", "192.168.20.3")]
    assert [(str(r.subnet), str(r.via)) for r in r12.routes] == [
        ("192.168.30.0/24", "192.168.20.3")]
    # Routers are no overlay peers; the pod MTU fits the smallest network.
    assert {p.node for p in plan.peers_of("w1")} == {"cp", "w2", "w3"}
    assert plan.pod_mtu == 1450


def test_one_network_topologies_plan_as_before(tmp_path: Path) -> None:
    plan = plan_lab(load(tmp_path, MINIMAL))
    cp = plan.node("cp")
    assert [(u.network, u.ifname, u.port, u.bridge) for u in cp.uplinks] == [
        ("default", "eth0", "p-cp", "br0")]
    assert cp.routes == ()
    assert not plan.topology.routed


def test_a_routers_port_names_fit_ifnamsiz_and_one_named_network_works(tmp_path: Path) -> None:
    long = "a-very-long-router-name"
    assert underlay_port(long, 1).startswith("p1-") and len(underlay_port(long, 1)) <= IFNAMSIZ
    assert underlay_port(long, 0) != underlay_port(long, 1)
    plan = plan_lab(load(tmp_path, """\
networks: [{name: rack-twelve1, subnet: 192.168.10.0/24, mtu: 9000}]
nodes:
  - {name: cp, role: control-plane}
  - {name: w1, network: rack-twelve1}
"""))
    assert [u.bridge for n in plan.nodes for u in n.uplinks] == ["br-rack-twelve1"] * 2
    assert len("br-rack-twelve1") <= IFNAMSIZ and plan.pod_mtu == 8950
