"""DaemonSets, StatefulSets and their ControllerRevisions in a real lab, through kubectl
and the official Python client: placement per node, ordered pods, rollouts and undo."""

from __future__ import annotations

import contextlib
import json
import subprocess
import textwrap
import threading

import pytest
from labkit import KUBECTL, kubectl, netlab_cli, wait_for

from netlab.client import SyncClient, lab_client

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

DAEMONSET = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: agent}
    spec:
      selector: {matchLabels: {app: agent}}
      template:
        metadata: {labels: {app: agent}}
        spec:
          containers:
          - name: agent
            image: netlab/echo
            env: [{name: VERSION, value: "1"}]
    """)

STATEFULSET = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: StatefulSet
    metadata: {name: db}
    spec:
      serviceName: db
      replicas: 3
      selector: {matchLabels: {app: db}}
      template:
        metadata: {labels: {app: db}}
        spec:
          containers:
          - name: db
            image: netlab/echo
    """)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def client(cluster_lab):
    with SyncClient(lab_client(cluster_lab.name)) as c:
        yield c


def _pods(client, selector: str) -> list[dict]:
    return [p for p in client.list("pods", "default", label_selector=selector)["items"]
            if not p["metadata"].get("deletionTimestamp")]


def _nodes_of(client, selector: str) -> list[str]:
    return sorted(p["spec"].get("nodeName") or "" for p in _pods(client, selector))


def test_api_resources_lists_the_apps_kinds(kubeconfig):
    lines = {line.split()[0]: line.split() for line in
             ok(kubectl(kubeconfig, "api-resources", "--api-group=apps")).splitlines()[1:]}
    assert lines["daemonsets"][1:] == ["ds", "apps/v1", "true", "DaemonSet"]
    assert lines["statefulsets"][1:] == ["sts", "apps/v1", "true", "StatefulSet"]
    assert lines["controllerrevisions"][1:] == ["apps/v1", "true", "ControllerRevision"]


def test_daemonset_one_pod_per_worker_then_control_plane_when_tolerated(cluster_lab, kubeconfig,
                                                                          client):
    try:
        ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=DAEMONSET))
        wait_for(lambda: _nodes_of(client, "app=agent") == ["worker1", "worker2"], 90,
                 what="one agent pod on each worker")
        ok(kubectl(kubeconfig, "rollout", "status", "ds/agent", "--timeout=90s"))
        table = ok(kubectl(kubeconfig, "get", "ds", "agent"))
        assert table.split("\n")[0].split() == ["NAME", "DESIRED", "CURRENT", "READY",
                                                "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
                                                "AGE"]
        assert table.split("\n")[1].split()[:7] == ["agent", "2", "2", "2", "2", "2", "<none>"]
        described = ok(kubectl(kubeconfig, "describe", "ds", "agent"))
        assert "Desired Number of Nodes Scheduled: 2" in described
        mine = netlab_cli("get", "--lab", cluster_lab.name, "ds")
        assert mine.stdout.splitlines()[0] == table.splitlines()[0], mine.stderr
        again = ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=DAEMONSET))
        assert again.strip() == "daemonset.apps/agent unchanged"
        pod = _pods(client, "app=agent")[0]
        tolerations = pod["spec"]["tolerations"]
        assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoExecute"} in tolerations
        assert pod["metadata"]["labels"]["controller-revision-hash"]
        assert "daemonset.apps/agent" in ok(kubectl(kubeconfig, "get", "all"))
        ok(kubectl(kubeconfig, "patch", "ds", "agent", "--type=json", "-p", json.dumps([
            {"op": "add", "path": "/spec/template/spec/tolerations", "value": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                 "effect": "NoSchedule"}]}])))
        wait_for(lambda: _nodes_of(client, "app=agent") == ["control-plane", "worker1",
                                                            "worker2"], 120,
                 what="an agent pod on the control plane too")
        ok(kubectl(kubeconfig, "rollout", "status", "ds/agent", "--timeout=120s"))
    finally:
        kubectl(kubeconfig, "delete", "ds", "agent", "--ignore-not-found", "--wait=true")


