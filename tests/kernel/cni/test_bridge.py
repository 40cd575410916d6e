"""The CNI layer on real namespaces: ADD, CHECK and DEL of the bridge plugin with
host-local IPAM, their idempotence, DEL after a crash, MTU and hairpin mode, and
IPAM under concurrent ADDs. A bare "node" namespace with a ``cni0`` bridge
stands in for a node; nothing runs in the host's root namespace."""

from __future__ import annotations

import multiprocessing
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from netlab.kernel import links, netns
from netlab.node import cni
from netlab.node.cni.config import NetConf, RuntimeConf

SUBNET = IPv4Network("10.77.1.0/24")
GATEWAY = IPv4Interface("10.77.1.1/24")


def _node_setup(mtu: int = 1450) -> None:
    with links.netlink() as ipr:
        index = links.ensure_bridge(ipr, "cni0", mtu=mtu)
        links.ensure_addresses(ipr, index, [GATEWAY])


def _conf(tmp: Path, **kw) -> NetConf:
    return NetConf(name="test", subnet=SUBNET, gateway=GATEWAY.ip, data_dir=tmp / "ipam", **kw)


def _link(ns: str, name: str) -> links.LinkInfo | None:
    def read() -> links.LinkInfo | None:
        with links.netlink() as ipr:
            return links.link_info(ipr, name)
    return netns.run_in_netns(ns, read)


def test_add_check_del_are_idempotent(make_netns, tmp_path):
    node = make_netns("node", _node_setup)
    pod = make_netns("pod")
    conf, rt = _conf(tmp_path), RuntimeConf("c1", pod, "eth0")
    first = cni.add(conf, rt, node)
    again = cni.add(conf, rt, node)
    assert first.to_json() == again.to_json()
    doc = first.to_json()
    assert doc["cniVersion"] == "1.0.0"
    assert doc["ips"][0]["address"] == "10.77.1.2/24" and doc["ips"][0]["gateway"] == "10.77.1.1"
    assert doc["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.77.1.1"}]
    assert [i["name"] for i in doc["interfaces"]] == ["cni0", cni.host_veth_name("c1"), "eth0"]
    assert doc["interfaces"][2]["sandbox"] == netns.netns_path(pod)
    assert cni.check(conf, rt, node) == [] and cni.check(conf, rt, node) == []
    eth0 = _link(pod, "eth0")
    assert eth0 is not None and IPv4Interface("10.77.1.2/24") in eth0.addresses
    # The MACs the result reports (chosen by the plugin for a new pair) are the links'.
    host = _link(node, first.host_veth)
    assert host is not None and doc["interfaces"][1]["mac"] == host.mac
    assert doc["interfaces"][2]["mac"] == eth0.mac and eth0.mac != host.mac
    assert int(eth0.mac.split(":")[0], 16) & 0x03 == 0x02, "unicast, locally administered"
    cni.delete(conf, rt, node)
    cni.delete(conf, rt, node)
    assert _link(node, first.host_veth) is None and _link(pod, "eth0") is None
    assert cni.HostLocalIpam(conf.data_dir).allocations() == {}
    assert cni.check(conf, rt, node) != []


def test_mtu_and_hairpin_as_configured(make_netns, tmp_path):
    node = make_netns("node", _node_setup)
    pod_a, pod_b = make_netns("a"), make_netns("b")
    on = cni.add(_conf(tmp_path), RuntimeConf("a", pod_a), node)  # MTU from cni0, hairpin on
    veth = _link(node, on.host_veth)
    assert veth is not None and veth.hairpin is True and veth.mtu == 1450
    assert _link(pod_a, "eth0").mtu == 1450
    off = _conf(tmp_path, mtu=1400, hairpin_mode=False)
    res = cni.add(off, RuntimeConf("b", pod_b), node)
    veth = _link(node, res.host_veth)
    assert veth is not None and veth.hairpin is False and veth.mtu == 1400
    assert _link(pod_b, "eth0").mtu == 1400
    assert cni.check(off, RuntimeConf("b", pod_b), node) == []


