"""A node fails and the cluster heals, watched the way a user watches it.

``netlab fault link-down worker2`` unplugs worker2 from the physical network. Then,
with the lab's defaults (grace 10 s, eviction after 20 s more):

1. worker2 goes ``Ready=Unknown`` ("Kubelet stopped posting node status.") and is
   tainted ``node.kubernetes.io/unreachable`` (NoSchedule and NoExecute);
2. the Service's endpoints drop its pods at once (they are marked NotReady);
3. its pods are evicted and their ReplicaSet replaces them on the other workers;
4. ``link-up``: worker2 is Ready again, its taints go, its old pods are cleaned up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from labkit import topology, unique_lab, wait_for, write_topology

from netlab.client import APIError, SyncClient, lab_client
from netlab.lab import faults, lifecycle
from netlab.lab.state import components_path, read_json

WORKERS = ("worker1", "worker2", "worker3")
UNREACHABLE = "node.kubernetes.io/unreachable"
REPLICAS = 3

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                 "name": "web", "image": "netlab/echo", "ports": [{"containerPort": 8080}],
                 "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]}}}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A lab with a control plane and three workers, up until the module ends."""
    data = topology(unique_lab(), workers=3, external=False)
    path = write_topology(tmp_path_factory.mktemp("nodefail"), data)
    try:
        lifecycle.up(path)
        with SyncClient(lab_client(data["name"])) as client:
            wait_for(lambda: len(_ready_nodes(client)) == 4, 60, interval=0.2,
                     what="4 Ready nodes registered by the kubelets")
        yield data["name"]
    finally:
        lifecycle.down(data["name"])


def _ready(obj: dict) -> str | None:
    return next((c["status"] for c in obj["status"].get("conditions") or []
                 if c["type"] == "Ready"), None)


def _ready_nodes(client: SyncClient) -> list[str]:
    return [n["metadata"]["name"] for n in client.list("nodes")["items"] if _ready(n) == "True"]


def _web_pods(client: SyncClient) -> list[dict]:
    return client.list("pods", "default", label_selector="app=web")["items"]


def _serving(client: SyncClient) -> list[dict]:
    """Pods a user would call healthy: Running, Ready, not on their way out."""
    return [p for p in _web_pods(client) if p["status"].get("phase") == "Running"
            and _ready(p) == "True" and not p["metadata"].get("deletionTimestamp")]


def _endpoint_ips(client: SyncClient) -> set[str]:
    try:
        endpoints = client.get("endpoints", "web", "default")
    except APIError:
        return set()
    return {a["ip"] for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []}


