"""Helpers of the picture unit tests: a made-up lab, its pods and Services, a trace
document, and Graphviz when the host has it."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from netlab.graph.labpic import EndpointInfo, PodInfo, ServiceInfo
from netlab.topology import LabPlan, parse_topology, plan_lab

TOPOLOGY = """
name: pic
cluster: {overlay: %s}
nodes:
  - {name: control-plane, role: control-plane}
  - {name: worker1, role: worker}
  - {name: worker2, role: worker}
  - {name: client, role: external}
"""

PODS = [
    PodInfo("default", "web-1", "worker1", "10.244.1.2", "Running", True),
    PodInfo("default", "web-2", "worker2", "10.244.2.2", "Running", True),
    PodInfo("team", "db-0", "worker2", "10.244.2.3", "Running", False),
    PodInfo("default", "waiting", None, None, "Pending", False),
]
SERVICES = [
    ServiceInfo("default", "web", "ClusterIP", "10.96.0.20", ("80/TCP -> 8080",), (
        EndpointInfo("10.244.1.2", ("8080/TCP",), True, "default/web-1", "worker1"),
        EndpointInfo("10.244.2.2", ("8080/TCP",), True, "default/web-2", "worker2"))),
    ServiceInfo("kube-system", "kube-dns", "ClusterIP", "10.96.0.10", ("53/UDP (dns)",), (
        EndpointInfo("192.168.100.2", ("53/UDP",)),)),
    ServiceInfo("default", "outside", "ClusterIP", "10.96.0.30", ("80/TCP",), (
        EndpointInfo("172.16.0.9", ("80/TCP",), False),)),
]


def plan(overlay: str = "vxlan") -> LabPlan:
    return plan_lab(parse_topology(TOPOLOGY % overlay, "pic.yaml"))


def needs_dot() -> None:
    """Graphviz is part of the set-up: missing in CI is a failure, elsewhere a skip."""
    if shutil.which("dot") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Graphviz's dot is missing; scripts/setup.sh installs graphviz")
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")


def _hop(path: str, n: int, t: float, netns: str, iface: str, direction: str, point: str,
         node: str | None = None, pod: str | None = None, changes: list | None = None,
         rule: dict | None = None, outer: dict | None = None) -> dict[str, Any]:
    return {"path": path, "hop": n, "offsetUs": t, "timestampNs": int(t * 1000),
            "node": node, "pod": pod, "netns": netns, "interface": iface,
            "direction": direction, "point": point, "source": "capture",
            "packet": {"proto": "tcp", "src": "10.244.1.2", "sport": 40000,
                       "dst": "10.244.2.2", "dport": 8080, "ttl": 64, "ipId": 1,
                       "length": 60, "summary": "SYN"},
            "changes": changes or [], "outer": outer, "rule": rule, "nftrace": [],
            "pcap": None}


OUTER = {"src": "192.168.100.3", "dst": "192.168.100.4", "sport": 51000, "dport": 4789,
         "vni": 1}
DNAT = {"kind": "dnat", "from": "10.96.0.20:80", "to": "10.244.2.2:8080"}
ENCAP = {"kind": "encap", "from": "", "to": "vni 1 192.168.100.3 → 192.168.100.4:4789"}
DECAP = {"kind": "decap", "from": "vni 1", "to": ""}
UNDNAT = {"kind": "un-dnat", "from": "10.244.2.2:8080", "to": "10.96.0.20:80"}
A_NS, C_NS = "pic-worker1.web-1", "pic-worker2.web-2"


def trace_doc(verdict: dict[str, Any] | None = None,
              hops: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A cross-node trace to a Service: DNAT and ENCAP on worker1, DECAP on worker2."""
    forward = [
        _hop("forward", 1, 0.0, A_NS, "eth0", "egress", "sent", "worker1", "default/web-1"),
        _hop("forward", 2, 4.0, "pic-worker1", "cni0", "ingress", "to-stack", "worker1",
             changes=[DNAT], rule={"action": "dnat", "label": "service default/web -> ..."}),
        _hop("forward", 3, 80.0, "pic-worker1", "eth0", "egress", "to-network", "worker1",
             changes=[ENCAP], outer=OUTER),
        _hop("forward", 4, 81.0, "pic-net", "p-worker1", "ingress", "underlay", outer=OUTER),
        _hop("forward", 5, 90.0, "pic-worker2", "vxlan0", "ingress", "from-overlay",
             "worker2", changes=[DECAP], outer=OUTER),
        _hop("forward", 6, 99.5, C_NS, "eth0", "ingress", "received", "worker2",
             "default/web-2"),
    ]
    reply = [
        _hop("reply", 1, 120.0, C_NS, "eth0", "egress", "sent", "worker2", "default/web-2"),
        _hop("reply", 2, 150.0, "pic-net", "p-worker2", "ingress", "underlay", outer=OUTER),
        _hop("reply", 3, 170.0, "pic-worker1", "cni0", "egress", "from-stack", "worker1",
             changes=[UNDNAT]),
        _hop("reply", 4, 175.0, A_NS, "eth0", "ingress", "received", "worker1",
             "default/web-1"),
    ]
    return {
        "apiVersion": "netlab.trace/v1", "lab": "pic",
        "src": {"kind": "pod", "name": "default/web-1", "ip": "10.244.1.2", "port": None,
                "node": "worker1", "namespace": A_NS, "service": None},
        "dst": {"kind": "service", "name": "default/web", "ip": "10.96.0.20", "port": 80,
                "node": None, "namespace": None, "service": "default/web:80"},
        "probe": {"proto": "tcp", "src": "10.244.1.2", "sport": 40000, "dst": "10.96.0.20",
                  "dport": 80, "ipId": 1, "seq": 1, "tag": "", "ttl": 64},
        "hops": forward + reply if hops is None else hops,
        "verdict": verdict or {"result": "delivered", "reason": "syn-ack from pod default/web-2",
                               "lastHop": 6, "node": "worker2", "netns": C_NS,
                               "answer": "syn-ack", "answeredBy": "destination",
                               "rttUs": 175.0},
        "captured": [], "nftrace": [], "pcaps": [], "durationMs": 1.0, "warnings": [],
    }
