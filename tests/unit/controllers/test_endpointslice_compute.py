"""EndpointSlice controller: endpoints and conditions per pod, grouping by resolved ports,
100 per slice, placeholders, and writing only what changed."""

from __future__ import annotations

import copy

import pytest

from netlab.master.controllers.endpointslice_compute import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    desired_after,
    plan_slices,
)

pytestmark = pytest.mark.unit


def svc(ports=None, **spec):
    ports = ports if ports is not None else [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
    return {"metadata": {"name": "web", "namespace": "default", "uid": "svc-uid",
                         "labels": {"tier": "front", SERVICE_NAME_LABEL: "spoofed"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ports": ports,
                     **spec}}


def pod(name, ip, ready=True, ports=(("http", 8080),), deleting=False, node="worker1", **spec):
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}",
            "labels": {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"metadata": meta,
            "spec": {"nodeName": node, "containers": [{
                "name": "c", "ports": [{"name": n, "containerPort": p} for n, p in ports]}],
                **spec},
            "status": {"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"}]}}


def stored(plan, existing=(), start=0):
    """The slices after the plan, as the API would hold them (names, generations)."""
    out = []
    for i, s in enumerate(desired_after(list(existing), plan)):
        s = copy.deepcopy(s)
        meta = s["metadata"]
        if "name" not in meta:
            meta["name"] = f"{meta.pop('generateName')}x{start + i}"
        out.append(s)
    return out


def test_one_slice_with_labels_owner_conditions_and_target_refs():
    plan = plan_slices(svc(), [pod("b", "10.244.2.3"), pod("a", "10.244.1.9"),
                               pod("c", "10.244.1.10", ready=False)], [])
    assert not plan.update and not plan.delete and len(plan.create) == 1
    s = plan.create[0]
    assert s["metadata"]["generateName"] == "web-"
    assert s["metadata"]["labels"] == {"tier": "front", SERVICE_NAME_LABEL: "web",
                                       MANAGED_BY_LABEL: "endpointslice-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Service", "name": "web", "uid": "svc-uid",
        "controller": True, "blockOwnerDeletion": True}]
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [e["addresses"] for e in s["endpoints"]] == [
        ["10.244.1.9"], ["10.244.1.10"], ["10.244.2.3"]]
    by_name = {e["targetRef"]["name"]: e for e in s["endpoints"]}
    assert by_name["a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert by_name["c"]["conditions"] == {"ready": False, "serving": False,
                                          "terminating": False}
    assert by_name["a"]["nodeName"] == "worker1"
    assert by_name["a"]["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "a",
                                         "uid": "uid-a"}


def test_terminating_pods_are_not_ready_but_keep_serving():
    plan = plan_slices(svc(), [pod("t", "10.0.0.1", deleting=True),
                               pod("u", "10.0.0.2", ready=False, deleting=True)], [])
    conditions = {e["targetRef"]["name"]: e["conditions"] for e in plan.create[0]["endpoints"]}
    assert conditions == {"t": {"ready": False, "serving": True, "terminating": True},
                          "u": {"ready": False, "serving": False, "terminating": True}}
    published = plan_slices(svc(publishNotReadyAddresses=True),
                            [pod("t", "10.0.0.1", ready=False, deleting=True)], [])
    assert published.create[0]["endpoints"][0]["conditions"]["ready"] is True


def test_hostname_only_when_the_pod_names_the_service_as_subdomain():
    plan = plan_slices(svc(), [pod("a", "10.0.0.1", hostname="a", subdomain="web"),
                               pod("b", "10.0.0.2", hostname="b", subdomain="other")], [])
    hostnames = {e["targetRef"]["name"]: e.get("hostname") for e in plan.create[0]["endpoints"]}
    assert hostnames == {"a": "a", "b": None}


