"""Which components a lab runs, where, and with what arguments.

The process map of docs/architecture.md (section 3), as data: the API server,
scheduler and controller manager in the control-plane node's namespace; a
kubelet (``kubelet-<node>``) and a proxy (``proxy-<node>``) in every cluster
node, and a NetworkPolicy agent (``netpol-<node>``) beside each proxy. The
supervisor starts exactly this list; nothing else decides what runs.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from netlab.client.connection import connection_argv
from netlab.dns.addon import cluster_dns_ip
from netlab.lab.pki import etcd_pki_paths, pki_paths
from netlab.lab.state import data_dir, lab_dir, token_path
from netlab.master.store.etcd_server import CLIENT_PORT, PEER_PORT, EtcdTLS, etcd_argv
from netlab.node.cni.ipam import ipam_dir
from netlab.paths import local_path_dir
from netlab.topology import LabPlan

APISERVER_PORT = 6443


@dataclass(frozen=True)
class Component:
    name: str  # also the log file's name
    netns: str
    argv: tuple[str, ...]
    pass_fds: tuple[int, ...] = ()


def _module(name: str, *args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", name, *args)


def components(plan: LabPlan, unix_fd: int, loopback_fd: int,
               host_netns_fd: int | None = None) -> list[Component]:
    """Every component of the lab. ``host_netns_fd`` (an open ``/proc/self/ns/net``
    of the supervisor) is handed to the API server when its etcd is outside the lab."""
    lab = plan.lab
    control = plan.node(plan.topology.control_plane.name)
    cluster = plan.topology.cluster
    pki = pki_paths(lab_dir(lab))
    store = [f"sqlite:{data_dir(lab) / 'store.db'}"]
    fds = [unix_fd, loopback_fd]
    etcd = etcd_client(plan)
    if etcd is not None:
        # kube-apiserver's --etcd-servers: every member, comma-separated.
        store = [f"etcd:{','.join(etcd.endpoints)}"]
        for flag, file in (("--etcd-cafile", etcd.ca), ("--etcd-certfile", etcd.cert),
                           ("--etcd-keyfile", etcd.key)):
            store += [flag, file] if file else []
        if etcd.netns is None:
            if host_netns_fd is None:
                raise ValueError("an etcd outside the lab needs the host's netns fd")
            store += ["--etcd-netns-fd", str(host_netns_fd)]
            fds.append(host_netns_fd)
    apiserver = Component(
        name="apiserver", netns=control.netns, pass_fds=tuple(fds),
        argv=_module("netlab.master.apiserver",
                     "--lab", lab,
                     "--bind", f"{control.underlay.ip}:{APISERVER_PORT}",
                     "--unix-fd", str(unix_fd), "--loopback-fd", str(loopback_fd),
                     "--token-file", str(token_path(lab)),
                     "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
                     # The lab CA signs every kubelet's serving certificate (pki.py).
                     "--kubelet-certificate-authority", str(pki.ca_cert),
                     "--service-account-signing-key-file", str(pki.service_account_key),
                     "--service-account-issuer", service_account_issuer(plan),
                     "--store", *store,
                     "--service-subnet", str(cluster.service_subnet),
                     # Pods outlive a silent node this long (DefaultTolerationSeconds).
                     "--default-not-ready-toleration-seconds", str(_eviction_seconds(plan)),
                     "--default-unreachable-toleration-seconds", str(_eviction_seconds(plan)),
                     # The controller manager's garbage collector and namespace controller
                     # do this work; the API server's stand-ins stay off.
                     "--no-builtin-gc", "--no-builtin-namespace-deleter"))
    return [*etcd_members(plan), apiserver, *scheduling(plan), controller_manager(plan),
            cluster_dns(plan), *kubelets(plan), *proxies(plan), *policy_agents(plan)]


def service_account_issuer(plan: LabPlan) -> str:
    """kubeadm's issuer (and the API server's audience): the Service's in-cluster URL."""
    return f"https://kubernetes.default.svc.{plan.topology.cluster.dns_domain}"


def etcd_member_name(node: str) -> str:
    """The supervisor's name of the etcd member on ``node`` (``netlab fault kill etcd
    NODE`` finds it by its base name); the member's own ``--name`` is the node's."""
    return f"etcd-{node}"


def etcd_endpoints(plan: LabPlan) -> list[str]:
    """Where etcd's clients reach the members: each member node's underlay address,
    in member order (the control-plane node's first)."""
    return [f"https://{plan.node(n.name).underlay.ip}:{CLIENT_PORT}"
            for n in plan.topology.etcd_member_nodes]


