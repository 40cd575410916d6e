"""A lab's network, decided from its address plan: building, describing, removing it.

This module decides what the network is; ``netlab.kernel.wiring`` makes the
kernel match. The build is a reconcile from the plan, in three phases:

1. create every namespace (in parallel), tag it as the lab's, bring ``lo`` up
   and set its sysctls;
2. in ``<lab>-net``: one bridge per physical network (``br0``, or ``br-<rack>``
   for each of several), and one veth per node uplink whose far end lands in the
   node namespace as ``eth0`` (a router's further ones as ``eth1``...);
3. in every node (in parallel): the uplinks' addresses, the routes to other
   networks via their routers, and for cluster nodes the ``cni0`` bridge,
   ``vxlan0`` and the overlay peers.

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
    VXLAN_DEVICE,
    LabPlan,
    NodePlan,
    lab_prefix,
    underlay_bridge,
)

Progress = Callable[[str], None]

# IPv6 is off in lab namespaces: labs are IPv4, and router solicitations and
# MLD reports would otherwise clutter every capture and trace.
BASE_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
NODE_SYSCTLS = {"net.ipv4.ip_forward": "1"}
# A router forwards between its networks, in its own namespace only. Pods' packets to
# another rack's node (a Service's endpoint on the underlay, the API server) keep their
# pod source address, which the router has no route back to: reverse-path filtering,
# when the host's defaults turn it on in new namespaces, would drop them.
ROUTER_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0",
                  "net.ipv4.conf.default.rp_filter": "0"}


def _sysctls(node: NodePlan | None) -> dict[str, str]:
    extra: dict[str, str] = {}
    if node is not None and node.role == "router":
        extra = ROUTER_SYSCTLS
    elif node is not None and node.in_cluster:
        extra = NODE_SYSCTLS
    return {**BASE_SYSCTLS, **extra}


def namespace_specs(plan: LabPlan) -> list[wiring.NamespaceSpec]:
    """Every namespace of the lab, the underlay's first."""
    return ([wiring.NamespaceSpec(plan.underlay_netns, plan.lab, _sysctls(None))]
            + [wiring.NamespaceSpec(n.netns, plan.lab, _sysctls(n)) for n in plan.nodes])


def underlay_specs(plan: LabPlan) -> list[wiring.BridgeSpec]:
    """The physical networks: a bridge each in ``<lab>-net``, one port per node uplink."""
    return [wiring.BridgeSpec(
        netns=plan.underlay_netns, name=underlay_bridge(net.name), mtu=net.mtu,
        ports=tuple(wiring.VethPort(u.port, u.ifname, n.netns)
                    for n in plan.nodes for u in n.uplinks if u.network == net.name))
        for net in plan.topology.networks]


def node_spec(plan: LabPlan, node: NodePlan) -> wiring.NodeLinks:
    """One node's links: ``eth0`` (a router's ``eth1``... too) and its routes to other
    networks, and in the cluster ``cni0`` and the overlay."""
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
    return wiring.NodeLinks(
        netns=node.netns, uplink=NODE_UPLINK, addresses=(node.underlay,), bridge=bridge,
        vxlan=vxlan, more_uplinks=tuple(wiring.Uplink(u.ifname, (u.address,))
                                        for u in node.uplinks[1:]),
        routes=tuple((r.subnet, r.via) for r in node.routes))


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
    bridges = underlay_specs(plan)
    progress(f"wiring the physical network{'s' if len(bridges) > 1 else ''} "
             f"({', '.join(b.name for b in bridges)} in {plan.underlay_netns})")
    for bridge in bridges:
        wiring.ensure_bridge(bridge)
    what = "bridges and the VXLAN overlay" if plan.overlay == "vxlan" else "bridges (no overlay)"
    progress(f"configuring nodes: addresses, {what}")
    wiring.converge_nodes(node_spec(plan, n) for n in plan.nodes)


def describe_network(plan: LabPlan) -> list[str]:
    """The plan as ``ip``/``bridge``-style lines, for ``up --dry-run``."""
    out = [f"netns {plan.underlay_netns}"]
    for bridge in underlay_specs(plan):
        out.append(f"  link add {bridge.name} type bridge mtu {bridge.mtu} up")
        for port in bridge.ports:
            out.append(f"  link add {port.name} type veth peer {port.peer} netns "
                       f"{port.peer_netns} mtu {bridge.mtu} master {bridge.name} up")
    for node in plan.nodes:
        out.append(f"netns {node.netns}  # {node.role}")
        out += [f"  sysctl {k}={v}" for k, v in _sysctls(node).items()]
        for uplink in node.uplinks:
            rack = f"  # {uplink.network}" if plan.topology.routed else ""
            out.append(f"  addr add {uplink.address} dev {uplink.ifname}{rack}")
        out += [f"  route add {r.subnet} via {r.via}  # via {r.router}" for r in node.routes]
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
            # Gone, or not (yet) a namespace: a pod sandbox's pin file that the
            # runtime has made but not mounted (EINVAL); the runtime's cleanup owns it.
            if exc.errno in (errno.ENOENT, errno.EINVAL):
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