def test_daemonset_rollout_history_and_undo(kubeconfig, client):
    try:
        ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=DAEMONSET))
        ok(kubectl(kubeconfig, "rollout", "status", "ds/agent", "--timeout=90s"))
        ok(kubectl(kubeconfig, "set", "env", "ds/agent", "VERSION=2"))
        ok(kubectl(kubeconfig, "rollout", "status", "ds/agent", "--timeout=120s"))

        def env_values() -> set:
            return {e["value"] for p in _pods(client, "app=agent")
                    for e in p["spec"]["containers"][0].get("env", []) if e["name"] == "VERSION"}

        assert env_values() == {"2"}
        history = ok(kubectl(kubeconfig, "rollout", "history", "ds/agent"))
        assert history.split("\n")[1].split() == ["REVISION", "CHANGE-CAUSE"]
        assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["1", "2"]
        revisions = ok(kubectl(kubeconfig, "get", "controllerrevisions"))
        assert "daemonset.apps/agent" in revisions
        assert "rolled back" in ok(kubectl(kubeconfig, "rollout", "undo", "ds/agent"))
        ok(kubectl(kubeconfig, "rollout", "status", "ds/agent", "--timeout=120s"))
        wait_for(lambda: env_values() == {"1"}, 120, what="the undo back to VERSION=1")
        history = ok(kubectl(kubeconfig, "rollout", "history", "ds/agent"))
        assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["2", "3"]
        detail = ok(kubectl(kubeconfig, "rollout", "history", "ds/agent", "--revision=2"))
        assert [line.split() for line in detail.splitlines()
                if line.strip().startswith("VERSION:")] == [["VERSION:", "2"]], detail
    finally:
        kubectl(kubeconfig, "delete", "ds", "agent", "--ignore-not-found", "--wait=true")
    # The pods and revisions it owned are collected with it.
    wait_for(lambda: not _pods(client, "app=agent") and not client.list(
        "controllerrevisions", "default", label_selector="app=agent")["items"], 90,
        what="the DaemonSet's pods and revisions to be collected")


def test_daemonset_with_the_official_python_client(kubeconfig):
    pytest.importorskip("kubernetes")
    from kubernetes import client as kclient
    from kubernetes import config

    api = kclient.AppsV1Api(config.new_client_from_config(str(kubeconfig)))
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "pyagent"},
            "spec": {"selector": {"matchLabels": {"app": "pyagent"}},
                     "template": {"metadata": {"labels": {"app": "pyagent"}},
                                  "spec": {"containers": [{"name": "a",
                                                           "image": "netlab/echo"}]}}}}
    try:
        created = api.create_namespaced_daemon_set("default", body)
        assert created.spec.update_strategy.rolling_update.max_unavailable == 1
        assert created.spec.revision_history_limit == 10
        read = wait_for(lambda: (d := api.read_namespaced_daemon_set("pyagent", "default"))
                        .status.number_ready == 2 and d, 90, what="two ready daemon pods")
        assert read.status.desired_number_scheduled == 2
    finally:
        with contextlib.suppress(kclient.ApiException):
            api.delete_namespaced_daemon_set("pyagent", "default")


def test_statefulset_volume_claim_templates_are_validated_as_claims(kubeconfig):
    # (A StatefulSet with valid templates runs: tests/lab/test_persistent_volumes.py.)
    manifest = STATEFULSET.replace("  serviceName: db\n", "  serviceName: db\n"
                                   "  volumeClaimTemplates:\n"
                                   "  - metadata: {name: data}\n"
                                   "    spec: {accessModes: [ReadWriteOnce]}\n")
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
    assert out.returncode != 0
    assert "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value" in out.stderr
    typo = kubectl(kubeconfig, "apply", "-f", "-",
                   stdin=STATEFULSET.replace("replicas: 3", "replicaz: 3"))
    assert typo.returncode != 0 and 'unknown field "spec.replicaz"' in typo.stderr


