"""Endpoints: which pods, which addresses list, which port numbers, how subsets pack."""

from __future__ import annotations

from netlab.master.controllers.endpoints import compute_subsets, endpoints_labels, find_port


def svc(ports, **spec):
    return {"metadata": {"name": "web", "namespace": "default", "labels": {"a": "b"}},
            "spec": {"selector": {"app": "web"}, "ports": ports, **spec}}


def pod(name, ip, ready=True, ports=(("http", 8080),), phase="Running", restart="Always",
        deleting=False, node="worker1", **spec):
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"metadata": meta,
            "spec": {"nodeName": node, "restartPolicy": restart, "containers": [{
                "name": "c", "ports": [{"name": n, "containerPort": p} for n, p in ports]}],
                **spec},
            "status": {"phase": phase, "podIP": ip, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"}]}}


def test_ready_and_not_ready_addresses_with_target_refs():
    subsets = compute_subsets(svc([{"name": "http", "port": 80, "targetPort": 8080,
                                    "protocol": "TCP"}]),
                              [pod("b", "10.244.2.3"), pod("a", "10.244.1.9"),
                               pod("c", "10.244.1.10", ready=False)])
    assert len(subsets) == 1
    subset = subsets[0]
    assert [a["ip"] for a in subset["addresses"]] == ["10.244.1.9", "10.244.2.3"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.244.1.10"]
    assert subset["ports"] == [{"port": 8080, "protocol": "TCP", "name": "http"}]
    first = subset["addresses"][0]
    assert first["nodeName"] == "worker1"
    assert first["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "a",
                                  "uid": "uid-a"}


def test_named_target_port_resolves_per_pod():
    service = svc([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    subsets = compute_subsets(service, [pod("old", "10.0.0.1", ports=(("http", 8080),)),
                                        pod("new", "10.0.0.2", ports=(("http", 9090),)),
                                        pod("none", "10.0.0.3", ports=(("metrics", 1),))])
    by_port = {s["ports"][0]["port"]: [a["ip"] for a in s["addresses"]] for s in subsets}
    assert by_port == {8080: ["10.0.0.1"], 9090: ["10.0.0.2"]}
    assert find_port(pod("x", "1.1.1.1"), {"targetPort": "http", "protocol": "UDP"}) is None
    assert find_port(pod("x", "1.1.1.1"), {"port": 80}) == 80


def test_pods_offering_the_same_ports_share_one_subset():
    service = svc([{"name": "http", "port": 80, "targetPort": 8080},
                   {"name": "admin", "port": 81, "targetPort": 9000}])
    subsets = compute_subsets(service, [pod("a", "10.0.0.1"), pod("b", "10.0.0.2")])
    assert len(subsets) == 1
    assert [p["name"] for p in subsets[0]["ports"]] == ["admin", "http"]


def test_who_is_left_out():
    service = svc([{"port": 80, "targetPort": 8080}])
    pods = [pod("no-ip", ""), pod("leaving", "10.0.0.2", deleting=True),
            pod("done", "10.0.0.3", phase="Succeeded", restart="Never"),
            pod("failed", "10.0.0.4", phase="Failed", restart="OnFailure"),
            pod("kept", "10.0.0.5", phase="Failed", restart="Always")]
    subsets = compute_subsets(service, pods)
    assert [a["ip"] for s in subsets for a in s.get("addresses", [])] == ["10.0.0.4",
                                                                          "10.0.0.5"]


def test_publish_not_ready_and_headless_and_hostname():
    ready_all = compute_subsets(svc([{"port": 80}], publishNotReadyAddresses=True),
                                [pod("a", "10.0.0.1", ready=False)])
    assert [a["ip"] for a in ready_all[0]["addresses"]] == ["10.0.0.1"]
    headless = svc([], clusterIP="None")
    subsets = compute_subsets(headless, [pod("a", "10.0.0.1", hostname="db-0",
                                             subdomain="web")])
    assert subsets == [{"addresses": [{
        "ip": "10.0.0.1", "hostname": "db-0", "nodeName": "worker1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}}]}]
    assert endpoints_labels(headless) == {"a": "b", "service.kubernetes.io/headless": ""}
    assert compute_subsets(svc([]), [pod("a", "10.0.0.1")]) == []  # no ports, not headless