@dataclass(frozen=True)
class EtcdClient:
    """How etcd's clients (the API server, ``netlab etcdctl``, ``netlab status``) reach
    the lab's store: the endpoints, the PEM files, and the network namespace to dial
    from: the control-plane node's for the lab's own members, None (the host's) for an
    etcd outside the lab."""

    endpoints: tuple[str, ...]
    ca: str | None
    cert: str | None
    key: str | None
    netns: str | None

    @property
    def external(self) -> bool:
        return self.netns is None


def etcd_client(plan: LabPlan) -> EtcdClient | None:
    """``cluster.store``'s etcd as its clients see it; None for SQLite."""
    cluster = plan.topology.cluster
    if cluster.store != "etcd":
        return None
    external = cluster.etcd_external
    if external is not None:
        return EtcdClient(external.endpoints, external.ca_file, external.cert_file,
                          external.key_file, None)
    pki = etcd_pki_paths(lab_dir(plan.lab))
    return EtcdClient(tuple(etcd_endpoints(plan)), str(pki.ca_cert), str(pki.client_cert),
                      str(pki.client_key), plan.node(plan.topology.control_plane.name).netns)


def etcd_members(plan: LabPlan) -> list[Component]:
    """For ``cluster.store: etcd``: one etcd member per member node (component
    ``etcd-<node>``: the control-plane node, then the first workers), in the node's
    namespace; clients and peers on its underlay address, so Raft traffic crosses the
    lab network and ``netlab capture`` sees it; TLS with client certificates from the
    lab CA; data in the lab's data directory (``etcd/<node>``)."""
    nodes = [plan.node(n.name) for n in plan.topology.etcd_member_nodes]
    if not nodes:
        return []
    lab = plan.lab
    pki = etcd_pki_paths(lab_dir(lab))
    tls = EtcdTLS(pki.ca_cert, pki.member_cert, pki.member_key)
    peers = {n.name: f"https://{n.underlay.ip}:{PEER_PORT}" for n in nodes}
    return [Component(name=etcd_member_name(node.name), netns=node.netns,
                      argv=tuple(etcd_argv(node.name, data_dir(lab) / "etcd" / node.name,
                                           str(node.underlay.ip), tls, peers=peers,
                                           cluster_token=f"netlab-{lab}")))
            for node in nodes]


