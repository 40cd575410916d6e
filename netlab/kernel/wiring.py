"""A network of namespaces and links, converged from a description of it.

``netlab.lab.network`` decides what a lab's network is (which namespaces,
which bridge, which links and addresses in each node); this module makes the
kernel match, entering each namespace on a thread of its own
(``netns.run_in_netns``) and programming it over netlink. Every ``ensure_*``
and ``converge_*`` is an idempotent reconcile: a second call with the same
description changes nothing, so an interrupted build resumes by running again.

- ``ensure_namespaces``: create (in parallel) or converge namespaces tagged
  with their owner, with ``lo`` up and their sysctls set; a namespace tagged
  for someone else is never adopted (``NamespaceTaken``);
- ``namespace_owner``: the owner tag of a namespace that exists;
- ``ensure_bridge``: a bridge, and veths whose far ends land in other
  namespaces, plugged into it;
- ``converge_node`` / ``converge_nodes``: a node's uplinks, its routes to other
  networks, its bridge and its VXLAN device with the overlay peers;
- ``set_link_up`` / ``links_up``: one link's administrative state, as
  unplugging a cable does.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from netlab.kernel import links, netns, overlay
from netlab.topology.plan import OverlayPeer


class NamespaceTaken(FileExistsError):
    """The namespace exists and is not tagged as ``owner``'s."""

    def __init__(self, name: str, owner: str | None):
        whose = f"lab {owner}" if owner else "something other than netlab"
        super().__init__(errno.EEXIST, f"network namespace {name} already exists and "
                                       f"belongs to {whose}")
        self.name, self.owner = name, owner


@dataclass(frozen=True)
class NamespaceSpec:
    """A network namespace tagged as ``owner``'s, ``lo`` up, these sysctls set."""

    name: str
    owner: str
    sysctls: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VethPort:
    """A veth with its ``name`` end on a bridge and its ``peer`` end in ``peer_netns``."""

    name: str
    peer: str
    peer_netns: str


@dataclass(frozen=True)
class BridgeSpec:
    """A bridge in ``netns`` with every port plugged in, all at ``mtu``."""

    netns: str
    name: str
    mtu: int
    ports: tuple[VethPort, ...] = ()


@dataclass(frozen=True)
class Bridge:
    name: str
    mtu: int
    addresses: tuple[IPv4Interface, ...] = ()


@dataclass(frozen=True)
class Vxlan:
    device: links.VxlanSpec
    addresses: tuple[IPv4Interface, ...]
    peers: tuple[OverlayPeer, ...]


@dataclass(frozen=True)
class Uplink:
    """A further uplink of a node (a router's ``eth1``...): the far end of a ``VethPort``."""

    name: str
    addresses: tuple[IPv4Interface, ...]


@dataclass(frozen=True)
class NodeLinks:
    """One node namespace's links: its uplink (which must exist: the far end of a
    ``VethPort``) with its addresses, optionally a bridge, and optionally a VXLAN
    device over the uplink with its overlay peers; a router's further uplinks, and
    routes to other networks (subnet, gateway)."""

    netns: str
    uplink: str
    addresses: tuple[IPv4Interface, ...]
    bridge: Bridge | None = None
    vxlan: Vxlan | None = None
    more_uplinks: tuple[Uplink, ...] = ()
    routes: tuple[tuple[IPv4Network, IPv4Address], ...] = ()


# --- namespaces -------------------------------------------------------------------------------


def _read_owner() -> str | None:
    with links.netlink() as ipr:
        return links.read_owner(ipr)


def namespace_owner(name: str) -> str | None:
    """The owner tag of namespace ``name`` (None when untagged); ENOENT when it is gone."""
    return netns.run_in_netns(name, _read_owner)


def _prepare(spec: NamespaceSpec) -> None:
    for key, value in spec.sysctls.items():
        netns.write_sysctl(key, value)
    with links.netlink() as ipr:
        links.tag_owner(ipr, spec.owner)
        links.ensure_up(ipr, "lo")


def ensure_namespace(spec: NamespaceSpec) -> None:
    """Create the namespace, or converge it when it is already ``spec.owner``'s."""
    if not netns.exists(spec.name):
        netns.create_netns(spec.name, lambda: _prepare(spec))
        return
    owner = namespace_owner(spec.name)
    if owner != spec.owner:  # never adopt a namespace this owner did not make
        raise NamespaceTaken(spec.name, owner)
    netns.run_in_netns(spec.name, lambda: _prepare(spec))


def ensure_namespaces(specs: Iterable[NamespaceSpec]) -> None:
    """``ensure_namespace`` for each, in parallel; the first error is raised after all ran."""
    netns.parallel([functools.partial(ensure_namespace, s) for s in specs])


# --- links ------------------------------------------------------------------------------------


def ensure_bridge(spec: BridgeSpec) -> None:
    def converge() -> None:
        with links.netlink() as ipr:
            bridge = links.ensure_bridge(ipr, spec.name, mtu=spec.mtu)
            for port in spec.ports:
                links.ensure_veth(ipr, port.name, port.peer, port.peer_netns, mtu=spec.mtu,
                                  master=bridge)

    netns.run_in_netns(spec.netns, converge)


def _converge_node_here(spec: NodeLinks) -> overlay.OverlayChanges | None:
    with links.netlink() as ipr:
        uplink = links.ensure_up(ipr, spec.uplink)
        links.ensure_addresses(ipr, uplink, list(spec.addresses))
        for more in spec.more_uplinks:
            links.ensure_addresses(ipr, links.ensure_up(ipr, more.name), list(more.addresses))
        for subnet, gateway in spec.routes:  # after the addresses: the gateway is on-link
            links.ensure_route(ipr, subnet, gateway)
        if spec.bridge is not None:
            bridge = links.ensure_bridge(ipr, spec.bridge.name, mtu=spec.bridge.mtu)
            links.ensure_addresses(ipr, bridge, list(spec.bridge.addresses))
        if spec.vxlan is None:
            return None
        vxlan = links.ensure_vxlan(ipr, spec.vxlan.device)
        links.ensure_addresses(ipr, vxlan, list(spec.vxlan.addresses))
        return overlay.reconcile_overlay(ipr, spec.vxlan.peers, device=spec.vxlan.device.name)


def converge_node(spec: NodeLinks) -> overlay.OverlayChanges | None:
    """Converge one node namespace; what the overlay reconcile changed, if it has one."""
    return netns.run_in_netns(spec.netns, lambda: _converge_node_here(spec))


def converge_nodes(specs: Iterable[NodeLinks]) -> list[overlay.OverlayChanges | None]:
    """``converge_node`` for each, in parallel."""
    return netns.parallel([functools.partial(converge_node, s) for s in specs])


def set_link_up(namespace: str, name: str, up: bool) -> bool:
    """Set link ``name`` in ``namespace`` up or down; return whether it was up.

    LookupError when there is no such link.
    """
    def flip() -> bool:
        with links.netlink() as ipr:
            return links.set_up(ipr, name, up)

    return netns.run_in_netns(namespace, flip)


def links_up(namespace: str, names: Iterable[str]) -> dict[str, bool]:
    """Each of ``names`` in ``namespace``: up (True), or down or missing (False)."""
    wanted = list(names)

    def read() -> dict[str, bool]:
        with links.netlink() as ipr:
            return {name: bool(links.is_up(ipr, name)) for name in wanted}

    return netns.run_in_netns(namespace, read)
