"""The ``bridge`` plugin: ADD, CHECK and DEL of one pod on the node's ``cni0``.

As containernetworking/plugins' bridge plugin does it, with host-local IPAM
(``ipam.py``) built in:

- ADD: allocate an address for the container id (the same one again on a
  repeated ADD), make a veth pair across namespaces (``veth<8 hex>``, derived
  from the container id, on the node side; ``ifname`` in the pod), enslave the
  host end to the bridge with hairpin mode as configured (so a pod reaching
  itself through a Service gets its packet back), set the MTU on both ends,
  and give the pod end its address and a default route via the gateway.
  Idempotent: an ADD that finds the pieces converges them.
- CHECK: report what differs from what ADD makes (a list of problems).
- DEL: delete the veth (from whichever end still exists) and free the
  address. Idempotent, and safe after a crash: the pod's netns, the veth or
  both may be gone already.

The "host" namespace, where a real plugin runs, is the node's namespace:
``node_netns`` names it, or ``None`` for the calling thread's own. All netlink
goes through ``netlab.kernel``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from ipaddress import IPv4Interface
from typing import Callable, TypeVar

from netlab.kernel import links, netns, rtnl
from netlab.node.cni.config import CniError, Interface, NetConf, Result, RuntimeConf
from netlab.node.cni.ipam import HostLocalIpam, IpamError

T = TypeVar("T")


def random_mac() -> str:
    """A random unicast, locally administered MAC address, as the kernel gives a veth."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


def host_veth_name(container_id: str) -> str:
    """The node-side end of the container's veth: deterministic, so DEL finds it."""
    return "veth" + hashlib.sha256(container_id.encode()).hexdigest()[:8]


def ipam_for(conf: NetConf) -> HostLocalIpam:
    return HostLocalIpam(conf.data_dir, conf.subnet, conf.gateway_ip)


def _in(ns: str | None, fn: Callable[[], T]) -> T:
    return fn() if ns is None else netns.run_in_netns(ns, fn)


def _has_link(name: str) -> bool:
    with rtnl.open_socket() as nl:
        return nl.get_link(name) is not None


def add(conf: NetConf, rt: RuntimeConf, node_netns: str | None = None) -> Result:
    if not netns.exists(rt.netns):
        raise CniError(7, f"network namespace {rt.netns} does not exist")
    try:
        ip = ipam_for(conf).allocate(rt.container_id, rt.ifname)
    except IpamError as exc:
        raise CniError(11, str(exc)) from exc
    address = IPv4Interface(f"{ip}/{conf.subnet.prefixlen}")
    veth = host_veth_name(rt.container_id)

    # Each step reads a link once and changes it in one request, over one socket per
    # namespace, through ``rtnl`` (pyroute2's messages without IPRoute's event loop): a
    # pod start is a dozen netlink round trips, and IPRoute made each cost about a
    # millisecond. A pair made here is not read back: its MAC addresses are chosen
    # here, as the kernel would choose them, since decoding a link's answer (some 50
    # attributes through pyroute2) cost more than the rest of a request, about 0.3 ms
    # each, and a fresh pod made four of them.
    def node_side() -> tuple[str, int, str | None]:
        """(host end's MAC, MTU, the pod end's MAC when the pair was made just now)."""
        with rtnl.open_socket() as nl:
            bridge = nl.get_link(conf.bridge)
            if bridge is None:
                raise CniError(100, f"no {conf.bridge} bridge in the node's namespace")
            mtu = conf.mtu or bridge.mtu
            link = nl.get_link(veth)
            # Only an existing host end can be half a pair (its peer lost with an old
            # namespace after a crash): a new pod's namespace is not even looked into.
            if link is not None and not netns.run_in_netns(rt.netns,
                                                           lambda: _has_link(rt.ifname)):
                nl.delete_link(veth)  # half a pair from a crash: make it again
                link = None
            if link is None:
                # Made across namespaces at the MTU, the host end up and on the bridge:
                # one request; neither end ever exists in the root namespace. (eth0 is
                # brought up on the pod side: the kernel cannot open a peer that early.)
                host_mac, pod_mac = random_mac(), random_mac()
                nl.add_veth(veth, rt.ifname, rt.netns, mtu=mtu, master=bridge.index,
                            mac=host_mac, peer_mac=pod_mac)
                if conf.hairpin_mode:  # a new bridge port starts with hairpin off
                    nl.set_hairpin(veth, True)
                return host_mac, mtu, pod_mac
            nl.converge(link, mtu=mtu, master=bridge.index)
            if bool(link.hairpin) != conf.hairpin_mode:
                nl.set_hairpin(link.index, conf.hairpin_mode)
            return link.mac, mtu, None

    host_mac, mtu, made_mac = _in(node_netns, node_side)

    def pod_side() -> str:
        with rtnl.open_socket() as nl:
            nl.set_link(1, up=True)  # lo: index 1 in every network namespace
            if made_mac is not None:  # as made a moment ago: only down
                index, mac = socket.if_nametoindex(rt.ifname), made_mac
                nl.set_link(index, up=True)
            else:
                link = nl.get_link(rt.ifname)
                if link is None:
                    raise CniError(100, f"{rt.ifname} missing in {rt.netns}")
                nl.converge(link, mtu=mtu)
                index, mac = link.index, link.mac
            nl.ensure_addresses(index, [address])
            try:
                nl.replace_default_route(conf.gateway_ip)
            except OSError as exc:
                raise OSError(exc.errno, f"default route via {conf.gateway_ip}: {exc}") \
                    from exc
            return mac

    pod_mac = netns.run_in_netns(rt.netns, pod_side)
    return Result(interfaces=[Interface(conf.bridge, ""), Interface(veth, host_mac),
                              Interface(rt.ifname, pod_mac, netns.netns_path(rt.netns))],
                  ips=[(address, conf.gateway_ip, 2)],
                  routes=[("0.0.0.0/0", str(conf.gateway_ip))])


