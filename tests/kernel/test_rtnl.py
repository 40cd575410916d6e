"""The pod start path's rtnetlink (``netlab.kernel.rtnl``) on real namespaces, read back
through pyroute2 (``links``): what it makes is what ``ip`` and the rest of netlab see,
and the kernel's errors come back as OSError with their errno. Nothing runs in the
host's root namespace."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Interface

import pytest

from netlab.kernel import links, netns, rtnl


def _bridge() -> None:
    with links.netlink() as ipr:
        links.ensure_bridge(ipr, "br0", mtu=1400)


def _info(ns: str, name: str) -> links.LinkInfo | None:
    def read() -> links.LinkInfo | None:
        with links.netlink() as ipr:
            return links.link_info(ipr, name)
    return netns.run_in_netns(ns, read)


def test_veth_across_namespaces_on_a_bridge(make_netns):
    node, pod = make_netns("node", _bridge), make_netns("pod")

    def make() -> tuple[rtnl.Link, rtnl.Link | None]:
        with rtnl.open_socket() as nl:
            bridge = nl.get_link("br0")
            assert bridge is not None and bridge.mtu == 1400
            nl.add_veth("vtest0", "eth0", pod, mtu=1400, master=bridge.index)
            with pytest.raises(OSError) as taken:
                nl.add_veth("vtest0", "eth0", pod, mtu=1400, master=bridge.index)
            assert taken.value.errno == errno.EEXIST
            link = nl.get_link("vtest0")
            assert link is not None
            nl.set_hairpin(link.index, True)
            return bridge, nl.get_link("vtest0")

    bridge, host = netns.run_in_netns(node, make)
    seen = _info(node, "vtest0")
    assert host is not None and seen is not None
    assert (host.index, host.mac, host.mtu, host.master, host.up, host.hairpin) == \
        (seen.index, seen.mac, seen.mtu, seen.master, seen.up, seen.hairpin)
    assert seen.master == bridge.index and seen.up and seen.hairpin is True
    peer = _info(pod, "eth0")
    assert peer is not None and peer.mtu == 1400 and not peer.up  # up is the pod side's


def test_pod_side_address_route_and_alias(make_netns):
    node, pod = make_netns("node", _bridge), make_netns("pod")

    def veth() -> None:
        with rtnl.open_socket() as nl:
            nl.add_veth("vtest1", "eth0", pod)

    netns.run_in_netns(node, veth)
    wanted = IPv4Interface("10.79.0.5/24")

    def configure() -> tuple[set[IPv4Interface], set[IPv4Interface]]:
        with rtnl.open_socket() as nl:
            nl.set_link(1, up=True, alias="netlab:rtnl-test")
            eth0 = nl.get_link("eth0")
            assert eth0 is not None and not eth0.up
            nl.converge(eth0, mtu=1300)
            nl.converge(nl.get_link("eth0") or eth0, mtu=1300)  # nothing differs: no request
            nl.ensure_addresses(eth0.index, [IPv4Interface("10.79.0.9/24")])
            nl.ensure_addresses(eth0.index, [wanted])  # the other one goes
            nl.replace_default_route(IPv4Address("10.79.0.1"))
            nl.replace_default_route(IPv4Address("10.79.0.1"))  # replace: idempotent
            return nl.addresses(eth0.index), nl.addresses(1)

    on_eth0, on_lo = netns.run_in_netns(pod, configure)
    assert on_eth0 == {wanted} and on_lo == {IPv4Interface("127.0.0.1/8")}
    eth0 = _info(pod, "eth0")
    assert eth0 is not None and eth0.up and eth0.mtu == 1300 and eth0.addresses == (wanted,)

    def read() -> tuple[str | None, IPv4Address | None]:
        with links.netlink() as ipr:
            return links.read_owner(ipr), links.default_gateway(ipr)

    assert netns.run_in_netns(pod, read) == ("rtnl-test", IPv4Address("10.79.0.1"))


def test_missing_links_and_kernel_errors(make_netns):
    ns = make_netns("solo")

    def probe() -> None:
        with rtnl.open_socket() as nl:
            assert nl.get_link("nosuch0") is None
            assert nl.delete_link("nosuch0") is False
            with pytest.raises(OSError) as gone:
                nl.set_link(999, up=True)
            assert gone.value.errno == errno.ENODEV
            with pytest.raises(OSError) as unreachable:  # no link has 10.80.0.0/24
                nl.replace_default_route(IPv4Address("10.80.0.1"))
            assert unreachable.value.errno == errno.ENETUNREACH
            lo = nl.get_link("lo")
            assert lo is not None and lo.index == 1 and lo.hairpin is None

    netns.run_in_netns(ns, probe)
