"""A lab's network, decided from its address plan: building, describing, removing it.

This module decides what the network is; ``netlab.kernel.wiring`` makes the
kernel match. The build is a reconcile from the plan, in three phases:

1. create every namespace (in parallel), tag it as the lab's, bring ``lo`` up
   and set its sysctls;
2. in ``<lab>-net``: the underlay bridge, and one veth per node whose far end
   lands in the node namespace as ``eth0``;
3. in every node (in parallel): ``eth0``'s address, and for cluster nodes the
   ``cni0`` bridge, ``vxlan0`` and the overlay peers.

``describe_network`` renders the same plan as ``ip``-style lines for
``up --dry-run``; keep the two side by side when changing either.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from ipaddress import IPv4Interface
from typing import Callable

from netlab.kernel import links, netns, overlay, wiring
from netlab.kernel.processes import kill_in_netns
from netlab.topology.plan import (
    NODE_UPLINK,
    POD_BRIDGE,
    UNDERLAY_BRIDGE,
    VXLAN_DEVICE,
    LabPlan,
    NodePlan,
    lab_prefix,
)

Progress = Callable[[str], None]

# IPv6 is off in lab namespaces: labs are IPv4, and router solicitations and
# MLD reports would otherwise clutter every capture and trace.
BASE_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
NODE_SYSCTLS = {"net.ipv4.ip_forward": "1"}


def _sysctls(node: NodePlan | None) -> dict[str, str]:
    extra = NODE_SYSCTLS if node is not None and node.in_cluster else {}
    return {**BASE_SYSCTLS, **extra}


def namespace_specs(plan: LabPlan) -> list[wiring.NamespaceSpec]:
    """Every namespace of the lab, the underlay's first."""
    return ([wiring.NamespaceSpec(plan.underlay_netns, plan.lab, _sysctls(None))]
            + [wiring.NamespaceSpec(n.netns, plan.lab, _sysctls(n)) for n in plan.nodes])


def underlay_spec(plan: LabPlan) -> wiring.BridgeSpec:
    """The physical network: the bridge in ``<lab>-net``, one port per node."""
    return wiring.BridgeSpec(
        netns=plan.underlay_netns, name=UNDERLAY_BRIDGE, mtu=plan.underlay_mtu,
        ports=tuple(wiring.VethPort(n.port, NODE_UPLINK, n.netns) for n in plan.nodes))


def node_spec(plan: LabPlan, node: NodePlan) -> wiring.NodeLinks:
    """One node's links: ``eth0``, and in the cluster ``cni0`` and the overlay."""
    bridge = vxlan = None
    if node.in_cluster:
        assert node.gateway is not None and node.vtep_mac is not None
        bridge = wiring.Bridge(POD_BRIDGE, plan.pod_mtu, (node.gateway,))
        if plan.overlay == "vxlan":
            cluster = plan.topology.cluster
            device = links.VxlanSpec(
                name=VXLAN_DEVICE, vni=cluster.vni, port=cluster.vxlan_port,
                local=node.underlay.ip, uplink=NODE_UPLINK, mac=node.vtep_mac, mtu=plan.pod_mtu)
            vxlan = wiring.Vxlan(device, (_vtep_address(node),), tuple(plan.peers_of(node.name)))
    return wiring.NodeLinks(netns=node.netns, uplink=NODE_UPLINK, addresses=(node.underlay,),
                            bridge=bridge, vxlan=vxlan)


def configure_node(plan: LabPlan, node: NodePlan) -> overlay.OverlayChanges | None:
    """Converge one node namespace; what the overlay reconcile changed (None without one)."""
    return wiring.converge_node(node_spec(plan, node))


def _vtep_address(node: NodePlan) -> IPv4Interface:
    return IPv4Interface(f"{node.vtep_ip}/32")


def build_network(plan: LabPlan, progress: Progress = lambda _: None) -> None:
    """Create (or converge) the whole lab network. Raises on the first failure;
    the caller rolls back with ``teardown_network``."""
    progress(f"creating {len(plan.namespaces)} namespaces")
    try:
        wiring.ensure_namespaces(namespace_specs(plan))
    except wiring.NamespaceTaken as exc:
        raise FileExistsError(errno.EEXIST, f"{exc.strerror}; remove it or rename the node"
                              ) from exc
    progress(f"wiring the physical network ({UNDERLAY_BRIDGE} in {plan.underlay_netns})")
    wiring.ensure_bridge(underlay_spec(plan))
    what = "bridges and the VXLAN overlay" if plan.overlay == "vxlan" else "bridges (no overlay)"
    progress(f"configuring nodes: addresses, {what}")
    wiring.converge_nodes(node_spec(plan, n) for n in plan.nodes)


def describe_network(plan: LabPlan) -> list[str]:
    """The plan as ``ip``/``bridge``-style lines, for ``up --dry-run``."""
    mtu = plan.underlay_mtu
    out = [f"netns {plan.underlay_netns}",
           f"  link add {UNDERLAY_BRIDGE} type bridge mtu {mtu} up"]
    for node in plan.nodes:
        out.append(f"  link add {node.port} type veth peer {NODE_UPLINK} netns {node.netns} "
                   f"mtu {mtu} master {UNDERLAY_BRIDGE} up")
    for node in plan.nodes:
        out.append(f"netns {node.netns}  # {node.role}")
        out += [f"  sysctl {k}={v}" for k, v in _sysctls(node).items()]
        out.append(f"  addr add {node.underlay} dev {NODE_UPLINK}")
        if not node.in_cluster:
            continue
        out.append(f"  link add {POD_BRIDGE} type bridge mtu {plan.pod_mtu} up")
        out.append(f"  addr add {node.gateway} dev {POD_BRIDGE}")
        if plan.overlay != "vxlan":
            continue
        cluster = plan.topology.cluster
        out.append(f"  link add {VXLAN_DEVICE} type vxlan id {cluster.vni} dstport "
                   f"{cluster.vxlan_port} local {node.underlay.ip} dev {NODE_UPLINK} nolearning "
                   f"address {node.vtep_mac} mtu {plan.pod_mtu} up")
        out.append(f"  addr add {node.vtep_ip}/32 dev {VXLAN_DEVICE}")
        out += ["  " + line for line in overlay.describe_overlay(plan.peers_of(node.name))]
    return out


def owned_namespaces(lab: str, recorded: Iterable[str] = (),
                     trust_record: bool = True) -> list[str]:
    """The lab's namespaces that exist now: those carrying the lab's prefix *and* its
    owner tag (found even after the state directory is lost), plus, with
    ``trust_record``, the recorded ones (an ``up`` killed between creating a
    namespace and tagging it)."""
    present = set(netns.list_netns())
    found = {name for name in recorded if name in present} if trust_record else set()
    for name in present - found:
        if not name.startswith(lab_prefix(lab)):
            continue
        try:
            owner = wiring.namespace_owner(name)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise
        if owner == lab:
            found.add(name)
    return sorted(found)


def teardown_network(namespaces: Iterable[str], progress: Progress = lambda _: None) -> list[int]:
    """Stop every process inside the namespaces, then delete them. Idempotent."""
    names = list(namespaces)
    killed = kill_in_netns(names)
    if killed:
        progress(f"stopped {len(killed)} processes inside the lab")
    for name in names:
        netns.delete_netns(name)
    return killed
