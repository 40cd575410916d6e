"""``kubectl top``, the proxy subresources and the kubelets' certificates in a real lab,
as a user sees them: kubectl 1.27, 1.30 and 1.33 print node and pod usage (with
``--containers``, ``-A``, ``-l``) from ``metrics.k8s.io``, whose APIService is
Available; ``kubectl get --raw`` and ``kubectl proxy`` reach an echo pod through
``pods/proxy`` and ``services/proxy`` (the echo answers with the path and method it
saw); a Service without endpoints is upstream's 503; each kubelet's serving
certificate verifies against the lab CA for the node's address; ``kubectl logs`` still
works through the verified connection. One lab for the module."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import psutil
import pytest
from labkit import KUBECTL, kubectl, kubectl_version, wait_for

from netlab.lab.pki import pki_paths
from netlab.lab.state import lab_dir

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

NS = "nlt-metrics"
MANIFESTS = f"""
apiVersion: v1
kind: Pod
metadata: {{name: echo, namespace: {NS}, labels: {{app: echo}}}}
spec:
  containers:
  - name: echo
    image: netlab/echo
    ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  selector: {{app: echo}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: empty, namespace: {NS}}}
spec:
  selector: {{app: nothing}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: done, namespace: {NS}}}
spec:
  restartPolicy: Never
  containers:
  - name: done
    image: busybox
    command: ["true"]
