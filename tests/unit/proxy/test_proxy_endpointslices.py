"""kube-proxy on EndpointSlices: a Service's slices merged per port, ready endpoints first,
serving-terminating ones only as a fallback, and partial syncs per Service."""

from __future__ import annotations

from typing import Any

import pytest

from netlab.node.proxy.endpointslices import SliceCache, resolve_slices, slice_endpoint_ports
from netlab.node.proxy.model import Endpoint
from netlab.node.proxy.syncer import Proxier

pytestmark = pytest.mark.unit


def ep(ip: str, ready: bool | None = True, serving: bool | None = None,
       terminating: bool | None = None, pod: str = "", node: str = "") -> dict[str, Any]:
    conditions = {k: v for k, v in (("ready", ready), ("serving", serving),
                                    ("terminating", terminating)) if v is not None}
    out: dict[str, Any] = {"addresses": [ip], "conditions": conditions}
    if pod:
        out["targetRef"] = {"kind": "Pod", "namespace": "default", "name": pod}
    if node:
        out["nodeName"] = node
    return out


def eslice(name: str, service: str, endpoints: list[dict], port: int = 8080,
           port_name: str = "http", protocol: str = "TCP") -> dict[str, Any]:
    return {"kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "endpoints": endpoints,
            "ports": [{"name": port_name, "port": port, "protocol": protocol}]}


def svc(name: str = "web", ip: str = "10.96.0.10") -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": ip, "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}]}}


def test_slices_of_one_service_merge_and_label_rules_with_pod_and_node():
    slices = [eslice("web-a", "web", [ep("10.244.1.2", pod="a", node="worker1")]),
              eslice("web-b", "web", [ep("10.244.2.2", pod="b", node="worker2")], port=9090)]
    [port] = resolve_slices(svc(), slices)
    assert port.endpoints == (Endpoint("10.244.1.2", 8080, "a", "worker1"),
                              Endpoint("10.244.2.2", 9090, "b", "worker2"))


def test_only_ready_endpoints_and_unset_ready_means_ready():
    got = slice_endpoint_ports([eslice("s", "web", [
        ep("10.0.0.1"), ep("10.0.0.2", ready=False), ep("10.0.0.3", ready=None),
        ep("10.0.0.4", ready=False, serving=True, terminating=True)])])
    assert [e.ip for e in got[("http", "tcp")]] == ["10.0.0.1", "10.0.0.3"]


def test_serving_terminating_endpoints_are_the_fallback_when_none_is_ready():
    got = slice_endpoint_ports([eslice("s", "web", [
        ep("10.0.0.2", ready=False, serving=False, terminating=True),
        ep("10.0.0.4", ready=False, serving=True, terminating=True),
        ep("10.0.0.5", ready=False, serving=True, terminating=False)])])
    assert [e.ip for e in got[("http", "tcp")]] == ["10.0.0.4"]
    nothing = slice_endpoint_ports([eslice("s", "web", [
        ep("10.0.0.2", ready=False, serving=False, terminating=True)])])
    assert nothing == {}


def test_an_endpoint_in_two_slices_counts_once():
    got = slice_endpoint_ports([eslice("s1", "web", [ep("10.0.0.1", pod="a")]),
                                eslice("s2", "web", [ep("10.0.0.1", pod="a"),
                                                     ep("10.0.0.2", pod="b")])])
    assert [e.ip for e in got[("http", "tcp")]] == ["10.0.0.1", "10.0.0.2"]


def test_unusable_ports_and_address_types_are_skipped():
    bad = eslice("s", "web", [ep("10.0.0.1")], protocol="ICMP")
    fqdn = {**eslice("f", "web", [ep("example.com")]), "addressType": "FQDN"}
    no_port = eslice("n", "web", [ep("10.0.0.1")])
    no_port["ports"][0].pop("port")
    assert slice_endpoint_ports([bad, fqdn, no_port]) == {}


def test_cache_keys_slices_by_service_label_and_follows_relabels():
    cache = SliceCache()
    assert cache.update(eslice("x-1", "web", [])) == {("default", "web")}
    assert cache.update(eslice("x-1", "api", [])) == {("default", "web"), ("default", "api")}
    assert cache.slices(("default", "web")) == []
    unlabelled = eslice("x-2", "web", [])
    unlabelled["metadata"]["labels"] = {}
    assert cache.update(unlabelled) == set() and len(cache) == 1
    assert cache.delete(eslice("x-1", "api", [])) == {("default", "api")} and len(cache) == 0


class NullKernel:
    def __init__(self) -> None:
        self.scripts: list[str] = []

    def prepare(self) -> None: ...
    def apply(self, script: str) -> None: self.scripts.append(script)
    def list_table(self) -> None: return None
    def delete_table(self) -> bool: return True
    def flush_udp(self, pairs: list) -> int: return 0
    def collect(self, garbage: Any) -> int: return len(garbage)
    def release(self) -> None: ...


def test_a_slice_change_resyncs_only_its_service():
    kernel = NullKernel()
    proxier = Proxier("lab-w1", None, "10.244.0.0/16", min_interval=0, kernel=kernel)
    proxier.update_service(svc("web", "10.96.0.10"))
    proxier.update_service(svc("api", "10.96.0.11"))
    proxier.update_endpoint_slice(eslice("web-1", "web", [ep("10.244.1.2")]))
    proxier.update_endpoint_slice(eslice("api-1", "api", [ep("10.244.1.3")]))
    assert proxier.sync().kind == "full"
    proxier.update_endpoint_slice(eslice("web-2", "web", [ep("10.244.2.2")]))
    result = proxier.sync()
    assert result.kind == "partial" and result.ports == 1
    assert "default/web" in kernel.scripts[-1] and "default/api" not in kernel.scripts[-1]
    assert "10.244.2.2:8080" in kernel.scripts[-1] and "10.244.1.2:8080" in kernel.scripts[-1]
    web = proxier.programmed[next(n for n in proxier.programmed if n.name == "web")]
    assert [e.ip for e in web.endpoints] == ["10.244.1.2", "10.244.2.2"]
    proxier.delete_endpoint_slice(eslice("web-1", "web", []))
    proxier.update_endpoint_slice(eslice("web-2", "web", [
        ep("10.244.2.2", ready=False, serving=True, terminating=True)]))
    assert proxier.sync().kind == "partial"
    web = proxier.programmed[next(n for n in proxier.programmed if n.name == "web")]
    assert [e.ip for e in web.endpoints] == ["10.244.2.2"]  # draining onto the terminating pod