class _Recorder:
    """Every pod event of a label selector, in order, from one watch."""

    def __init__(self, kubeconfig, selector: str) -> None:
        from kubernetes import client as kclient
        from kubernetes import config, watch

        self.api = kclient.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        self.watch = watch.Watch()
        self.events: list[tuple[str, str, bool, bool]] = []
        self.selector = selector
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.watch.stream(self.api.list_namespaced_pod, "default",
                                           label_selector=self.selector, timeout_seconds=300):
                pod = event["object"]
                ready = any(c.type == "Ready" and c.status == "True"
                            for c in (pod.status.conditions or []))
                self.events.append((event["type"], pod.metadata.name, ready,
                                    pod.metadata.deletion_timestamp is not None))
        except Exception:  # the watch is stopped at teardown
            return

    def first(self, predicate) -> int:
        return next(i for i, e in enumerate(self.events) if predicate(e))

    def stop(self) -> None:
        self.watch.stop()


def test_statefulset_ordered_creation_scale_down_and_rollout(kubeconfig, client):
    pytest.importorskip("kubernetes")
    recorder = _Recorder(kubeconfig, "app=db")
    try:
        ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=STATEFULSET))
        ok(kubectl(kubeconfig, "rollout", "status", "sts/db", "--timeout=150s"))
        names = sorted(p["metadata"]["name"] for p in _pods(client, "app=db"))
        assert names == ["db-0", "db-1", "db-2"]
        events = recorder.events
        for before, after in (("db-0", "db-1"), ("db-1", "db-2")):
            ready_at = recorder.first(lambda e, n=before: e[1] == n and e[2])
            added_at = recorder.first(lambda e, n=after: e[1] == n and e[0] == "ADDED")
            assert ready_at < added_at, events
        pod = client.get("pods", "db-1", "default")
        assert pod["spec"]["hostname"] == "db-1" and pod["spec"]["subdomain"] == "db"
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == "db-1"
        assert labels["apps.kubernetes.io/pod-index"] == "1"
        assert labels["controller-revision-hash"].startswith("db-")
        assert ok(kubectl(kubeconfig, "get", "sts", "db")).split("\n")[1].split()[:2] == \
            ["db", "3/3"]

        ok(kubectl(kubeconfig, "scale", "sts", "db", "--replicas=1"))
        wait_for(lambda: any(e[1] == "db-1" and e[0] == "DELETED" for e in recorder.events),
                 150, what="db-1 deleted")
        gone_2 = recorder.first(lambda e: e[1] == "db-2" and e[0] == "DELETED")
        leaving_1 = recorder.first(lambda e: e[1] == "db-1" and (e[3] or e[0] == "DELETED"))
        assert gone_2 < leaving_1, recorder.events

        ok(kubectl(kubeconfig, "scale", "sts", "db", "--replicas=2"))
        ok(kubectl(kubeconfig, "set", "env", "sts/db", "MODE=new"))
        ok(kubectl(kubeconfig, "rollout", "status", "sts/db", "--timeout=150s"))
        sts = json.loads(ok(kubectl(kubeconfig, "get", "sts", "db", "-o", "json")))
        assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
        assert sts["status"]["updatedReplicas"] == 2
        history = ok(kubectl(kubeconfig, "rollout", "history", "sts/db"))
        assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["1", "2"]
        ok(kubectl(kubeconfig, "rollout", "undo", "sts/db"))
        ok(kubectl(kubeconfig, "rollout", "status", "sts/db", "--timeout=150s"))
        wait_for(lambda: all(not p["spec"]["containers"][0].get("env")
                             for p in _pods(client, "app=db")) and
                 len(_pods(client, "app=db")) == 2, 150, what="pods back at revision 1")
    finally:
        recorder.stop()
        kubectl(kubeconfig, "delete", "sts", "db", "--ignore-not-found", "--wait=true")
