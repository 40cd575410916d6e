"""The real kubectl (1.27-1.33, /usr/bin/kubectl) against the API server, default flags.

The server runs in a thread on 127.0.0.1 with TLS and a bearer token (kubectl
sends tokens only over TLS) and a SQLite store; kubectl gets a kubeconfig and
a cache directory under tmp_path. /usr/bin/kubectl picks the client release
that matches the server's version, so the version matrix below exercises each
minor release netlab claims to support by changing the reported gitVersion.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from apiserver_kit import ThreadedServer, make_certificate

from netlab.master.store import SQLiteStore

KUBECTL = "/usr/bin/kubectl"
pytestmark = pytest.mark.skipif(not os.path.exists(KUBECTL) or shutil.which("openssl") is None,
                                reason="needs /usr/bin/kubectl and openssl")

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env:
        - {name: GREETING, value: hello}
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {role: solo}
spec:
  containers:
  - name: main
    image: busybox
"""


class Kubectl:
    def __init__(self, kubeconfig: str, home: Path) -> None:
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                    "KUBECONFIG": kubeconfig, "KUBECACHEDIR": str(home / "cache"),
                    "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}

    def run(self, *args: str, check: bool = True, stdin: str = "") -> subprocess.CompletedProcess:
        proc = subprocess.run([KUBECTL, *args], env=self.env, input=stdin, text=True,
                              capture_output=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    def out(self, *args: str, **kw: Any) -> str:
        return self.run(*args, **kw).stdout

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([KUBECTL, *args], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("kubectl")
    cert = make_certificate(tmp)
    assert cert is not None
    store = SQLiteStore(tmp / "store.db")
    server = ThreadedServer(store, *cert).start()
    kubectl = Kubectl(server.kubeconfig(tmp / "kubeconfig"), tmp)
    (tmp / "app.yaml").write_text(MANIFEST)
    (tmp / "pod.yaml").write_text(POD)
    try:
        yield server, kubectl, tmp
    finally:
        server.stop()
        store.close()


def test_version_and_api_resources(cluster):
    _, kubectl, _ = cluster
    version = json.loads(kubectl.out("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == "v1.31.0-netlab"
    assert version["clientVersion"]["minor"] == "31"
    resources = kubectl.out("api-resources")
    for line in ("deployments ", "horizontalpodautoscalers", "leases", "namespaces"):
        assert line in resources
    assert "deploy" in resources and "apps/v1" in resources


def test_create_get_describe_delete(cluster):
    _, kubectl, tmp = cluster
    out = kubectl.out("create", "-f", str(tmp / "pod.yaml"))
    assert out.strip() == "pod/solo created"
    lines = kubectl.out("get", "pods", "-A").splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["default", "solo", "0/1", "Pending"]
    wide = kubectl.out("get", "pods", "-o", "wide")
    assert "NOMINATED NODE" in wide and "solo" in wide
    assert kubectl.out("get", "pods", "-l", "role=solo", "-o", "name").strip() == "pod/solo"
    assert "No resources found" in kubectl.run("get", "pods", "-l", "role=none").stderr
    text = kubectl.out("get", "pod", "solo", "-o", "yaml")
    assert "name: solo" in text and "dnsPolicy: ClusterFirst" in text
    described = kubectl.out("describe", "pod", "solo")
    assert "Name:" in described and "role=solo" in described and "Events:" in described
    err = kubectl.run("create", "-f", str(tmp / "pod.yaml"), check=False)
    assert err.returncode != 0 and 'pods "solo" already exists' in err.stderr
    out = kubectl.out("delete", "pod", "solo")
    assert out.strip() == 'pod "solo" deleted'
    assert kubectl.run("get", "pod", "solo", check=False).returncode != 0


def test_apply_twice_then_edit_env(cluster):
    _, kubectl, tmp = cluster
    manifest = tmp / "app.yaml"
    out = kubectl.out("apply", "-f", str(manifest))
    assert "deployment.apps/web created" in out and "service/web created" in out
    out = kubectl.out("apply", "-f", str(manifest))
    assert out.split("\n")[:2] == ["deployment.apps/web unchanged", "service/web unchanged"]
    edited = tmp / "app-edited.yaml"
    edited.write_text(MANIFEST.replace(
        "        - {name: GREETING, value: hello}\n",
        "        - {name: GREETING, value: hello}\n        - {name: EXTRA, value: more}\n"))
    out = kubectl.out("apply", "-f", str(edited))
    assert "deployment.apps/web configured" in out and "service/web unchanged" in out
    env = json.loads(kubectl.out("get", "deployment", "web", "-o",
                                 "jsonpath={.spec.template.spec.containers[0].env}"))
    assert env == [{"name": "GREETING", "value": "hello"}, {"name": "EXTRA", "value": "more"}]
    assert "unchanged" in kubectl.out("apply", "-f", str(edited))
    # Removing it again through apply works too (three-way merge against last-applied).
    assert "configured" in kubectl.out("apply", "-f", str(manifest))
    env = json.loads(kubectl.out("get", "deployment", "web", "-o",
                                 "jsonpath={.spec.template.spec.containers[0].env}"))
    assert env == [{"name": "GREETING", "value": "hello"}]


def test_scale_and_describe_deployment(cluster):
    _, kubectl, tmp = cluster
    kubectl.run("apply", "-f", str(tmp / "app.yaml"))
    assert kubectl.out("scale", "deployment", "web", "--replicas=3").strip() == \
        "deployment.apps/web scaled"
    assert kubectl.out("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}") == "3"
    described = kubectl.out("describe", "deployment", "web")
    assert "Replicas:" in described and "3 desired" in described
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in described
    svc = kubectl.out("get", "svc", "web", "-o", "wide").splitlines()[1].split()
    assert svc[:2] == ["web", "ClusterIP"] and svc[2].startswith("10.96.")


def test_server_side_validation_errors(cluster):
    _, kubectl, tmp = cluster
    typo = tmp / "typo.yaml"
    typo.write_text(POD.replace("name: solo", "name: typo").replace("image: busybox",
                                                                      "imagee: busybox"))
    proc = kubectl.run("create", "-f", str(typo), check=False)
    assert proc.returncode != 0
    assert 'strict decoding error: unknown field "spec.containers[0].imagee"' in proc.stderr
    bad = tmp / "bad.yaml"
    bad.write_text(POD.replace("name: solo", "name: Bad"))
    proc = kubectl.run("apply", "-f", str(bad), check=False)
    assert proc.returncode != 0
    assert 'The Pod "Bad" is invalid: metadata.name: Invalid value: "Bad"' in proc.stderr


def test_get_watch_sees_create_from_another_client(cluster):
    _, kubectl, tmp = cluster
    kubectl.run("create", "-f", str(tmp / "pod.yaml"))
    watcher = kubectl.popen("get", "pods", "-w", "--output-watch-events")
    try:
        assert watcher.stdout is not None
        header = watcher.stdout.readline()
        assert header.split()[:2] == ["EVENT", "NAME"]
        assert watcher.stdout.readline().split()[:2] == ["ADDED", "solo"]
        other = tmp / "other.yaml"
        other.write_text(POD.replace("name: solo", "name: watched"))
        kubectl.run("create", "-f", str(other))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = watcher.stdout.readline()
            if line.split()[:2] == ["ADDED", "watched"]:
                break
        else:
            raise AssertionError("kubectl get -w did not show the new pod")
    finally:
        watcher.kill()
        watcher.communicate()
    kubectl.run("delete", "pod", "solo", "watched")


def test_namespaces_lifecycle(cluster):
    _, kubectl, tmp = cluster
    kubectl.run("create", "namespace", "scratch")
    kubectl.run("-n", "scratch", "create", "-f", str(tmp / "pod.yaml"))
    assert kubectl.out("delete", "namespace", "scratch").strip() == 'namespace "scratch" deleted'
    assert kubectl.run("get", "namespace", "scratch", check=False).returncode != 0


@pytest.mark.parametrize("minor", [27, 28, 29, 30, 32, 33])
def test_each_kubectl_release(cluster, minor):
    server, shared, tmp = cluster
    server.config.git_version = f"v1.{minor}.0-netlab"
    # A cache of its own: kubectl's dispatcher remembers the server version it saw.
    kubectl = Kubectl(shared.env["KUBECONFIG"], tmp / f"home{minor}")
    try:
        version = json.loads(kubectl.out("version", "-o", "json"))
        assert version["clientVersion"]["minor"].rstrip("+") == str(minor)
        name = f"rel{minor}"
        manifest = tmp / f"{name}.yaml"
        manifest.write_text(MANIFEST.replace("name: web\n", f"name: {name}\n"))
        assert f"deployment.apps/{name} created" in kubectl.out("apply", "-f", str(manifest))
        assert f"deployment.apps/{name} unchanged" in kubectl.out("apply", "-f", str(manifest))
        table = kubectl.out("get", "deployments", name)
        assert table.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE",
                                                "AGE"]
        kubectl.run("delete", "-f", str(manifest))
    finally:
        server.config.git_version = "v1.31.0-netlab"


def test_create_token(cluster):
    _, kubectl, _ = cluster
    kubectl.run("create", "serviceaccount", "tokens-robot")
    token = kubectl.out("create", "token", "tokens-robot", "--duration=15m").strip()
    assert token.count(".") == 2
    proc = kubectl.run("create", "token", "tokens-robot", "--bound-object-kind=Pod",
                       "--bound-object-name=solo-not-there", check=False)
    assert proc.returncode != 0 and 'pods "solo-not-there" not found' in proc.stderr
