"""Names to places: what ``SRC`` and ``DST`` of ``netlab trace`` mean.

Accepted forms (``NS`` defaults to the ``-n`` namespace, ``default``):

==========================  ===================================================
``SRC``                     a pod (``NAME``, ``NS/NAME``, ``pod/NAME``), or a
                            node, cluster or external (``NAME``, ``node/NAME``)
``DST``                     the same, plus ``svc/NAME[:PORT]`` (a ClusterIP;
                            PORT is a number or a port name, default the first
                            port), ``node/NAME:PORT`` (a NodePort) and an
                            address ``IP[:PORT]``
==========================  ===================================================

A bare name is a node when the lab has a node of that name and no such pod,
a pod otherwise; when both exist the prefix must say which.

Nodes come from the lab's address plan. Pods and Services come from a
:class:`Resolver`, of which there are two:

- :class:`ApiResolver` asks the lab's API server (what ``kubectl get`` sees),
  and joins each pod with the container runtime's record of its sandbox to
  find its namespace and host-side veth;
- :class:`RecordsResolver` needs no API: pods are the runtime's sandbox
  records, and Services are read from a node's kube-proxy table (the
  ``service-ips`` and ``service-nodeports`` maps, whose elements carry the
  Service's name), so a network-only lab with hand-made pods and a
  hand-programmed proxy can be traced too.

``auto_resolver`` picks the API when the lab has one that answers, and
``lab_pods_and_services`` reads both lists through it. The parsing itself
(``resolve_source``/``resolve_target``) is pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from netlab.api.views import meta_of, pod_spec, pod_status, service_spec
from netlab.topology.plan import LabPlan
from netlab.trace.model import Place, PodRecord, ServicePortRecord, ServiceRecord


class ResolveError(ValueError):
    """A SRC or DST that names nothing in the lab; the message says what exists."""


class Resolver(Protocol):
    def pods(self) -> list[PodRecord]: ...

    def services(self) -> list[ServiceRecord]: ...


class StaticResolver:
    """Pods and Services given up front (tests, and callers that already know them)."""

    def __init__(self, pods: Sequence[PodRecord] = (), services: Sequence[ServiceRecord] = ()):
        self._pods, self._services = list(pods), list(services)

    def pods(self) -> list[PodRecord]:
        return list(self._pods)

    def services(self) -> list[ServiceRecord]:
        return list(self._services)


# --- the runtime's records and the proxy's table ---------------------------------------------

def _sandbox_pods(lab: str) -> list[PodRecord]:
    """The runtime's sandbox records (``<pods dir>/*/sandbox.json``), read through its
    stdlib-only ``paths`` module: ``sandbox.list_sandboxes`` would import pyroute2,
    a third of a second a trace need not pay."""
    from netlab.node.runtime.paths import SANDBOX_FILE, pods_dir, read_json

    try:
        entries = sorted(pods_dir(lab).iterdir())
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        data = read_json(entry / SANDBOX_FILE) if entry.is_dir() else None
        if not isinstance(data, dict) or not data.get("netns"):
            continue
        out.append(PodRecord(namespace=data.get("namespace") or "default",
                             name=data.get("name") or "", node=data.get("node") or "",
                             ip=data.get("ip"), netns=data.get("netns"),
                             veth=data.get("veth"), uid=data.get("uid") or ""))
    return out


_CLUSTER_ELEMENT = re.compile(
    r'(\d+\.\d+\.\d+\.\d+) \. (tcp|udp|sctp) \. (\d+) comment "([^"]*)" : goto \S+')
_NODEPORT_ELEMENT = re.compile(r'(tcp|udp|sctp) \. (\d+) comment "([^"]*)" : goto \S+')


def services_from_table(text: str) -> list[ServiceRecord]:
    """Services as a kube-proxy table lists them (``nft list table ip netlab-proxy``).

    Each ``service-ips`` element is ``IP . proto . port comment "ns/name[:port]"``,
    each ``service-nodeports`` element ``proto . nodePort comment "…"``.
    """
    cluster = _map_body(text, "service-ips")
    nodeports = {label: int(port) for _, port, label in
                 _NODEPORT_ELEMENT.findall(_map_body(text, "service-nodeports"))}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for ip, proto, port, label in _CLUSTER_ELEMENT.findall(cluster):
        ref, _, port_name = label.partition(":")
        namespace, _, name = ref.partition("/")
        entry = found.setdefault((namespace, name), {"ip": ip, "ports": []})
        entry["ports"].append(ServicePortRecord(port_name, int(port), proto,
                                                nodeports.get(label)))
    return [ServiceRecord(ns, name, e["ip"], tuple(sorted(e["ports"], key=lambda p: p.port)))
            for (ns, name), e in sorted(found.items())]


def _map_body(text: str, name: str) -> str:
    # Every shard table of the proxy has its own map of this name: all of them.
    bodies = re.findall(r"\tmap " + re.escape(name) + r" \{(.*?)\n\t\}", text, re.S)
    return " ".join(" ".join(body.split()) for body in bodies)


class RecordsResolver:
    """Pods from the container runtime's records, Services from a node's proxy table."""

    def __init__(self, lab: str, plan: LabPlan):
        self.lab, self.plan = lab, plan

    def pods(self) -> list[PodRecord]:
        return _sandbox_pods(self.lab)

    def services(self) -> list[ServiceRecord]:
        from netlab.kernel import netns, nft
        from netlab.node.proxy.syncer import list_proxy_tables

        for node in self.plan.nodes:
            if not node.in_cluster or not netns.exists(node.netns):
                continue
            try:
                text = list_proxy_tables(node.netns)
            finally:
                nft.forget(node.netns)  # a cached context would pin the namespace
            if text:
                return services_from_table(text)
        return []


class ApiResolver:
    """Pods and Services from the lab's API server."""

    def __init__(self, lab: str, client: Any):
        self.lab, self.client = lab, client

    def pods(self) -> list[PodRecord]:
        from netlab.node.cni import host_veth_name
        from netlab.node.runtime.paths import pod_netns

        records = {p.uid: p for p in _sandbox_pods(self.lab)}
        out = []
        for pod in self.client.list("pods").get("items", []):
            meta, spec = meta_of(pod), pod_spec(pod)
            status = pod_status(pod)
            node, uid = spec.get("nodeName"), meta.get("uid") or ""
            if not node or spec.get("hostNetwork"):
                continue
            record = records.get(uid)
            netns = record.netns if record else pod_netns(self.lab, node, meta["name"], uid)
            veth = record.veth if record else host_veth_name(uid)
            out.append(PodRecord(namespace=meta.get("namespace") or "default",
                                 name=meta["name"], node=node,
                                 ip=status.get("podIP") or (record.ip if record else None),
                                 netns=netns, veth=veth, uid=uid))
        return out

    def services(self) -> list[ServiceRecord]:
        out = []
        for svc in self.client.list("services").get("items", []):
            meta, spec = meta_of(svc), service_spec(svc)
            ports = tuple(ServicePortRecord(p.get("name") or "", int(p["port"]),
                                            str(p.get("protocol") or "TCP").lower(),
                                            p.get("nodePort"))
                          for p in spec.get("ports") or [] if p.get("port"))
            ip = spec.get("clusterIP")
            out.append(ServiceRecord(meta.get("namespace") or "default", meta["name"],
                                     ip if ip and ip != "None" else None, ports))
        return out


