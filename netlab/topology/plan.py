"""The address plan: every name and address of a lab, derived from its topology.

Pure and deterministic: the same topology always yields the same plan, so
``up --dry-run``, ``up`` itself, ``status`` and the node agents all agree on
who has which address without asking the kernel. Conventions follow kind and
flannel:

- nodes get underlay addresses from the second host of ``network.subnet`` on,
  control-plane first (the first host is kept free, as kind keeps a gateway);
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

from netlab.topology.model import VXLAN_OVERHEAD, Node, Topology

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


def underlay_port(node: str) -> str:
    """The bridge-side veth of a node in ``<lab>-net``: readable when it fits IFNAMSIZ."""
    name = f"p-{node}"
    return name if len(name) <= IFNAMSIZ else f"p-{short_hash(node, IFNAMSIZ - 2)}"


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
class NodePlan:
    name: str
    role: str
    netns: str
    underlay: IPv4Interface
    port: str
    pod_subnet: IPv4Network | None = None
    vtep_mac: str | None = None

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
        return self.topology.network.mtu

    @property
    def pod_mtu(self) -> int:
        """MTU for cni0 and pods: the underlay's, less VXLAN's headers when encapsulating."""
        mtu = self.topology.network.mtu
        return mtu - VXLAN_OVERHEAD if self.overlay == "vxlan" else mtu

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


def plan_lab(topology: Topology) -> LabPlan:
    """Derive the lab's names and addresses. The topology is already validated."""
    subnet = topology.network.subnet
    pod_subnets = topology.cluster.pod_subnet.subnets(new_prefix=24)
    plans = []
    for i, node in enumerate(_ordered(topology.nodes)):
        underlay = IPv4Interface(f"{subnet.network_address + 2 + i}/{subnet.prefixlen}")
        pod_subnet = next(pod_subnets) if node.in_cluster else None
        plans.append(NodePlan(
            name=node.name, role=node.role, netns=node_netns(topology.name, node.name),
            underlay=underlay, port=underlay_port(node.name), pod_subnet=pod_subnet,
            vtep_mac=vtep_mac(topology.name, node.name) if node.in_cluster else None,
        ))
    return LabPlan(topology=topology, nodes=tuple(plans))
