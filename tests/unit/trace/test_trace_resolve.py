"""SRC and DST names: pods, nodes, Services, NodePorts and addresses."""

from __future__ import annotations

import pytest
from tracekit import PODS, plan

from netlab.trace.model import ServicePortRecord, ServiceRecord
from netlab.trace.resolve import (
    ApiResolver,
    ResolveError,
    resolve_source,
    resolve_target,
    services_from_table,
)

SERVICES = [ServiceRecord("default", "web", "10.96.0.10", (
    ServicePortRecord("http", 80, "tcp", 30080), ServicePortRecord("dns", 53, "udp")))]


def test_sources_are_pods_and_nodes():
    p = plan()
    pod = resolve_source("a", p, PODS)
    assert (pod.kind, pod.name, pod.ip, pod.node, pod.netns) == \
        ("pod", "default/a", "10.244.1.2", "worker1", "u1-worker1.a-1")
    node = resolve_source("worker2", p, PODS)
    assert (node.kind, node.ip, node.netns) == ("node", "192.168.100.4", "u1-worker2")
    assert resolve_source("client", p, PODS).kind == "external"
    assert resolve_source("default/c", p, PODS).node == "worker2"
    assert resolve_source("pod/b", p, PODS).ip == "10.244.1.3"
    with pytest.raises(ResolveError, match="neither a node .* nor a pod in namespace default "
                                           r"\(pods: a, b, c\)"):
        resolve_source("nope", p, PODS)


def test_targets_services_nodeports_and_addresses():
    p = plan()
    svc = resolve_target("svc/web", p, PODS, SERVICES)
    assert (svc.kind, svc.ip, svc.port, svc.protocol, svc.service) == \
        ("service", "10.96.0.10", 80, "tcp", "default/web:http")
    dns = resolve_target("svc/web:dns", p, PODS, SERVICES)
    assert (dns.port, dns.protocol) == (53, "udp")
    assert resolve_target("svc/default/web:80", p, PODS, SERVICES).port == 80
    nodeport = resolve_target("node/worker1:30080", p, PODS, SERVICES)
    assert (nodeport.kind, nodeport.ip, nodeport.port, nodeport.service) == \
        ("nodeport", "192.168.100.3", 30080, "default/web:http")
    ip = resolve_target("10.96.0.10:80", p, PODS, SERVICES)
    assert (ip.kind, ip.port, ip.service) == ("ip", 80, "default/web")
    assert resolve_target("c", p, PODS, port=8080).port == 8080
    with pytest.raises(ResolveError, match="no port 81"):
        resolve_target("svc/web:81", p, PODS, SERVICES)
    with pytest.raises(ResolveError, match="no service 'db'"):
        resolve_target("svc/db", p, PODS, SERVICES)
    with pytest.raises(ResolveError, match="use --port"):
        resolve_target("a:80", p, PODS)


def test_dns_targets_ask_kube_dns_for_the_name_a_pod_asks_first():
    p = plan()
    kube_dns = ServiceRecord("kube-system", "kube-dns", "10.96.0.10", (
        ServicePortRecord("dns", 53, "udp"), ServicePortRecord("dns-tcp", 53, "tcp")))
    default = resolve_target("dns", p, PODS, [kube_dns], namespace="team")
    assert (default.ip, default.port, default.protocol, default.service) == (
        "10.96.0.10", 53, "udp", "kube-system/kube-dns:dns")
    assert default.query == "kubernetes.default.svc.cluster.local."
    assert resolve_target("dns/web", p, PODS, [kube_dns], namespace="team").query == \
        "web.team.svc.cluster.local."
    assert resolve_target("dns/web.team.svc.cluster.local.", p, PODS, [kube_dns]).query == \
        "web.team.svc.cluster.local."
    with pytest.raises(ResolveError, match="no service 'kube-dns' in namespace kube-system"):
        resolve_target("dns", p, PODS, SERVICES)


def test_services_are_read_from_a_proxy_table():
    listing = (
        "table ip netlab-proxy {\n"
        "\tmap service-ips {\n"
        "\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
        "\t\tcomment \"ClusterIP dispatch\"\n"
        "\t\telements = { 10.96.0.10 . tcp . 80 comment \"default/web:http\" : goto "
        "service-A-default/web/tcp/http,\n"
        "\t\t\t     10.96.0.53 . udp . 53 comment \"kube-system/dns\" : goto "
        "service-B-kube-system/dns/udp/ }\n"
        "\t}\n"
        "\tmap service-nodeports {\n"
        "\t\ttype inet_proto . inet_service : verdict\n"
        "\t\telements = { tcp . 30080 comment \"default/web:http\" : goto "
        "external-A-default/web/tcp/http }\n"
        "\t}\n}\n")
    found = services_from_table(listing)
    assert found == [
        ServiceRecord("default", "web", "10.96.0.10",
                      (ServicePortRecord("http", 80, "tcp", 30080),)),
        ServiceRecord("kube-system", "dns", "10.96.0.53", (ServicePortRecord("", 53, "udp"),))]


class _FakeClient:
    def list(self, resource: str) -> dict:
        if resource == "pods":
            return {"items": [
                {"metadata": {"name": "web-1", "namespace": "default", "uid": "u-1"},
                 "spec": {"nodeName": "worker2"}, "status": {"podIP": "10.244.2.7"}},
                {"metadata": {"name": "pending", "namespace": "default", "uid": "u-2"},
                 "spec": {}, "status": {}}]}
        return {"items": [{"metadata": {"name": "web", "namespace": "default"},
                           "spec": {"clusterIP": "10.96.0.10", "ports": [
                               {"name": "http", "port": 80, "protocol": "TCP",
                                "nodePort": 30080}]}}]}


def test_the_api_resolver_reads_pods_and_services(monkeypatch):
    monkeypatch.setattr("netlab.trace.resolve._sandbox_pods", lambda lab: [])
    resolver = ApiResolver("u1", _FakeClient())
    pods = resolver.pods()
    assert [(p.ref, p.node, p.ip) for p in pods] == [("default/web-1", "worker2", "10.244.2.7")]
    assert pods[0].netns == "u1-worker2.web-1-u1" and pods[0].veth.startswith("veth")
    assert resolver.services() == [ServiceRecord("default", "web", "10.96.0.10", (
        ServicePortRecord("http", 80, "tcp", 30080),))]
