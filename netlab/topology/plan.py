"""The address plan: every name and address of a lab, derived from its topology.

Pure and deterministic: the same topology always yields the same plan, so
``up --dry-run``, ``up`` itself, ``status`` and the node agents all agree on
who has which address without asking the kernel. Conventions follow kind and
flannel:

- nodes get underlay addresses from the second host of their network's subnet
  on, control-plane first (the first host is kept free, as kind keeps a gateway;
  a network's first router takes it);
- with several networks (racks), each is its own bridge in ``<lab>-net``
  (``br-<name>``; the one network of a simple topology is ``br0``); a router node
  has an uplink on each of its networks (``eth0``, ``eth1``, ...), and every node
  gets a route to each other network's subnet via the next router on its way;
- each cluster node gets the next /24 of ``cluster.podSubnet``, control-plane
  first; ``cni0`` holds its first host and ``vxlan0`` its network address
  (flannel's "subnet address", the next hop that peers route through);
- VTEP MACs are derived from the lab and node names, so peers can be wired
  before they ever talk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from netlab.topology.model import DEFAULT_NETWORK, VXLAN_OVERHEAD, Network, Node, Topology

UNDERLAY_BRIDGE = "br0"
NODE_UPLINK = "eth0"
POD_BRIDGE = "cni0"
VXLAN_DEVICE = "vxlan0"
IFNAMSIZ = 15


def lab_prefix(lab: str) -> str:
    """Every namespace of the lab starts with this."""
    return f"{lab}-"


def underlay_netns(lab: str) -> str:
    return f"{lab}-net"


def node_netns(lab: str, node: str) -> str:
    return f"{lab}-{node}"


def short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def underlay_port(node: str, index: int = 0) -> str:
    """The bridge-side veth of a node's ``index``-th uplink in ``<lab>-net``: readable
    when it fits IFNAMSIZ (``p-worker1``; a router's second uplink ``p1-router``)."""
    head = "p-" if index == 0 else f"p{index}-"
    name = f"{head}{node}"
    return name if len(name) <= IFNAMSIZ else f"{head}{short_hash(node, IFNAMSIZ - len(head))}"


def underlay_bridge(network: str) -> str:
    """The bridge of a physical network in ``<lab>-net``: ``br0`` for a topology's one
    network, ``br-<name>`` for each of several."""
    return UNDERLAY_BRIDGE if network == DEFAULT_NETWORK else f"br-{network}"


def uplink_name(index: int) -> str:
    """A node's ``index``-th uplink: ``eth0``, and a router's ``eth1``, ``eth2``, ..."""
    return f"eth{index}"


def vtep_mac(lab: str, node: str) -> str:
    """A stable, locally administered unicast MAC for the node's vxlan0."""
    digest = hashlib.sha256(f"netlab/{lab}/{node}/vtep".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


@dataclass(frozen=True)
class OverlayPeer:
    """What one node must know about another to reach its pods over VXLAN."""

    node: str
    underlay_ip: IPv4Address
    vtep_mac: str
    vtep_ip: IPv4Address  # the peer's pod subnet address, the next hop for its /24
    pod_subnet: IPv4Network


@dataclass(frozen=True)
class Uplink:
    """One of a node's links to a physical network: ``ifname`` in the node, ``port``
    on the network's ``bridge`` in ``<lab>-net``."""

    network: str
    ifname: str
    address: IPv4Interface
    port: str
    bridge: str
    mtu: int


@dataclass(frozen=True)
class Route:
    """A route in a node to another network's subnet, via a router on its own."""

    subnet: IPv4Network
    via: IPv4Address
    router: str  # the router's node name, for pictures and traces


@dataclass(frozen=True)
class NodePlan:
    name: str
    role: str
    netns: str
    underlay: IPv4Interface  # the first uplink's address: the node's InternalIP, its VTEP
    port: str
    pod_subnet: IPv4Network | None = None
    vtep_mac: str | None = None
    uplinks: tuple[Uplink, ...] = ()
    routes: tuple[Route, ...] = ()

    @property
    def network(self) -> str:
        """The node's (first) physical network."""
        return self.uplinks[0].network if self.uplinks else DEFAULT_NETWORK

    @property
    def in_cluster(self) -> bool:
        return self.pod_subnet is not None

    @property
    def gateway(self) -> IPv4Interface | None:
        """``cni0``'s address: the pods' default gateway."""
        if self.pod_subnet is None:
            return None
        return IPv4Interface(f"{self.pod_subnet.network_address + 1}/{self.pod_subnet.prefixlen}")

    @property
    def vtep_ip(self) -> IPv4Address | None:
        return self.pod_subnet.network_address if self.pod_subnet is not None else None

    def as_peer(self) -> OverlayPeer:
        assert self.pod_subnet is not None and self.vtep_mac is not None
        return OverlayPeer(node=self.name, underlay_ip=self.underlay.ip, vtep_mac=self.vtep_mac,
                           vtep_ip=self.pod_subnet.network_address, pod_subnet=self.pod_subnet)


@dataclass(frozen=True)
class LabPlan:
    topology: Topology
    nodes: tuple[NodePlan, ...]

    @property
    def lab(self) -> str:
        return self.topology.name

    @property
    def underlay_netns(self) -> str:
        return underlay_netns(self.lab)

    @property
    def overlay(self) -> str:
        return self.topology.cluster.overlay

    @property
    def underlay_mtu(self) -> int:
        """The smallest MTU of the physical networks: what a packet crossing racks fits."""
        return min(n.mtu for n in self.topology.networks)

    @property
    def pod_mtu(self) -> int:
        """MTU for cni0 and pods: the underlay's, less VXLAN's headers when encapsulating."""
        mtu = self.underlay_mtu
        return mtu - VXLAN_OVERHEAD if self.overlay == "vxlan" else mtu

    @property
    def routers(self) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.role == "router")

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.underlay_netns, *(n.netns for n in self.nodes))

    def node(self, name: str) -> NodePlan:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def peers_of(self, name: str) -> list[OverlayPeer]:
        """Every other cluster node, as ``name`` must see it on the overlay."""
        if self.overlay != "vxlan":
            return []
        return [n.as_peer() for n in self.nodes if n.in_cluster and n.name != name]


