"""The Proxier's decisions, with the kernel faked: full or partial, when, and what follows."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from netlab.node.proxy import ruleset
from netlab.node.proxy.ruleset import ProxyConfig
from netlab.node.proxy.syncer import Proxier


class FakeKernel:
    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.fail_next = False
        self.flushed: list[list[Any]] = []
        self.deleted = False
        self.prepared = 0
        self.collected: list[str] = []
        self.cfg = ProxyConfig(pod_cidr="10.244.0.0/16")

    def prepare(self) -> None:
        self.prepared += 1

    def apply(self, script: str) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("nft: Could not process rule: No such file or directory")
        self.scripts.append(script)

    def list_table(self) -> str | None:
        return None

    def delete_table(self) -> bool:
        self.deleted = True
        return True

    def flush_udp(self, pairs: list[Any]) -> int:
        self.flushed.append(pairs)
        return len(pairs)

    def collect(self, garbage: Any) -> int:
        self.collected.append(garbage.collect_script())
        return len(garbage)

    def release(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def svc(name: str, ip: str, protocol: str = "TCP", node_port: int | None = None) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "p", "port": 80, "protocol": protocol, "targetPort": 8080}
    spec: dict[str, Any] = {"clusterIP": ip, "ports": [port]}
    if node_port:
        spec["type"], port["nodePort"] = "NodePort", node_port
    return {"kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def eps(name: str, *ips: str, protocol: str = "TCP") -> dict[str, Any]:
    """The Service's one EndpointSlice, listing ``ips`` as ready endpoints."""
    return {"kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{name}-x7k2p", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
            "ports": [{"name": "p", "port": 8080, "protocol": protocol}]}


@pytest.fixture
def setup():
    kernel, clock = FakeKernel(), Clock()
    proxier = Proxier("lab-worker1", None, "10.244.0.0/16", service_cidr="10.96.0.0/16",
                      min_interval=1.0, gc_delay=10.0, kernel=kernel, clock=clock)
    return proxier, kernel, clock


def test_first_sync_is_full_then_partial_for_changed_services_only(setup):
    proxier, kernel, clock = setup
    proxier.update_service(svc("a", "10.96.0.1"))
    proxier.update_endpoint_slice(eps("a", "10.244.1.2"))
    proxier.update_service(svc("b", "10.96.0.2"))
    first = proxier.sync()
    assert first.kind == "full" and first.ok and first.ports == 2 and kernel.prepared == 1
    assert kernel.scripts[0].startswith("add table ip netlab-proxy\ndelete table")
    clock.now += 2
    proxier.update_endpoint_slice(eps("b", "10.244.2.2"))
    second = proxier.sync()
    assert second.kind == "partial" and second.ports == 1
    assert "default/b" in kernel.scripts[-1] and "default/a" not in kernel.scripts[-1]
    clock.now += 2
    assert proxier.sync().kind == "none"


def test_a_failed_transaction_makes_the_next_sync_full(setup):
    proxier, kernel, clock = setup
    proxier.update_service(svc("a", "10.96.0.1"))
    proxier.sync()
    clock.now += 2
    proxier.update_endpoint_slice(eps("a", "10.244.1.2"))
    kernel.fail_next = True
    failed = proxier.sync()
    assert failed.kind == "partial" and not failed.ok and "No such file" in failed.error
    clock.now += 2
    retry = proxier.sync()
    assert retry.kind == "full" and retry.ok
    assert "10.244.1.2:8080" in kernel.scripts[-1]


def test_syncs_are_rate_limited_and_changes_coalesce(setup):
    proxier, kernel, clock = setup
    proxier.update_service(svc("a", "10.96.0.1"))
    proxier.sync()
    clock.now += 0.25
    proxier.update_endpoint_slice(eps("a", "10.244.1.2"))
    assert proxier.sync().kind == "partial"  # the second of a burst of two
    clock.now += 0.25
    proxier.update_endpoint_slice(eps("a", "10.244.1.2", "10.244.1.3"))
    deferred = proxier.sync()
    # Half a sync refilled since the bucket emptied: the other half takes 0.5 s.
    assert deferred.kind == "deferred" and deferred.retry_in == pytest.approx(0.5)
    proxier.update_endpoint_slice(eps("a", "10.244.1.2", "10.244.1.3", "10.244.1.4"))
    clock.now += 0.5
    done = proxier.sync()
    assert done.kind == "partial" and len(kernel.scripts) == 3
    assert "10.244.1.4:8080" in kernel.scripts[-1]
    assert proxier.sync(force=True).kind == "none"  # force skips the wait, not the check


def test_a_new_service_and_then_its_endpoints_are_synced_at_once_after_a_quiet_spell(setup):
    """The demo's order: a NodePort Service, then its first ready endpoint a few
    hundred milliseconds later; neither waits for the rate limit."""
    proxier, kernel, clock = setup
    proxier.update_service(svc("kubernetes", "10.96.0.1"))
    proxier.sync()
    clock.now += 5  # idle: the bucket refills to its burst of two
    proxier.update_service(svc("echo", "10.96.0.20", node_port=30080))
    assert proxier.sync().kind == "partial"
    clock.now += 0.3
    proxier.update_endpoint_slice(eps("echo", "10.244.1.2"))
    assert proxier.sync().kind == "partial"
    assert "10.244.1.2:8080" in kernel.scripts[-1]


def test_a_burst_of_one_waits_the_whole_interval_after_each_sync():
    kernel, clock = FakeKernel(), Clock()
    proxier = Proxier("lab-worker1", None, "10.244.0.0/16", min_interval=1.0, burst=1,
                      kernel=kernel, clock=clock)
    proxier.update_service(svc("a", "10.96.0.1"))
    proxier.sync()
    clock.now += 5
    proxier.update_service(svc("b", "10.96.0.2"))
    assert proxier.sync().kind == "partial"
    clock.now += 0.3
    proxier.update_service(svc("c", "10.96.0.3"))
    deferred = proxier.sync()
    assert deferred.kind == "deferred" and deferred.retry_in == pytest.approx(0.7)


