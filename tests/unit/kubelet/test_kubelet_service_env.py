"""Service environment variables, as the kubelet sets them."""

from __future__ import annotations

import pytest

from netlab.node.kubelet.serviceenv import service_env, visible_services

pytestmark = pytest.mark.unit


def svc(name: str, ns: str, ip: str | None, *ports: dict) -> dict:
    spec: dict = {"ports": list(ports)}
    if ip is not None:
        spec["clusterIP"] = ip
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


KUBERNETES = svc("kubernetes", "default", "10.96.0.1", {"name": "https", "port": 443})


def test_a_service_gives_upstreams_variables() -> None:
    env = service_env([svc("my-svc", "app", "10.96.0.20",
                           {"name": "http", "port": 80, "protocol": "TCP"},
                           {"name": "dns", "port": 53, "protocol": "UDP"})])
    assert env == {
        "MY_SVC_SERVICE_HOST": "10.96.0.20", "MY_SVC_SERVICE_PORT": "80",
        "MY_SVC_SERVICE_PORT_HTTP": "80", "MY_SVC_SERVICE_PORT_DNS": "53",
        "MY_SVC_PORT": "tcp://10.96.0.20:80",
        "MY_SVC_PORT_80_TCP": "tcp://10.96.0.20:80", "MY_SVC_PORT_80_TCP_PROTO": "tcp",
        "MY_SVC_PORT_80_TCP_PORT": "80", "MY_SVC_PORT_80_TCP_ADDR": "10.96.0.20",
        "MY_SVC_PORT_53_UDP": "udp://10.96.0.20:53", "MY_SVC_PORT_53_UDP_PROTO": "udp",
        "MY_SVC_PORT_53_UDP_PORT": "53", "MY_SVC_PORT_53_UDP_ADDR": "10.96.0.20",
    }


def test_the_pods_namespace_and_the_master_service_only() -> None:
    services = [KUBERNETES, svc("web", "app", "10.96.0.5", {"port": 80}),
                svc("other", "elsewhere", "10.96.0.6", {"port": 80}),
                svc("headless", "app", "None", {"port": 80}),
                svc("external", "app", None)]
    names = [s["metadata"]["name"] for s in visible_services(services, "app")]
    assert names == ["kubernetes", "web"]
    env = service_env(visible_services(services, "app"))
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert "OTHER_SERVICE_HOST" not in env and "HEADLESS_SERVICE_HOST" not in env


def test_enable_service_links_false_keeps_only_the_master_service() -> None:
    services = [KUBERNETES, svc("web", "app", "10.96.0.5", {"port": 80})]
    names = [s["metadata"]["name"] for s in visible_services(services, "app", False)]
    assert names == ["kubernetes"]


def test_a_kubernetes_service_of_the_pods_namespace_wins() -> None:
    own = svc("kubernetes", "app", "10.96.0.9", {"port": 8443})
    (chosen,) = visible_services([KUBERNETES, own], "app")
    assert chosen is own
    (chosen,) = visible_services([own, KUBERNETES], "app")
    assert chosen is own
