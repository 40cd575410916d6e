"""A small network built from a description converges, and a second build changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from labkit import unique_lab

from netlab.kernel import links, netns, overlay, wiring
from netlab.kernel.processes import kill_in_netns
from netlab.topology.plan import OverlayPeer

SYSCTLS = {"net.ipv4.ip_forward": "1"}


@pytest.fixture
def owner() -> Iterator[str]:
    name = unique_lab()
    yield name
    names = [n for n in netns.list_netns() if n.startswith(name + "-")]
    kill_in_netns(names)
    for n in names:
        netns.delete_netns(n)


def two_nodes(owner: str) -> tuple[wiring.BridgeSpec, list[wiring.NodeLinks]]:
    wiring.ensure_namespaces([wiring.NamespaceSpec(f"{owner}-{n}", owner, SYSCTLS)
                              for n in ("net", "a", "b")])
    bridge = wiring.BridgeSpec(f"{owner}-net", "br0", 1500, (
        wiring.VethPort("pa", "eth0", f"{owner}-a"), wiring.VethPort("pb", "eth0", f"{owner}-b")))
    nodes = []
    for i, n in enumerate(("a", "b"), start=1):
        other = 3 - i
        device = links.VxlanSpec(name="vxlan0", vni=1, port=4789,
                                 local=IPv4Address(f"192.168.50.{i}"), uplink="eth0",
                                 mac=f"02:00:00:00:00:0{i}", mtu=1450)
        peer = OverlayPeer(node=f"n{other}", underlay_ip=IPv4Address(f"192.168.50.{other}"),
                           vtep_mac=f"02:00:00:00:00:0{other}",
                           vtep_ip=IPv4Address(f"10.50.{other}.0"),
                           pod_subnet=IPv4Network(f"10.50.{other}.0/24"))
        nodes.append(wiring.NodeLinks(
            netns=f"{owner}-{n}", uplink="eth0", addresses=(IPv4Interface(f"192.168.50.{i}/24"),),
            bridge=wiring.Bridge("cni0", 1450, (IPv4Interface(f"10.50.{i}.1/24"),)),
            vxlan=wiring.Vxlan(device, (IPv4Interface(f"10.50.{i}.0/32"),), (peer,))))
    return bridge, nodes


def info(namespace: str, name: str) -> links.LinkInfo | None:
    def read() -> links.LinkInfo | None:
        with links.netlink() as ipr:
            return links.link_info(ipr, name)
    return netns.run_in_netns(namespace, read)


def test_namespaces_are_tagged_and_converged(owner):
    spec = wiring.NamespaceSpec(f"{owner}-a", owner, SYSCTLS)
    wiring.ensure_namespaces([spec])
    assert wiring.namespace_owner(spec.name) == owner
    assert netns.run_in_netns(spec.name, lambda: netns.read_sysctl("net.ipv4.ip_forward")) == "1"
    netns.run_in_netns(spec.name, lambda: netns.write_sysctl("net.ipv4.ip_forward", "0"))
    wiring.ensure_namespace(spec)  # converges what drifted
    assert netns.run_in_netns(spec.name, lambda: netns.read_sysctl("net.ipv4.ip_forward")) == "1"


def test_a_namespace_tagged_for_another_owner_is_not_adopted(owner):
    wiring.ensure_namespace(wiring.NamespaceSpec(f"{owner}-a", owner + "x"))
    with pytest.raises(wiring.NamespaceTaken, match=f"belongs to lab {owner}x"):
        wiring.ensure_namespace(wiring.NamespaceSpec(f"{owner}-a", owner))
    assert wiring.namespace_owner(f"{owner}-a") == owner + "x"


def test_nodes_converge_once_then_nothing_changes(owner):
    bridge, nodes = two_nodes(owner)
    wiring.ensure_bridge(bridge)
    changes = wiring.converge_nodes(nodes)
    assert all(isinstance(c, overlay.OverlayChanges) and len(c.added) == 3 for c in changes)
    br0, pa = info(f"{owner}-net", "br0"), info(f"{owner}-net", "pa")
    assert br0 is not None and pa is not None and pa.master == br0.index and pa.up
    eth0 = info(f"{owner}-a", "eth0")
    assert eth0 is not None and eth0.addresses == (IPv4Interface("192.168.50.1/24"),)
    cni0 = info(f"{owner}-b", "cni0")
    assert cni0 is not None and cni0.mtu == 1450

    before = {n: info(n, "eth0") for n in (f"{owner}-a", f"{owner}-b")}
    wiring.ensure_bridge(bridge)
    assert not any(c.changed for c in wiring.converge_nodes(nodes) if c is not None)
    assert {n: info(n, "eth0") for n in before} == before


def test_a_node_without_overlay_reports_no_changes(owner):
    bridge, nodes = two_nodes(owner)
    wiring.ensure_bridge(bridge)
    plain = wiring.NodeLinks(netns=nodes[0].netns, uplink="eth0", addresses=nodes[0].addresses)
    assert wiring.converge_node(plain) is None


def test_links_go_down_and_up(owner):
    bridge, _ = two_nodes(owner)
    wiring.ensure_bridge(bridge)
    assert wiring.links_up(bridge.netns, ["pa", "pb", "nope"]) == {
        "pa": True, "pb": True, "nope": False}
    assert wiring.set_link_up(bridge.netns, "pa", False) is True
    assert wiring.set_link_up(bridge.netns, "pa", False) is False  # already down
    assert wiring.links_up(bridge.netns, ["pa", "pb"]) == {"pa": False, "pb": True}
    assert wiring.set_link_up(bridge.netns, "pa", True) is False
    with pytest.raises(LookupError):
        wiring.set_link_up(bridge.netns, "nope", True)