def auto_resolver(lab: str, plan: LabPlan) -> tuple[Resolver, Any]:
    """The API when the lab runs one that answers, else the records. Returns the
    resolver and a ``close()``-able to release (the API client), or None."""
    from netlab.lab.state import socket_path

    if socket_path(lab).exists():
        from netlab.client import SyncClient, lab_client

        client = SyncClient(lab_client(lab, timeout=5.0))
        try:
            if client.readyz():
                return ApiResolver(lab, client), client
        except Exception:  # refused, timed out, half up: the records still answer
            pass
        client.close()
    return RecordsResolver(lab, plan), None


def lab_pods_and_services(lab: str, plan: LabPlan, resolver: Resolver | None = None, *,
                          services: bool = True
                          ) -> tuple[list[PodRecord], list[ServiceRecord]]:
    """The pods and Services ``resolver`` knows, by default ``auto_resolver``'s (whose
    client is closed after). ``services=False`` skips reading the Services."""
    closer = None
    if resolver is None:
        resolver, closer = auto_resolver(lab, plan)
    try:
        return resolver.pods(), resolver.services() if services else []
    finally:
        if closer is not None:
            closer.close()


# --- parsing SRC and DST ----------------------------------------------------------------------

def _split_kind(text: str) -> tuple[str | None, str]:
    for prefix, kind in (("pod/", "pod"), ("pods/", "pod"), ("po/", "pod"), ("node/", "node"),
                         ("nodes/", "node"), ("no/", "node"), ("svc/", "service"),
                         ("service/", "service"), ("services/", "service")):
        if text.startswith(prefix):
            return kind, text[len(prefix):]
    return None, text