def test_removed_udp_endpoints_lose_their_flows_and_tcp_ones_do_not(setup):
    proxier, kernel, clock = setup
    proxier.update_service(svc("dns", "10.96.0.10", "UDP", node_port=30053))
    proxier.update_endpoint_slice(eps("dns", "10.244.1.2", "10.244.1.3", protocol="UDP"))
    proxier.update_service(svc("web", "10.96.0.11"))
    proxier.update_endpoint_slice(eps("web", "10.244.1.2"))
    proxier.sync()
    clock.now += 2
    proxier.update_endpoint_slice(eps("dns", "10.244.1.3", protocol="UDP"))
    proxier.update_endpoint_slice(eps("web"))
    result = proxier.sync()
    assert [sorted(pairs, key=str) for pairs in kernel.flushed] == [
        [(("10.96.0.10", 80), ("10.244.1.2", 8080)), ((None, 30053), ("10.244.1.2", 8080))]]
    assert result.flushed == 2


def test_each_sync_is_logged_with_its_size_and_duration(setup, caplog):
    proxier, _, _ = setup
    proxier.update_service(svc("a", "10.96.0.1"))
    with caplog.at_level(logging.INFO, logger="netlab.proxy"):
        proxier.sync()
    [record] = [r for r in caplog.records if "sync:" in r.getMessage()]
    assert record.getMessage().startswith("full sync: 1 service ports, ")
    assert " bytes, " in record.getMessage() and " ms;" in record.getMessage()


def test_garbage_goes_at_once_in_a_small_table(setup):
    proxier, kernel, clock = setup
    proxier.update_service(svc("a", "10.96.0.1"))
    proxier.update_endpoint_slice(eps("a", "10.244.1.2", "10.244.1.3"))
    proxier.sync()
    clock.now += 2
    proxier.update_endpoint_slice(eps("a", "10.244.1.3", "10.244.1.4"))
    result = proxier.sync()
    assert result.collected == 1  # the old DNAT map (endpoints have no chains of their own)
    assert kernel.collected[-1].startswith("delete map") and not proxier.garbage


def test_garbage_waits_for_an_idle_proxy_in_a_large_table():
    kernel, clock = FakeKernel(), Clock()
    proxier = Proxier("lab-worker1", None, "10.244.0.0/16", min_interval=0, gc_delay=10,
                      gc_inline_objects=0, kernel=kernel, clock=clock)
    proxier.update_service(svc("a", "10.96.0.1"))
    proxier.update_endpoint_slice(eps("a", "10.244.1.2", "10.244.1.3"))
    proxier.sync()
    proxier.update_endpoint_slice(eps("a", "10.244.1.3", "10.244.1.4"))
    assert proxier.sync().collected == 0 and len(proxier.garbage) == 1
    clock.now += 5
    assert proxier.sync().collected == 0
    clock.now += 6
    assert proxier.sync().collected == 1 and not proxier.garbage


def test_a_service_claiming_a_taken_cluster_ip_is_skipped(setup):
    proxier, _, clock = setup
    proxier.update_service(svc("a", "10.96.0.1"))
    proxier.sync()
    clock.now += 2
    proxier.update_service(svc("b", "10.96.0.1"))
    result = proxier.sync()
    assert result.skipped == ["default/b:p"]
    assert [str(n) for n in proxier.programmed] == ["default/a:p"]


def test_deleting_a_service_and_cleanup(setup):
    proxier, kernel, clock = setup
    proxier.update_service(svc("a", "10.96.0.1"))
    proxier.sync()
    clock.now += 2
    proxier.delete_service(("default", "a"))
    assert proxier.sync().kind == "partial" and not proxier.programmed
    assert proxier.cleanup() and kernel.deleted and proxier.need_full


def test_services_are_sharded_at_full_syncs_and_growth_asks_for_a_new_layout(setup, monkeypatch):
    proxier, kernel, clock = setup
    monkeypatch.setattr(ruleset, "SHARD_PORTS", 2)
    for i in range(3):
        proxier.update_service(svc(f"s{i}", f"10.96.0.{i + 1}"))
    assert proxier.sync().kind == "full" and proxier.cfg.shards == 2
    assert "add chain ip netlab-proxy-1 services {" in kernel.scripts[-1]
    for i in range(3, 7):  # 7 ports want 4 shards: twice what there are
        clock.now += 2
        proxier.update_service(svc(f"s{i}", f"10.96.0.{i + 1}"))
        result = proxier.sync()
        assert result.kind == "partial" and result.ok
    assert proxier.need_full
    clock.now += 2
    assert proxier.sync().kind == "full" and proxier.cfg.shards == 4
    assert "add chain ip netlab-proxy-3 services {" in kernel.scripts[-1]


def test_the_object_count_matches_what_a_port_puts_in_the_table():
    # It decides whether garbage is collected at once, so it must follow the layout.
    from netlab.node.proxy.model import Endpoint, ServicePort, ServicePortName
    from netlab.node.proxy.syncer import _object_count

    name = ServicePortName("default", "web", "http", "tcp")
    for count in (0, 1, 3):
        for node_port in (None, 30080):
            for affinity in (None, 60):
                sp = ServicePort(name, "10.96.0.10", 80, node_port, affinity,
                                 tuple(Endpoint(f"10.244.1.{i + 2}", 8080) for i in range(count)))
                objects = ruleset.port_objects(sp)
                assert _object_count(sp) == len(objects.chains) + len(objects.sets), sp
