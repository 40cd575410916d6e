"""``kubectl port-forward`` and the official Python client's ``portforward``, end to end.

One cluster lab runs a pod of two ``netlab/echo`` containers (HTTP on 8080 and
8081) behind a Service. kubectl 1.27 and 1.30 speak SPDY/3.1 after a plain HTTP
upgrade; kubectl 1.33 (and 1.30 with KUBECTL_PORT_FORWARD_WEBSOCKETS=true) tunnels
SPDY inside a WebSocket (``SPDY/3.1+portforward.k8s.io``); the Python client speaks
``v4.channel.k8s.io``.
What a user sees is checked: HTTP answers through the forwarded local ports, to
``pod/`` and ``svc/``, several ports in one command, kubectl's error for a port
nothing listens on while the other port keeps working, a server bound only to the
pod's 127.0.0.1 (the kubelet dials localhost inside the pod's network namespace, as
CRI runtimes do), and that kill -9 of kubectl leaves no fd behind in the API server
or the kubelet.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from labkit import KUBECTL, apply_ready, kubectl, settled_fds, wait_for

from netlab.lab.state import components_path, read_json

BIN = "/usr/lib/google-cloud-sdk/bin/kubectl.1.{}"
# "30+ws": kubectl 1.30 with its alpha SPDY-over-WebSocket tunnel turned on (from 1.31 on
# by default).
VERSIONS = ("27", "30", "30+ws", "33")
POD = "web"

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

POD_YAML = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {POD}, labels: {{app: pf}}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: echo
    image: netlab/echo
    ports: [{{name: web, containerPort: 8080}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
  - name: echo2
    image: netlab/echo
    env: [{{name: PORT, value: "8081"}}]
    readinessProbe: {{tcpSocket: {{port: 8081}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: pf}}
spec:
  selector: {{app: pf}}
  ports: [{{name: http, port: 80, targetPort: web}}]
"""


@pytest.fixture(scope="module")
def pod(cluster_lab, kubeconfig: Path) -> Iterator[Path]:
    """The running echo pod and its Service; yields the kubeconfig."""
    try:
        apply_ready(kubeconfig, POD_YAML, POD)
        yield kubeconfig
    finally:
        kubectl(kubeconfig, "delete", "pod", POD, "--wait=false")
        kubectl(kubeconfig, "delete", "service", "pf")


