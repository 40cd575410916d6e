"""The cluster DNS add-on's API objects: the ``kube-system/kube-dns`` Service and
where it points.

kubeadm installs CoreDNS as the Service ``kube-dns`` on the tenth address of the
service CIDR (10.96.0.10 by default), ports ``dns`` 53/UDP, ``dns-tcp`` 53/TCP and
``metrics`` 9153/TCP, and every kubelet's ``--cluster-dns`` names that address.
netlab's DNS server is a control-plane component (``python -m netlab.dns``, run by
the supervisor like the API server), not a pod: so the Service has no selector and
the component publishes its own endpoint, an EndpointSlice (what kube-proxy reads)
and the Endpoints (what ``kubectl describe svc`` shows), the way the API server
publishes ``default/kubernetes``. Pods reach it through kube-proxy like any Service.

Pure: these functions only build the objects; the component applies them.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

NAMESPACE = "kube-system"
SERVICE = "kube-dns"
SLICE = "kube-dns-netlab"
FIELD_MANAGER = "netlab-dns"
DNS_PORT = 53
METRICS_PORT = 9153
LABELS = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
          "kubernetes.io/name": "CoreDNS"}
PORTS = (("dns", DNS_PORT, "UDP"), ("dns-tcp", DNS_PORT, "TCP"),
         ("metrics", METRICS_PORT, "TCP"))


def cluster_dns_ip(service_subnet: IPv4Network) -> str:
    """The kube-dns ClusterIP: the tenth address of the service CIDR, as kubeadm picks it."""
    return str(service_subnet.network_address + 10)


def service(cluster_ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": dict(LABELS),
                     "annotations": {"prometheus.io/port": str(METRICS_PORT),
                                     "prometheus.io/scrape": "true"}},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ports": [{"name": n, "port": p, "targetPort": p, "protocol": proto}
                           for n, p, proto in PORTS]},
    }


def endpoint_slice(address: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": SLICE, "namespace": NAMESPACE,
                     "labels": {**LABELS, "kubernetes.io/service-name": SERVICE,
                                "endpointslice.kubernetes.io/managed-by": FIELD_MANAGER}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "nodeName": node,
                       "conditions": {"ready": True, "serving": True, "terminating": False}}],
        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in PORTS],
    }


def endpoints(address: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE,
                     # Published with the slice above: the mirroring controller keeps off.
                     "labels": {**LABELS, "endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": address, "nodeName": node}],
                     "ports": [{"name": n, "port": p, "protocol": proto}
                               for n, p, proto in PORTS]}],
    }
