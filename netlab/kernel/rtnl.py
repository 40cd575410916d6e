"""Synchronous rtnetlink for the pod start path, on pyroute2's message classes.

pyroute2's ``IPRoute`` (``links``) runs every request through an asyncio event loop and
its generic request processing: about half a millisecond of CPU per request and as
much per socket, which made the netlink work of a pod's sandbox the largest part of
its start-up cost. The dozen requests a pod start makes (read a link by name, make a
veth pair across namespaces, set a link's flags, MTU, master or alias, a bridge
port's hairpin mode, read and add IPv4 addresses, replace the default route) are
built here as pyroute2 messages (``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``), encoded and
their answers parsed by pyroute2 (``MarshalRtnl``), and sent over one plain blocking
netlink socket per namespace: pyroute2's codec without its event loop. Everything
else keeps using ``links``.

The socket decides the namespace, as with ``links.netlink()``: open it on a thread
inside the namespace (``netlab.kernel.netns.run_in_netns``). Errors are ``OSError``
with the kernel's errno (``ENODEV``: no such link).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
)
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.kernel.netns import netns_path

NETLINK_ROUTE = 0
NLM_F_MULTI = 0x2
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1


@dataclass(frozen=True)
class Link:
    """What a pod start reads of a link (RTM_NEWLINK's answer)."""

    index: int
    name: str
    flags: int
    mtu: int
    master: int | None
    mac: str
    hairpin: bool | None  # bridge ports only

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)


def _link(msg: Any) -> Link:
    mode = msg.get(("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_MODE"))
    return Link(index=msg["index"], name=msg.get("IFLA_IFNAME") or "", flags=msg["flags"],
                mtu=int(msg.get("IFLA_MTU") or 0), master=msg.get("IFLA_MASTER"),
                mac=msg.get("IFLA_ADDRESS") or "", hairpin=None if mode is None else bool(mode))


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0, family: int = 0,
            attrs: list[tuple[str, Any]] | None = None) -> ifinfmsg:
    msg = ifinfmsg()
    msg["family"], msg["index"], msg["flags"], msg["change"] = family, index, flags, change
    msg["attrs"] = attrs or []
    return msg


