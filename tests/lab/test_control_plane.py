"""The control plane of a real lab, through the clients users bring: kubectl, the
official Python client, netlab's own CLI, and raw HTTP across the physical network."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import textwrap
import threading

import psutil
import pytest
from labkit import BOTH_STORES, KUBECTL, kubectl, netlab_cli, wait_for

from netlab.client import APIError, SyncClient, lab_client
from netlab.kernel import netns
from netlab.lab.state import components_path, data_dir, lab_dir, read_json, socket_path


@pytest.fixture(scope="module", params=BOTH_STORES)
def lab_store(request: pytest.FixtureRequest) -> str:
    """This module's lab tests run on a SQLite lab and on an etcd lab (issue 17)."""
    return request.param


needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

POD = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata: {name: NAME, labels: {app: web}}
    spec:
      containers:
      - name: web
        image: netlab/echo
        env: [{name: GREETING, value: hello}]
    """)

DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 2
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers:
          - name: web
            image: netlab/echo
            env:
            - {name: A, value: "1"}
            - {name: B, value: "2"}
    """)


@pytest.fixture
def client(cluster_lab):
    with SyncClient(lab_client(cluster_lab.name)) as c:
        yield c


def test_the_unix_socket_is_root_only(cluster_lab):
    mode = stat.S_IMODE(os.stat(socket_path(cluster_lab.name)).st_mode)
    assert mode == 0o600


def _http_from(lab: str, ns: str, address: str, port: int, headers: str = "") -> str:
    """A raw HTTPS request from inside a node's namespace, trusting the lab's CA."""
    def connect() -> socket.socket:
        return socket.create_connection((address, port), timeout=5)
    context = ssl.create_default_context(cafile=str(lab_dir(lab) / "ca.crt"))
    sock = context.wrap_socket(netns.run_in_netns(ns, connect), server_hostname=address)
    with sock:
        sock.sendall(f"GET /api/v1/namespaces HTTP/1.1\r\nHost: {address}\r\n{headers}"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode(errors="replace")


def test_node_agents_reach_the_api_across_the_physical_network(cluster_lab):
    control = cluster_lab.plan.node("control-plane")
    token = (lab_dir(cluster_lab.name) / "token").read_text().strip()
    ok = _http_from(cluster_lab.name, cluster_lab.ns("worker1"), str(control.underlay.ip), 6443,
                    f"Authorization: Bearer {token}\r\n")
    assert ok.startswith("HTTP/1.1 200") and '"kube-system"' in ok
    denied = _http_from(cluster_lab.name, cluster_lab.ns("worker1"), str(control.underlay.ip), 6443,
                        "Authorization: Bearer wrong\r\n")
    assert denied.startswith("HTTP/1.1 401") and '"Unauthorized"' in denied
    anonymous = _http_from(cluster_lab.name, cluster_lab.ns("client"),
                           str(control.underlay.ip), 6443)
    assert anonymous.startswith("HTTP/1.1 401")


def test_default_namespaces_exist(client):
    names = {n["metadata"]["name"] for n in client.list("namespaces")["items"]}
    assert {"default", "kube-system", "kube-node-lease"} <= names


@needs_kubectl
def test_kubectl_version_and_api_resources(kubeconfig):
    out = kubectl(kubeconfig, "version", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["serverVersion"]["gitVersion"].startswith("v1.")
    res = kubectl(kubeconfig, "api-resources")
    assert res.returncode == 0, res.stderr
    for line in ("deployments", "horizontalpodautoscalers", "jobs"):
        assert line in res.stdout


@needs_kubectl
def test_kubectl_create_get_and_the_same_table_from_netlab(cluster_lab, kubeconfig, tmp_path):
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD.replace("NAME", "kc-pod"))
    created = kubectl(kubeconfig, "create", "-f", str(manifest))
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "pod/kc-pod created"
    table = kubectl(kubeconfig, "get", "pods")
    assert table.stdout.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "kc-pod" in table.stdout
    mine = netlab_cli("get", "--lab", cluster_lab.name, "pods")
    assert mine.stdout.splitlines()[0] == table.stdout.splitlines()[0]
    wide = kubectl(kubeconfig, "get", "pods", "-o", "wide")
    assert "NODE" in wide.stdout.splitlines()[0]
    as_yaml = kubectl(kubeconfig, "get", "pod", "kc-pod", "-o", "yaml")
    assert "restartPolicy: Always" in as_yaml.stdout  # server-side defaulting
    everywhere = kubectl(kubeconfig, "get", "namespaces", "-A")
    assert "kube-node-lease" in everywhere.stdout
    labelled = kubectl(kubeconfig, "get", "pods", "-l", "app=web", "-o", "name")
    assert "pod/kc-pod" in labelled.stdout
    none = kubectl(kubeconfig, "get", "pods", "-l", "app=nothing")
    assert "No resources found" in none.stderr


@needs_kubectl
def test_kubectl_watch_sees_a_create_by_another_client(cluster_lab, kubeconfig, client):
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(kubeconfig), "get", "pods", "-w",
                             "-l", "watch=me"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        # Created before or after kubectl starts watching, the pod shows: in the
        # initial listing or as a watch event.
        client.create({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "watched", "labels": {"watch": "me"}},
                       "spec": {"containers": [{"name": "c", "image": "netlab/echo"}]}},
                      namespace="default")
        wait_for(lambda: any("watched" in line for line in lines), 20,
                 what="kubectl get -w to print the new pod")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


