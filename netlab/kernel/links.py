"""Idempotent link and address programming over one pyroute2 ``IPRoute`` socket.

Each ``ensure_*`` takes the desired state of one object and converges the
kernel to it: create what is missing, fix what differs, and leave what already
matches untouched. Running any of them twice changes nothing the second time,
which is what lets ``up`` resume and a node agent re-apply after a restart.

The socket decides the namespace: callers open ``IPRoute()`` inside the lab
namespace (see ``netlab.kernel.netns.run_in_netns``).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netlab.kernel.netns import netns_path

IFF_UP = 0x1
OWNER_ALIAS_PREFIX = "netlab:"


def link_index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _link(ipr: IPRoute, index: int) -> Any:  # a pyroute2 ifinfmsg
    return ipr.get_links(index)[0]


def get_link(ipr: IPRoute, name: str) -> Any | None:
    """Link ``name``'s whole message (a pyroute2 ifinfmsg), or None when absent: one
    RTM_GETLINK by name, where ``link_index`` then ``_link`` cost two. Each pyroute2
    call is a round trip through its event loop, so pod start-up counts them."""
    try:
        found = ipr.link("get", ifname=name)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise
    return next(iter(found), None)


def converge(ipr: IPRoute, index: int, *, mtu: int | None = None, master: int | None = None,
              mac: str | None = None, up: bool = True, link: Any | None = None) -> None:
    """Set only the attributes that differ (a no-op ``set`` still costs a netlink round
    trip), in one request. ``link``: the link's message when the caller has it already."""
    link = link if link is not None else _link(ipr, index)
    changes: dict[str, object] = {}
    if mtu is not None and link.get("IFLA_MTU") != mtu:
        changes["mtu"] = mtu
    if master is not None and link.get("IFLA_MASTER") != master:
        changes["master"] = master
    if mac is not None and link.get("IFLA_ADDRESS") != mac:
        changes["address"] = mac
    if up and not link["flags"] & IFF_UP:
        changes["state"] = "up"
    if changes:
        ipr.link("set", index=index, **changes)


def ensure_up(ipr: IPRoute, name: str) -> int:
    index = link_index(ipr, name)
    if index is None:
        raise LookupError(f"no link named {name}")
    converge(ipr, index)
    return index


def is_up(ipr: IPRoute, name: str) -> bool | None:
    """Whether link ``name`` is administratively up; None when there is no such link."""
    index = link_index(ipr, name)
    return None if index is None else bool(_link(ipr, index)["flags"] & IFF_UP)


def set_up(ipr: IPRoute, name: str, up: bool) -> bool:
    """Set link ``name`` up or down (``ip link set NAME up|down``); return whether it was
    up. LookupError when there is no such link."""
    index = link_index(ipr, name)
    if index is None:
        raise LookupError(f"no link named {name}")
    was_up = bool(_link(ipr, index)["flags"] & IFF_UP)
    if was_up != up:
        ipr.link("set", index=index, state="up" if up else "down")
    return was_up


def ensure_bridge(ipr: IPRoute, name: str, mtu: int | None = None) -> int:
    index = link_index(ipr, name)
    if index is None:
        ipr.link("add", ifname=name, kind="bridge", **({"mtu": mtu} if mtu else {}))
        index = link_index(ipr, name)
        assert index is not None
    converge(ipr, index, mtu=mtu)
    return index


