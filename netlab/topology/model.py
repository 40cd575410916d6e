"""The topology model: what a lab is made of, after validation.

A ``Topology`` is the validated, defaulted form of a topology YAML file. It is
plain data: the address plan (``netlab.topology.plan``) derives every address
and name from it, and nothing here touches the system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

ROLES = ("control-plane", "worker", "external", "router")
OVERLAYS = ("vxlan", "none")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

DEFAULT_UNDERLAY = "192.168.100.0/24"
# The name of the one physical network of a topology that writes 'network:' (or nothing).
DEFAULT_NETWORK = "default"
DEFAULT_MTU = 1500
DEFAULT_POD_SUBNET = "10.244.0.0/16"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/16"
DEFAULT_VNI = 1
DEFAULT_VXLAN_PORT = 4789
DEFAULT_NODE_CPU = "2"
DEFAULT_NODE_MEMORY = "2Gi"
DEFAULT_MAX_PODS = 110

# VXLAN adds outer Ethernet (14), IPv4 (20), UDP (8) and VXLAN (8) headers.
VXLAN_OVERHEAD = 50


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""

    def to_api(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    cpu_millis: int
    memory_bytes: int
    max_pods: int = DEFAULT_MAX_PODS
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    # The physical networks the node is plugged into, in order (eth0, eth1, ...):
    # one for every node but a router, which joins two or more.
    networks: tuple[str, ...] = (DEFAULT_NETWORK,)

    @property
    def in_cluster(self) -> bool:
        """Control-plane and workers run a kubelet; external nodes and routers are plain hosts."""
        return self.role not in ("external", "router")


@dataclass(frozen=True)
class Network:
    """A physical network: one L2 segment (a rack), a bridge in ``<lab>-net``.

    A topology has one (``network:``, named ``default``) or several (``networks:``),
    which router nodes join."""

    subnet: IPv4Network
    mtu: int
    name: str = DEFAULT_NETWORK


@dataclass(frozen=True)
class EtcdExternal:
    """An etcd the user runs outside the lab (``cluster.store: {etcd: {endpoints:
    ...}}``): its client URLs and, for TLS, absolute paths of the PEM files."""

    endpoints: tuple[str, ...]
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class StoreChoice:
    """``cluster.store`` as validated: the backend, how many members the lab runs
    (0 for SQLite or an external etcd) and the external etcd, if any."""

    store: str = "sqlite"
    etcd_members: int = 0
    etcd_external: EtcdExternal | None = None


@dataclass(frozen=True)
class Cluster:
    pod_subnet: IPv4Network
    service_subnet: IPv4Network
    overlay: str
    vni: int
    vxlan_port: int
    # Node lifecycle, in seconds: a silent node goes Ready=Unknown after the grace
    # period, and its pods are evicted after the timeout (lab defaults, far shorter
    # than Kubernetes' 40 s and 300 s, so a failure heals while you watch). None: not
    # set, so the lab's default for its size (netlab.lab.components).
    node_monitor_grace_period: float | None = None
    pod_eviction_timeout: float = 20.0
    # The API server's store: "sqlite" (a file in the lab's data directory) or
    # "etcd": etcd_members members run by the lab (1 or 3: see
    # Topology.etcd_member_nodes), or none and the user's etcd_external.
    store: str = "sqlite"
    etcd_members: int = 0
    etcd_external: EtcdExternal | None = None
    # Cluster DNS: the zone the dns component serves, and where it forwards other
    # names ("ip" or "ip:port", inside the lab); None answers them REFUSED.
    dns_domain: str = "cluster.local"
    dns_upstream: str | None = None


@dataclass(frozen=True)
class Workload:
    """One Kubernetes manifest, applied once the API server is up."""

    manifest: dict[str, Any]
    origin: str  # "workloads[0]" or "workloads[1] (web.yaml, document 2)"


@dataclass(frozen=True)
class Topology:
    name: str
    networks: tuple[Network, ...]
    cluster: Cluster
    nodes: tuple[Node, ...]
    workloads: tuple[Workload, ...] = ()
    source: Path | None = None

    @property
    def network(self) -> Network:
        """The first physical network: the only one of a single-network topology."""
        return self.networks[0]

    @property
    def routed(self) -> bool:
        """Several physical networks, joined by router nodes."""
        return len(self.networks) > 1

    def network_named(self, name: str) -> Network:
        return next(n for n in self.networks if n.name == name)

    @property
    def cluster_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.in_cluster)

    @property
    def control_plane(self) -> Node:
        """The first control-plane node: the API server, scheduler, controller manager
        and DNS run there (the others, with a 3-member etcd, run a member each)."""
        return next(n for n in self.nodes if n.role == "control-plane")

    @property
    def etcd_member_nodes(self) -> tuple[Node, ...]:
        """Where the lab's etcd members run, one per node: on every control-plane node
        (kubeadm's stacked etcd), then on the first workers, in the topology's order
        (none for a SQLite store or an etcd outside the lab)."""
        if self.cluster.store != "etcd" or not self.cluster.etcd_members:
            return ()
        controls = [n for n in self.cluster_nodes if n.role == "control-plane"]
        workers = [n for n in self.cluster_nodes if n.role != "control-plane"]
        return (*controls, *workers)[: self.cluster.etcd_members]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)