@needs_kubectl
def test_kubectl_apply_twice_then_edit_a_list_scale_describe_delete(kubeconfig, tmp_path, client):
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(DEPLOYMENT)
    first = kubectl(kubeconfig, "apply", "-f", str(manifest))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "deployment.apps/web created"
    second = kubectl(kubeconfig, "apply", "-f", str(manifest))
    assert second.stdout.strip() == "deployment.apps/web unchanged", second.stderr
    rv = client.get("deployments.apps", "web", "default")["metadata"]["resourceVersion"]
    manifest.write_text(DEPLOYMENT.replace('{name: B, value: "2"}', '{name: C, value: "3"}'))
    third = kubectl(kubeconfig, "apply", "-f", str(manifest))
    assert third.stdout.strip() == "deployment.apps/web configured", third.stderr
    live = client.get("deployments.apps", "web", "default")
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]
    assert live["metadata"]["resourceVersion"] != rv and live["metadata"]["generation"] == 2
    scaled = kubectl(kubeconfig, "scale", "deployment", "web", "--replicas=5")
    assert scaled.returncode == 0, scaled.stderr
    assert client.get("deployments.apps", "web", "default")["spec"]["replicas"] == 5
    described = kubectl(kubeconfig, "describe", "deployment", "web")
    assert described.returncode == 0 and "web" in described.stdout
    deleted = kubectl(kubeconfig, "delete", "-f", str(manifest))
    assert deleted.returncode == 0, deleted.stderr
    assert 'deployment.apps "web" deleted' in deleted.stdout
    with pytest.raises(APIError) as err:
        client.get("deployments.apps", "web", "default")
    assert err.value.code == 404


def test_python_kubernetes_client_lists_creates_and_watches(kubeconfig):
    kubernetes = pytest.importorskip("kubernetes", reason="the kubernetes package is not "
                                     "installed (it is in netlab's test extras)")
    from kubernetes import client as kclient
    from kubernetes import config, watch

    api = kclient.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    pod = kclient.V1Pod(metadata=kclient.V1ObjectMeta(name="py-pod", labels={"from": "py"}),
                        spec=kclient.V1PodSpec(containers=[kclient.V1Container(
                            name="c", image="netlab/echo")]))
    listed = api.list_namespaced_pod("default")
    api.create_namespaced_pod("default", pod)
    names = [p.metadata.name for p in api.list_namespaced_pod("default").items]
    assert "py-pod" in names
    seen = []
    for event in watch.Watch().stream(api.list_namespaced_pod, "default",
                                      label_selector="from=py", timeout_seconds=5,
                                      resource_version=listed.metadata.resource_version):
        seen.append((event["type"], event["object"].metadata.name))
        if seen:
            break
    assert seen == [("ADDED", "py-pod")]
    assert kubernetes.__version__


def test_netlab_apply_get_describe_delete(cluster_lab, tmp_path):
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD.replace("NAME", "nl-pod"))
    lab = ("--lab", cluster_lab.name)
    assert netlab_cli("apply", *lab, "-f", str(manifest)).stdout.strip() == "pod/nl-pod created"
    assert netlab_cli("apply", *lab, "-f", str(manifest)).stdout.strip() == "pod/nl-pod unchanged"
    got = netlab_cli("get", *lab, "pod", "nl-pod", "-o", "json")
    assert json.loads(got.stdout)["spec"]["containers"][0]["env"][0]["value"] == "hello"
    assert "Name:         nl-pod" in netlab_cli("describe", *lab, "pod", "nl-pod").stdout
    out = netlab_cli("delete", *lab, "pod", "nl-pod")
    assert out.returncode == 0 and 'pod "nl-pod" deleted' in out.stdout
    missing = netlab_cli("get", *lab, "pod", "nl-pod")
    assert missing.returncode == 1 and "not found" in missing.stderr
    unknown = netlab_cli("get", *lab, "gizmos")
    assert unknown.returncode == 2 and "doesn't have a resource type" in unknown.stderr