def check(conf: NetConf, rt: RuntimeConf, node_netns: str | None = None) -> list[str]:
    """What differs from what ADD makes; empty when the attachment is whole."""
    ip = ipam_for(conf).lookup(rt.container_id)
    if ip is None:
        return [f"no address allocated to {rt.container_id}"]
    if not netns.exists(rt.netns):
        return [f"network namespace {rt.netns} is gone"]
    address = IPv4Interface(f"{ip}/{conf.subnet.prefixlen}")
    veth = host_veth_name(rt.container_id)

    def pod_view() -> list[str]:
        with links.netlink() as ipr:
            info = links.link_info(ipr, rt.ifname)
            if info is None:
                return [f"{rt.ifname} is missing"]
            out = [] if address in info.addresses else [f"{rt.ifname} lost its address {ip}"]
            if not info.up:
                out.append(f"{rt.ifname} is down")
            if links.default_gateway(ipr) != conf.gateway_ip:
                out.append(f"no default route via {conf.gateway_ip}")
            return out

    def node_view() -> list[str]:
        with links.netlink() as ipr:
            info, bridge = links.link_info(ipr, veth), links.link_info(ipr, conf.bridge)
            if info is None:
                return [f"host veth {veth} is missing"]
            out = []
            if bridge is None or info.master != bridge.index:
                out.append(f"host veth {veth} is not on {conf.bridge}")
            elif conf.mtu is None and info.mtu != bridge.mtu:
                out.append(f"host veth {veth} has MTU {info.mtu}, not {bridge.mtu}")
            if conf.mtu is not None and info.mtu != conf.mtu:
                out.append(f"host veth {veth} has MTU {info.mtu}, not {conf.mtu}")
            if bool(info.hairpin) != conf.hairpin_mode:
                out.append(f"host veth {veth} hairpin mode is {'on' if info.hairpin else 'off'}")
            return out

    problems = netns.run_in_netns(rt.netns, pod_view)
    if node_netns is None or netns.exists(node_netns):
        problems += _in(node_netns, node_view)
    return problems


def delete(conf: NetConf, rt: RuntimeConf, node_netns: str | None = None) -> None:
    """Remove the attachment and free its address; idempotent, crash-safe."""
    veth = host_veth_name(rt.container_id)

    def drop(name: str) -> None:
        with rtnl.open_socket() as nl:
            nl.delete_link(name)

    # The links first: a netns still pinned elsewhere must not keep an address
    # that is handed out again.
    if node_netns is None or netns.exists(node_netns):
        _in(node_netns, lambda: drop(veth))
    if rt.netns and netns.exists(rt.netns):
        netns.run_in_netns(rt.netns, lambda: drop(rt.ifname))
    ipam_for(conf).release(rt.container_id)
