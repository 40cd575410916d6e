"""Where a frame was seen, in the lab's terms: which node or pod, which kind of interface.

A capture socket reports a namespace name and an interface name. The report
speaks of nodes, pods and observation points, so this module maps one to the
other from the lab's address plan and its pods: ``<lab>-net`` is the
physical network (its ports are named after nodes), ``<lab>-<node>`` is a
node (``eth0`` the uplink, ``vxlan0`` the overlay, ``cni0`` the pod bridge,
a pod's host-side veth), and a pod's namespace holds its ``eth0``.

The observation points borrow Hubble's vocabulary where it has a word:

=================  ==========================================================
point              where
=================  ==========================================================
``sent``           a pod's own ``eth0``, egress (the pod emitted it)
``received``       a pod's own ``eth0``, ingress (delivered into the pod)
``from-pod``       a pod's host-side veth in its node, ingress
``to-pod``         a pod's host-side veth in its node, egress
``bridged``        ``cni0`` forwarded it between two of its ports (nftrace)
``to-stack``       ``cni0`` ingress: from the pods up to the node's routing
``from-stack``     ``cni0`` egress: routed by the node down to its pods
``to-overlay``     ``vxlan0`` egress (encapsulation follows)
``from-overlay``   ``vxlan0`` ingress (just decapsulated)
``to-network``     a node's ``eth0`` egress, onto the physical network
``from-network``   a node's ``eth0`` ingress
``underlay``       a node's port on the physical network's bridge
``host``           any other interface (``lo``, …)
=================  ==========================================================

Pure: built from data, no I/O, so it is unit-tested with made-up labs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netlab.topology.plan import NODE_UPLINK, POD_BRIDGE, VXLAN_DEVICE, LabPlan
from netlab.trace.model import PodRecord

POD_IFNAME = "eth0"

# (interface kind, outgoing) -> point
_POINTS = {
    ("pod-eth0", True): "sent", ("pod-eth0", False): "received",
    ("pod-veth", False): "from-pod", ("pod-veth", True): "to-pod",
    ("bridge", False): "to-stack", ("bridge", True): "from-stack",
    ("overlay", True): "to-overlay", ("overlay", False): "from-overlay",
    ("uplink", True): "to-network", ("uplink", False): "from-network",
    ("port", True): "underlay", ("port", False): "underlay",
}

# Frames that one skb shows to two taps carry one timestamp (a bridge port and
# the bridge; eth0 and vxlan0 after decapsulation). Ingress: the outer device
# saw it first; egress: the inner one.
_TIE_RANK = {("bridge", False): 1, ("overlay", False): 1, ("bridge", True): 0,
             ("overlay", True): 0, ("pod-veth", True): 1, ("uplink", True): 1}


@dataclass(frozen=True)
class Location:
    netns: str
    kind: str  # pod, node, external, router, underlay, unknown
    node: str | None  # the node (for a pod: the node it runs on)
    pod: str | None  # namespace/name, for a pod's namespace or its host-side veth
    iface_kind: str  # pod-eth0, pod-veth, bridge, overlay, uplink, port, other

    def point(self, outgoing: bool) -> str:
        return _POINTS.get((self.iface_kind, outgoing), "host")

    def tie_rank(self, outgoing: bool) -> int:
        return _TIE_RANK.get((self.iface_kind, outgoing), 0)


class LabView:
    """The lab's namespaces and interfaces, named."""

    def __init__(self, plan: LabPlan, pods: Iterable[PodRecord]):
        self.plan = plan
        self.pods = [p for p in pods if p.netns]
        self._nodes = {n.netns: n for n in plan.nodes}
        # Every uplink's bridge port (a router has one per network it joins).
        self._ports = {port: n.name for n in plan.nodes
                       for port in ([u.port for u in n.uplinks] or [n.port])}
        self._pod_ns = {p.netns: p for p in self.pods if p.netns}  # (all have one)
        self._veths = {(p.node, p.veth): p for p in self.pods if p.veth}
        self._by_ip = {p.ip: p for p in self.pods if p.ip}

    @property
    def lab(self) -> str:
        return self.plan.lab

    def namespaces(self) -> list[str]:
        """Every namespace a packet of this lab may cross: the physical network,
        the nodes and the pods."""
        return [self.plan.underlay_netns, *(n.netns for n in self.plan.nodes),
                *sorted(self._pod_ns)]

    def node_namespaces(self) -> list[str]:
        return [n.netns for n in self.plan.nodes]

    def pod_by_ip(self, ip: str | None) -> PodRecord | None:
        return self._by_ip.get(ip) if ip else None

    def pod_by_netns(self, netns: str) -> PodRecord | None:
        return self._pod_ns.get(netns)

    def node_by_netns(self, netns: str) -> str | None:
        node = self._nodes.get(netns)
        return node.name if node else None

    def locate(self, netns: str, ifname: str) -> Location:
        if netns == self.plan.underlay_netns:
            return Location(netns, "underlay", self._ports.get(ifname), None,
                            "port" if ifname in self._ports else "other")
        node = self._nodes.get(netns)
        if node is not None:
            kind = "node" if node.in_cluster else \
                "router" if node.role == "router" else "external"
            if ifname == NODE_UPLINK or any(u.ifname == ifname for u in node.uplinks):
                return Location(netns, kind, node.name, None, "uplink")
            if ifname == VXLAN_DEVICE:
                return Location(netns, kind, node.name, None, "overlay")
            if ifname == POD_BRIDGE:
                return Location(netns, kind, node.name, None, "bridge")
            pod = self._veths.get((node.name, ifname))
            if pod is not None or ifname.startswith("veth"):
                return Location(netns, kind, node.name, pod.ref if pod else None, "pod-veth")
            return Location(netns, kind, node.name, None, "other")
        pod = self._pod_ns.get(netns)
        if pod is not None:
            return Location(netns, "pod", pod.node, pod.ref,
                            "pod-eth0" if ifname == POD_IFNAME else "other")
        return Location(netns, "unknown", None, None, "other")