def test_acknowledged_writes_survive_kill_9_of_the_api_server(cluster_lab, client):
    before = read_json(components_path(cluster_lab.name))["apiserver"]
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        with SyncClient(lab_client(cluster_lab.name, timeout=5)) as c:
            i = 0
            while not stop.is_set():
                name = f"durable-{i}"
                try:
                    c.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": name}})
                    acknowledged.append(name)
                except Exception:  # the server is down: not acknowledged, keep going
                    pass
                i += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    wait_for(lambda: len(acknowledged) >= 20, 30, what="20 acknowledged writes")
    os.kill(before["pid"], signal.SIGKILL)
    wait_for(lambda: (read_json(components_path(cluster_lab.name)) or {}).get("apiserver", {})
             .get("restarts", 0) > before["restarts"], 30, what="the supervisor to restart it")
    wait_for(lambda: client.readyz(), 30, what="the restarted API server to be ready")
    stop.set()
    thread.join(timeout=30)
    names = {n["metadata"]["name"] for n in client.list("namespaces")["items"]}
    lost = [n for n in acknowledged if n not in names]
    assert not lost, f"acknowledged writes lost after kill -9: {lost[:5]}"


def test_down_stops_every_process_and_removes_the_store(make_lab):
    lab = make_lab(workers=1, external=False, control_plane=True)
    table = read_json(components_path(lab.name))
    pids = [table["apiserver"]["pid"]]
    state = read_json(lab_dir(lab.name) / "state.json")
    pids.append(state["processes"]["supervisor"]["pid"])
    assert data_dir(lab.name).exists()
    from netlab.lab import lifecycle

    lifecycle.down(lab.name)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in pids)
    assert not data_dir(lab.name).exists() and not lab_dir(lab.name).exists()


def test_down_after_kill_9_of_the_supervisor(make_lab):
    lab = make_lab(workers=1, external=False, control_plane=True)
    state = read_json(lab_dir(lab.name) / "state.json")
    apiserver = read_json(components_path(lab.name))["apiserver"]["pid"]
    os.kill(state["processes"]["supervisor"]["pid"], signal.SIGKILL)
    from netlab.lab import lifecycle

    assert lifecycle.down(lab.name).found
    wait_for(lambda: not psutil.pid_exists(apiserver)
             or psutil.Process(apiserver).status() == psutil.STATUS_ZOMBIE, 10,
             what="the orphaned API server to be stopped")
    assert netns.pids_in_netns(lab.plan.namespaces) == {}


def test_up_applies_the_topologys_workloads(make_lab, tmp_path):
    from labkit import topology, unique_lab

    (tmp_path / "web.yaml").write_text(DEPLOYMENT + "---\n" + textwrap.dedent("""\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          type: NodePort
          selector: {app: web}
          ports: [{port: 80, targetPort: 8080}]
        """))
    data = topology(unique_lab(), workers=1, external=False)
    data["workloads"] = ["web.yaml", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": "inline-ns"}}]
    lab = make_lab(data, control_plane=True)
    with SyncClient(lab_client(lab.name)) as c:
        assert c.get("deployments.apps", "web", "default")["spec"]["replicas"] == 2
        svc = c.get("services", "web", "default")
        assert svc["spec"]["clusterIP"].startswith("10.96.")
        assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
        assert c.get("namespaces", "inline-ns")["status"]["phase"] == "Active"


def test_a_workload_the_api_rejects_fails_up_and_leaves_nothing(tmp_path):
    from labkit import lab_namespaces, topology, unique_lab, write_topology

    from netlab.lab import lifecycle

    data = topology(unique_lab(), workers=1, external=False)
    data["workloads"] = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"},
                          "spec": {"containers": [{"name": "c", "image": "netlab/echo"}]}}]
    path = write_topology(tmp_path, data)
    try:
        with pytest.raises(lifecycle.LabUpError, match="applying the workloads") as err:
            lifecycle.up(path)
        assert "Bad_Name" in str(err.value) and "workloads[0]" in str(err.value)
        assert lab_namespaces(f"{data['name']}-") == []
        assert not lab_dir(data["name"]).exists() and not data_dir(data["name"]).exists()
    finally:
        lifecycle.down(data["name"])