def _netlab_fault(lab: str, *args: str) -> str:
    """The user's command: ``netlab fault ...`` (the click group, run as a program)."""
    out = subprocess.run([sys.executable, "-c", "from netlab.cli.fault import fault; fault()",
                          *args, "--lab", lab], capture_output=True, text=True, check=False,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_node_cut_off_is_replaced_and_comes_back(lab: str) -> None:
    with SyncClient(lab_client(lab)) as client:
        client.create(DEPLOYMENT, namespace="default")
        client.create(SERVICE, namespace="default")
        try:
            _run(lab, client)
        finally:
            for worker in WORKERS:  # never leave the lab cut, whatever failed
                faults.link_up(lab, worker)
            client.delete("deployments.apps", "web", "default")
            client.delete("services", "web", "default")


def _run(lab: str, client: SyncClient) -> None:
    pods = wait_for(lambda: len(_serving(client)) == REPLICAS and _serving(client), 90,
                    interval=0.5, what=f"{REPLICAS} web pods Running and Ready")
    wait_for(lambda: len(_endpoint_ips(client)) == REPLICAS, 30, interval=0.2,
             what="the Service's endpoints to list every pod")
    # The replicas run on the workers, none on the control plane. (Where exactly is the
    # scheduler's choice: it weighs measured usage too, so two may share a worker.)
    assert {p["spec"]["nodeName"] for p in pods} <= set(WORKERS)
    victim = pods[0]["spec"]["nodeName"]  # a worker that runs at least one replica
    lost = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods
            if p["spec"]["nodeName"] == victim}

    started = time.monotonic()
    assert "link down" in _netlab_fault(lab, "link-down", victim)
    links = json.loads(_netlab_fault(lab, "status", "-o", "json"))["links"]
    assert {link["node"]: link["up"] for link in links}[victim] is False
    assert all(link["up"] for link in links if link["node"] != victim)

    def unknown() -> dict | None:
        node = client.get("nodes", victim)
        return node if _ready(node) == "Unknown" else None

    node = wait_for(unknown, 40, interval=0.2, what=f"{victim} Ready=Unknown")
    cond = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert cond["reason"] == "NodeStatusUnknown"
    assert cond["message"] == "Kubelet stopped posting node status."
    assert _ready_nodes(client) == [n for n in ("control-plane", *WORKERS) if n != victim]

    def taints() -> set:
        return {(t["key"], t["effect"]) for t in
                client.get("nodes", victim)["spec"].get("taints") or []}
    wait_for(lambda: taints() == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")},
             20, interval=0.2, what="the unreachable taints")
    # Endpoints drop the lost pods long before they are evicted.
    wait_for(lambda: not (set(lost.values()) & _endpoint_ips(client)), 15, interval=0.2,
             what="the endpoints to drop the pods of the lost node")

    def replaced() -> list[dict] | None:
        serving = [p for p in _serving(client) if p["spec"]["nodeName"] != victim]
        return serving if len(serving) == REPLICAS else None

    serving = wait_for(replaced, 90, interval=0.5,
                       what=f"{REPLICAS} serving pods on the workers that remain")
    recovery = time.monotonic() - started
    assert {p["spec"]["nodeName"] for p in serving} <= set(WORKERS) - {victim}
    for name in lost:
        pod = client.get("pods", name, "default")  # still known, but on its way out
        assert pod["metadata"].get("deletionTimestamp")
        reasons = {c["type"]: c.get("reason") for c in pod["status"]["conditions"]}
        assert reasons.get("DisruptionTarget") == "DeletionByTaintManager"
    wait_for(lambda: _endpoint_ips(client) == {p["status"]["podIP"] for p in serving}, 30,
             interval=0.2, what="the endpoints to list the replacements")
    print(f"\nlink-down -> {REPLICAS} serving replicas again: {recovery:.1f}s")

    assert "link up" in _netlab_fault(lab, "link-up", victim)
    wait_for(lambda: _ready(client.get("nodes", victim)) == "True", 90, interval=0.5,
             what=f"{victim} Ready again after link-up")
    wait_for(lambda: not taints(), 30, interval=0.2, what="the taints removed")

    def gone(name: str) -> bool:
        try:
            client.get("pods", name, "default")
        except APIError as err:
            return err.not_found
        return False
    wait_for(lambda: all(gone(n) for n in lost), 60, interval=0.5,
             what="the evicted pods cleaned up by the returning kubelet")
    assert len(_serving(client)) == REPLICAS  # no duplicates once the node is back


def test_fault_kill_restarts_a_component_and_explains_mistakes(lab: str) -> None:
    before = read_json(components_path(lab))["kubelet-worker1"]
    out = _netlab_fault(lab, "kill", "kubelet", "worker1")
    assert out.startswith(f"kubelet-worker1 on worker1: sent SIGKILL to pid {before['pid']}")
    wait_for(lambda: (read_json(components_path(lab)) or {}).get("kubelet-worker1", {})
             .get("restarts", 0) > before["restarts"], 30, what="the supervisor's restart")
    assert read_json(components_path(lab))["kubelet-worker1"]["lastExit"] == -9  # SIGKILL
    wait_for(lambda: (read_json(components_path(lab)) or {}).get("kubelet-worker1", {})
             .get("pid") not in (None, before["pid"]), 30, what="a new kubelet process")

    def fault(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from netlab.cli.fault import fault; "
                               "fault()", *args, "--lab", lab], capture_output=True, text=True,
                              check=False, timeout=60)
    bad = fault("link-down", "nosuchnode")
    assert bad.returncode == 2 and "has no node 'nosuchnode'" in bad.stderr
    ambiguous = fault("kill", "kubelet")
    assert ambiguous.returncode == 2 and "runs on several nodes" in ambiguous.stderr
    assert faults.link_states(lab) == {n: True for n in ("control-plane", *WORKERS)}
