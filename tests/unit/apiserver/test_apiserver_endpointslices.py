"""discovery.k8s.io/v1 EndpointSlices through the API server: defaults, 422s with field
paths, immutable addressType, generation, Table columns, and the kubernetes slice."""

from __future__ import annotations

import copy

SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def eslice(name: str = "web-abcde", **fields) -> dict:
    body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": True}},
                          {"addresses": ["10.244.2.3"], "conditions": {"ready": False}}],
            "ports": [{"port": 8080}]}
    body.update(fields)
    return body


def causes(err: dict) -> dict[str, str]:
    return {c["field"]: c["message"] for c in err["details"]["causes"]}


async def test_create_defaults_the_port_and_starts_at_generation_one(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", SLICES, eslice())
        assert created["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
        assert created["metadata"]["generation"] == 1
        changed = copy.deepcopy(created)
        changed["endpoints"][1]["conditions"]["ready"] = True
        updated = await c.ok("PUT", f"{SLICES}/web-abcde", changed)
        assert updated["metadata"]["generation"] == 2
        relabelled = copy.deepcopy(updated)
        relabelled["metadata"]["labels"]["x"] = "y"
        same = await c.ok("PUT", f"{SLICES}/web-abcde", relabelled)
        assert same["metadata"]["generation"] == 2  # metadata is not content


async def test_invalid_slices_are_422_with_upstream_field_paths(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.post(SLICES, eslice(addressType="IPv5"))
        assert status == 422
        assert causes(err)["addressType"] == \
            'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"'
        bad = eslice(endpoints=[{"addresses": []}, {"addresses": ["fd00::1", "127.0.0.1"],
                                                    "hostname": "Bad_Host"}],
                     ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81,
                                                           "protocol": "ICMP"}])
        status, err = await c.post(SLICES, bad)
        found = causes(err)
        assert status == 422
        assert found["endpoints[0].addresses"] == \
            "Required value: must contain at least 1 address"
        assert found["endpoints[1].addresses[0]"].startswith(
            'Invalid value: "fd00::1": must be a valid IPv4 address')
        assert "loopback" in found["endpoints[1].addresses[1]"]
        assert found["endpoints[1].hostname"].startswith('Invalid value: "Bad_Host"')
        assert found["ports[1].name"] == 'Duplicate value: "http"'
        assert found["ports[1].protocol"].startswith('Unsupported value: "ICMP"')
        many = eslice(endpoints=[{"addresses": [f"10.244.{i // 250}.{i % 250 + 1}"]}
                                 for i in range(1001)])
        status, err = await c.post(SLICES, many)
        assert status == 422 and causes(err)["endpoints"] == \
            "Too many: 1001: must have at most 1000 items"
        status, err = await c.post(SLICES, eslice(ports=[{"name": f"p{i}", "port": i + 1}
                                                         for i in range(101)]))
        assert status == 422 and causes(err)["ports"] == \
            "Too many: 101: must have at most 100 items"
        fqdn = await c.ok("POST", SLICES, eslice("f", addressType="FQDN",
                                                 endpoints=[{"addresses": ["db.example.com"]}]))
        assert fqdn["addressType"] == "FQDN"


async def test_address_type_is_immutable(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", SLICES, eslice())
        status, err = await c.patch(f"{SLICES}/web-abcde", {"addressType": "IPv6"})
        assert status == 422
        assert causes(err)["addressType"] == 'Invalid value: "IPv6": field is immutable'


async def test_table_has_kubectls_columns(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", SLICES, eslice())
        many = eslice("many", endpoints=[{"addresses": [f"10.244.0.{i}"]} for i in range(1, 6)],
                      ports=[{"name": n, "port": p} for n, p in (("a", 1), ("b", 2), ("c", 3),
                                                                ("d", 4))])
        await c.ok("POST", SLICES, many)
        await c.ok("POST", SLICES, eslice("empty", endpoints=[], ports=[]))
        table = await c.ok("GET", SLICES, headers={"Accept": TABLE})
        assert [col["name"] for col in table["columnDefinitions"]] == [
            "Name", "AddressType", "Ports", "Endpoints", "Age"]
        rows = {r["cells"][0]: r["cells"][1:4] for r in table["rows"]}
        assert rows == {
            "web-abcde": ["IPv4", "8080", "10.244.1.2,10.244.2.3"],
            "many": ["IPv4", "1,2,3 + 1 more...",
                     "10.244.0.1,10.244.0.2,10.244.0.3 + 2 more..."],
            "empty": ["IPv4", "<unset>", "<unset>"],
        }


async def test_the_api_server_writes_the_kubernetes_slice(api, memory_store):
    async with api(memory_store, advertise_address="192.168.10.2", advertise_port=6443) as c:
        k8s = await c.ok("GET", f"{SLICES}/kubernetes")
        assert k8s["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
        assert k8s["endpoints"] == [{"addresses": ["192.168.10.2"],
                                     "conditions": {"ready": True}}]
        assert k8s["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]


async def test_strict_field_validation_knows_the_slice_schema(api, memory_store):
    async with api(memory_store) as c:
        body = eslice()
        body["endpoints"][0]["zone"] = "a"
        body["endpoints"][0]["colour"] = "blue"
        status, err = await c.post(SLICES, body, fieldValidation="Strict")
        assert status == 400 and 'unknown field "endpoints[0].colour"' in err["message"]
        del body["endpoints"][0]["colour"]
        await c.ok("POST", SLICES, body, fieldValidation="Strict")