def test_check_reports_lost_pieces_and_add_heals_them(make_netns, tmp_path):
    node = make_netns("node", _node_setup)
    pod = make_netns("pod")
    conf, rt = _conf(tmp_path), RuntimeConf("c1", pod)
    res = cni.add(conf, rt, node)

    def drop_hairpin() -> None:
        with links.netlink() as ipr:
            links.ensure_hairpin(ipr, links.link_index(ipr, res.host_veth), False)

    netns.run_in_netns(node, drop_hairpin)
    assert any("hairpin" in p for p in cni.check(conf, rt, node))
    assert cni.add(conf, rt, node).address == res.address
    assert cni.check(conf, rt, node) == []


def test_del_after_netns_deleted_frees_everything(make_netns, tmp_path):
    node = make_netns("node", _node_setup)
    pod = make_netns("pod")
    conf, rt = _conf(tmp_path), RuntimeConf("c1", pod)
    res = cni.add(conf, rt, node)
    netns.delete_netns(pod)  # a crash: the pod's netns went first
    cni.delete(conf, rt, node)
    assert _link(node, res.host_veth) is None
    assert cni.HostLocalIpam(conf.data_dir).allocations() == {}


def test_del_after_veth_deleted_frees_everything(make_netns, tmp_path):
    node = make_netns("node", _node_setup)
    pod = make_netns("pod")
    conf, rt = _conf(tmp_path), RuntimeConf("c1", pod)
    res = cni.add(conf, rt, node)

    def drop() -> None:
        with links.netlink() as ipr:
            links.delete_link(ipr, res.host_veth)

    netns.run_in_netns(node, drop)  # a crash: the links went, the IP file stayed
    assert cni.check(conf, rt, node)
    cni.delete(conf, rt, node)
    assert cni.HostLocalIpam(conf.data_dir).allocations() == {}
    assert _link(pod, "eth0") is None


def test_add_after_half_a_pair_remakes_it(make_netns, tmp_path):
    node = make_netns("node", _node_setup)
    pod = make_netns("pod")
    conf, rt = _conf(tmp_path), RuntimeConf("c1", pod)
    res = cni.add(conf, rt, node)
    netns.delete_netns(pod)
    pod = make_netns("pod2")
    rt = RuntimeConf("c1", pod)
    assert cni.add(conf, rt, node).address == res.address  # same container: same IP
    assert cni.check(conf, rt, node) == []
    cni.delete(conf, rt, node)


def _allocate(args: tuple[str, str]) -> tuple[str, str]:
    directory, owner = args
    ipam = cni.HostLocalIpam(Path(directory), IPv4Network("10.78.0.0/26"))
    return owner, str(ipam.allocate(owner))


def test_ipam_never_double_allocates_under_concurrent_adds(tmp_path):
    owners = [f"c{i}" for i in range(40)] * 2  # each twice: same owner, same address
    with multiprocessing.get_context("fork").Pool(8) as pool:
        got = pool.map(_allocate, [(str(tmp_path), o) for o in owners])
    by_owner: dict[str, set[str]] = {}
    for owner, ip in got:
        by_owner.setdefault(owner, set()).add(ip)
    assert all(len(ips) == 1 for ips in by_owner.values())
    addresses = [next(iter(ips)) for ips in by_owner.values()]
    assert len(set(addresses)) == 40
    on_disk = cni.HostLocalIpam(tmp_path).allocations()
    assert {str(ip) for ip in on_disk} == set(addresses)
    assert IPv4Address("10.78.0.1") not in on_disk  # the gateway is never handed out


def test_netconf_round_trips_as_a_conflist(tmp_path):
    conf = _conf(tmp_path, mtu=1400)
    doc = conf.to_conflist()
    assert doc["plugins"][0]["type"] == "bridge"
    assert doc["plugins"][0]["ipam"]["type"] == "host-local"
    assert NetConf.from_conflist(doc) == conf
