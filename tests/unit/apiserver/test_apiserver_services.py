"""Service ClusterIP and NodePort allocation: defaults, requests, collisions, persistence."""

from __future__ import annotations

import ipaddress

from apiserver_kit import SERVICES, service

from netlab.master.apiserver.allocators import Bitmap, IPAllocator, PortAllocator
from netlab.master.store import SQLiteStore


async def test_kubernetes_service_and_defaults(api, memory_store):
    async with api(memory_store) as c:
        k8s = await c.ok("GET", f"{SERVICES}/kubernetes")
        assert k8s["spec"]["clusterIP"] == "10.96.0.1"
        assert k8s["spec"]["ports"][0]["port"] == 443
        svc = await c.ok("POST", SERVICES, service("web"))
        spec = svc["spec"]
        assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
        assert spec["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
        assert spec["clusterIPs"] == [spec["clusterIP"]]
        assert ipaddress.ip_address(spec["clusterIP"]) in ipaddress.ip_network("10.96.0.0/16")
        assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
        assert spec["internalTrafficPolicy"] == "Cluster" and "nodePort" not in spec["ports"][0]
        assert svc["status"] == {"loadBalancer": {}}


async def test_requested_ip_and_collisions(api, memory_store):
    async with api(memory_store) as c:
        svc = await c.ok("POST", SERVICES, service("a", clusterIP="10.96.0.10"))
        assert svc["spec"]["clusterIP"] == "10.96.0.10"
        status, err = await c.post(SERVICES, service("b", clusterIP="10.96.0.10"))
        assert status == 422 and "provided IP is already allocated" in err["message"]
        status, err = await c.post(SERVICES, service("c", clusterIP="10.0.0.1"))
        assert status == 422 and "not in the valid range" in err["message"]
        status, err = await c.post(SERVICES, service("d", clusterIP="banana"))
        assert status == 422 and err["details"]["causes"][0]["field"] == "spec.clusterIP"
        headless = await c.ok("POST", SERVICES, service("h", clusterIP="None"))
        assert headless["spec"]["clusterIPs"] == ["None"]
        # Deleting frees the address.
        await c.ok("DELETE", f"{SERVICES}/a")
        again = await c.ok("POST", SERVICES, service("b", clusterIP="10.96.0.10"))
        assert again["spec"]["clusterIP"] == "10.96.0.10"
        status, err = await c.patch(f"{SERVICES}/b", {"spec": {"clusterIP": "10.96.0.11"}})
        assert status == 422 and "field is immutable" in err["message"]


async def test_node_ports(api, memory_store):
    async with api(memory_store) as c:
        svc = await c.ok("POST", SERVICES, service("np", type="NodePort", ports=[
            {"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP",
                                           "nodePort": 30053}]))
        ports = svc["spec"]["ports"]
        assert 30000 <= ports[0]["nodePort"] <= 32767 and ports[1]["nodePort"] == 30053
        assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
        status, err = await c.post(SERVICES, service("np2", type="NodePort", ports=[
            {"port": 80, "nodePort": 30053}]))
        assert status == 422
        assert err["message"] == ('Service "np2" is invalid: spec.ports[0].nodePort: Invalid '
                                  'value: 30053: provided port is already allocated')
        status, err = await c.post(SERVICES, service("np3", type="NodePort", ports=[
            {"port": 80, "nodePort": 80}]))
        assert status == 422 and "not in the valid range" in err["message"]
        status, err = await c.post(SERVICES, service("cip", ports=[
            {"port": 80, "nodePort": 30080}]))
        assert status == 422 and "may not be used when `type` is 'ClusterIP'" in err["message"]
        # An update that leaves nodePort out keeps it (kubectl apply of a plain manifest) ...
        body = service("np", type="NodePort", ports=[{"name": "http", "port": 80},
                                                    {"name": "dns", "port": 53,
                                                     "protocol": "UDP"}])
        body["metadata"]["resourceVersion"] = svc["metadata"]["resourceVersion"]
        out = await c.ok("PUT", f"{SERVICES}/np", body)
        assert [p["nodePort"] for p in out["spec"]["ports"]] == [p["nodePort"] for p in ports]
        assert out["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
        # ... and switching to ClusterIP releases the ports.
        out = await c.ok("PATCH", f"{SERVICES}/np", {"spec": {"type": "ClusterIP"}})
        assert all("nodePort" not in p for p in out["spec"]["ports"])
        await c.ok("POST", SERVICES, service("np4", type="NodePort", ports=[
            {"port": 80, "nodePort": 30053}]))


async def test_allocations_survive_restart(api, tmp_path):
    path = tmp_path / "store.db"
    store = SQLiteStore(path)
    try:
        async with api(store) as c:
            first = await c.ok("POST", SERVICES, service("a", type="NodePort"))
    finally:
        store.close()
    store = SQLiteStore(path)
    try:
        async with api(store) as c:
            ip = first["spec"]["clusterIP"]
            port = first["spec"]["ports"][0]["nodePort"]
            status, err = await c.post(SERVICES, service("b", clusterIP=ip))
            assert status == 422 and "already allocated" in err["message"]
            status, err = await c.post(SERVICES, service("c", type="NodePort", ports=[
                {"port": 80, "nodePort": port}]))
            assert status == 422 and "already allocated" in err["message"]
            k8s = await c.ok("GET", f"{SERVICES}/kubernetes")
            assert k8s["metadata"]["uid"]  # not recreated: still the one from the first run
    finally:
        store.close()


def test_bitmap_prefers_upper_band_and_fills_completely():
    bitmap = Bitmap(40, dynamic_start=16)
    first = [bitmap.take_any() for _ in range(24)]
    assert all(i >= 16 for i in first)
    rest = [bitmap.take_any() for _ in range(16)]
    assert sorted(first + rest) == list(range(40))
    assert bitmap.take_any() is None
    bitmap.release(3)
    assert bitmap.take_any() == 3


def test_ip_and_port_allocators():
    ips = IPAllocator(ipaddress.IPv4Network("10.0.0.0/29"))
    assert ips.first() == "10.0.0.1"
    got = {ips.allocate_next() for _ in range(6)}
    assert got == {f"10.0.0.{i}" for i in range(1, 7)}  # no network, no broadcast
    ports = PortAllocator(30000, 30001)
    assert {ports.allocate_next(), ports.allocate_next()} == {30000, 30001}
