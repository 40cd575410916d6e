"""CronJobs, PodDisruptionBudgets, cordon and drain in a real lab, driven by real kubectl."""

from __future__ import annotations

import contextlib
import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from labkit import KUBECTL, kubectl, wait_for

from netlab.client import APIError, SyncClient, lab_client

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

CRONJOB = textwrap.dedent("""\
    apiVersion: batch/v1
    kind: CronJob
    metadata: {name: tick, namespace: NS}
    spec:
      schedule: "*/1 * * * *"
      successfulJobsHistoryLimit: 1
      jobTemplate:
        spec:
          template:
            spec:
              restartPolicy: Never
              containers:
              - {name: c, image: netlab/echo, command: [sleep, "1"]}
    """)


@pytest.fixture
def client(cluster_lab) -> Iterator[SyncClient]:
    with SyncClient(lab_client(cluster_lab.name)) as c:
        yield c


@pytest.fixture
def namespace(client, request) -> Iterator[str]:
    name = "bp-" + request.node.name[5:30].replace("_", "-").strip("-")
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with contextlib.suppress(APIError):
            client.delete("namespaces", name)


def _jobs(client, ns: str) -> list[dict[str, Any]]:
    return client.list("jobs", ns)["items"]


def _complete(job: dict[str, Any]) -> bool:
    return any(c.get("type") == "Complete" and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def test_cronjob_runs_every_minute_and_keeps_its_history_limit(kubeconfig, client, namespace):
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=CRONJOB.replace("NS", namespace))
    assert out.returncode == 0, out.stderr
    out = kubectl(kubeconfig, "get", "cj", "-n", namespace)
    assert out.stdout.split("\n")[0].split() == [
        "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert out.stdout.split("\n")[1].split()[:6] == ["tick", "*/1", "*", "*", "*", "*"]
    # A Job made by hand from the CronJob's template, as kubectl builds it client-side.
    out = kubectl(kubeconfig, "create", "job", "by-hand", "--from=cronjob/tick", "-n", namespace)
    assert out.returncode == 0, out.stderr
    manual = client.get("jobs", "by-hand", namespace)
    assert manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert manual["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    client.delete("jobs", "by-hand", namespace)

    def scheduled() -> list[dict[str, Any]]:
        return [j for j in _jobs(client, namespace) if j["metadata"]["name"] != "by-hand"
                and "batch.kubernetes.io/cronjob-scheduled-timestamp"
                in (j["metadata"].get("annotations") or {})]

    first = wait_for(scheduled, timeout=75, what="the first scheduled job")[0]
    assert first["metadata"]["name"].startswith("tick-")
    wait_for(lambda: _complete(client.get("jobs", first["metadata"]["name"], namespace)),
             timeout=60, what="the first job to complete")
    second = wait_for(lambda: [j for j in scheduled() if j["metadata"]["uid"]
                               != first["metadata"]["uid"]], timeout=75,
                      what="the second scheduled job")[0]
    wait_for(lambda: _complete(client.get("jobs", second["metadata"]["name"], namespace)),
             timeout=60, what="the second job to complete")
    # successfulJobsHistoryLimit 1: the older finished job is removed.
    wait_for(lambda: [j["metadata"]["name"] for j in scheduled()]
             == [second["metadata"]["name"]], timeout=30, what="the first job to be trimmed")
    cj = client.get("cronjobs", "tick", namespace)
    assert cj["status"]["lastScheduleTime"] and cj["status"]["lastSuccessfulTime"]
    out = kubectl(kubeconfig, "get", "cj", "tick", "-n", namespace, "-o", "json")
    assert json.loads(out.stdout)["spec"]["concurrencyPolicy"] == "Allow"


def test_a_bad_schedule_is_refused_naming_the_field(kubeconfig, namespace):
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=CRONJOB.replace("NS", namespace)
                  .replace('"*/1 * * * *"', '"*/1 * * *"'))
    assert out.returncode != 0
    assert "spec.schedule: Invalid value: \"*/1 * * *\": expected exactly 5 fields, " \
           "found 4" in out.stderr


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "c", "image": "netlab/echo",
                                         "command": ["sleep", "3600"]}]}}}}


def _ready_on(client, ns: str, app: str, count: int) -> list[str] | None:
    """The nodes of ``app``'s ready, live pods when there are exactly ``count`` of them."""
    pods = [p for p in client.list("pods", ns, label_selector=f"app={app}")["items"]
            if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                    for c in p["status"].get("conditions") or [])]
    if len(pods) != count or len(ready) != count:
        return None
    return sorted(p["spec"]["nodeName"] for p in ready)


def _node_status(kubeconfig, node: str) -> str:
    out = kubectl(kubeconfig, "get", "node", node, "--no-headers")
    return out.stdout.split()[1]


def test_cordon_drain_and_a_disruption_budget(kubeconfig, client, namespace):
    try:
        # Cordoned, worker2 takes no new pods: the deployment lands on worker1 only.
        out = kubectl(kubeconfig, "cordon", "worker2")
        assert out.returncode == 0 and "cordoned" in out.stdout, out.stderr
        assert _node_status(kubeconfig, "worker2") == "Ready,SchedulingDisabled"
        client.create(_deployment("web", 2), namespace)
        assert wait_for(lambda: _ready_on(client, namespace, "web", 2), timeout=60,
                        what="2 ready pods") == ["worker1", "worker1"]
        out = kubectl(kubeconfig, "uncordon", "worker2")
        assert out.returncode == 0 and "uncordoned" in out.stdout, out.stderr
        assert _node_status(kubeconfig, "worker2") == "Ready"

        # A budget that needs both pods: the drain cannot evict either and times out.
        client.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                       "metadata": {"name": "web"},
                       "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}},
                      namespace)
        wait_for(lambda: (client.get("poddisruptionbudgets", "web", namespace)["status"]
                          .get("currentHealthy") == 2), timeout=30, what="the budget's status")
        out = kubectl(kubeconfig, "get", "pdb", "-n", namespace)
        assert out.stdout.split("\n")[0].split() == [
            "NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
        assert out.stdout.split("\n")[1].split()[:4] == ["web", "2", "N/A", "0"]
        out = kubectl(kubeconfig, "drain", "worker1", "--ignore-daemonsets",
                      "--delete-emptydir-data", "--timeout=12s")
        assert out.returncode != 0
        assert "Cannot evict pod as it would violate the pod's disruption budget." in out.stderr
        assert _ready_on(client, namespace, "web", 2) == ["worker1", "worker1"]
        assert _node_status(kubeconfig, "worker1") == "Ready,SchedulingDisabled"

        # With room for one disruption the drain evicts one pod at a time, and the
        # Deployment brings them back on worker2.
        client.patch("poddisruptionbudgets", "web", {"spec": {"minAvailable": 1}}, namespace)
        out = kubectl(kubeconfig, "drain", "worker1", "--ignore-daemonsets",
                      "--delete-emptydir-data", "--timeout=120s", timeout=150)
        assert out.returncode == 0, out.stderr
        assert "evicted" in out.stdout and "drained" in out.stdout
        assert wait_for(lambda: _ready_on(client, namespace, "web", 2), timeout=60,
                        what="the pods back on worker2") == ["worker2", "worker2"]
    finally:
        for node in ("worker1", "worker2"):
            kubectl(kubeconfig, "uncordon", node)
