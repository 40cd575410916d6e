"""Builders for NetworkPolicy unit tests: pods a, b, c in namespaces x, y, z, as upstream's
e2e suite lays them out, as API dicts."""

from __future__ import annotations

from typing import Any

from netlab.node.netpol import model

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
NODES = ("worker1", "worker2")


def pod_ip(ns: str, name: str) -> str:
    return f"10.244.{NAMESPACES.index(ns) + 1}.{PODS.index(name) + 10}"


def pod_node(ns: str, name: str) -> str:
    return NODES[(NAMESPACES.index(ns) + PODS.index(name)) % 2]


def pod_obj(ns: str, name: str, labels: dict[str, str] | None = None, ip: str | None = "auto",
            node: str | None = None, **spec: Any) -> dict[str, Any]:
    ports = [{"name": f"serve-{p}-{proto.lower()}", "containerPort": p, "protocol": proto}
             for p in (80, 81) for proto in ("TCP", "UDP")]
    return {"metadata": {"namespace": ns, "name": name, "uid": f"uid-{ns}-{name}",
                         "labels": {"pod": name} if labels is None else labels},
            "spec": {"nodeName": node or pod_node(ns, name),
                     "containers": [{"name": "c", "ports": ports}], **spec},
            "status": {"phase": "Running",
                       **({"podIP": pod_ip(ns, name) if ip == "auto" else ip} if ip else {})}}


def ns_obj(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"ns": name, **(labels or {})}}}


def policy_obj(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


class World:
    """A cluster under test: edit ``pods``/``namespaces``/``policies`` and ask."""

    def __init__(self) -> None:
        self.namespaces = {n: ns_obj(n) for n in NAMESPACES}
        self.pods = {(n, p): pod_obj(n, p) for n in NAMESPACES for p in PODS}
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, ns: str, name: str, spec: dict[str, Any]) -> World:
        self.policies[(ns, name)] = policy_obj(ns, name, spec)
        return self

    def cluster(self) -> model.Cluster:
        return model.Cluster([model.parse_policy(p) for p in self.policies.values()],
                             [model.parse_pod(p) for p in self.pods.values()],
                             {n: model.namespace_labels(o) for n, o in self.namespaces.items()})

    def can(self, src: str, dst: str, port: int = 80, proto: str = "tcp") -> bool:
        return self.decision(src, dst, port, proto).allowed

    def decision(self, src: str, dst: str, port: int = 80,
                 proto: str = "tcp") -> model.Decision:
        s, d = src.split("/"), dst.split("/")
        src_ip = pod_ip(*s) if len(s) == 2 else src
        dst_ip = pod_ip(*d) if len(d) == 2 else dst
        return model.decide(self.cluster(), src_ip, dst_ip, proto, port)

    def table(self, port: int = 80, proto: str = "tcp") -> dict[tuple[str, str], bool]:
        cluster = self.cluster()
        refs = [f"{n}/{p}" for n in NAMESPACES for p in PODS]
        return {(s, d): model.decide(cluster, pod_ip(*s.split("/")), pod_ip(*d.split("/")),
                                     proto, port).allowed for s in refs for d in refs}


def expect(allowed_cells: set[tuple[str, str]] | None = None,
           denied_cells: set[tuple[str, str]] | None = None,
           default: bool = True) -> dict[tuple[str, str], bool]:
    """A full truth table: ``default`` everywhere, then the listed cells; self always allowed."""
    refs = [f"{n}/{p}" for n in NAMESPACES for p in PODS]
    table = {(s, d): default for s in refs for d in refs}
    for cell in allowed_cells or ():
        table[cell] = True
    for cell in denied_cells or ():
        table[cell] = False
    for r in refs:
        table[(r, r)] = True
    return table


ALL = [f"{n}/{p}" for n in NAMESPACES for p in PODS]
