"""The controller manager in a real lab: workloads converge as a Kubernetes user expects.

One module-scoped lab (the demo topology with its control plane: API server,
scheduler, controller manager, a kubelet per node), one namespace per test.
Pods run real processes (``sleep``, so that dozens stay cheap on two cores),
and every probe has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import re
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import BOTH_STORES, KUBECTL, kubectl, pod_visible_dir, wait_for

from netlab.client import APIError, SyncClient, lab_client
from netlab.lab import faults
from netlab.lab.state import components_path, read_json


@pytest.fixture(scope="module", params=BOTH_STORES)
def lab_store(request: pytest.FixtureRequest) -> str:
    """This module's lab tests run on a SQLite lab and on an etcd lab (issue 17)."""
    return request.param


needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
SLEEP = {"name": "c", "image": "netlab/echo", "command": ["sleep", "3600"]}


@pytest.fixture
def client(cluster_lab) -> Iterator[SyncClient]:
    with SyncClient(lab_client(cluster_lab.name)) as c:
        yield c


@pytest.fixture
def namespace(client, request) -> Iterator[str]:
    """A fresh namespace for the test, deleted (without waiting) afterwards."""
    name = "ctl-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[5:40].strip("-")
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with contextlib.suppress(APIError):
            client.delete("namespaces", name)


