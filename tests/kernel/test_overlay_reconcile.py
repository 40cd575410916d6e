"""The overlay reconcile converges a real vxlan0 to exactly the desired peers."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from pyroute2 import IPRoute

from netlab.kernel import links, netns, overlay
from netlab.topology.plan import OverlayPeer


def peer(n: int, underlay: str | None = None) -> OverlayPeer:
    return OverlayPeer(node=f"node{n}", underlay_ip=IPv4Address(underlay or f"192.168.100.{n}"),
                       vtep_mac=f"02:00:00:00:00:{n:02x}", vtep_ip=IPv4Address(f"10.244.{n}.0"),
                       pod_subnet=IPv4Network(f"10.244.{n}.0/24"))


@pytest.fixture
def vxlan_node(make_netns):
    def setup() -> None:
        with IPRoute() as ipr:
            ipr.link("add", ifname="eth0", kind="veth", peer="eth0-peer")  # no dummy module here
            eth0 = links.ensure_up(ipr, "eth0")
            links.ensure_addresses(ipr, eth0, [IPv4Interface("192.168.100.1/24")])
            spec = links.VxlanSpec(name="vxlan0", vni=1, port=4789,
                                   local=IPv4Address("192.168.100.1"), uplink="eth0",
                                   mac="02:00:00:00:00:01", mtu=1450)
            links.ensure_vxlan(ipr, spec)
    return make_netns("vx", setup)


def reconcile(ns: str, peers: list[OverlayPeer]) -> overlay.OverlayChanges:
    def run() -> overlay.OverlayChanges:
        with IPRoute() as ipr:
            return overlay.reconcile_overlay(ipr, peers)
    return netns.run_in_netns(ns, run)


def read(ns: str):
    def run():
        with IPRoute() as ipr:
            return overlay.read_overlay(ipr)
    return netns.run_in_netns(ns, run)


def test_peers_are_added_then_nothing_changes(vxlan_node):
    first = reconcile(vxlan_node, [peer(2), peer(3)])
    assert len(first.added) == 6 and not first.removed
    fdb, neigh, routes = read(vxlan_node)
    assert fdb == {"02:00:00:00:00:02": "192.168.100.2", "02:00:00:00:00:03": "192.168.100.3"}
    assert neigh == {"10.244.2.0": "02:00:00:00:00:02", "10.244.3.0": "02:00:00:00:00:03"}
    assert routes == {"10.244.2.0/24": "10.244.2.0", "10.244.3.0/24": "10.244.3.0"}
    assert not reconcile(vxlan_node, [peer(2), peer(3)]).changed


def test_a_departed_peer_is_unwired(vxlan_node):
    reconcile(vxlan_node, [peer(2), peer(3)])
    changes = reconcile(vxlan_node, [peer(2)])
    assert len(changes.removed) == 3 and not changes.added
    fdb, _, routes = read(vxlan_node)
    assert list(fdb) == ["02:00:00:00:00:02"] and list(routes) == ["10.244.2.0/24"]
    assert reconcile(vxlan_node, []).removed and read(vxlan_node) == ({}, {}, {})


def test_a_peer_that_moved_is_rewired(vxlan_node):
    reconcile(vxlan_node, [peer(2)])
    changes = reconcile(vxlan_node, [peer(2, underlay="192.168.100.20")])
    assert changes.removed == ["fdb 02:00:00:00:00:02 dev vxlan0 dst 192.168.100.2"]
    assert read(vxlan_node)[0] == {"02:00:00:00:00:02": "192.168.100.20"}


def test_foreign_routes_on_other_devices_are_left_alone(vxlan_node):
    def add_route() -> None:
        with IPRoute() as ipr:
            ipr.route("add", dst="172.16.0.0/16", gateway="192.168.100.254")
    netns.run_in_netns(vxlan_node, add_route)
    reconcile(vxlan_node, [])

    def routes() -> list[str]:
        with IPRoute() as ipr:
            return [r.get("RTA_DST") for r in ipr.get_routes(family=2, table=254)]
    assert "172.16.0.0" in netns.run_in_netns(vxlan_node, routes)


def test_vxlan_with_a_changed_vni_is_recreated(vxlan_node):
    def converge(vni: int):
        with IPRoute() as ipr:
            spec = links.VxlanSpec(name="vxlan0", vni=vni, port=4789,
                                   local=IPv4Address("192.168.100.1"), uplink="eth0",
                                   mac="02:00:00:00:00:01", mtu=1450)
            index = links.ensure_vxlan(ipr, spec)
            info = ipr.get_links(index)[0].get(("IFLA_LINKINFO", "IFLA_INFO_DATA"))
            return index, info.get("IFLA_VXLAN_ID")
    same_index, vni = netns.run_in_netns(vxlan_node, lambda: converge(1))
    assert vni == 1 and netns.run_in_netns(vxlan_node, lambda: converge(1))[0] == same_index
    assert netns.run_in_netns(vxlan_node, lambda: converge(7))[1] == 7


def update(ns: str, before: list[OverlayPeer], after: list[OverlayPeer]
           ) -> overlay.OverlayChanges:
    def run() -> overlay.OverlayChanges:
        with IPRoute() as ipr:
            return overlay.update_overlay(ipr, before, after)
    return netns.run_in_netns(ns, run)


def test_an_update_by_difference_ends_where_a_full_reconcile_would(vxlan_node):
    # A Node registering, one leaving and one moving: each kubelet programs only those,
    # without reading its 99 peers back (the read-back is for the periodic resync).
    reconcile(vxlan_node, [peer(2), peer(3), peer(4)])
    changes = update(vxlan_node, [peer(2), peer(3), peer(4)],
                     [peer(2), peer(4, "192.168.100.44"), peer(5)])
    assert changes.removed == ["peer node3", "peer node4"]
    assert [c.split("  # ")[1] for c in changes.added] == ["node4", "node5"]
    fdb, neigh, routes = read(vxlan_node)
    assert fdb == {"02:00:00:00:00:02": "192.168.100.2", "02:00:00:00:00:04": "192.168.100.44",
                   "02:00:00:00:00:05": "192.168.100.5"}
    assert set(neigh) == {"10.244.2.0", "10.244.4.0", "10.244.5.0"}
    assert set(routes) == {"10.244.2.0/24", "10.244.4.0/24", "10.244.5.0/24"}
    assert not reconcile(vxlan_node, [peer(2), peer(4, "192.168.100.44"), peer(5)]).changed


def test_an_update_from_a_wrong_belief_falls_back_to_the_full_reconcile(vxlan_node):
    from netlab.node.overlay import _reconcile

    reconcile(vxlan_node, [peer(2), peer(3)])

    def damage() -> None:  # someone removed peer 3's route by hand
        with IPRoute() as ipr:
            index = links.link_index(ipr, "vxlan0")
            ipr.route("del", dst="10.244.3.0/24", gateway="10.244.3.0", oif=index)
    netns.run_in_netns(vxlan_node, damage)
    with pytest.raises(Exception):  # noqa: B017 - pyroute2's NetlinkError: no such route
        update(vxlan_node, [peer(2), peer(3)], [peer(2)])
    # The kubelet's overlay agent takes that failure and reconciles in full.
    netns.run_in_netns(vxlan_node, lambda: _reconcile([peer(2), peer(4)], [peer(2), peer(3)]))
    fdb, _, routes = read(vxlan_node)
    assert set(fdb) == {"02:00:00:00:00:02", "02:00:00:00:00:04"}
    assert set(routes) == {"10.244.2.0/24", "10.244.4.0/24"}
    assert not reconcile(vxlan_node, [peer(2), peer(4)]).changed