def _ordered(nodes: tuple[Node, ...]) -> list[Node]:
    return sorted(nodes, key=lambda n: n.role != "control-plane")  # stable: file order otherwise


def _routes(node: Node, nodes: list[Node], networks: dict[str, Network],
            addresses: dict[tuple[str, str], IPv4Interface]) -> tuple[Route, ...]:
    """A route to every network the node is not on, via the first router on the
    shortest way there (breadth first over networks joined by routers)."""
    first_hop: dict[str, tuple[str, IPv4Address]] = {}
    seen = set(node.networks)
    frontier = list(node.networks)
    while frontier:
        later = []
        for here in frontier:
            for router in nodes:
                if router.role != "router" or router.name == node.name \
                        or here not in router.networks:
                    continue
                for there in router.networks:
                    if there in seen:
                        continue
                    seen.add(there)
                    later.append(there)
                    first_hop[there] = first_hop.get(here) or (
                        router.name, addresses[(router.name, here)].ip)
        frontier = later
    return tuple(Route(networks[name].subnet, via, router)
                 for name, (router, via) in sorted(first_hop.items(),
                                                   key=lambda kv: networks[kv[0]].subnet))


def plan_lab(topology: Topology) -> LabPlan:
    """Derive the lab's names and addresses. The topology is already validated."""
    networks = {n.name: n for n in topology.networks}
    pod_subnets = topology.cluster.pod_subnet.subnets(new_prefix=24)
    ordered = _ordered(topology.nodes)
    # Addresses per network, in node order: the (i+2)th host of the subnet.
    addresses: dict[tuple[str, str], IPv4Interface] = {}
    # The first router of a network takes the first host, the one kept free: the
    # rack's gateway, as on a real rack.
    taken = dict.fromkeys(networks, 0)
    gateway: dict[str, str] = {}
    for node in ordered:
        for name in node.networks:
            subnet = networks[name].subnet
            if node.role == "router" and name not in gateway:
                gateway[name] = node.name
                addresses[(node.name, name)] = IPv4Interface(
                    f"{subnet.network_address + 1}/{subnet.prefixlen}")
                continue
            addresses[(node.name, name)] = IPv4Interface(
                f"{subnet.network_address + 2 + taken[name]}/{subnet.prefixlen}")
            taken[name] += 1
    plans = []
    for node in ordered:
        uplinks = tuple(
            Uplink(network=name, ifname=uplink_name(i), address=addresses[(node.name, name)],
                   port=underlay_port(node.name, i), bridge=underlay_bridge(name),
                   mtu=networks[name].mtu)
            for i, name in enumerate(node.networks))
        pod_subnet = next(pod_subnets) if node.in_cluster else None
        plans.append(NodePlan(
            name=node.name, role=node.role, netns=node_netns(topology.name, node.name),
            underlay=uplinks[0].address, port=uplinks[0].port, pod_subnet=pod_subnet,
            vtep_mac=vtep_mac(topology.name, node.name) if node.in_cluster else None,
            uplinks=uplinks, routes=_routes(node, ordered, networks, addresses),
        ))
    return LabPlan(topology=topology, nodes=tuple(plans))
