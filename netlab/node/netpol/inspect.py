"""What ``netlab policy show`` and ``netlab policy check`` ask: a node's table, one decision.

``check`` compiles the cluster exactly as every node's agent does (``model``,
from the same API objects: NetworkPolicies, Pods, Namespaces) and evaluates
one connection on those compiled rules, egress at the source's node and
ingress at the destination's, without sending a packet. A Service DST is
judged the way the kernel judges it, after the proxy's DNAT: once per ready
endpoint. ``describe_table`` summarises a listed table for ``show``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from netlab.api.views import labels_of, name_of, namespace_of, service_spec
from netlab.node.netpol import model

SLICE_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Target:
    """A resolved SRC or DST: an address, what it is, and where it lives."""

    ip: str
    label: str  # "pod x/a", "node worker1", "10.0.0.1"
    node: str | None = None
    port: int | None = None  # for a Service endpoint: the port after DNAT


class CheckError(ValueError):
    """SRC or DST names nothing the cluster has."""


def load_cluster(objects: Mapping[str, Sequence[Mapping[str, Any]]]) -> model.Cluster:
    """A cluster from listed objects: ``{"networkpolicies": [...], "pods": [...],
    "namespaces": [...]}``."""
    return model.Cluster([model.parse_policy(p) for p in objects.get("networkpolicies", ())],
                         [model.parse_pod(p) for p in objects.get("pods", ())],
                         {name_of(n): model.namespace_labels(n)
                          for n in objects.get("namespaces", ())})


def _is_ip(text: str) -> bool:
    try:
        IPv4Address(text)
    except ValueError:
        return False
    return True


def _pod(cluster: model.Cluster, text: str, namespace: str) -> model.Pod | None:
    ns, _, name = text.rpartition("/")
    ns = ns or namespace
    return next((p for p in cluster.pods if p.namespace == ns and p.name == name), None)


def resolve(text: str, cluster: model.Cluster, nodes: Mapping[str, str], namespace: str,
            services: Sequence[Mapping[str, Any]] = (),
            slices: Sequence[Mapping[str, Any]] = (), port: int | None = None,
            protocol: str = "tcp") -> list[Target]:
    """SRC or DST as addresses: ``[pod/]NS/NAME`` or ``NAME`` (in ``namespace``), a node,
    an IPv4 address, or ``svc/[NS/]NAME`` (its ready endpoints, DNAT applied)."""
    if _is_ip(text):
        pod = cluster.by_ip.get(text)
        node = next((n for n, ip in nodes.items() if ip == text), None)
        label = f"pod {pod.ref}" if pod else (f"node {node}" if node else text)
        return [Target(text, label, pod.node if pod else node)]
    for prefix in ("node/", "nodes/"):
        if text.startswith(prefix) and text[len(prefix):] in nodes:
            name = text[len(prefix):]
            return [Target(nodes[name], f"node {name}", name)]
    if text in nodes and _pod(cluster, text, namespace) is None:
        return [Target(nodes[text], f"node {text}", text)]
    for prefix in ("svc/", "service/", "services/"):
        if text.startswith(prefix):
            return _service(text[len(prefix):], cluster, namespace, services, slices, port,
                            protocol)
    pod = _pod(cluster, text.removeprefix("pod/").removeprefix("pods/"), namespace)
    if pod is None:
        raise CheckError(f"no pod, node or address {text!r} (namespace {namespace})")
    if not pod.addressable:
        raise CheckError(f"pod {pod.ref} has no pod-network address")
    return [Target(str(pod.ip), f"pod {pod.ref}", pod.node)]


def _service(text: str, cluster: model.Cluster, namespace: str,
             services: Sequence[Mapping[str, Any]], slices: Sequence[Mapping[str, Any]],
             port: int | None, protocol: str) -> list[Target]:
    ns, _, name = text.rpartition("/")
    ns = ns or namespace
    svc = next((s for s in services if namespace_of(s) == ns and name_of(s) == name), None)
    if svc is None:
        raise CheckError(f"no Service {ns}/{name}")
    wanted = next((p for p in service_spec(svc).get("ports") or []
                   if (port is None or p.get("port") == port)
                   and str(p.get("protocol") or "TCP").lower() == protocol), None)
    if wanted is None:
        raise CheckError(f"Service {ns}/{name} has no port {port}/{protocol}")
    out = []
    for s in slices:
        if namespace_of(s) != ns or labels_of(s).get(SLICE_LABEL) != name:
            continue
        number = next((p.get("port") for p in s.get("ports") or []
                       if (p.get("name") or "") == (wanted.get("name") or "")), None)
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            for ip in ep.get("addresses") or []:
                pod = cluster.by_ip.get(ip)
                label = f"svc {ns}/{name} -> " + (f"pod {pod.ref}" if pod else ip)
                out.append(Target(ip, label, pod.node if pod else ep.get("nodeName"),
                                  int(number) if number else port))
    if not out:
        raise CheckError(f"Service {ns}/{name} has no ready endpoints")
    return sorted(out, key=lambda t: t.label)


def parse_port(text: str) -> tuple[int | None, str]:
    """``80/tcp``, ``53/UDP``, ``80`` (TCP) or ``icmp``."""
    number, _, proto = text.partition("/")
    if number.lower() == "icmp" and not proto:
        return None, "icmp"
    proto = (proto or "tcp").lower()
    if proto not in (*model.PROTOCOLS, "icmp") or not number.isdigit() or \
            not 0 < int(number) < 65536:
        raise CheckError(f"PORT/PROTO must look like 80/tcp, 53/udp or 9000/sctp, not {text!r}")
    return int(number), proto


@dataclass
class CheckResult:
    src: Target
    dst: Target
    decision: model.Decision

    def lines(self) -> list[str]:
        d = self.decision
        port = f"{d.port}/{d.protocol}" if d.port else d.protocol
        head = (f"{self.src.label} ({self.src.ip}) -> {self.dst.label} ({self.dst.ip}) "
                f"{port}: {'allowed' if d.allowed else 'denied'}")
        out = [head]
        for side, where in ((d.egress, self.src.node), (d.ingress, self.dst.node)):
            at = f" at {where}" if where else ""
            if side.unknown or (side.isolated and not side.allowed_by and not side.note):
                why = side.why_denied()
            elif side.note:
                why = side.note
            elif not side.isolated:
                why = f"{side.pod} is not isolated" if side.pod else "not a pod: not judged"
            else:
                why = f"allowed by {', '.join(side.allowed_by)}"
            out.append(f"  {side.direction}{at}: {why}")
        return out

    def to_json(self) -> dict[str, Any]:
        d = self.decision

        def side(s: model.Side, node: str | None) -> dict[str, Any]:
            return {"pod": s.pod, "node": node, "isolated": s.isolated,
                    "policies": s.policies, "allowedBy": s.allowed_by,
                    "allowed": s.allowed, "note": s.note or s.unknown or None}

        return {"src": {"ip": self.src.ip, "name": self.src.label},
                "dst": {"ip": self.dst.ip, "name": self.dst.label},
                "port": d.port, "protocol": d.protocol, "allowed": d.allowed,
                "egress": side(d.egress, self.src.node),
                "ingress": side(d.ingress, self.dst.node)}


def check(cluster: model.Cluster, src: Target, dst: Target, port: int | None,
          protocol: str, nodes: Mapping[str, str],
          pod_subnets: Mapping[str, str] | None = None) -> CheckResult:
    """One decision, on the compiled rules; ``nodes`` maps node names to their addresses,
    ``pod_subnets`` node names to their pod CIDRs."""
    by_ip = {ip: name for name, ip in nodes.items()}
    number = dst.port if dst.port is not None else port
    return CheckResult(src, dst, model.decide(cluster, src.ip, dst.ip, protocol, number,
                                              node_ips=by_ip, pod_subnets=pod_subnets))


_ELEMENT = re.compile(r'(\d+\.\d+\.\d+\.\d+) comment "([^"]*)" : goto (\S+)')


def describe_table(text: str) -> str:
    """A header for a listed policy table: which pods are isolated, per direction."""
    out = []
    for direction in model.DIRECTIONS:
        body = text.split(f"map {direction}-pods {{", 1)
        pods = _ELEMENT.findall(body[1].split("}", 1)[0]) if len(body) > 1 else []
        names = ", ".join(f"{name} ({ip})" for ip, name, _ in pods) or "none"
        out.append(f"# isolated for {direction}: {names}")
    return "\n".join(out) + "\n" + text
