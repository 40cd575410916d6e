"""EndpointSlice mirroring: hand-written Endpoints of selector-less Services become slices."""

from __future__ import annotations

import pytest
from cmkit import cluster, eventually

from netlab.master.controllers.endpointslice_compute import plan_from_desired
from netlab.master.controllers.endpointslicemirroring import (
    mirror_desired,
    mirror_owner,
    should_mirror,
)

ENDPOINTS = {
    "metadata": {"name": "ext", "namespace": "default", "uid": "ep-uid",
                 "labels": {"team": "db"}},
    "subsets": [{"addresses": [{"ip": "192.168.5.10", "nodeName": "worker1"}],
                 "notReadyAddresses": [{"ip": "192.168.5.11"}, {"ip": "fd00::1"}],
                 "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}],
}
SERVICE = {"metadata": {"name": "ext", "namespace": "default"},
           "spec": {"ports": [{"name": "sql", "port": 5432}]}}


@pytest.mark.unit
def test_addresses_become_ready_and_not_ready_endpoints_under_the_mirror_labels():
    plan = plan_from_desired(mirror_owner(ENDPOINTS), mirror_desired(ENDPOINTS), [],
                             placeholder=False)
    [s] = plan.create
    assert s["metadata"]["labels"] == {
        "team": "db", "kubernetes.io/service-name": "ext",
        "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert s["ports"] == [{"name": "sql", "port": 5432, "protocol": "TCP"}]
    assert s["endpoints"] == [
        {"addresses": ["192.168.5.10"], "conditions": {"ready": True}, "nodeName": "worker1"},
        {"addresses": ["192.168.5.11"], "conditions": {"ready": False}}]


@pytest.mark.unit
def test_only_selector_less_services_without_skip_mirror_are_mirrored():
    assert should_mirror(SERVICE, ENDPOINTS)
    assert not should_mirror({"spec": {"selector": {"app": "x"}}}, ENDPOINTS)
    assert not should_mirror(None, ENDPOINTS)
    skip = {**ENDPOINTS, "metadata": {**ENDPOINTS["metadata"], "labels": {
        "endpointslice.kubernetes.io/skip-mirror": "true"}}}
    assert not should_mirror(SERVICE, skip)
    empty = {**ENDPOINTS, "subsets": []}
    assert not plan_from_desired(mirror_owner(empty), mirror_desired(empty), [],
                                 placeholder=False)


async def test_mirrored_slices_follow_the_endpoints_and_go_with_them() -> None:
    async with cluster() as c:
        await c.client.create({"apiVersion": "v1", "kind": "Service", **SERVICE})
        await c.client.create({"apiVersion": "v1", "kind": "Endpoints", **{
            **ENDPOINTS, "metadata": {"name": "ext", "namespace": "default"}}})

        async def slices():
            return (await c.client.list("endpointslices", "default",
                                        label_selector="kubernetes.io/service-name=ext"))["items"]

        async def ready_ips():
            found = await slices()
            return sorted(e["addresses"][0] for s in found for e in s["endpoints"]
                          if e["conditions"]["ready"]) or None

        assert await eventually(ready_ips, what="a mirrored slice") == ["192.168.5.10"]
        ep = await c.client.get("endpoints", "ext", "default")
        ep["subsets"][0]["addresses"].append({"ip": "192.168.5.12"})
        await c.client.update(ep)

        async def two():
            ips = await ready_ips()
            return ips if ips and len(ips) == 2 else None

        assert await eventually(two, what="the new address mirrored") == [
            "192.168.5.10", "192.168.5.12"]
        assert len(await slices()) == 1
        await c.client.delete("endpoints", "ext", "default")

        async def gone():
            return not await slices()

        await eventually(gone, what="the mirrored slices to go with the Endpoints")
