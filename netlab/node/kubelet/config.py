"""The kubelet's configuration: its command line, as the lab supervisor writes it.

A real kubelet is configured by flags and a config file, never by reading the
cluster's installer state; netlab's does the same. Everything a kubelet must
know about its node (addresses, pod CIDR, VTEP MAC, capacity, labels, taints)
arrives as flags built by ``netlab.lab.components`` from the lab's address
plan, so the kubelet needs neither the topology file nor the lab's state
directory. ``node_plan`` rebuilds the runtime's ``NodePlan`` from them: the
names it derives (namespaces, ports) come from the same pure functions
``netlab.topology.plan`` uses, so both sides agree.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from netlab.client.connection import add_connection_args
from netlab.topology.plan import NodePlan, node_netns, underlay_port
from netlab.units import cpu_millis, memory_bytes

KUBELET_PORT = 10250
# The version the node reports (kubectl get nodes VERSION): the API server's.
KUBELET_VERSION = "v1.31.0-netlab"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def default_parallel_starts() -> int:
    """Pods a kubelet sets up at once: half the CPUs, at least 2. A start is CPU work
    (netlink, crun, conmon) and every node's kubelet shares the host's CPUs: on 2
    cores a 100-pod burst on 3 nodes came up with a start latency p50 of 0.90-1.01 s
    with 2 at a time against 0.98-1.08 s with 4, in the same time overall
    (docs/benchmarks.md)."""
    return max(2, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class KubeletConfig:
    lab: str
    node: str
    role: str  # control-plane | worker
    api_server: str  # https://<control-plane underlay IP>:6443
    token_file: Path
    node_ip: IPv4Interface  # the node's underlay address (eth0)
    pod_cidr: IPv4Network
    ca_file: Path | None = None
    overlay: str = "vxlan"
    vtep_mac: str | None = None
    vni: int = 1
    pod_mtu: int | None = None
    cpu_millis: int = 2000
    memory_bytes: int = 2 << 30
    max_pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    port: int = KUBELET_PORT
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    resolv_conf: Path | None = Path("/etc/resolv.conf")  # the node's, for dnsPolicy Default
    cert_dir: Path | None = None
    # Node heartbeat: the Lease is renewed this often, and the status computed; it is
    # posted when it changed, or else every status_report_interval (upstream's
    # nodeStatusReportFrequency): every Node watcher (each node's overlay) gets each post.
    heartbeat_interval: float = 5.0
    status_report_interval: float = 300.0  # upstream's default, 5m
    lease_duration: int = 40
    metrics_interval: float = 10.0
    # CrashLoopBackOff: Kubernetes uses 10 s doubling to 300 s; a lab starts at 1 s
    # so that a crash loop is visible within seconds, with the same doubling and cap.
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    # A safety-net resync of every pod (the real kubelet's --sync-frequency): exits
    # and changes arrive as events, so this only catches what an event could miss.
    sync_period: float = 60.0
    # Pods set up (sandbox + first containers) at the same time; the rest queue in order.
    parallel_starts: int = field(default_factory=default_parallel_starts)

    @property
    def netns(self) -> str:
        return node_netns(self.lab, self.node)

    @property
    def host_ip(self) -> str:
        return str(self.node_ip.ip)

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    def node_plan(self) -> NodePlan:
        return NodePlan(name=self.node, role=self.role, netns=self.netns, underlay=self.node_ip,
                        port=underlay_port(self.node), pod_subnet=self.pod_cidr,
                        vtep_mac=self.vtep_mac)


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` (kubelet's --node-labels)."""
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = item.partition("=")
        out[key] = value
    return out


def parse_taints(text: str) -> tuple[dict[str, str], ...]:
    """``key[=value]:Effect,...`` (kubelet's --register-with-taints)."""
    taints = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        head, _, effect = item.rpartition(":")
        if effect not in TAINT_EFFECTS or not head:
            raise ValueError(f"invalid taint {item!r}: want key[=value]:{'|'.join(TAINT_EFFECTS)}")
        key, _, value = head.partition("=")
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        taints.append(taint)
    return tuple(taints)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netlab-kubelet",
                                description="The node agent of one netlab node.")
    p.add_argument("--lab", required=True)
    p.add_argument("--node", required=True, help="this node's name (the Node object's)")
    p.add_argument("--role", default="worker", choices=("control-plane", "worker"))
    add_connection_args(p)  # --server, --token-file, --ca-file: as every component
    p.add_argument("--node-ip", required=True, help="the underlay address with prefix, a.b.c.d/n")
    p.add_argument("--pod-cidr", required=True)
    p.add_argument("--overlay", default="vxlan", choices=("vxlan", "none"))
    p.add_argument("--vtep-mac")
    p.add_argument("--vni", type=int, default=1)
    p.add_argument("--pod-mtu", type=int)
    p.add_argument("--cpu", default="2", help="CPU capacity (Kubernetes quantity)")
    p.add_argument("--memory", default="2Gi", help="memory capacity (Kubernetes quantity)")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--node-labels", default="")
    p.add_argument("--register-with-taints", default="")
    p.add_argument("--port", type=int, default=KUBELET_PORT, help="HTTPS port (logs, stats)")
    p.add_argument("--cluster-dns", default="", help="comma-separated nameservers for pods")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf",
                   help='the node\'s resolv.conf, for dnsPolicy Default ("" for none)')
    p.add_argument("--cert-dir", type=Path, help="where the self-signed serving cert is kept")
    p.add_argument("--heartbeat-interval", type=float, default=5.0)
    p.add_argument("--node-status-report-frequency", type=float, default=300.0,
                   help="seconds between status posts when nothing changed")
    p.add_argument("--metrics-interval", type=float, default=10.0)
    p.add_argument("--backoff-base", type=float, default=1.0)
    p.add_argument("--backoff-max", type=float, default=300.0)
    p.add_argument("--sync-period", type=float, default=60.0)
    p.add_argument("--parallel-pod-starts", type=int, default=default_parallel_starts(),
                   help="pods set up at once; the rest queue in order (default: half the "
                        "CPUs, at least 2)")
    return p


def from_args(argv: list[str] | None = None) -> KubeletConfig:
    a = build_parser().parse_args(argv)
    return KubeletConfig(
        lab=a.lab, node=a.node, role=a.role, api_server=a.server, token_file=a.token_file,
        ca_file=a.ca_file, node_ip=IPv4Interface(a.node_ip), pod_cidr=IPv4Network(a.pod_cidr),
        overlay=a.overlay, vtep_mac=a.vtep_mac, vni=a.vni, pod_mtu=a.pod_mtu,
        cpu_millis=cpu_millis(a.cpu), memory_bytes=memory_bytes(a.memory), max_pods=a.max_pods,
        labels=parse_labels(a.node_labels), taints=parse_taints(a.register_with_taints),
        port=a.port, cluster_dns=tuple(filter(None, a.cluster_dns.split(","))),
        cluster_domain=a.cluster_domain.rstrip("."),
        resolv_conf=Path(a.resolv_conf) if a.resolv_conf else None,
        cert_dir=a.cert_dir, heartbeat_interval=a.heartbeat_interval,
        status_report_interval=a.node_status_report_frequency,
        metrics_interval=a.metrics_interval, backoff_base=a.backoff_base,
        backoff_max=a.backoff_max, sync_period=a.sync_period,
        parallel_starts=max(1, a.parallel_pod_starts))