class Rtnl:
    """One NETLINK_ROUTE socket in the calling thread's network namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        try:
            self.sock.bind((0, 0))
        except BaseException:
            self.sock.close()
            raise
        self._seq = 0
        self._marshal = MarshalRtnl()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the protocol ------------------------------------------------------------------

    def _replies(self, msg: Any, kind: int, flags: int) -> Iterator[Any]:
        """Send ``msg`` as a request of ``kind``; yield each answer (parsed by pyroute2)
        until its end: the ACK or error, a GET's one answer, or a dump's DONE. A kernel
        error raises."""
        self._seq += 1
        seq = self._seq
        header = msg["header"]
        header["type"], header["flags"] = kind, flags | NLM_F_REQUEST
        header["sequence_number"], header["pid"] = seq, 0
        msg.encode()
        self.sock.send(msg.data)
        while True:
            last = False
            for answer in self._marshal.parse(self.sock.recv(1 << 16)):
                header = answer["header"]
                if header["sequence_number"] != seq:
                    continue  # an answer to an earlier, abandoned request
                if header["type"] == NLMSG_ERROR:
                    code = abs(answer["error"] or 0)
                    if code:
                        raise OSError(code, os.strerror(code))
                    return
                if header["type"] == NLMSG_DONE:
                    return
                yield answer
                last = not header["flags"] & NLM_F_MULTI
            if last:
                return

    def request(self, msg: Any, kind: int, flags: int = 0) -> list[Any]:
        """Send one request and return its answers (none for an ACK)."""
        return list(self._replies(msg, kind, flags))

    def change(self, msg: Any, kind: int, flags: int = 0) -> None:
        """A request answered by an ACK (raises the kernel's error)."""
        self.request(msg, kind, flags | NLM_F_ACK)

    # -- links -------------------------------------------------------------------------

    def get_link(self, name: str) -> Link | None:
        """Link ``name``, or None when there is none."""
        try:
            found = self.request(_ifinfo(attrs=[("IFLA_IFNAME", name)]), RTM_GETLINK)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        return _link(found[0]) if found else None

    def set_link(self, index: int, *, up: bool | None = None, mtu: int | None = None,
                 master: int | None = None, alias: str | None = None) -> None:
        """Change what is given of link ``index`` in one request."""
        attrs: list[tuple[str, Any]] = []
        if mtu is not None:
            attrs.append(("IFLA_MTU", mtu))
        if master is not None:
            attrs.append(("IFLA_MASTER", master))
        if alias is not None:
            attrs.append(("IFLA_IFALIAS", alias))
        self.change(_ifinfo(index, IFF_UP if up else 0, IFF_UP if up is not None else 0,
                            attrs=attrs), RTM_NEWLINK)

    def converge(self, link: Link, *, mtu: int | None = None, master: int | None = None,
                 up: bool = True) -> None:
        """Set only what differs from ``link`` (one request, or none)."""
        want_mtu = mtu if mtu is not None and link.mtu != mtu else None
        want_master = master if master is not None and link.master != master else None
        want_up = True if up and not link.up else None
        if want_mtu is not None or want_master is not None or want_up is not None:
            self.set_link(link.index, up=want_up, mtu=want_mtu, master=want_master)

    def add_veth(self, name: str, peer: str, peer_netns: str, *, mtu: int | None = None,
                 master: int | None = None, mac: str | None = None,
                 peer_mac: str | None = None) -> None:
        """A veth pair whose ``name`` end is here, up, and ``peer`` end in ``peer_netns``
        (down), both at ``mtu``, ``name`` on bridge ``master``, with the MAC addresses
        given (else the kernel's random ones): one request (EEXIST if taken)."""
        fd = os.open(netns_path(peer_netns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            peer_attrs: list[tuple[str, Any]] = [("IFLA_IFNAME", peer), ("IFLA_NET_NS_FD", fd)]
            attrs: list[tuple[str, Any]] = [("IFLA_IFNAME", name)]
            if mac:
                attrs.append(("IFLA_ADDRESS", mac))
            if peer_mac:
                peer_attrs.append(("IFLA_ADDRESS", peer_mac))
            if mtu:
                peer_attrs.append(("IFLA_MTU", mtu))
                attrs.append(("IFLA_MTU", mtu))
            if master is not None:
                attrs.append(("IFLA_MASTER", master))
            # The peer cannot be made up here: the kernel configures it before the pair
            # is joined, and opening a veth without its peer fails (ENOTCONN).
            attrs.append(("IFLA_LINKINFO", {"attrs": [
                ("IFLA_INFO_KIND", "veth"),
                ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": peer_attrs})]})]}))
            self.change(_ifinfo(flags=IFF_UP, change=IFF_UP, attrs=attrs), RTM_NEWLINK,
                        NLM_F_CREATE | NLM_F_EXCL)
        finally:
            os.close(fd)

    def set_hairpin(self, link: int | str, on: bool) -> None:
        """A bridge port's hairpin mode (``bridge link set dev X hairpin on``), as
        pyroute2's ``brport("set")`` sends it; ``link`` is its index or its name."""
        by_name = [("IFLA_IFNAME", link)] if isinstance(link, str) else []
        self.change(_ifinfo(0 if isinstance(link, str) else link, attrs=[*by_name, (
            "IFLA_LINKINFO", {"attrs": [
                ("IFLA_INFO_KIND", "bridge_slave"),
                ("IFLA_INFO_SLAVE_DATA", {"attrs": [("IFLA_BRPORT_MODE", 1 if on else 0)]})]})]),
            RTM_NEWLINK)

    def delete_link(self, name: str) -> bool:
        """Delete link ``name`` (a veth takes its peer along); False when there is none."""
        try:
            self.change(_ifinfo(attrs=[("IFLA_IFNAME", name)]), RTM_DELLINK)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return False
            raise
        return True

    # -- addresses and routes ----------------------------------------------------------

    def addresses(self, index: int) -> set[IPv4Interface]:
        """Link ``index``'s IPv4 addresses."""
        query = ifaddrmsg()
        query["family"] = socket.AF_INET
        found = set()
        for answer in self.request(query, RTM_GETADDR, NLM_F_DUMP):
            if answer["index"] != index:
                continue  # the kernel dumps every link's
            address = answer.get("IFA_LOCAL") or answer.get("IFA_ADDRESS")
            if address:
                found.add(IPv4Interface(f"{address}/{answer['prefixlen']}"))
        return found

    def _address(self, kind: int, flags: int, index: int, address: IPv4Interface) -> None:
        msg = ifaddrmsg()
        msg["family"], msg["prefixlen"] = socket.AF_INET, address.network.prefixlen
        msg["scope"], msg["index"] = RT_SCOPE_UNIVERSE, index
        msg["attrs"] = [("IFA_LOCAL", str(address.ip)), ("IFA_ADDRESS", str(address.ip))]
        self.change(msg, kind, flags)

    def ensure_addresses(self, index: int, wanted: list[IPv4Interface]) -> None:
        """Exactly ``wanted`` as link ``index``'s IPv4 addresses."""
        have = self.addresses(index)
        for address in have - set(wanted):
            self._address(RTM_DELADDR, 0, index, address)
        for address in wanted:
            if address not in have:
                self._address(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, index, address)

    def replace_default_route(self, gateway: IPv4Address) -> None:
        """``ip route replace default via GATEWAY`` in the main table."""
        msg = rtmsg()
        msg["family"], msg["dst_len"], msg["table"] = socket.AF_INET, 0, RT_TABLE_MAIN
        msg["proto"], msg["scope"], msg["type"] = RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST
        msg["attrs"] = [("RTA_GATEWAY", str(gateway))]
        self.change(msg, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE)


def open_socket() -> Rtnl:
    """An rtnetlink socket in the calling thread's namespace (use as a context manager)."""
    return Rtnl()