def _node_place(plan: LabPlan, name: str, port: int | None = None) -> Place:
    node = plan.node(name)
    kind = "node" if node.in_cluster else "external"
    return Place(kind=kind, name=name, ip=str(node.underlay.ip), port=port, node=name,
                 netns=node.netns)


def _find_pod(pods: Sequence[PodRecord], name: str, namespace: str) -> PodRecord | None:
    if "/" in name:
        namespace, name = name.split("/", 1)
    for pod in pods:
        if pod.name == name and pod.namespace == namespace:
            return pod
    return None


def _pod_place(pod: PodRecord) -> Place:
    if not pod.ip:
        raise ResolveError(f"pod {pod.ref} has no IP yet (is its sandbox ready?)")
    return Place(kind="pod", name=pod.ref, ip=pod.ip, node=pod.node, netns=pod.netns)


def _node_names(plan: LabPlan) -> list[str]:
    return [n.name for n in plan.nodes]


def _unknown(what: str, plan: LabPlan, pods: Sequence[PodRecord], namespace: str) -> ResolveError:
    in_ns = sorted(p.name for p in pods if p.namespace == namespace)
    listed = ", ".join(in_ns[:8]) + (", …" if len(in_ns) > 8 else "") if in_ns else "none"
    return ResolveError(f"{what!r} is neither a node ({', '.join(_node_names(plan))}) nor a "
                        f"pod in namespace {namespace} (pods: {listed})")


def _node_or_pod(text: str, plan: LabPlan, pods: Sequence[PodRecord],
                 namespace: str) -> Place:
    kind, name = _split_kind(text)
    if kind == "node":
        if name not in _node_names(plan):
            raise ResolveError(f"lab {plan.lab} has no node {name!r} "
                               f"(nodes: {', '.join(_node_names(plan))})")
        return _node_place(plan, name)
    pod = _find_pod(pods, name, namespace)
    if kind == "pod":
        if pod is None:
            raise _unknown(name, plan, pods, namespace)
        return _pod_place(pod)
    is_node = name in _node_names(plan)
    if is_node and pod is not None:
        raise ResolveError(f"{name!r} is both a node and a pod; say node/{name} or pod/{name}")
    if is_node:
        return _node_place(plan, name)
    if pod is not None:
        return _pod_place(pod)
    raise _unknown(name, plan, pods, namespace)


def resolve_source(text: str, plan: LabPlan, pods: Sequence[PodRecord],
                   namespace: str = "default") -> Place:
    """SRC: a pod or a node (cluster or external); it must have a namespace to send from."""
    place = _node_or_pod(text, plan, pods, namespace)
    if not place.netns:
        raise ResolveError(f"{text}: no network namespace is known to send from")
    return place


def _split_port(text: str) -> tuple[str, str | None]:
    if text.count(":") == 1:
        head, port = text.split(":")
        return head, port
    return text, None


def _service_port(svc: ServiceRecord, port: str | None) -> ServicePortRecord:
    if not svc.ports:
        raise ResolveError(f"service {svc.ref} has no ports")
    if port is None:
        return svc.ports[0]
    for p in svc.ports:
        if port == p.name or (port.isdigit() and int(port) == p.port):
            return p
    names = ", ".join(f"{p.name}={p.port}" if p.name else str(p.port) for p in svc.ports)
    raise ResolveError(f"service {svc.ref} has no port {port} (ports: {names})")