LOOPBACK_POD = "loopback"
LOOPBACK_YAML = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {LOOPBACK_POD}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: httpd
    image: busybox
    command: [sh, -c, 'mkdir /www && echo loopback only > /www/index.html &&
              exec httpd -f -p 127.0.0.1:8090 -h /www']
    readinessProbe:
      exec: {{command: [wget, -qO, /dev/null, "http://127.0.0.1:8090/"]}}
      periodSeconds: 1
"""


@pytest.fixture(scope="module")
def loopback_pod(pod: Path) -> Iterator[Path]:
    """A pod whose HTTP server listens on its 127.0.0.1 only; yields the kubeconfig."""
    try:
        apply_ready(pod, LOOPBACK_YAML, LOOPBACK_POD)
        yield pod
    finally:
        kubectl(pod, "delete", "pod", LOOPBACK_POD, "--wait=false")


def _binary(version: str) -> str:
    binary = BIN.format(version.split("+")[0])
    if not os.path.exists(binary):
        pytest.skip(f"{binary} is missing on this host")
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _port_forward(kubeconfig: Path, version: str, target: str, *remote: int
                  ) -> Iterator[tuple[subprocess.Popen, list[int]]]:
    """kubectl port-forward ``target`` from free local ports on 127.0.0.1 to ``remote``;
    yields the process and the local ports once kubectl listens on all of them."""
    local = [_free_port() for _ in remote]
    proc = subprocess.Popen(
        [_binary(version), "--kubeconfig", str(kubeconfig), "port-forward",
         "--address", "127.0.0.1", target, *(f"{lp}:{rp}" for lp, rp in zip(local, remote))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "KUBECTL_PORT_FORWARD_WEBSOCKETS": str(
            not version.startswith("30") or version.endswith("+ws")).lower()})
    try:
        assert proc.stdout is not None
        seen = b""
        while seen.count(b"Forwarding from") < len(remote):
            line = proc.stdout.readline()
            assert line, f"kubectl ended: {proc.stderr.read() if proc.stderr else b''!r}"
            seen += line
        yield proc, local
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _get(port: int, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _answer(port: int) -> dict:
    status, body = _get(port, "/via-port-forward")
    assert status == 200, body
    return json.loads(body)


@pytest.mark.parametrize("version", VERSIONS)
def test_port_forward_to_a_pod(pod, version):
    with _port_forward(pod, version, f"pod/{POD}", 8080) as (_, (local,)):
        for _ in range(3):  # each request is a new forwarded connection
            answer = _answer(local)
            assert answer["pod"] == POD and answer["path"] == "/via-port-forward"
        assert _get(local, "/hostname") == (200, POD.encode())


@pytest.mark.parametrize("version", ("27", "33"))
def test_a_server_on_the_pods_loopback_only_is_reachable(loopback_pod, version):
    with _port_forward(loopback_pod, version, f"pod/{LOOPBACK_POD}", 8090) as (_, (local,)):
        assert _get(local) == (200, b"loopback only\n")


@pytest.mark.parametrize("version", VERSIONS)
def test_port_forward_to_a_service(pod, version):
    with _port_forward(pod, version, "svc/pf", 80) as (_, (local,)):
        assert _answer(local)["pod"] == POD


@pytest.mark.parametrize("version", ("27", "33"))
def test_several_ports_in_one_command(pod, version):
    with _port_forward(pod, version, f"pod/{POD}", 8080, 8081) as (_, (first, second)):
        assert _answer(first)["pod"] == POD
        assert _answer(second)["pod"] == POD
        assert _answer(first)["pod"] == POD


@pytest.mark.parametrize("version", ("27", "33"))
def test_a_port_nothing_listens_on_gives_kubectls_error(pod, version):
    with _port_forward(pod, version, f"pod/{POD}", 8080, 9) as (proc, (good, bad)):
        assert _answer(good)["pod"] == POD
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            _get(bad)
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert b"an error occurred forwarding" in err, err
    assert b"error forwarding port 9 to pod web" in err, err
    assert b"connection refused" in err, err


def test_python_client_portforward_with_an_http_request(pod):
    from kubernetes import client, config
    from kubernetes.stream import portforward

    api = client.CoreV1Api(config.new_client_from_config(str(pod)))
    pf = portforward(api.connect_get_namespaced_pod_portforward, POD, "default",
                     ports="8080,8081")
    try:
        for port in (8080, 8081):
            sock = pf.socket(port)
            sock.settimeout(30)
            sock.sendall(b"GET /hostname HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
            seen = b""
            while b"\r\n\r\n" not in seen or not seen.endswith(POD.encode()):
                chunk = sock.recv(4096)
                assert chunk, seen
                seen += chunk
            assert seen.startswith(b"HTTP/1.1 200"), seen
            assert pf.error(port) is None
    finally:
        pf.close()


def _component(lab: str, name: str) -> psutil.Process:
    return psutil.Process((read_json(components_path(lab)) or {})[name]["pid"])


@pytest.mark.parametrize("version", ("27", "33"))
def test_kill_9_of_kubectl_leaves_no_fd_behind(cluster_lab, pod, version):
    node = kubectl(pod, "get", "pod", POD, "-o", "jsonpath={.spec.nodeName}").stdout
    servers = [_component(cluster_lab.name, "apiserver"),
               _component(cluster_lab.name, f"kubelet-{node}")]
    with _port_forward(pod, version, f"pod/{POD}", 8080) as (_, (local,)):
        assert _answer(local)["pod"] == POD  # warm both
    fds = settled_fds(servers)  # the warm-up's kubectl was just killed -9 too
    with _port_forward(pod, version, f"pod/{POD}", 8080) as (proc, (local,)):
        held = socket.create_connection(("127.0.0.1", local), timeout=30)
        try:
            held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: stays open
            assert held.recv(4096).startswith(b"HTTP/1.1 200")
            proc.kill()
            proc.wait()
        finally:
            held.close()
    wait_for(lambda: all(p.num_fds() <= n for p, n in zip(servers, fds)), 30,
             interval=0.1, what=f"the servers' fds to be back at {fds}")
