"""Services and Endpoints, in the API's shapes, into service ports with resolved endpoints."""

from __future__ import annotations

from typing import Any

from netlab.node.proxy.model import (
    DEFAULT_AFFINITY_TIMEOUT,
    Endpoint,
    ServicePortName,
    resolve,
    resolve_all,
    service_port_specs,
)


def svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    spec.setdefault("clusterIP", "10.96.0.10")
    spec.setdefault("ports", [{"name": "http", "port": 80, "targetPort": "http"}])
    return {"kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def eps(name: str = "web", *subsets: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Endpoints", "metadata": {"name": name, "namespace": "default"},
            "subsets": list(subsets)}


def addr(ip: str, pod: str = "", node: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"ip": ip}
    if pod:
        out["targetRef"] = {"kind": "Pod", "name": pod}
    if node:
        out["nodeName"] = node
    return out


def test_a_named_target_port_resolves_per_pod_from_the_endpoints_ports():
    # The endpoints controller names Endpoints ports after the Service port and
    # fills in each pod's number: two pods, two numbers, two subsets.
    ep = eps("web", {"addresses": [addr("10.244.1.2", "a", "worker1")],
                     "ports": [{"name": "http", "port": 8080}]},
             {"addresses": [addr("10.244.2.2", "b", "worker2")],
              "ports": [{"name": "http", "port": 8081}]})
    [port] = resolve(svc(), ep)
    assert port.name == ServicePortName("default", "web", "http", "tcp")
    assert port.endpoints == (Endpoint("10.244.1.2", 8080, "a", "worker1"),
                              Endpoint("10.244.2.2", 8081, "b", "worker2"))


def test_not_ready_addresses_are_left_out():
    ep = eps("web", {"addresses": [addr("10.244.1.2")], "notReadyAddresses": [addr("10.244.1.3")],
                     "ports": [{"name": "http", "port": 8080}]})
    assert [e.ip for e in resolve(svc(), ep)[0].endpoints] == ["10.244.1.2"]


def test_ports_match_by_name_and_protocol():
    service = svc(ports=[{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353},
                         {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353}])
    ep = eps("web", {"addresses": [addr("10.244.1.2")],
                     "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"},
                               {"name": "dns-tcp", "port": 5353, "protocol": "TCP"}]})
    udp, tcp = resolve(service, ep)
    assert (udp.protocol, udp.port, udp.endpoints[0].port) == ("udp", 53, 5353)
    assert (tcp.protocol, tcp.port, tcp.endpoints[0].port) == ("tcp", 53, 5353)


def test_a_single_unnamed_port():
    service = svc(ports=[{"port": 80, "targetPort": 8080}])
    ep = eps("web", {"addresses": [addr("10.244.1.2")], "ports": [{"port": 8080}]})
    [port] = resolve(service, ep)
    assert str(port.name) == "default/web" and port.endpoints[0].port == 8080


def test_hand_written_endpoints_named_after_the_target_port_are_accepted():
    ep = eps("web", {"addresses": [addr("10.244.1.2")], "ports": [{"name": "http", "port": 9}]})
    service = svc(ports=[{"name": "web", "port": 80, "targetPort": "http"}])
    assert resolve(service, ep)[0].endpoints[0].port == 9


def test_no_endpoints_object_means_no_endpoints():
    assert resolve(svc(), None)[0].endpoints == ()


def test_headless_external_name_and_odd_protocols_are_not_proxied():
    assert service_port_specs(svc(clusterIP="None")) == []
    assert service_port_specs(svc(type="ExternalName", externalName="example.org")) == []
    odd = svc(ports=[{"name": "x", "port": 1, "protocol": "ICMP"},
                     {"name": "s", "port": 2, "protocol": "SCTP"}])
    assert [p.name.protocol for p in service_port_specs(odd)] == ["sctp"]


def test_node_ports_only_for_node_port_and_load_balancer_services():
    ports = [{"name": "http", "port": 80, "nodePort": 30080}]
    assert service_port_specs(svc(ports=ports))[0].node_port is None  # type ClusterIP
    assert service_port_specs(svc(type="NodePort", ports=ports))[0].node_port == 30080
    assert service_port_specs(svc(type="LoadBalancer", ports=ports))[0].node_port == 30080


def test_client_ip_affinity_and_its_default_timeout():
    assert service_port_specs(svc())[0].affinity_timeout is None
    assert service_port_specs(svc(sessionAffinity="ClientIP"))[0].affinity_timeout == \
        DEFAULT_AFFINITY_TIMEOUT
    config = {"clientIP": {"timeoutSeconds": 60}}
    assert service_port_specs(svc(sessionAffinity="ClientIP",
                                  sessionAffinityConfig=config))[0].affinity_timeout == 60


def test_resolve_all_pairs_services_with_their_endpoints():
    ep = eps("web", {"addresses": [addr("10.244.1.2")], "ports": [{"name": "http", "port": 1}]})
    other = svc("other", clusterIP="10.96.0.11")
    ports = resolve_all([svc(), other], [ep])
    assert {str(n): len(p.endpoints) for n, p in ports.items()} == \
        {"default/web:http": 1, "default/other:http": 0}