def _port_label(svc: ServiceRecord, port: ServicePortRecord) -> str:
    return f"{svc.ref}:{port.name}" if port.name else svc.ref


def _service_target(name: str, port: str | None, services: Sequence[ServiceRecord],
                    namespace: str) -> Place:
    if "/" in name:
        namespace, name = name.split("/", 1)
    for svc in services:
        if svc.name == name and svc.namespace == namespace:
            if not svc.cluster_ip:
                raise ResolveError(f"service {svc.ref} is headless: it has no ClusterIP "
                                   "to trace to; trace to one of its pods instead")
            sp = _service_port(svc, port)
            return Place(kind="service", name=svc.ref, ip=svc.cluster_ip, port=sp.port,
                         protocol=sp.protocol, service=_port_label(svc, sp))
    known = ", ".join(sorted(s.name for s in services if s.namespace == namespace)) or "none"
    raise ResolveError(f"no service {name!r} in namespace {namespace} (services: {known})")


def _dns_target(name: str, plan: LabPlan, services: Sequence[ServiceRecord],
                namespace: str) -> Place:
    """The kube-dns Service's UDP port, with the name a pod's resolver asks first."""
    from netlab.dns.lookup import candidates, cluster_searches

    place = _service_target("kube-system/kube-dns", "dns", services, namespace)
    query = candidates(name, cluster_searches(namespace, plan.topology.cluster.dns_domain))[0]
    return replace(place, query=query)


def _nodeport_target(plan: LabPlan, name: str, port: str,
                     services: Sequence[ServiceRecord]) -> Place:
    if not port.isdigit():
        raise ResolveError(f"node/{name}:{port}: a NodePort is a number")
    place = _node_place(plan, name, int(port))
    for svc in services:
        for sp in svc.ports:
            if sp.node_port == int(port):
                return Place(kind="nodeport", name=f"{name}:{port}", ip=place.ip,
                             port=int(port), node=name, netns=place.netns,
                             protocol=sp.protocol, service=_port_label(svc, sp))
    return Place(kind="nodeport", name=f"{name}:{port}", ip=place.ip, port=int(port),
                 node=name, netns=place.netns)


def resolve_target(text: str, plan: LabPlan, pods: Sequence[PodRecord],
                   services: Sequence[ServiceRecord] = (), namespace: str = "default",
                   port: int | None = None) -> Place:
    """DST: a pod, a node, ``svc/NAME[:PORT]``, ``node/NAME:PORT`` (NodePort), ``IP[:PORT]``,
    or ``dns`` / ``dns/NAME``: a DNS query (for NAME, as a pod in ``namespace`` first asks
    it; by default ``kubernetes.default.svc.<zone>.``) to the kube-dns Service.

    ``port`` (``--port``) applies when the text names none.
    """
    if text == "dns" or text.startswith("dns/"):
        zone = plan.topology.cluster.dns_domain
        return _dns_target(text[4:] or f"kubernetes.default.svc.{zone}.", plan, services,
                           namespace)
    head, text_port = _split_port(text)
    try:
        ipaddress.IPv4Address(head)
        is_ip = True
    except ValueError:
        is_ip = False
    if is_ip:
        port_num = int(text_port) if text_port and text_port.isdigit() else port
        svc = next((s for s in services if s.cluster_ip == head), None)
        pod = next((p for p in pods if p.ip == head), None)
        return Place(kind="ip", name=head, ip=head, port=port_num,
                     node=pod.node if pod else None,
                     service=svc.ref if svc else None)
    kind, name = _split_kind(head)
    if kind == "service":
        return _service_target(name, text_port if text_port else
                               (str(port) if port else None), services, namespace)
    if kind == "node" and text_port is not None:
        if name not in _node_names(plan):
            raise ResolveError(f"lab {plan.lab} has no node {name!r}")
        return _nodeport_target(plan, name, text_port, services)
    if text_port is not None:
        raise ResolveError(f"{text}: a port goes with svc/NAME:PORT, node/NAME:PORT or "
                           "IP:PORT; for a pod or a node use --port")
    place = _node_or_pod(head, plan, pods, namespace)
    return Place(kind=place.kind, name=place.name, ip=place.ip, port=port, node=place.node,
                 netns=place.netns)