def deployment(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    template_spec = {"containers": [SLEEP], "terminationGracePeriodSeconds": 2,
                     **spec.pop("pod", {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": template_spec}, **spec}}


def live_pods(client, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
    return [p for p in client.list("pods", namespace, label_selector=selector)["items"]
            if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class PodRecorder:
    """A watch, in a thread, recording after each pod event how many pods are ready (and
    not terminating) and how many are active: exact, one sample per store revision."""

    def __init__(self, lab: str, namespace: str, selector: str) -> None:
        self.lab, self.namespace, self.selector = lab, namespace, selector
        self.ready: list[int] = []
        self.active: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()

    def __enter__(self) -> PodRecorder:
        self._thread.start()
        assert self._started.wait(30), "the recorder's watch did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _record(self, pods: dict[str, dict[str, Any]]) -> None:
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        self.ready.append(sum(1 for p in live if is_ready(p)))
        self.active.append(sum(1 for p in live if (p.get("status") or {}).get("phase")
                               not in ("Succeeded", "Failed")))

    def _run(self) -> None:
        with SyncClient(lab_client(self.lab)) as c:
            listing = c.list("pods", self.namespace, label_selector=self.selector)
            pods = {p["metadata"]["name"]: p for p in listing["items"]}
            rv = listing["metadata"]["resourceVersion"]
            self._record(pods)
            self._started.set()
            while not self._stop.is_set():
                for event in c.watch("pods", self.namespace, label_selector=self.selector,
                                     resource_version=rv, timeout_seconds=2):
                    obj = event["object"]
                    rv = obj["metadata"].get("resourceVersion", rv)
                    if event["type"] == "DELETED":
                        pods.pop(obj["metadata"]["name"], None)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        pods[obj["metadata"]["name"]] = obj
                    else:
                        continue
                    self._record(pods)


# --- ReplicaSets and Deployments ----------------------------------------------------------------


def test_scale_6_12_2_with_owner_references_and_running_pods(client, namespace):
    client.create(deployment("web", 6), namespace=namespace)

    def running(n: int) -> Any:
        pods = live_pods(client, namespace, "app=web")
        ok = len(pods) == n and all(p["status"].get("phase") == "Running" and is_ready(p)
                                    for p in pods)
        return pods if ok else None

    pods = wait_for(lambda: running(6), 60, 0.2, "6 running pods")
    sets = client.list("replicasets", namespace)["items"]
    assert len(sets) == 1
    dep = client.get("deployments", "web", namespace)
    assert sets[0]["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    for pod in pods:
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"], ref["controller"]) == (
            "ReplicaSet", sets[0]["metadata"]["uid"], True)
        assert pod["spec"]["nodeName"]  # the scheduler placed it
    client.patch("deployments", "web", {"spec": {"replicas": 12}}, namespace)
    wait_for(lambda: running(12), 90, 0.2, "12 running pods")
    client.patch("deployments", "web", {"spec": {"replicas": 2}}, namespace)
    wait_for(lambda: running(2), 60, 0.2, "2 running pods")

    def settled() -> bool:
        s = client.get("deployments", "web", namespace)["status"]
        return (s.get("replicas"), s.get("readyReplicas"), s.get("availableReplicas"),
                s.get("updatedReplicas")) == (2, 2, 2, 2)

    wait_for(settled, 30, 0.2, "the deployment status to say 2/2")
    assert len(live_pods(client, namespace, "app=web")) == 2


@needs_kubectl
def test_rolling_update_keeps_availability_then_undo(cluster_lab, client, namespace,
                                                     kubeconfig):
    client.create(deployment("roll", 4, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}),
        namespace=namespace)
    ns = ("-n", namespace)
    first = kubectl(kubeconfig, "rollout", "status", "deployment/roll", *ns, "--timeout=90s")
    assert first.returncode == 0, first.stderr
    assert 'deployment "roll" successfully rolled out' in first.stdout
    with PodRecorder(cluster_lab.name, namespace, "app=roll") as recorder:
        changed = kubectl(kubeconfig, "set", "env", "deployment/roll", *ns, "VERSION=2")
        assert changed.returncode == 0, changed.stderr
        status = kubectl(kubeconfig, "rollout", "status", "deployment/roll", *ns,
                         "--timeout=120s")
        assert status.returncode == 0, status.stderr
        assert "successfully rolled out" in status.stdout
    assert len(recorder.ready) > 8, "the recorder saw the rollout event by event"
    assert min(recorder.ready[1:]) >= 3, f"ready fell below replicas - maxUnavailable: " \
                                         f"{recorder.ready}"
    assert max(recorder.active) <= 5, f"more than replicas + maxSurge: {recorder.active}"
    pods = live_pods(client, namespace, "app=roll")
    assert len(pods) == 4
    assert all({"name": "VERSION", "value": "2"} in p["spec"]["containers"][0]["env"]
               for p in pods)
    undo = kubectl(kubeconfig, "rollout", "undo", "deployment/roll", *ns)
    assert undo.returncode == 0, undo.stderr
    assert "rolled back" in undo.stdout
    back = kubectl(kubeconfig, "rollout", "status", "deployment/roll", *ns, "--timeout=120s")
    assert back.returncode == 0, back.stderr
    dep = client.get("deployments", "roll", namespace)
    assert not dep["spec"]["template"]["spec"]["containers"][0].get("env")
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    revisions = sorted(s["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                       for s in client.list("replicasets", namespace)["items"])
    assert revisions == ["2", "3"]
    history = kubectl(kubeconfig, "rollout", "history", "deployment/roll", *ns)
    assert history.returncode == 0, history.stderr
    assert re.search(r"^2\s", history.stdout, re.M) and re.search(r"^3\s", history.stdout,
                                                                   re.M)
    wait_for(lambda: all(not p["spec"]["containers"][0].get("env")
                         for p in live_pods(client, namespace, "app=roll"))
             and len(live_pods(client, namespace, "app=roll")) == 4, 60, 0.2,
             "the pods of revision 3")


def test_kill_9_mid_scale_ends_at_exactly_50(cluster_lab, client, namespace):
    # The pods match no node, so they stay Pending: only the controller's count matters.
    client.create(deployment("many", 0, pod={"nodeSelector": {"netlab.io/nowhere": "x"}}),
                  namespace=namespace)
    wait_for(lambda: client.list("replicasets", namespace)["items"], 30, 0.1,
             "the (empty) replica set")
    before = read_json(components_path(cluster_lab.name))["controller-manager"]
    rv = client.list("pods", namespace)["metadata"]["resourceVersion"]
    client.patch("deployments", "many", {"spec": {"replicas": 50}}, namespace)
    for event in client.watch("pods", namespace, resource_version=rv, timeout_seconds=30):
        if event["type"] == "ADDED":
            break  # the scale-up is under way: kill it now
    faults.kill_component(cluster_lab.name, "controller-manager")
    at_kill = len(client.list("pods", namespace)["items"])
    wait_for(lambda: (read_json(components_path(cluster_lab.name)) or {})
             .get("controller-manager", {}).get("restarts", 0) > before["restarts"],
             30, 0.1, "the supervisor to restart the controller manager")

    def converged() -> bool:
        rs = client.list("replicasets", namespace)["items"][0]
        return (rs["status"].get("replicas") == 50
                and rs["status"].get("observedGeneration") == rs["metadata"]["generation"]
                and len(live_pods(client, namespace)) == 50)

    wait_for(converged, 60, 0.2, "50 pods after the restart")
    pods = client.list("pods", namespace)["items"]
    assert len(pods) == 50 and len({p["metadata"]["name"] for p in pods}) == 50
    assert at_kill < 50, "the kill came after the scale-up; it tested nothing"


# --- Jobs ---------------------------------------------------------------------------------------


def test_job_of_5_completions_with_parallelism_2(cluster_lab, client, namespace, kubeconfig):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "five"},
           "spec": {"completions": 5, "parallelism": 2, "backoffLimit": 2,
                    "template": {"spec": {"restartPolicy": "Never", "containers": [
                        {"name": "c", "image": "netlab/echo", "command": ["sleep", "1"]}]}}}}
    with PodRecorder(cluster_lab.name, namespace, "job-name=five") as recorder:
        client.create(job, namespace=namespace)

        def complete() -> Any:
            status = client.get("jobs", "five", namespace)["status"]
            done = any(c["type"] == "Complete" and c["status"] == "True"
                       for c in status.get("conditions") or [])
            return status if done else None

        status = wait_for(complete, 90, 0.2, "the job to complete")
    assert status["succeeded"] == 5 and not status.get("failed")
    assert status["startTime"] <= status["completionTime"]
    assert max(recorder.active) <= 2, f"more than 2 pods ran at once: {recorder.active}"
    pods = client.list("pods", namespace, label_selector="job-name=five")["items"]
    assert len(pods) == 5 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all(not p["metadata"].get("finalizers") for p in pods)
    if KUBECTL:
        table = kubectl(kubeconfig, "get", "job", "five", "-n", namespace)
        assert re.search(r"five\s+Complete\s+5/5", table.stdout), table.stdout


# --- garbage collection and namespaces -----------------------------------------------------------


def _nothing_left(client, namespace: str) -> bool:
    return not (client.list("pods", namespace)["items"]
                or client.list("replicasets", namespace)["items"])


@needs_kubectl
def test_cascading_delete_background_foreground_and_orphan(client, namespace, kubeconfig):
    for name in ("bg", "fg", "orph"):
        client.create(deployment(name, 2), namespace=namespace)
    wait_for(lambda: len(live_pods(client, namespace)) == 6, 60, 0.2, "6 pods")
    ns = ("-n", namespace)
    out = kubectl(kubeconfig, "delete", "deployment", "bg", *ns)  # background, kubectl's default
    assert out.returncode == 0, out.stderr
    out = kubectl(kubeconfig, "delete", "deployment", "fg", *ns, "--cascade=foreground")
    assert out.returncode == 0, out.stderr
    out = kubectl(kubeconfig, "delete", "deployment", "orph", *ns, "--cascade=orphan")
    assert out.returncode == 0, out.stderr

    def only_orphans_left() -> bool:
        sets = client.list("replicasets", namespace)["items"]
        pods = client.list("pods", namespace)["items"]
        return (not client.list("deployments", namespace)["items"]
                and [s["metadata"]["name"].split("-")[0] for s in sets] == ["orph"]
                and len(pods) == 2 and all(p["metadata"]["labels"]["app"] == "orph"
                                           for p in pods))

    wait_for(only_orphans_left, 60, 0.2, "everything but the orphans to be deleted")
    orphan_set = client.list("replicasets", namespace)["items"][0]
    assert not orphan_set["metadata"].get("ownerReferences")
    out = kubectl(kubeconfig, "delete", "replicaset", orphan_set["metadata"]["name"], *ns)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: _nothing_left(client, namespace), 60, 0.2, "nothing left")


@needs_kubectl
def test_namespace_deletion_empties_it(client, kubeconfig):
    name = "ctl-doomed"
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    client.create(deployment("web", 3), namespace=name)
    client.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
                  namespace=name)
    wait_for(lambda: len(live_pods(client, name)) == 3, 60, 0.2, "3 pods")
    out = kubectl(kubeconfig, "delete", "namespace", name, "--timeout=90s", timeout=120)
    assert out.returncode == 0, out.stderr  # kubectl waits until the namespace is gone
    with pytest.raises(APIError) as err:
        client.get("namespaces", name)
    assert err.value.not_found
    for resource in ("pods", "replicasets", "deployments", "services", "endpoints"):
        assert client.list(resource, name)["items"] == [], resource


# --- the HorizontalPodAutoscaler ------------------------------------------------------------------


@pytest.fixture
def host_dir() -> Iterator[Path]:
    with pod_visible_dir() as path:
        yield path


@needs_kubectl
def test_hpa_scales_a_stress_deployment_up_under_load_and_back_down(
        cluster_lab, client, namespace, kubeconfig, host_dir):
    import sys

    flag = host_dir / "load-on"
    # Load is switched from outside, like a load generator: while the flag file exists
    # every pod burns 100m (netlab/stress) against a 50m request, i.e. 200 %.
    script = textwrap.dedent(f"""\
        pid=
        while :; do
          if [ -e /flag/{flag.name} ]; then
            [ -n "$pid" ] || {{ {sys.executable} -m netlab.images.stress --cpu 100m & pid=$!; }}
          elif [ -n "$pid" ]; then
            kill $pid; wait $pid; pid=
          fi
          sleep 0.5
        done
        """)
    client.create(deployment("burn", 1, pod={"containers": [{
        "name": "burn", "image": "netlab/stress", "command": ["sh", "-c", script],
        "resources": {"requests": {"cpu": "50m"}},
        "volumeMounts": [{"name": "flag", "mountPath": "/flag", "readOnly": True}]}],
        "volumes": [{"name": "flag", "hostPath": {"path": str(host_dir),
                                                  "type": "Directory"}}]}),
        namespace=namespace)
    client.create({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "metadata": {"name": "burn"},
                   "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                               "name": "burn"},
                            "minReplicas": 1, "maxReplicas": 4,
                            "metrics": [{"type": "Resource", "resource": {
                                "name": "cpu", "target": {"type": "Utilization",
                                                          "averageUtilization": 50}}}],
                            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 10}}}},
                  namespace=namespace)
    wait_for(lambda: len([p for p in live_pods(client, namespace) if is_ready(p)]) == 1,
             60, 0.2, "the first stress pod")
    flag.touch()

    def replicas() -> int:
        return client.get("deployments", "burn", namespace)["spec"]["replicas"]

    wait_for(lambda: replicas() >= 3, 90, 0.5, "a scale-up to at least 3 under load")
    table = kubectl(kubeconfig, "get", "hpa", "burn", "-n", namespace)
    assert table.returncode == 0, table.stderr
    assert re.search(r"cpu: \d+%/50%", table.stdout), table.stdout
    hpa = client.get("horizontalpodautoscalers", "burn", namespace)
    assert hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] > 50
    flag.unlink()
    started = time.monotonic()
    wait_for(lambda: replicas() == 1, 90, 0.5, "a scale-down to 1 once the load stopped")
    # The sample period (10 s) plus the 10 s window bound it; a minute is generous.
    assert time.monotonic() - started < 60
    events = client.list("events", namespace, field_selector="involvedObject.name=burn")
    reasons = [e["reason"] for e in events["items"]]
    assert "SuccessfulRescale" in reasons, json.dumps(reasons)
