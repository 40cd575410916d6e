"""Helpers of the proxy's kernel tests: hand-made pods, API objects, traffic.

Pods are made here, not by the pod runtime: a namespace per pod, tagged as the
lab's (so ``netlab down`` removes it even if this fixture dies), with a veth
into its node's ``cni0`` and an address from the node's /24, running a small
server process (through ``ip netns exec``) that answers every TCP connection
and UDP datagram with ``<pod> <local port> <peer address>``. Traffic is sent
from sockets opened inside the lab's namespaces; nothing leaves them.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from typing import Any

from pyroute2 import IPRoute

from netlab.kernel import links, netns
from netlab.node.proxy.syncer import Proxier
from netlab.topology import LabPlan
from netlab.topology.plan import short_hash

CLUSTER = ("control-plane", "worker1", "worker2")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
TCP_PORTS = (8080, 9090)
UDP_PORT = 8080

SERVER = r"""
import selectors, socket, sys
name = sys.argv[1]
sel = selectors.DefaultSelector()
for port in (8080, 9090):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(128); sel.register(s, selectors.EVENT_READ, "tcp")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 8080))
sel.register(u, selectors.EVENT_READ, "udp")
while True:
    for key, _ in sel.select():
        if key.data == "tcp":
            conn, peer = key.fileobj.accept()
            port = conn.getsockname()[1]
            conn.sendall(f"{name} {port} {peer[0]}".encode()); conn.close()
        else:
            data, peer = u.recvfrom(2048)
            u.sendto(f"{name} 8080 {peer[0]}".encode(), peer)
"""


@dataclass
class Pod:
    name: str
    node: str
    netns: str
    ip: str

    def endpoint_address(self) -> dict[str, Any]:
        return {"ip": self.ip, "nodeName": self.node,
                "targetRef": {"kind": "Pod", "namespace": "default", "name": self.name}}


@dataclass
class ProxyLab:
    name: str
    plan: LabPlan
    pods: dict[str, Pod]
    proxiers: dict[str, Proxier] = field(default_factory=dict)

    def ns(self, node: str) -> str:
        return self.plan.node(node).netns

    def node_addresses(self, node: str) -> set[str]:
        plan = self.plan.node(node)
        return {str(plan.underlay.ip), str(plan.gateway.ip), str(plan.vtep_ip)}

    def program(self, *objects: dict[str, Any]) -> None:
        """Give every proxy these Services/EndpointSlices and sync them all."""
        for proxier in self.proxiers.values():
            for obj in objects:
                if obj["kind"] == "Service":
                    proxier.update_service(obj)
                else:
                    proxier.update_endpoint_slice(obj)
        self.sync()

    def sync(self) -> None:
        for node, proxier in self.proxiers.items():
            result = proxier.sync(force=True)
            assert result.ok, f"sync on {node} failed: {result.error}"


def service(name: str, cluster_ip: str, ports: list[dict[str, Any]], type_: str = "ClusterIP",
            affinity: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "clusterIP": cluster_ip, "ports": ports}
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity}}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def endpoints(name: str, pods: list[Pod], ports: list[dict[str, Any]],
              not_ready: list[Pod] = ()) -> dict[str, Any]:
    """The Service's EndpointSlice (what the proxy reads): ``pods`` ready, ``not_ready``
    listed with ready false."""
    def endpoint(pod: Pod, ready: bool) -> dict[str, Any]:
        address = pod.endpoint_address()
        return {"addresses": [address["ip"]], "nodeName": address["nodeName"],
                "targetRef": address["targetRef"],
                "conditions": {"ready": ready, "serving": ready, "terminating": False}}

    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-abcde", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": [endpoint(p, True) for p in pods]
            + [endpoint(p, False) for p in not_ready],
            "ports": ports}


# --- traffic --------------------------------------------------------------------------------

def tcp_request(src_ns: str, ip: str, port: int, timeout: float = 2.0) -> str | None:
    """Connect from ``src_ns``; the server's answer, or None if nothing answered."""
    sock = netns.run_in_netns(src_ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        return sock.recv(256).decode() or None
    except OSError:
        return None
    finally:
        sock.close()


def udp_socket(src_ns: str, timeout: float = 2.0, sport: int = 0) -> socket.socket:
    sock = netns.run_in_netns(src_ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.settimeout(timeout)
    sock.bind(("0.0.0.0", sport))
    return sock


def udp_request(src_ns: str, ip: str, port: int, timeout: float = 2.0,
                sock: socket.socket | None = None, sport: int = 0) -> str | None:
    """One datagram and its answer; a fresh socket (so a fresh flow) unless given one.

    A series that must be separate flows needs distinct ``sport``s: a random source
    port that repeats rides the earlier flow's conntrack entry to the same endpoint."""
    own = sock is None
    sock = sock or udp_socket(src_ns, timeout, sport)
    try:
        sock.sendto(b"hi", (ip, port))
        return sock.recvfrom(256)[0].decode()
    except OSError:
        return None
    finally:
        if own:
            sock.close()


# --- pods -----------------------------------------------------------------------------------

def make_pod(lab: str, plan: LabPlan, node: str, name: str, host: int) -> Pod:
    node_plan = plan.node(node)
    assert node_plan.pod_subnet is not None and node_plan.gateway is not None
    pod_ns = f"{lab}-{node}-{name}"
    address = IPv4Interface(f"{node_plan.pod_subnet.network_address + host}/24")
    gateway = node_plan.gateway.ip

    def inside_pod() -> None:
        netns.write_sysctl("net.ipv6.conf.all.disable_ipv6", "1")
        with IPRoute() as ipr:
            links.tag_owner(ipr, lab)  # so that `netlab down` removes it whatever happens
            links.ensure_up(ipr, "lo")

    netns.create_netns(pod_ns, inside_pod)
    host_if = "vp" + short_hash(pod_ns, 11)

    def inside_node() -> None:
        with IPRoute() as ipr:
            index = links.ensure_veth(ipr, host_if, "eth0", pod_ns, mtu=plan.pod_mtu)
            links.converge(ipr, index, master=links.link_index(ipr, "cni0"))
            links.ensure_hairpin(ipr, index)  # as the pod network's CNI ADD does

    netns.run_in_netns(node_plan.netns, inside_node)

    def address_pod() -> None:
        with IPRoute() as ipr:
            eth0 = links.ensure_up(ipr, "eth0")
            links.ensure_addresses(ipr, eth0, [address])
            links.ensure_default_route(ipr, gateway)

    netns.run_in_netns(pod_ns, address_pod)
    subprocess.Popen(["ip", "netns", "exec", pod_ns, sys.executable, "-c", SERVER, name],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    return Pod(name=name, node=node, netns=pod_ns, ip=str(address.ip))


PODS = {  # name: (node, host number in the node's /24)
    "cp-a": ("control-plane", 10),
    "w1-a": ("worker1", 10), "w1-b": ("worker1", 11), "w1-c": ("worker1", 12),
    "w2-a": ("worker2", 10), "w2-b": ("worker2", 11), "w2-c": ("worker2", 12),
}