def kubelets(plan: LabPlan) -> list[Component]:
    """One kubelet per cluster node, in the node's namespace, configured by flags from
    the address plan (it never reads the lab's state: see netlab.node.kubelet.config)."""
    lab = plan.lab
    topology = plan.topology
    out = []
    for node in plan.nodes:
        if not node.in_cluster:
            continue
        spec = topology.node(node.name)
        argv = ["--lab", lab, "--node", node.name, "--role", node.role,
                *_control_plane_connection(plan),
                "--node-ip", str(node.underlay), "--pod-cidr", str(node.pod_subnet),
                "--overlay", plan.overlay, "--vni", str(topology.cluster.vni),
                "--pod-mtu", str(plan.pod_mtu),
                "--cpu", f"{spec.cpu_millis}m", "--memory", str(spec.memory_bytes),
                "--max-pods", str(spec.max_pods),
                "--cluster-dns", cluster_dns_ip(topology.cluster.service_subnet),
                "--cluster-domain", topology.cluster.dns_domain,
                "--cert-dir", str(lab_dir(lab) / "kubelet" / node.name),
                "--heartbeat-interval", f"{heartbeat_seconds(plan):g}"]
        if node.vtep_mac:
            argv += ["--vtep-mac", node.vtep_mac]
        if spec.labels:
            argv += ["--node-labels", ",".join(f"{k}={v}" for k, v in spec.labels.items())]
        if spec.taints:
            argv += ["--register-with-taints", ",".join(
                f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}" for t in spec.taints)]
        out.append(Component(name=f"kubelet-{node.name}", netns=node.netns,
                             argv=_module("netlab.node.kubelet", *argv)))
    return out


# The node lifecycle timings. The topology may carry them (cluster.nodeMonitorGracePeriod
# and cluster.podEvictionTimeout, in seconds on the model); these are the lab defaults.
# A big lab gets upstream's grace period: all its agents start at once on one host,
# and under that burst (or a thousand pods starting) a Lease renewal can wait in the
# one API server longer than 10 s, which made a Node flap NotReady right after up.
DEFAULT_NODE_MONITOR_GRACE = 10.0
BIG_LAB_NODE_MONITOR_GRACE = 40.0  # upstream's --node-monitor-grace-period
BIG_LAB_NODES = 20  # cluster nodes above which a lab is big
DEFAULT_POD_EVICTION_TIMEOUT = 20.0


def _grace_seconds(plan: LabPlan) -> float:
    value = getattr(plan.topology.cluster, "node_monitor_grace_period", None)
    if value:
        return float(value)
    nodes = sum(1 for n in plan.nodes if n.in_cluster)
    return BIG_LAB_NODE_MONITOR_GRACE if nodes > BIG_LAB_NODES else DEFAULT_NODE_MONITOR_GRACE


def heartbeat_seconds(plan: LabPlan) -> float:
    """How often each kubelet renews its Lease: a quarter of the grace period, as
    upstream's 10 s against 40 s, between 5 s (a small lab's 10 s grace keeps two
    renewals in it) and upstream's 10 s. Every renewal is a write and an event to the
    node lifecycle controller, 10 a second at 5 s in a 50-node lab."""
    return min(10.0, max(5.0, _grace_seconds(plan) / 4))


def _eviction_seconds(plan: LabPlan) -> int:
    value = getattr(plan.topology.cluster, "pod_eviction_timeout", None)
    return math.ceil(float(value) if value is not None else DEFAULT_POD_EVICTION_TIMEOUT)


def node_lifecycle_argv(plan: LabPlan) -> tuple[str, ...]:
    """The node lifecycle flags, for whichever process runs that controller."""
    return ("--node-monitor-grace-period", f"{_grace_seconds(plan):g}s",
            "--pod-eviction-timeout", f"{_eviction_seconds(plan)}s")


def _control_plane_connection(plan: LabPlan) -> tuple[str, ...]:
    control = plan.node(plan.topology.control_plane.name)
    return connection_argv(f"https://{control.underlay.ip}:{APISERVER_PORT}",
                           token_path(plan.lab), pki_paths(lab_dir(plan.lab)).ca_cert)


def scheduling(plan: LabPlan) -> list[Component]:
    """The scheduler, in the control-plane node."""
    control = plan.node(plan.topology.control_plane.name)
    return [Component(name="scheduler", netns=control.netns,
                      argv=_module("netlab.master.scheduler", *_control_plane_connection(plan)))]


def controller_manager(plan: LabPlan) -> Component:
    """The controller manager (``netlab.master.controllers``) in the control-plane node:
    deployment, replicaset, endpoints, job, HPA, garbage collector, namespace and node
    lifecycle controllers in one process, on the standard connection flags."""
    control = plan.node(plan.topology.control_plane.name)
    return Component(name="controller-manager", netns=control.netns,
                     argv=_module("netlab.master.controllers", *_control_plane_connection(plan),
                                  *node_lifecycle_argv(plan),
                                  # what root-ca-cert-publisher puts in kube-root-ca.crt
                                  "--root-ca-file", str(pki_paths(lab_dir(plan.lab)).ca_cert),
                                  # the local-path provisioner's volumes
                                  "--local-path-root", str(local_path_dir(plan.lab))))


def cluster_dns(plan: LabPlan) -> Component:
    """The cluster DNS server (``netlab.dns``) in the control-plane node, serving on its
    underlay address; the kube-dns Service it publishes leads pods there."""
    control = plan.node(plan.topology.control_plane.name)
    cluster = plan.topology.cluster
    argv = [*_control_plane_connection(plan), "--bind", str(control.underlay.ip),
            "--node", control.name, "--service-cidr", str(cluster.service_subnet),
            "--zone", cluster.dns_domain]
    if cluster.dns_upstream:
        argv += ["--upstream", cluster.dns_upstream]
    return Component(name="dns", netns=control.netns, argv=_module("netlab.dns", *argv))


def proxies(plan: LabPlan) -> list[Component]:
    """One kube-proxy per cluster node, in the node's namespace, owning one nft table there."""
    cluster = plan.topology.cluster
    return [Component(name=f"proxy-{node.name}", netns=node.netns,
                      argv=_module("netlab.node.proxy", *_control_plane_connection(plan),
                                   "--node", node.name, "--netns", node.netns,
                                   "--cluster-cidr", str(cluster.pod_subnet),
                                   "--local-pod-cidr", str(node.pod_subnet),
                                   "--service-cidr", str(cluster.service_subnet)))
            for node in plan.nodes if node.in_cluster]


def policy_agents(plan: LabPlan) -> list[Component]:
    """One NetworkPolicy agent per cluster node, in the node's namespace, owning one nft
    table there; it reads the node's IPAM records to know new pods' addresses early."""
    return [Component(name=f"netpol-{node.name}", netns=node.netns,
                      argv=_module("netlab.node.netpol", *_control_plane_connection(plan),
                                   "--node", node.name, "--netns", node.netns,
                                   "--pod-cidr", str(node.pod_subnet),
                                   "--ipam-dir", str(ipam_dir(plan.lab, node.name))))
            for node in plan.nodes if node.in_cluster]
