"""Services and their endpoints, as the API serves them, turned into what the proxy programs.

The proxy works per *service port*: one Service with ports ``http`` and
``metrics`` is two independent entries, each with its own ClusterIP:port, its
own optional NodePort and its own list of endpoint ``ip:port`` pairs. This
module is the pure conversion from the API's shapes (plain dicts, exactly as
``GET /api/v1/services`` and ``/endpoints`` return them) into those entries;
``ruleset.py`` renders the entries as nftables text and ``syncer.py`` keeps
them up to date. The proxy's source is EndpointSlices (``endpointslices.py``
merges a Service's slices into the per-port map :func:`resolve_ports` takes);
the reader of core/v1 Endpoints (:func:`endpoint_ports`, :func:`resolve`) stays
for tools and benchmarks that compare against it. No I/O here, so every rule
about which endpoint belongs to which port is unit-tested without root.

Matching a Service port to its endpoint ports follows kube-proxy: the
endpoints controller names every Endpoints port after the *Service* port it
serves and fills in the number it resolved from ``targetPort`` for each pod
(so a named ``targetPort`` such as ``http-alt`` may be 8080 on one pod and
8081 on another: one subset each). The proxy therefore never resolves
``targetPort`` itself; it matches by port name and protocol. As a courtesy to
hand-written Endpoints (Services without a selector), an Endpoints port named
after the Service port's *targetPort* name is accepted too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netlab.api.views import meta_of, service_spec

PROTOCOLS = ("tcp", "udp", "sctp")
DEFAULT_AFFINITY_TIMEOUT = 10800  # Kubernetes' default for sessionAffinity: ClientIP (3 h)
PROXIED_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")


@dataclass(frozen=True, order=True)
class ServicePortName:
    """The identity of one service port: ``namespace/name:port`` and its protocol.

    Stable across updates of the Service, which is what chain names hash, so an
    endpoint change rewrites a chain in place instead of renaming it.
    """

    namespace: str
    name: str
    port: str  # the Service port's name; "" for a Service's single unnamed port
    protocol: str  # "tcp", "udp" or "sctp"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}" if self.port else \
            f"{self.namespace}/{self.name}"

    @property
    def service(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True, order=True)
class Endpoint:
    """One ready backend of a service port. ``pod`` and ``node`` label its rules."""

    ip: str
    port: int
    pod: str = ""
    node: str = ""

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    """Everything the ruleset needs for one service port."""

    name: ServicePortName
    cluster_ip: str
    port: int
    node_port: int | None = None
    affinity_timeout: int | None = None  # seconds, when sessionAffinity is ClientIP
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def protocol(self) -> str:
        return self.name.protocol


@dataclass(frozen=True)
class PortSpec:
    """A Service port before its endpoints are known."""

    name: ServicePortName
    cluster_ip: str
    port: int
    target_port: int | str | None
    node_port: int | None
    affinity_timeout: int | None


def proto_of(value: Any) -> str | None:
    """An API protocol (``TCP``; unset is TCP) as the proxy names it, or None if unproxied."""
    proto = str(value or "TCP").lower()
    return proto if proto in PROTOCOLS else None


_protocol = proto_of


def service_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)`` of a Service or Endpoints object."""
    meta = meta_of(obj)
    return (meta.get("namespace") or "default", meta.get("name") or "")


def service_port_specs(service: Mapping[str, Any]) -> list[PortSpec]:
    """The proxied ports of a Service; empty for headless and ExternalName Services.

    Ports with a protocol nftables cannot dispatch (anything but TCP, UDP and
    SCTP) are skipped, as kube-proxy does.
    """
    namespace, name = service_key(service)
    spec = service_spec(service)
    cluster_ip = spec.get("clusterIP") or ""
    if spec.get("type", "ClusterIP") not in PROXIED_TYPES or cluster_ip in ("", "None"):
        return []
    with_node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
    timeout: int | None = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        timeout = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    out = []
    for port in spec.get("ports") or []:
        protocol = _protocol(port.get("protocol"))
        if protocol is None or not port.get("port"):
            continue
        node_port = port.get("nodePort") if with_node_ports else None
        out.append(PortSpec(
            name=ServicePortName(namespace, name, port.get("name") or "", protocol),
            cluster_ip=cluster_ip, port=int(port["port"]), target_port=port.get("targetPort"),
            node_port=int(node_port) if node_port else None, affinity_timeout=timeout))
    return out


def endpoint_ports(endpoints: Mapping[str, Any] | None) -> dict[tuple[str, str], list[Endpoint]]:
    """Ready endpoints of an Endpoints object, keyed by ``(port name, protocol)``.

    ``notReadyAddresses`` are left out: a proxy only sends to ready pods.
    """
    found: dict[tuple[str, str], set[Endpoint]] = {}
    for subset in (endpoints or {}).get("subsets") or []:
        addresses = subset.get("addresses") or []
        for port in subset.get("ports") or []:
            protocol = _protocol(port.get("protocol"))
            if protocol is None or not port.get("port"):
                continue
            bucket = found.setdefault((port.get("name") or "", protocol), set())
            for address in addresses:
                if not address.get("ip"):
                    continue
                ref = address.get("targetRef") or {}
                bucket.add(Endpoint(ip=address["ip"], port=int(port["port"]),
                                    pod=ref.get("name") or "", node=address.get("nodeName") or ""))
    return {key: sorted(eps) for key, eps in found.items()}


def resolve(service: Mapping[str, Any],
            endpoints: Mapping[str, Any] | None) -> list[ServicePort]:
    """The Service's proxied ports, each with its ready endpoints (sorted, deduplicated)."""
    return resolve_ports(service, endpoint_ports(endpoints))


def resolve_ports(service: Mapping[str, Any],
                  by_port: Mapping[tuple[str, str], list[Endpoint]]) -> list[ServicePort]:
    """The Service's proxied ports, each with the endpoints ``by_port`` lists for it."""
    out = []
    for spec in service_port_specs(service):
        eps = by_port.get((spec.name.port, spec.name.protocol))
        if eps is None and isinstance(spec.target_port, str):
            eps = by_port.get((spec.target_port, spec.name.protocol))
        out.append(ServicePort(name=spec.name, cluster_ip=spec.cluster_ip, port=spec.port,
                               node_port=spec.node_port, affinity_timeout=spec.affinity_timeout,
                               endpoints=tuple(eps or ())))
    return out


def resolve_all(services: Iterable[Mapping[str, Any]],
                endpoints: Iterable[Mapping[str, Any]]) -> dict[ServicePortName, ServicePort]:
    """Every service port of a cluster, matching Endpoints to Services by namespace/name."""
    by_key = {service_key(ep): ep for ep in endpoints}
    out: dict[ServicePortName, ServicePort] = {}
    for service in services:
        for port in resolve(service, by_key.get(service_key(service))):
            out[port.name] = port
    return out