"""


# Two containers, one held to 100m while it spins, one asleep: each has its own usage.
DUO_NS = "nlt-metrics-duo"
DUO = f"""
apiVersion: v1
kind: Pod
metadata: {{name: duo, namespace: {DUO_NS}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: spin
    image: busybox
    command: [sh, -c, "while :; do :; done"]
    resources: {{limits: {{cpu: 100m}}}}
  - name: idle
    image: busybox
    command: [sleep, "3600"]
"""


@pytest.fixture(scope="module")
def workload(kubeconfig: Path):
    for ns in (NS, DUO_NS):
        out = kubectl(kubeconfig, "create", "namespace", ns)
        assert out.returncode == 0, out.stderr
    try:
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=MANIFESTS + "---" + DUO)
        assert out.returncode == 0, out.stderr
        for ns, pod in ((NS, "echo"), (DUO_NS, "duo")):
            out = kubectl(kubeconfig, "-n", ns, "wait", "--for=condition=Ready", f"pod/{pod}",
                          "--timeout=150s")
            assert out.returncode == 0, out.stderr
        yield NS
    finally:
        for ns in (NS, DUO_NS):
            kubectl(kubeconfig, "delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_metrics_apiservice_is_available(kubeconfig):
    out = kubectl(kubeconfig, "get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json")
    assert out.returncode == 0, out.stderr
    conditions = json.loads(out.stdout)["status"]["conditions"]
    assert {"type": "Available", "status": "True"}.items() <= conditions[0].items()
    out = kubectl(kubeconfig, "api-resources", "--api-group=metrics.k8s.io")
    assert out.returncode == 0, out.stderr
    assert {r[0] for r in _rows(out.stdout)[1:]} == {"nodes", "pods"}


@pytest.mark.parametrize("version", ["27", "30", "33"])
def test_kubectl_top_nodes(kubeconfig, workload, version):
    def top() -> subprocess.CompletedProcess | None:
        out = kubectl_version(kubeconfig, "top", "nodes", version=version)
        return out if out.returncode == 0 else None
    out = wait_for(top, 120, interval=1, what="kubectl top nodes")  # the first measurement
    rows = _rows(out.stdout)
    # (kubectl 1.27 heads the percentages CPU% and MEMORY%, later ones CPU(%), MEMORY(%))
    assert [rows[0][i] for i in (0, 1, 3)] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert {r[0] for r in rows[1:]} == {"control-plane", "worker1", "worker2"}
    for row in rows[1:]:
        assert re.fullmatch(r"\d+m", row[1]) and re.fullmatch(r"\d+Mi", row[3]), row
        assert row[2].endswith("%") and row[4].endswith("%"), row


@pytest.mark.parametrize("version", ["27", "30", "33"])
def test_kubectl_top_pods(kubeconfig, workload, version):
    def top() -> subprocess.CompletedProcess | None:
        out = kubectl_version(kubeconfig, "-n", NS, "top", "pods", "--containers", version=version)
        return out if out.returncode == 0 and "echo" in out.stdout else None
    out = wait_for(top, 120, interval=1, what="kubectl top pods --containers")
    rows = _rows(out.stdout)
    assert rows[0] == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert [r[:2] for r in rows[1:]] == [["echo", "echo"]]
    assert re.fullmatch(r"\d+m", rows[1][2]) and re.fullmatch(r"\d+Mi", rows[1][3])
    every = kubectl_version(kubeconfig, "top", "pods", "-A", version=version)
    assert every.returncode == 0, every.stderr
    assert [NS, "echo"] in [r[:2] for r in _rows(every.stdout)]
    labelled = kubectl_version(kubeconfig, "-n", NS, "top", "pods", "-l", "app=nothing",
                    version=version)
    assert "echo" not in labelled.stdout
    missing = kubectl_version(kubeconfig, "-n", NS, "top", "pod", "nope", version=version)
    assert missing.returncode != 0
    assert 'pods "nope" not found' in missing.stderr


def test_kubectl_top_leaves_out_a_pod_whose_containers_have_all_exited(kubeconfig, workload):
    # As with metrics-server: a Succeeded pod has no running container, so no metrics.
    out = kubectl(kubeconfig, "-n", NS, "wait", "--for=jsonpath={.status.phase}=Succeeded",
                  "pod/done", "--timeout=120s")
    assert out.returncode == 0, out.stderr

    def top() -> str | None:
        out = kubectl(kubeconfig, "-n", NS, "top", "pods")
        listed = {r[0] for r in _rows(out.stdout)[1:]} if out.returncode == 0 else set()
        return out.stdout if "echo" in listed and "done" not in listed else None
    wait_for(top, 60, interval=1, what="kubectl top pods without the completed pod")
    single = kubectl(kubeconfig, "-n", NS, "top", "pod", "done")
    assert single.returncode != 0
    assert f'podmetrics.metrics.k8s.io "{NS}/done" not found' in single.stderr, single.stderr


def test_kubectl_top_shows_each_containers_own_usage(kubeconfig, workload):
    def top() -> dict[str, int] | None:
        out = kubectl(kubeconfig, "-n", DUO_NS, "top", "pod", "duo", "--containers")
        rows = _rows(out.stdout)[1:] if out.returncode == 0 else []
        found = {r[1]: int(r[2].rstrip("m")) for r in rows if r[0] == "duo"}
        return found if set(found) == {"spin", "idle"} else None
    cpu = wait_for(top, 120, interval=1, what="kubectl top pod duo --containers")
    assert cpu["spin"] > cpu["idle"] and cpu["spin"] <= 150, cpu


def _raw(kubeconfig: Path, path: str) -> dict:
    out = kubectl(kubeconfig, "get", "--raw", path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_get_raw_through_pods_proxy(kubeconfig, workload):
    base = f"/api/v1/namespaces/{NS}/pods"
    seen = _raw(kubeconfig, f"{base}/echo:8080/proxy/hello/there?x=1&y=2")
    assert (seen["pod"], seen["method"], seen["path"]) == ("echo", "GET",
                                                           "/hello/there?x=1&y=2")
    # No port: the first declared container port; a named port; the http: scheme.
    assert _raw(kubeconfig, f"{base}/echo/proxy/a")["path"] == "/a"
    assert _raw(kubeconfig, f"{base}/echo:http/proxy/b")["path"] == "/b"
    assert _raw(kubeconfig, f"{base}/http:echo:8080/proxy/")["path"] == "/"
    out = kubectl(kubeconfig, "create", "--raw", f"{base}/echo:8080/proxy/post", "-f", "-",
                  stdin='{"hello": 1}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["method"] == "POST"
    out = kubectl(kubeconfig, "get", "--raw", f"{base}/nope:8080/proxy/")
    assert out.returncode != 0 and 'pods "nope" not found' in out.stderr


def test_get_raw_through_services_proxy(kubeconfig, workload):
    base = f"/api/v1/namespaces/{NS}/services"

    def answered() -> dict | None:  # the EndpointSlice follows the pod's readiness
        out = kubectl(kubeconfig, "get", "--raw", f"{base}/web:80/proxy/")
        return json.loads(out.stdout) if out.returncode == 0 else None
    seen = wait_for(answered, 60, interval=0.5, what="services/proxy to answer")
    assert (seen["pod"], seen["path"]) == ("echo", "/")
    assert _raw(kubeconfig, f"{base}/web:http/proxy/q?z=9")["path"] == "/q?z=9"
    assert _raw(kubeconfig, f"{base}/http:web:http/proxy/s")["path"] == "/s"


def test_service_without_endpoints_is_503(kubeconfig, workload):
    out = kubectl(kubeconfig, "get", "--raw",
                  f"/api/v1/namespaces/{NS}/services/empty:80/proxy/")
    assert out.returncode != 0
    assert 'Error from server (ServiceUnavailable): no endpoints available for service ' \
           '"empty"' in out.stderr


def test_kubectl_proxy_reaches_the_service(kubeconfig, workload):
    proc = subprocess.Popen([str(KUBECTL), "--kubeconfig", str(kubeconfig), "proxy",
                             "--port=0", "--address=127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/api/v1/namespaces/{NS}/services/web:80/proxy/via"
        with urllib.request.urlopen(url, timeout=30) as resp:
            seen = json.loads(resp.read())
        assert (seen["pod"], seen["path"]) == ("echo", "/via")
    finally:
        if psutil.pid_exists(proc.pid) and psutil.Process(proc.pid).name().startswith("kubectl"):
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def test_kubelet_certificates_verify_against_the_lab_ca(cluster_lab, workload):
    ca = pki_paths(lab_dir(cluster_lab.name)).ca_cert
    check = textwrap.dedent("""
        import socket, ssl, sys
        context = ssl.create_default_context(cafile=sys.argv[1])
        with socket.create_connection((sys.argv[2], 10250), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=sys.argv[2]) as tls:
                subject = dict(x[0] for x in tls.getpeercert()["subject"])
                print(subject["commonName"], subject["organizationName"])
    """)
    for node in ("control-plane", "worker1", "worker2"):
        address = str(cluster_lab.plan.node(node).underlay.ip)
        # From the control plane's namespace, where the API server dials kubelets.
        out = subprocess.run(["ip", "netns", "exec", cluster_lab.ns("control-plane"),
                              sys.executable, "-c", check, str(ca), address],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [f"system:node:{node}", "system:nodes"]


def test_kubectl_logs_still_work(kubeconfig, workload):
    _raw(kubeconfig, f"/api/v1/namespaces/{NS}/pods/echo:8080/proxy/logged")
    out = kubectl(kubeconfig, "-n", NS, "logs", "echo")
    assert out.returncode == 0, out.stderr
    assert re.search(r"http \S+ GET /logged 200", out.stdout), out.stdout
