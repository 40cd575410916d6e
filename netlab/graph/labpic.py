"""The picture of a lab: its nodes on the physical network, the VXLAN tunnels between
cluster nodes, each node's pod subnet and, for a running lab, its pods and Services.

:func:`lab_scene` builds the :class:`~netlab.graph.scene.Scene` from the address plan
(``netlab.topology``) and what the API said (:class:`PodInfo`, :class:`ServiceInfo`,
made from API objects by :func:`pods_from_api` and :func:`services_from_api`). Pure:
``source.py`` does the reading.

Element ids (see :func:`~netlab.graph.scene.element_id`):

=========================  ==========================================================
``nl-bridge.br0``          the physical network's bridge (with several networks, racks:
                           ``nl-bridge.br-RACK``, each in its group ``nl-underlay.RACK``)
``nl-node.NODE``           a node (its group is ``nl-host.NODE``); a router's box is kind
                           ``router``
``nl-link.NODE``           the node's ``eth0`` on its network's bridge; a router's further
                           uplinks are ``nl-link.NODE.eth1``, ...
``nl-subnet.NODE``         a cluster node's pod /24 behind ``cni0``
``nl-tunnel.A.B``          the VXLAN tunnel between cluster nodes A and B (A < B in plan order);
                           past ``MESH_LIMIT`` cluster nodes, one ``nl-mesh.LAB`` box instead,
                           joined to each node by ``nl-mesh-member.NODE``
``nl-pod.NS.NAME``         a pod, with ``nl-veth.NS.NAME`` joining it to its subnet
``nl-svc.NS.NAME``         a Service, with ``nl-ep.NS.NAME.I`` to its I-th endpoint
=========================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from netlab.graph.scene import Box, Group, Line, Scene, element_id
from netlab.topology.plan import (
    POD_BRIDGE,
    UNDERLAY_BRIDGE,
    VXLAN_DEVICE,
    LabPlan,
    NodePlan,
    underlay_bridge,
)

# Up to this many cluster nodes every tunnel is its own line (10 lines at 5 nodes).
MESH_LIMIT = 5


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    node: str | None
    ip: str | None
    phase: str = "Pending"
    ready: bool = False

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EndpointInfo:
    ip: str
    ports: tuple[str, ...] = ()  # "8080/TCP"
    ready: bool = True
    pod: str | None = None  # ns/name, when the endpoint is a pod
    node: str | None = None


@dataclass(frozen=True)
class ServiceInfo:
    namespace: str
    name: str
    type: str = "ClusterIP"
    cluster_ip: str | None = None
    ports: tuple[str, ...] = ()  # "80/TCP -> 8080", "80:30080/TCP -> 8080"
    endpoints: tuple[EndpointInfo, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


# --- API objects to the picture's records ----------------------------------------------------

def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pods_from_api(items: Iterable[dict[str, Any]]) -> list[PodInfo]:
    """Pods as a ``list pods`` answer holds them, sorted by namespace and name."""
    out = []
    for pod in items:
        meta, spec, status = (pod.get(k) or {} for k in ("metadata", "spec", "status"))
        out.append(PodInfo(namespace=meta.get("namespace") or "default",
                           name=meta.get("name") or "?", node=spec.get("nodeName"),
                           ip=status.get("podIP"), phase=status.get("phase") or "Pending",
                           ready=_ready(pod)))
    return sorted(out, key=lambda p: (p.namespace, p.name))


def _service_port(port: dict[str, Any]) -> str:
    proto = port.get("protocol") or "TCP"
    node_port = f":{port['nodePort']}" if port.get("nodePort") else ""
    target = port.get("targetPort")
    name = f" ({port['name']})" if port.get("name") else ""
    arrow = f" -> {target}" if target not in (None, port.get("port")) else ""
    return f"{port.get('port')}{node_port}/{proto}{arrow}{name}"


def services_from_api(services: Iterable[dict[str, Any]],
                      slices: Iterable[dict[str, Any]]) -> list[ServiceInfo]:
    """Services with their endpoints, joined from ``list services`` and ``list
    endpointslices`` answers (a slice names its Service in the label
    ``kubernetes.io/service-name``), as kube-proxy joins them."""
    by_service: dict[tuple[str, str], list[EndpointInfo]] = {}
    for eps in slices:
        meta = eps.get("metadata") or {}
        owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if not owner:
            continue
        ports = tuple(f"{p.get('port')}/{p.get('protocol') or 'TCP'}"
                      for p in eps.get("ports") or [] if p.get("port") is not None)
        for ep in eps.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            pod = (f"{ref.get('namespace') or meta.get('namespace') or 'default'}/{ref['name']}"
                   if ref.get("kind") == "Pod" and ref.get("name") else None)
            ready = (ep.get("conditions") or {}).get("ready") is not False
            for address in ep.get("addresses") or []:
                by_service.setdefault((meta.get("namespace") or "default", owner), []).append(
                    EndpointInfo(ip=address, ports=ports, ready=ready, pod=pod,
                                 node=ep.get("nodeName")))
    out = []
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        key = (meta.get("namespace") or "default", meta.get("name") or "?")
        endpoints = sorted(by_service.get(key, []), key=lambda e: (e.ip, e.ports))
        out.append(ServiceInfo(namespace=key[0], name=key[1],
                               type=spec.get("type") or "ClusterIP",
                               cluster_ip=spec.get("clusterIP"),
                               ports=tuple(_service_port(p) for p in spec.get("ports") or []),
                               endpoints=tuple(endpoints)))
    return sorted(out, key=lambda s: (s.namespace, s.name))


# --- the scene ------------------------------------------------------------------------------

def _kind(node: NodePlan) -> str:
    return "node" if node.in_cluster else "router" if node.role == "router" else "external"


def _node_box(plan: LabPlan, node: NodePlan) -> Box:
    uplinks = [(u.ifname, u.address, u.port, u.bridge) for u in node.uplinks] or \
        [("eth0", node.underlay, node.port, UNDERLAY_BRIDGE)]
    lines = [f"{name} {address.ip}" for name, address, _, _ in uplinks]  # name on the group
    tip = [f"node {node.name} ({node.role})", f"network namespace {node.netns}",
           *(f"{name} {address} (port {port} on {bridge})"
             for name, address, port, bridge in uplinks)]
    tip += [f"route {r.subnet} via {r.via} ({r.router})" for r in node.routes]
    if node.in_cluster and plan.overlay == "vxlan":
        lines.append(f"{VXLAN_DEVICE} {node.vtep_ip}")
        tip.append(f"{VXLAN_DEVICE} {node.vtep_ip}/32, VTEP MAC {node.vtep_mac}, "
                   f"VNI {plan.topology.cluster.vni}, UDP {plan.topology.cluster.vxlan_port}")
    if node.role == "router":
        lines.append("router: forwards " + " <-> ".join(u.network for u in node.uplinks))
        tip.append("a router: IP forwarding on in its own namespace, no pods")
    elif not node.in_cluster:
        lines.append("external: no pods")
        tip.append("outside the cluster: a plain host on the physical network")
    return Box(element_id("node", node.name), _kind(node),
               lines, "\n".join(tip), group=element_id("host", node.name))


def _tunnel(plan: LabPlan, a: NodePlan, b: NodePlan) -> Line:
    cluster = plan.topology.cluster
    tip = [f"VXLAN tunnel {a.name} <-> {b.name}: VNI {cluster.vni}, UDP {cluster.vxlan_port}",
           f"outer {a.underlay.ip} <-> {b.underlay.ip} over "
           + (UNDERLAY_BRIDGE if a.network == b.network == "default" else
              underlay_bridge(a.network) if a.network == b.network else
              f"{underlay_bridge(a.network)}, routed to {underlay_bridge(b.network)}"),
           f"{a.name}: {b.pod_subnet} via {b.vtep_ip} dev {VXLAN_DEVICE} onlink",
           f"{b.name}: {a.pod_subnet} via {a.vtep_ip} dev {VXLAN_DEVICE} onlink"]
    return Line(element_id("tunnel", a.name, b.name), "tunnel",
                element_id("node", a.name), element_id("node", b.name),
                label=f"VXLAN {cluster.vni}", tooltip="\n".join(tip))


def _pod_box(pod: PodInfo, group: str | None) -> Box:
    name = pod.name if pod.namespace == "default" else pod.ref
    if pod.phase == "Running":
        state = "" if pod.ready else " (running, not ready)"
    else:
        state = f" ({pod.phase.lower()})"
    tip = [f"pod {pod.ref}", f"IP {pod.ip or 'none yet'}",
           f"node {pod.node or 'not scheduled'}",
           f"phase {pod.phase}, {'ready' if pod.ready else 'not ready'}"]
    kind = "pod" if pod.ip else "pod-pending"
    return Box(element_id("pod", pod.namespace, pod.name), kind,
               [name, f"{pod.ip or 'no IP'}{state}"], "\n".join(tip), group=group)


def _service_box(svc: ServiceInfo) -> Box:
    ports = ", ".join(svc.ports) or "no ports"
    lines = [svc.ref, f"{svc.type} {svc.cluster_ip or 'None'}"]
    lines += svc.ports[:3]
    if len(svc.ports) > 3:
        lines.append(f"+{len(svc.ports) - 3} ports")
    eps = [f"  {e.ip} {','.join(e.ports)}" + ("" if e.ready else " (not ready)")
           + (f" pod {e.pod}" if e.pod else "") for e in svc.endpoints]
    tip = [f"Service {svc.ref} ({svc.type})", f"ClusterIP {svc.cluster_ip or 'None'}",
           f"ports {ports}", f"endpoints: {len(svc.endpoints) or 'none'}", *eps]
    return Box(element_id("svc", svc.namespace, svc.name), "service", lines, "\n".join(tip),
               group="nl-services")


def lab_scene(plan: LabPlan, pods: Sequence[PodInfo] = (),
              services: Sequence[ServiceInfo] = (), caption: Sequence[str] = ()) -> Scene:
    """The lab's picture. ``caption`` says what it was drawn from (a running lab's API,
    or the topology alone)."""
    topo = plan.topology
    cluster = topo.cluster
    overlay = (f"overlay VXLAN VNI {cluster.vni} UDP {cluster.vxlan_port}"
               if plan.overlay == "vxlan" else "no overlay")
    where = str(topo.network.subnet) if not topo.routed else \
        f"{len(topo.networks)} racks ({', '.join(n.name for n in topo.networks)})"
    scene = Scene(name=plan.lab, title=f"lab {plan.lab}: {len(plan.nodes)} nodes on "
                  f"{where}, {overlay}", caption=list(caption))
    underlay = element_id("underlay", plan.lab)
    bridges: dict[str, str] = {}
    for net in topo.networks:
        name = underlay_bridge(net.name)
        ports = [u.port for n in plan.nodes for u in n.uplinks if u.network == net.name]
        group = underlay if not topo.routed else element_id("underlay", net.name)
        what = "the physical network" if not topo.routed else f"rack {net.name}"
        scene.groups.append(Group(
            group, "underlay", [f"physical network {net.subnet}" if not topo.routed else
                                f"{net.name}: {net.subnet}",
                                f"netns {plan.underlay_netns}, MTU {net.mtu}"],
            f"{what}: bridge {name} in namespace {plan.underlay_netns}, "
            f"{net.subnet}, MTU {net.mtu}; every node's uplink on it is a veth"))
        bridges[net.name] = element_id("bridge", name)
        scene.boxes.append(Box(bridges[net.name], "bridge", [name, str(net.subnet)],
                               f"bridge {name} in {plan.underlay_netns}: {', '.join(ports)}",
                               group=group))
    node_names = {n.name for n in plan.nodes}
    by_node: dict[str | None, list[PodInfo]] = {}
    for pod in pods:
        by_node.setdefault(pod.node if pod.node in node_names else None, []).append(pod)
    for node in plan.nodes:
        host = element_id("host", node.name)
        scene.groups.append(Group(host, _kind(node),
                                  [f"{node.name} ({node.role})", f"netns {node.netns}"]))
        scene.boxes.append(_node_box(plan, node))
        for i, uplink in enumerate(node.uplinks):
            scene.lines.append(Line(
                element_id("link", node.name) if i == 0 else
                element_id("link", node.name, uplink.ifname), "link",
                bridges[uplink.network], element_id("node", node.name),
                label=uplink.port, attrs={"fontsize": "8"},
                tooltip=f"veth {uplink.port} (on {uplink.bridge}) <-> {uplink.ifname} "
                        f"{uplink.address} in {node.netns}", directed=False))
        if node.pod_subnet is None:
            continue
        subnet = element_id("subnet", node.name)
        node_pods = by_node.get(node.name, [])
        scene.boxes.append(Box(
            subnet, "subnet", [f"pods {node.pod_subnet}", f"{POD_BRIDGE} {node.gateway.ip}"
                               if node.gateway else POD_BRIDGE],
            f"{node.name}'s pod subnet {node.pod_subnet}: bridge {POD_BRIDGE} {node.gateway}, "
            f"pod MTU {plan.pod_mtu}, {len(node_pods)} pods", group=host))
        scene.lines.append(Line(element_id("cni", node.name), "cni",
                                element_id("node", node.name), subnet, directed=False))
        for pod in node_pods:
            box = _pod_box(pod, host)
            scene.boxes.append(box)
            scene.lines.append(Line(element_id("veth", pod.namespace, pod.name), "veth", subnet,
                                    box.id, directed=False,
                                    tooltip=f"{pod.ref}'s veth on {POD_BRIDGE} of {node.name}"))
    if by_node.get(None):
        scene.groups.append(Group("nl-unscheduled", "unscheduled", ["pods not on a node"]))
        scene.boxes += [_pod_box(pod, "nl-unscheduled") for pod in by_node[None]]
    if plan.overlay == "vxlan":
        _add_tunnels(scene, plan, underlay)
    scene.same_rank.append([element_id("node", n.name) for n in plan.nodes])
    _add_services(scene, plan, pods, services)
    return scene


def _add_tunnels(scene: Scene, plan: LabPlan, underlay: str) -> None:
    """One line per tunnel; past MESH_LIMIT cluster nodes, n(n-1)/2 lines would hide
    everything else, so the mesh is one box with a line to each member, and the
    caption says so."""
    members = [n for n in plan.nodes if n.in_cluster]
    if len(members) <= MESH_LIMIT:
        scene.lines += [_tunnel(plan, a, b) for i, a in enumerate(members)
                        for b in members[i + 1:]]
        return
    cluster = plan.topology.cluster
    count = len(members) * (len(members) - 1) // 2
    mesh = element_id("mesh", plan.lab)
    scene.boxes.append(Box(
        mesh, "mesh", ["VXLAN full mesh", f"{count} tunnels, VNI {cluster.vni}"],
        f"{count} VXLAN tunnels, one between every two of the {len(members)} cluster nodes: "
        f"VNI {cluster.vni}, UDP {cluster.vxlan_port}, over {UNDERLAY_BRIDGE}; each node routes "
        f"every other node's pod /24 via that node's {VXLAN_DEVICE} address", group=underlay))
    scene.lines += [Line(element_id("mesh-member", n.name), "tunnel", mesh,
                         element_id("node", n.name),
                         tooltip=f"{n.name}: VTEP {n.underlay.ip}, {VXLAN_DEVICE} {n.vtep_ip}, "
                                 f"pods {n.pod_subnet}")
                    for n in members]
    scene.caption.append(f"{len(members)} cluster nodes: their {count} VXLAN tunnels are "
                         "drawn as one full mesh")


def _add_services(scene: Scene, plan: LabPlan, pods: Sequence[PodInfo],
                  services: Sequence[ServiceInfo]) -> None:
    if not services:
        return
    scene.groups.append(Group("nl-services", "services", ["Services (ClusterIP -> endpoints)"]))
    pod_ids = {p.ref: element_id("pod", p.namespace, p.name) for p in pods}
    pod_ips = {p.ip: element_id("pod", p.namespace, p.name) for p in pods if p.ip}
    node_ips = {str(n.underlay.ip): element_id("node", n.name) for n in plan.nodes}
    for svc in services:
        box = _service_box(svc)
        scene.boxes.append(box)
        for i, ep in enumerate(svc.endpoints):
            target = (pod_ids.get(ep.pod or "") or pod_ips.get(ep.ip) or node_ips.get(ep.ip))
            if target is None:
                target = element_id("addr", ep.ip)
                if target not in {b.id for b in scene.boxes}:
                    scene.boxes.append(Box(target, "address", [ep.ip],
                                           f"endpoint address {ep.ip}: no pod or node of "
                                           "this lab has it", group="nl-services"))
            ports = ",".join(ep.ports)
            scene.lines.append(Line(
                element_id("ep", svc.namespace, svc.name, str(i)),
                "endpoint" if ep.ready else "endpoint-unready", box.id, target,
                label=ports, layout_reversed=True,
                tooltip=f"{svc.ref} {svc.cluster_ip or ''} -> {ep.ip} {ports}"
                        f"{'' if ep.ready else ' (not ready)'}"
                        + (f" (pod {ep.pod})" if ep.pod else "")))