def ensure_veth(ipr: IPRoute, name: str, peer: str, peer_netns: str, mtu: int | None = None,
                master: int | None = None) -> Any:
    """A veth whose ``name`` end is here, up, and ``peer`` end lives in ``peer_netns``;
    returns the ``name`` end's message (``["index"]``, ``.get("IFLA_ADDRESS")``, ...).

    Created directly across namespaces: neither end ever exists in the root namespace.
    A new pair is made with its MTU, its ``master`` (a bridge's index) and up in the same
    request; an existing one is converged to them.
    """
    link = get_link(ipr, name)
    if link is None:
        fd = os.open(netns_path(peer_netns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            peer_spec: dict[str, object] = {"ifname": peer, "net_ns_fd": fd}
            extra: dict[str, object] = {"state": "up"}
            if mtu:
                peer_spec["mtu"] = extra["mtu"] = mtu
            if master is not None:
                extra["master"] = master
            ipr.link("add", ifname=name, kind="veth", peer=peer_spec, **extra)
        finally:
            os.close(fd)
        link = get_link(ipr, name)
        assert link is not None
    converge(ipr, link["index"], mtu=mtu, master=master, link=link)
    return link


@dataclass(frozen=True)
class VxlanSpec:
    name: str
    vni: int
    port: int
    local: IPv4Address
    uplink: str
    mac: str
    mtu: int


def ensure_vxlan(ipr: IPRoute, spec: VxlanSpec) -> int:
    """A VXLAN device with learning off: peers come only from the overlay reconcile."""
    index = link_index(ipr, spec.name)
    if index is not None:
        data = _link(ipr, index).get(("IFLA_LINKINFO", "IFLA_INFO_DATA"))
        same = data is not None and (
            data.get("IFLA_VXLAN_ID") == spec.vni and data.get("IFLA_VXLAN_PORT") == spec.port
            and data.get("IFLA_VXLAN_LOCAL") == str(spec.local)
            and not data.get("IFLA_VXLAN_LEARNING"))
        if not same:  # VNI, port and local address can't be changed in place
            ipr.link("del", index=index)
            index = None
    if index is None:
        uplink = link_index(ipr, spec.uplink)
        if uplink is None:
            raise LookupError(f"vxlan uplink {spec.uplink} does not exist")
        ipr.link("add", ifname=spec.name, kind="vxlan", vxlan_id=spec.vni, vxlan_port=spec.port,
                 vxlan_local=str(spec.local), vxlan_link=uplink, vxlan_learning=0,
                 address=spec.mac, mtu=spec.mtu)
        index = link_index(ipr, spec.name)
        assert index is not None
    converge(ipr, index, mtu=spec.mtu, mac=spec.mac)
    return index


def ensure_addresses(ipr: IPRoute, index: int, wanted: list[IPv4Interface]) -> None:
    """Exactly ``wanted`` as the link's IPv4 addresses."""
    have = {IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in ipr.get_addr(family=2, index=index)}
    for addr in have - set(wanted):
        ipr.addr("del", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen)
    for addr in wanted:
        if addr not in have:
            ipr.addr("add", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen)


def ensure_default_route(ipr: IPRoute, gateway: IPv4Address) -> None:
    try:
        ipr.route("replace", dst="0.0.0.0/0", gateway=str(gateway))
    except NetlinkError as exc:
        raise OSError(exc.code, f"default route via {gateway}: {exc}") from exc


def ensure_route(ipr: IPRoute, subnet: IPv4Network, gateway: IPv4Address) -> None:
    """``ip route replace SUBNET via GATEWAY``; idempotent."""
    try:
        ipr.route("replace", dst=str(subnet), gateway=str(gateway))
    except NetlinkError as exc:
        raise OSError(exc.code, f"route to {subnet} via {gateway}: {exc}") from exc


def tag_owner(ipr: IPRoute, lab: str) -> None:
    """Mark the namespace as the lab's, on ``lo``'s alias: cleanup by prefix checks it,
    so a lab named ``demo`` never deletes lab ``demo-a``'s namespaces."""
    ipr.link("set", index=1, ifalias=OWNER_ALIAS_PREFIX + lab)


def read_owner(ipr: IPRoute) -> str | None:
    alias = _link(ipr, 1).get("IFLA_IFALIAS") or ""
    return alias[len(OWNER_ALIAS_PREFIX):] if alias.startswith(OWNER_ALIAS_PREFIX) else None


def netlink() -> IPRoute:
    """An rtnetlink socket in the calling thread's namespace (use as a context manager)."""
    return IPRoute()


def delete_link(ipr: IPRoute, name: str) -> bool:
    """Delete link ``name`` (a veth takes its peer with it); False when absent. Idempotent."""
    index = link_index(ipr, name)
    if index is None:
        return False
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:  # gone meanwhile
            return False
        raise
    return True


@dataclass(frozen=True)
class LinkInfo:
    index: int
    name: str
    mac: str
    mtu: int
    master: int | None
    up: bool
    hairpin: bool | None  # bridge ports only
    addresses: tuple[IPv4Interface, ...]


def link_info(ipr: IPRoute, name: str, addresses: bool = True) -> LinkInfo | None:
    """What ``ip -d addr show NAME`` tells; ``addresses=False`` skips the address query."""
    link = get_link(ipr, name)
    if link is None:
        return None
    index = link["index"]
    mode = link.get(("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_MODE"))
    addrs = tuple(IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
                  for a in ipr.get_addr(family=2, index=index)) if addresses else ()
    return LinkInfo(index=index, name=name, mac=link.get("IFLA_ADDRESS") or "",
                    mtu=int(link.get("IFLA_MTU") or 0), master=link.get("IFLA_MASTER"),
                    up=bool(link["flags"] & IFF_UP),
                    hairpin=None if mode is None else bool(mode), addresses=addrs)


def ensure_hairpin(ipr: IPRoute, index: int, on: bool = True, link: Any | None = None) -> bool:
    """Hairpin mode of a bridge port (``bridge link set dev X hairpin on``); True if changed.
    ``link``: the port's message when the caller has it already."""
    link = link if link is not None else _link(ipr, index)
    mode = link.get(("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_MODE"))
    if bool(mode) == on:
        return False
    ipr.brport("set", index=index, mode=1 if on else 0)
    return True


def default_gateway(ipr: IPRoute) -> IPv4Address | None:
    for route in ipr.get_routes(family=2, dst_len=0):
        gateway = route.get("RTA_GATEWAY")
        if gateway and route.get("RTA_TABLE", 254) == 254:
            return IPv4Address(gateway)
    return None


LOCAL_TABLE = 255


def _local_route_args(ipr: IPRoute, cidr: str) -> dict[str, object]:
    address, _, length = cidr.partition("/")
    return {"dst": address, "dst_len": int(length or 32), "type": "local",
            "table": LOCAL_TABLE, "oif": ipr.link_lookup(ifname="lo")[0], "scope": 254}


def ensure_local_route(ipr: IPRoute, cidr: str) -> None:
    """``ip route replace local CIDR dev lo table local``; idempotent."""
    ipr.route("replace", **_local_route_args(ipr, cidr))


def remove_local_route(ipr: IPRoute, cidr: str) -> bool:
    """Undo ``ensure_local_route``; False when it was not there."""
    try:
        ipr.route("del", **_local_route_args(ipr, cidr))
    except NetlinkError as exc:
        if exc.code in (errno.ESRCH, errno.ENOENT):
            return False
        raise
    return True