def test_named_target_port_resolving_differently_splits_the_slices():
    service = svc([{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    plan = plan_slices(service, [pod("old", "10.0.0.1", ports=(("web", 8080),)),
                                 pod("new", "10.0.0.2", ports=(("web", 9090),))], [])
    got = {s["ports"][0]["port"]: [e["addresses"][0] for e in s["endpoints"]]
           for s in plan.create}
    assert got == {8080: ["10.0.0.1"], 9090: ["10.0.0.2"]}


def test_pods_without_an_ip_are_left_out_and_no_pods_leave_a_placeholder():
    plan = plan_slices(svc(), [pod("a", "")], [])
    assert len(plan.create) == 1
    assert plan.create[0]["endpoints"] == [] and plan.create[0]["ports"] == []
    # The placeholder is kept as long as there is still nothing to list.
    assert not plan_slices(svc(), [], stored(plan))


def test_at_most_100_endpoints_per_slice():
    pods = [pod(f"p{i}", f"10.244.{i // 200}.{i % 200 + 1}") for i in range(250)]
    plan = plan_slices(svc(), pods, [])
    assert sorted(len(s["endpoints"]) for s in plan.create) == [50, 100, 100]
    addresses = [e["addresses"][0] for s in plan.create for e in s["endpoints"]]
    assert len(set(addresses)) == 250


def test_unchanged_slices_are_not_written_and_a_change_touches_one_slice():
    pods = [pod(f"p{i}", f"10.244.1.{i + 1}") for i in range(150)]
    slices = stored(plan_slices(svc(), pods, []))
    assert not plan_slices(svc(), pods, slices)
    pods[3] = pod("p3", "10.244.1.4", ready=False)
    plan = plan_slices(svc(), pods, slices)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    changed = plan.update[0]
    ep = next(e for e in changed["endpoints"] if e["targetRef"]["name"] == "p3")
    assert ep["conditions"]["ready"] is False
    assert changed["metadata"]["name"] in {s["metadata"]["name"] for s in slices}


def test_scaling_down_removes_endpoints_and_empty_slices_go():
    pods = [pod(f"p{i}", f"10.244.1.{i + 1}") for i in range(150)]
    slices = stored(plan_slices(svc(), pods, []))
    small = [p for p in pods if p["metadata"]["name"] in ("p0", "p1")]
    plan = plan_slices(svc(), small, slices)
    after = desired_after(slices, plan)
    assert sorted(e["targetRef"]["name"] for s in after for e in s["endpoints"]) == ["p0", "p1"]
    assert len(after) == 1 and not plan.create


def test_scaling_up_fills_an_existing_slice_before_creating_one():
    pods = [pod(f"p{i}", f"10.244.1.{i + 1}") for i in range(3)]
    slices = stored(plan_slices(svc(), pods, []))
    pods.append(pod("p3", "10.244.1.4"))
    plan = plan_slices(svc(), pods, slices)
    assert not plan.create and len(plan.update) == 1
    assert len(plan.update[0]["endpoints"]) == 4


def test_label_changes_and_foreign_slices():
    slices = stored(plan_slices(svc(), [pod("a", "10.0.0.1")], []))
    relabelled = svc()
    relabelled["metadata"]["labels"] = {"tier": "back"}
    plan = plan_slices(relabelled, [pod("a", "10.0.0.1")], slices)
    assert len(plan.update) == 1 and plan.update[0]["metadata"]["labels"]["tier"] == "back"
    successor = svc()
    successor["metadata"]["uid"] = "new-uid"  # a Service re-created with the same name
    plan = plan_slices(successor, [pod("a", "10.0.0.1")], slices)
    assert [s["metadata"]["name"] for s in plan.delete] == [slices[0]["metadata"]["name"]]
    assert plan.create[0]["metadata"]["ownerReferences"][0]["uid"] == "new-uid"


def test_the_tracker_holds_reconciles_until_the_cache_shows_our_writes():
    from netlab.master.controllers.endpointslice import SliceTracker

    now = [0.0]
    tracker = SliceTracker(clock=lambda: now[0])
    written = {"metadata": {"name": "web-1", "generation": 2}}
    tracker.written("default/web", written)
    tracker.deleted("default/web", "web-0")
    old = {"metadata": {"name": "web-1", "generation": 1}}
    assert tracker.stale("default/web", [old, {"metadata": {"name": "web-0"}}])
    assert tracker.stale("default/web", [written, {"metadata": {"name": "web-0"}}])
    assert not tracker.stale("default/web", [written])
    tracker.written("default/web", {"metadata": {"name": "web-2", "generation": 1}})
    assert tracker.stale("default/web", [])
    now[0] = 31.0  # never shown (deleted behind our back): stop waiting
    assert not tracker.stale("default/web", [])
