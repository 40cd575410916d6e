"""The kubelet in a real lab (the demo topology with its control plane), seen the way a
user sees it: kubectl, netlab's CLI, packets between pods, processes and kernel state.

One lab serves the whole module. Every pod a test makes is force-deleted in
``finally``; the tests that break things (kill -9 of a kubelet, deleting a
Node) come last and heal what they break. Waits are probes with deadlines.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from typing import Any, Callable

import psutil
import pytest
import yaml
from labkit import KUBECTL, kubectl, netlab_cli, wait_for, write_kubeconfig

from netlab.client import APIError, SyncClient, lab_client
from netlab.kernel import netns
from netlab.kernel.overlay import read_overlay
from netlab.lab.state import components_path, lab_dir, read_json
from netlab.node.runtime.paths import ipam_dir

needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")
PY = sys.executable  # a host program every container can run
ECHO = "netlab/echo"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.39"


def _cli_module() -> str:
    from netlab.cli.main import main

    # netlab's main command registers the pod commands; until then they run alone.
    return "netlab.cli.main" if "logs" in main.commands else "netlab.cli.pods"


def netlab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", _cli_module(), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def lab(cluster_lab):
    """The cluster lab once every Node is Ready."""
    with SyncClient(lab_client(cluster_lab.name)) as c:
        def all_ready() -> bool:
            nodes = c.list("nodes")["items"]
            return len(nodes) == 3 and all(_node_ready(n) for n in nodes)
        wait_for(all_ready, 60, interval=0.1, what="three Ready nodes")
    return cluster_lab


@pytest.fixture
def client(lab):
    with SyncClient(lab_client(lab.name)) as c:
        yield c


@pytest.fixture(scope="module")
def kubeconfig(lab, tmp_path_factory):
    return write_kubeconfig(lab.name, tmp_path_factory.mktemp("kube"))


class Pods:
    """Creates pods bound to a node (no scheduler yet: spec.nodeName set here)."""

    def __init__(self, client: SyncClient) -> None:
        self.client = client
        self.names: list[str] = []

    def create(self, name: str, node: str, containers: list[dict[str, Any]],
               **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": node, "containers": containers, **spec}}
        self.names.append(name)
        return self.client.create(body, namespace="default")

    def get(self, name: str) -> dict[str, Any]:
        return self.client.get("pods", name, "default")

    def wait(self, name: str, predicate: Callable[[dict[str, Any]], Any], timeout: float = 30,
             what: str = "") -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            try:
                pod = self.get(name)
            except APIError:
                return False
            found[:] = [pod]
            return bool(predicate(pod))
        try:
            wait_for(check, timeout, interval=0.05, what=what or f"pod {name}")
        except AssertionError:
            raise AssertionError(f"{what or name}: last seen "
                                 f"{json.dumps((found or [{}])[0].get('status'))}") from None
        return found[0]

    def running(self, name: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait(name, lambda p: p["status"].get("phase") == "Running" and
                         _condition(p, "Ready"), timeout, f"pod {name} Running and Ready")

    def delete_all(self) -> None:
        for name in self.names:
            with contextlib.suppress(APIError, OSError):
                self.client.delete("pods", name, "default", grace_period=0)


@pytest.fixture
def pods(client):
    made = Pods(client)
    try:
        yield made
    finally:
        made.delete_all()


def _node_ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in node.get("status", {}).get("conditions", []))


def _condition(pod: dict[str, Any], kind: str) -> bool:
    return any(c["type"] == kind and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


def _cs(pod: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return (pod["status"].get("containerStatuses") or [{}])[index]


def gone(client: SyncClient, name: str) -> bool:
    try:
        client.get("pods", name, "default")
    except APIError as err:
        return err.not_found
    return False


def pod_exec(lab_name: str, pod: str, *argv: str) -> subprocess.CompletedProcess:
    return netlab("exec", "--lab", lab_name, pod, "--", *argv)


def events_of(client: SyncClient, name: str) -> list[dict[str, Any]]:
    return [e for e in client.list("events", "default")["items"]
            if e["involvedObject"].get("name") == name]


def _py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


# --- nodes ------------------------------------------------------------------------------------


@needs_kubectl
def test_nodes_register_ready_with_roles_version_and_their_plan(lab, client, kubeconfig):
    out = kubectl(kubeconfig, "get", "nodes")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:]}
    assert set(rows) == {"control-plane", "worker1", "worker2"}
    assert rows["control-plane"][1:3] == ["Ready", "control-plane"]
    assert rows["worker1"][1:3] == ["Ready", "worker"]
    assert rows["worker2"][-1].startswith("v1.")
    for plan in lab.plan.nodes:
        if not plan.in_cluster:
            continue
        node = client.get("nodes", plan.name)
        assert node["spec"]["podCIDR"] == str(plan.pod_subnet)
        backend = json.loads(node["metadata"]["annotations"][
            "flannel.alpha.coreos.com/backend-data"])
        assert backend["VtepMAC"] == plan.vtep_mac
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == plan.name
        assert {"type": "InternalIP", "address": str(plan.underlay.ip)} in \
            node["status"]["addresses"]
    cp = client.get("nodes", "control-plane")
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in \
        cp["spec"]["taints"]
    w1 = client.get("nodes", "worker1")["status"]
    assert w1["capacity"]["cpu"] == "2" and w1["capacity"]["memory"] == "4194304Ki"
    assert w1["capacity"]["pods"] == "110" and w1["allocatable"]["cpu"] == "2"
    # The heartbeat: the Lease is renewed every few seconds.
    first = client.get("leases.coordination.k8s.io", "worker1", "kube-node-lease")
    assert first["spec"]["holderIdentity"] == "worker1"
    wait_for(lambda: client.get("leases.coordination.k8s.io", "worker1", "kube-node-lease")[
        "spec"]["renewTime"] != first["spec"]["renewTime"], 20, interval=0.2,
        what="the worker1 Lease to be renewed")


# --- pods and the network ------------------------------------------------------------------


def test_pods_reach_each_other_across_the_vxlan_by_tcp_and_udp(lab, client, pods):
    pods.create("echo-a", "worker1", [{"name": "echo", "image": ECHO}])
    pods.create("echo-b", "worker2", [{"name": "echo", "image": ECHO}])
    a, b = pods.running("echo-a"), pods.running("echo-b")
    ip_a, ip_b = a["status"]["podIP"], b["status"]["podIP"]
    # The path from worker1 to b's /24 is the overlay.
    route = subprocess.run(["ip", "netns", "exec", lab.ns("worker1"), "ip", "route", "get",
                            ip_b], capture_output=True, text=True, check=True).stdout
    assert "dev vxlan0" in route
    tcp = pod_exec(lab.name, "echo-a", *_py(f"""
        import socket
        s = socket.create_connection(("{ip_b}", 8080), timeout=5)
        s.sendall(b"over tcp\\n")
        print(s.makefile().readline().strip())"""))
    assert tcp.returncode == 0, tcp.stderr
    assert tcp.stdout.strip().startswith(f"pod=echo-b ip={ip_b} client={ip_a}:")
    assert tcp.stdout.strip().endswith("echo=over tcp")
    udp = pod_exec(lab.name, "echo-a", *_py(f"""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        for _ in range(5):  # UDP may lose the first datagram while ARP resolves
            s.sendto(b"over udp", ("{ip_b}", 8080))
            try:
                print(s.recv(1000).decode().strip()); break
            except socket.timeout:
                pass"""))
    assert udp.returncode == 0, udp.stderr
    assert udp.stdout.strip().startswith(f"pod=echo-b ip={ip_b} client={ip_a}:")


def test_pod_ips_are_unique_and_inside_their_nodes_subnet(lab, client, pods):
    for i in range(3):
        pods.create(f"ip-{i}", "worker1" if i % 2 == 0 else "worker2",
                    [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}],
                    terminationGracePeriodSeconds=0)
    seen = {}
    for i in range(3):
        pod = pods.running(f"ip-{i}")
        plan = lab.plan.node(pod["spec"]["nodeName"])
        ip = pod["status"]["podIP"]
        assert pod["status"]["podIPs"] == [{"ip": ip}]
        assert pod["status"]["hostIP"] == str(plan.underlay.ip)
        from ipaddress import ip_address
        assert ip_address(ip) in plan.pod_subnet and ip != str(plan.gateway.ip)
        seen[ip] = pod["metadata"]["name"]
    running = [p for p in client.list("pods", "default")["items"]
               if p["status"].get("podIP")]
    ips = [p["status"]["podIP"] for p in running]
    assert len(ips) == len(set(ips)), f"duplicate pod IPs: {ips}"


@needs_kubectl
def test_logs_exec_env_and_isolation(lab, client, pods, kubeconfig):
    pods.create("talker", "worker2", [{
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", "echo hello from $(POD_NAME) at $(MY_IP); i=0; "
                    "while :; do i=$((i+1)); echo tick $i; sleep 0.2; done"],
        "env": [{"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                {"name": "GREETING", "value": "hi-$(POD_NAMESPACE)"}]}],
                terminationGracePeriodSeconds=0)
    pod = pods.running("talker")
    ip = pod["status"]["podIP"]
    wait_for(lambda: "tick 2" in kubectl(kubeconfig, "logs", "talker").stdout, 20,
             interval=0.2, what="kubectl logs to show the ticks")
    out = kubectl(kubeconfig, "logs", "talker", "--tail=1")
    assert out.returncode == 0 and out.stdout.count("\n") == 1 and "tick" in out.stdout
    first = kubectl(kubeconfig, "logs", "talker").stdout.splitlines()[0]
    assert first == f"hello from talker at {ip}"
    mine = netlab("logs", "--lab", lab.name, "talker", "--tail", "2", "--timestamps")
    assert mine.returncode == 0, mine.stderr
    assert len(mine.stdout.splitlines()) == 2 and mine.stdout.startswith("20")
    # Follow: a stream that keeps going; read a few new lines and stop it.
    follow = subprocess.Popen([KUBECTL, "--kubeconfig", str(kubeconfig), "logs", "-f",
                               "--tail=0", "talker"], stdout=subprocess.PIPE, text=True)
    try:
        assert "tick" in follow.stdout.readline()
    finally:
        follow.kill()
        follow.wait()
    env = pod_exec(lab.name, "talker", "env")
    assert env.returncode == 0, env.stderr
    values = dict(line.split("=", 1) for line in env.stdout.splitlines() if "=" in line)
    assert values["POD_NAME"] == "talker" and values["POD_NAMESPACE"] == "default"
    assert values["POD_IP"] == ip and values["MY_IP"] == ip
    assert values["NODE_NAME"] == "worker2" and values["MY_NODE"] == "worker2"
    assert values["HOST_IP"] == str(lab.plan.node("worker2").underlay.ip)
    assert values["GREETING"] == "hi-default" and values["HOSTNAME"] == "talker"
    # Its own hostname, and only its own processes (PID 1 is the container's command).
    host = pod_exec(lab.name, "talker", "hostname")
    assert host.stdout.strip() == "talker"
    procs = pod_exec(lab.name, "talker", "sh", "-c", "cat /proc/[0-9]*/comm")
    names = procs.stdout.split()
    assert "sh" in names and not {"python3", "python"} & set(names), names
    assert pod_exec(lab.name, "talker", "cat", "/proc/1/cmdline").stdout.startswith("sh")
    # The kubelet's port wants the token.
    assert _kubelet_https(lab, "worker2", "/containerLogs/default/talker/main", None)[0] == 401
    code, body = _kubelet_https(lab, "worker2", "/containerLogs/default/talker/main",
                                (lab_dir(lab.name) / "token").read_text().strip())
    assert code == 200 and "tick" in body


def _kubelet_https(lab, node: str, path: str, token: str | None) -> tuple[int, str]:
    """A request to a kubelet's :10250 from the control-plane's namespace."""
    address = str(lab.plan.node(node).underlay.ip)
    raw = netns.run_in_netns(lab.ns("control-plane"),
                             lambda: socket.create_connection((address, 10250), timeout=5))
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    with context.wrap_socket(raw) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def test_agnhost_netexec_answers_its_hostname_to_another_pod(lab, client, pods):
    manifest = yaml.safe_load(textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata: {{name: netserver-0, labels: {{selector: netserver}}}}
        spec:
          nodeName: worker2
          containers:
          - name: webserver
            image: {AGNHOST}
            args: [netexec, --http-port=8083, --udp-port=8081]
            ports: [{{name: http, containerPort: 8083}}, {{name: udp, containerPort: 8081,
                     protocol: UDP}}]
            livenessProbe:
              httpGet: {{path: /healthz, port: 8083}}
              initialDelaySeconds: 1
              periodSeconds: 1
              failureThreshold: 5
            readinessProbe:
              httpGet: {{path: /healthz, port: http}}
              periodSeconds: 1
        """))
    pods.names.append("netserver-0")
    client.create(manifest, namespace="default")
    pods.create("netclient", "worker1", [{"name": "c", "image": AGNHOST, "args": ["pause"]}])
    server = pods.running("netserver-0")
    pods.running("netclient")
    ip = server["status"]["podIP"]
    out = pod_exec(lab.name, "netclient", *_py(f"""
        import urllib.request
        print(urllib.request.urlopen("http://{ip}:8083/hostname", timeout=5).read().decode())"""))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "netserver-0"
    assert _cs(pods.get("netserver-0"))["restartCount"] == 0  # the liveness probe passes


def test_an_unknown_image_waits_with_a_reason_listing_the_builtins(lab, client, pods):
    pods.create("nginx", "worker1", [{"name": "web", "image": "nginx:1.25"}])
    pod = pods.wait("nginx", lambda p: _cs(p).get("state", {}).get("waiting", {}).get(
        "reason") == "ErrImageNeverPull", what="ErrImageNeverPull")
    message = _cs(pod)["state"]["waiting"]["message"]
    assert "nginx:1.25" in message and ECHO in message and "agnhost" in message
    assert pod["status"]["phase"] == "Pending"
    wait_for(lambda: any(e["reason"] == "ErrImageNeverPull" and e["type"] == "Warning"
                         for e in events_of(client, "nginx")), 10, what="the event")


# --- restarts and probes ------------------------------------------------------------------


@needs_kubectl
def test_crash_loop_back_off_restart_counts_and_previous_logs(lab, client, pods, kubeconfig):
    pods.create("crasher", "worker1", [{"name": "c", "image": "busybox", "command": [
        "sh", "-c", "echo attempt; exit 3"]}])
    seen_backoff: list[bool] = []

    def looping(pod: dict[str, Any]) -> bool:
        cs = _cs(pod)
        if cs.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff":
            seen_backoff.append(True)
        return cs.get("restartCount", 0) >= 3 and bool(seen_backoff)

    pod = pods.wait("crasher", looping, 40, "restartCount >= 3 through CrashLoopBackOff")
    assert pod["status"]["phase"] == "Running"  # Always: a crash loop is still Running
    last = _cs(pod)["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"
    table = kubectl(kubeconfig, "get", "pod", "crasher").stdout
    assert "crasher" in table
    reasons = {e["reason"]: e for e in events_of(client, "crasher")}
    assert "BackOff" in reasons and reasons["BackOff"]["type"] == "Warning"
    assert reasons["BackOff"]["source"] == {"component": "kubelet", "host": "worker1"}
    assert reasons["Started"]["count"] >= 2  # aggregated, as Kubernetes does
    previous = kubectl(kubeconfig, "logs", "crasher", "--previous")
    assert previous.returncode == 0 and previous.stdout.strip() == "attempt", previous.stderr



@needs_kubectl
def test_kubectl_logs_follow_ends_with_its_attempt_and_the_log_options(lab, client, pods,
                                                                        kubeconfig):
    # Each attempt counts itself in an emptyDir, prints ten lines and exits, so the pod
    # restarts; a sidecar prints one line and stays.
    script = ("n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; "
              "echo attempt $n; i=0; while [ $i -lt 10 ]; do i=$((i+1)); echo line $i; "
              "sleep 0.2; done; exit 1")
    pods.create("phases", "worker1", [
        {"name": "main", "image": "busybox", "command": ["sh", "-c", script],
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        {"name": "side", "image": "busybox",
         "command": ["sh", "-c", "echo side ready; exec sleep 3600"]}],
        volumes=[{"name": "data", "emptyDir": {}}], terminationGracePeriodSeconds=0)
    assert kubectl(kubeconfig, "label", "pod", "phases", "app=phases").returncode == 0
    wait_for(lambda: "line 1" in kubectl(kubeconfig, "logs", "phases", "-c", "main").stdout,
             30, interval=0.1, what="the first attempt's output")
    # -f follows the attempt it found and ends when that attempt exits, as the kubelet
    # does, even though the container starts again.
    follow = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "logs", "-f",
                             "phases", "-c", "main"], capture_output=True, text=True,
                            timeout=60)
    lines = follow.stdout.splitlines()
    assert follow.returncode == 0, follow.stderr
    assert lines[0].startswith("attempt ") and lines[1:] == [f"line {i}" for i in
                                                             range(1, 11)], lines
    followed = int(lines[0].split()[1])
    pod = pods.wait("phases", lambda p: _cs(p)["restartCount"] >= followed, 60,
                    "the followed attempt to be counted as a restart")
    assert _cs(pod)["lastState"]["terminated"]["exitCode"] == 1
    wait_for(lambda: kubectl(kubeconfig, "logs", "phases", "-c", "main", "--previous")
             .stdout.startswith("attempt "), 30, interval=0.2, what="a previous attempt")
    # --timestamps prefixes each line with its RFC 3339 time; --since-time keeps the
    # lines at or after a time, which the API carries to the second.
    stamped = [line.split(" ", 1) for line in kubectl(
        kubeconfig, "logs", "phases", "-c", "main", "--previous", "--timestamps"
    ).stdout.splitlines()]
    assert [text for _, text in stamped[1:]] == [f"line {i}" for i in range(1, 11)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", when)
               for when, _ in stamped), stamped
    when = stamped[-1][0]
    since = kubectl(kubeconfig, "logs", "phases", "-c", "main", "--previous",
                    f"--since-time={when}").stdout.splitlines()
    assert since == [text for stamp, text in stamped if stamp[:19] >= when[:19]], since
    assert since[-1] == "line 10" and len(since) < len(stamped)
    assert kubectl(kubeconfig, "logs", "phases", "-c", "main", "--previous",
                   "--since=1h").stdout.splitlines()[1:] == [f"line {i}" for i in range(1, 11)]
    # Every container of the pod, and pods by label.
    both = kubectl(kubeconfig, "logs", "phases", "--all-containers", "--prefix").stdout
    assert "[pod/phases/side] side ready" in both
    assert "[pod/phases/main] " in both
    labelled = kubectl(kubeconfig, "logs", "-l", "app=phases", "-c", "side")
    assert labelled.returncode == 0 and labelled.stdout.strip() == "side ready", \
        labelled.stderr


def test_on_failure_and_never_semantics(lab, client, pods):
    pods.create("once-ok", "worker2", [{"name": "c", "image": "busybox", "command": [
        "sh", "-c", "exit 0"]}], restartPolicy="OnFailure")
    pods.create("retry", "worker2", [{"name": "c", "image": "busybox", "command": [
        "sh", "-c", "exit 1"]}], restartPolicy="OnFailure")
    pods.create("never", "worker2", [{"name": "c", "image": "busybox", "command": [
        "sh", "-c", "exit 4"]}], restartPolicy="Never")
    ok = pods.wait("once-ok", lambda p: p["status"].get("phase") == "Succeeded")
    assert _cs(ok)["restartCount"] == 0
    assert _cs(ok)["state"]["terminated"]["reason"] == "Completed"
    never = pods.wait("never", lambda p: p["status"].get("phase") == "Failed")
    assert _cs(never)["state"]["terminated"]["exitCode"] == 4
    retry = pods.wait("retry", lambda p: _cs(p).get("restartCount", 0) >= 2)
    assert retry["status"]["phase"] == "Running"
    # Finished pods stay finished: nothing restarts them later.
    assert _cs(pods.get("never"))["restartCount"] == 0
    assert _cs(pods.get("once-ok"))["restartCount"] == 0


def test_liveness_failure_restarts_and_readiness_failure_flips_ready(lab, client, pods):
    # The probe files live in the container's own /tmp (private to it), toggled from
    # outside with `netlab exec`, as a user would with kubectl exec.
    alive, ready = "/tmp/alive", "/tmp/ready"

    def in_pod(*argv: str) -> None:
        out = netlab_cli("exec", "probed", "--lab", lab.name, "--", *argv)
        assert out.returncode == 0, out.stderr

    pods.create("probed", "worker1", [{
        "name": "app", "image": "busybox",
        "command": ["sh", "-c", f"touch {alive}; exec sleep 3600"],
        "livenessProbe": {"exec": {"command": ["test", "-e", alive]}, "periodSeconds": 1,
                          "failureThreshold": 1, "terminationGracePeriodSeconds": 1},
        "readinessProbe": {"exec": {"command": ["test", "-e", ready]}, "periodSeconds": 1,
                           "failureThreshold": 1}}])
    pod = pods.wait("probed", lambda p: _cs(p).get("state", {}).get("running"),
                    what="running")
    assert not _condition(pod, "Ready") and not _cs(pod)["ready"]
    in_pod("touch", ready)
    pods.wait("probed", lambda p: _condition(p, "Ready"), 15, "Ready after the probe")
    in_pod("rm", ready)
    pod = pods.wait("probed", lambda p: not _condition(p, "Ready"), 15, "NotReady again")
    assert pod["status"]["phase"] == "Running" and _cs(pod)["restartCount"] == 0
    in_pod("rm", alive)
    pod = pods.wait("probed", lambda p: _cs(p).get("restartCount", 0) >= 1, 20,
                    "a restart after the liveness probe failed")
    messages = [e["message"] for e in events_of(client, "probed")]
    assert any("failed liveness probe, will be restarted" in m for m in messages)
    assert any(m.startswith("Liveness probe failed") for m in messages)
    assert any(m.startswith("Readiness probe failed") for m in messages)


def test_memory_over_the_limit_is_oomkilled(lab, client, pods):
    from netlab.node.runtime.cgroups import detect

    if "memory" in detect().missing:
        pytest.skip("this host has no memory cgroup controller for netlab to use")
    pods.create("hog", "worker2", [{"name": "hog", "image": "netlab/stress",
                                    "args": ["--memory", "200Mi"],
                                    "resources": {"limits": {"memory": "48Mi"}}}],
                restartPolicy="Never")
    pod = pods.wait("hog", lambda p: p["status"].get("phase") == "Failed", 30, "OOMKilled")
    term = _cs(pod)["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137


# --- deletion -----------------------------------------------------------------------------


def test_graceful_delete_sigterm_then_gone_with_its_ip_released(lab, client, pods):
    pods.create("graceful", "worker1", [{"name": "c", "image": "busybox", "command": [
        "sh", "-c", "trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.1; done"]}],
        terminationGracePeriodSeconds=30)
    pods.create("stubborn", "worker1", [{"name": "c", "image": "busybox", "command": [
        "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]}],
        terminationGracePeriodSeconds=2)
    graceful, stubborn = pods.running("graceful"), pods.running("stubborn")
    records = {}
    for pod in (graceful, stubborn):
        uid, ip = pod["metadata"]["uid"], pod["status"]["podIP"]
        netns_name = next(n for n in netns.list_netns() if n.endswith(uid[:8]))
        records[pod["metadata"]["name"]] = (ip, netns_name,
                                            set(netns.pids_in_netns([netns_name])))
    started = time.monotonic()
    client.delete("pods", "graceful", "default")
    client.delete("pods", "stubborn", "default")
    terminating = client.get("pods", "graceful", "default")
    assert terminating["metadata"].get("deletionTimestamp")  # graceful: marked first

    wait_for(lambda: gone(client, "graceful"), 20, interval=0.05, what="graceful pod deleted")
    fast = time.monotonic() - started
    wait_for(lambda: gone(client, "stubborn"), 20, interval=0.05, what="stubborn pod deleted")
    slow = time.monotonic() - started
    assert fast < 10, "SIGTERM should end a pod that handles it well within its grace"
    assert slow >= 2, "a pod ignoring SIGTERM gets its whole grace period before SIGKILL"
    for name, (ip, ns, pids) in records.items():
        assert not netns.exists(ns), f"{name}: netns {ns} left behind"
        assert not (ipam_dir(lab.name, "worker1") / ip).exists(), f"{name}: IP {ip} not freed"
        assert not any(psutil.pid_exists(p) and psutil.Process(p).status() !=
                       psutil.STATUS_ZOMBIE for p in pids), f"{name}: processes left"
    killing = [e for e in events_of(client, "graceful") if e["reason"] == "Killing"]
    assert killing and killing[0]["message"] == "Stopping container c"


# --- usage --------------------------------------------------------------------------------


def test_netlab_top_nodes_and_pods(lab, client, pods):
    pods.create("busy", "worker2", [{"name": "burn", "image": "netlab/stress",
                                     "args": ["--cpu", "50m", "--workers", "1"]}])
    pods.running("busy")

    def top_pods() -> str:
        out = netlab("top", "--lab", lab.name, "pods")
        return out.stdout if out.returncode == 0 and "busy" in out.stdout else ""

    table = wait_for(top_pods, 40, interval=0.5, what="netlab top pods to list busy")
    assert table.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    nodes = netlab("top", "--lab", lab.name, "nodes")
    assert nodes.returncode == 0, nodes.stderr
    names = [line.split()[0] for line in nodes.stdout.splitlines()[1:]]
    assert sorted(names) == ["control-plane", "worker1", "worker2"]
    row = next(line.split() for line in nodes.stdout.splitlines() if line.startswith("worker2"))
    assert row[1].endswith("m") and row[3].endswith("Mi")


# --- restart safety and the overlay: these break things, and heal them --------------------


def _pod_pids(uid: str) -> tuple[str, set[int]]:
    name = next(n for n in netns.list_netns() if n.endswith(uid[:8]))
    return name, set(netns.pids_in_netns([name]))


def _component(lab_name: str, name: str) -> dict[str, Any]:
    return (read_json(components_path(lab_name)) or {}).get(name, {})


def test_kill_9_of_a_kubelet_adopts_its_pods_and_cleans_up_deletions(lab, client, pods):
    pods.create("steady", "worker1", [{"name": "echo", "image": ECHO}])
    pods.create("loop", "worker1", [{"name": "c", "image": "busybox", "command": [
        "sh", "-c", "sleep 0.3; exit 1"]}])
    pods.create("doomed", "worker1", [{"name": "c", "image": "busybox", "command": [
        "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]}])
    pods.create("forced", "worker1", [{"name": "c", "image": "busybox", "command": [
        "sleep", "3600"]}])
    steady = pods.running("steady")
    pods.wait("loop", lambda p: _cs(p).get("restartCount", 0) >= 1)
    doomed, forced = pods.running("doomed"), pods.running("forced")
    uid = steady["metadata"]["uid"]
    ns_before, pids_before = _pod_pids(uid)
    forced_ns, _ = _pod_pids(forced["metadata"]["uid"])
    doomed_ns, _ = _pod_pids(doomed["metadata"]["uid"])
    before = _component(lab.name, "kubelet-worker1")
    loop_count = _cs(pods.get("loop"))["restartCount"]

    os.kill(before["pid"], signal.SIGKILL)
    client.delete("pods", "doomed", "default")  # graceful: waits for the kubelet
    client.delete("pods", "forced", "default", grace_period=0)  # gone from the API now
    wait_for(lambda: _component(lab.name, "kubelet-worker1").get("restarts", 0) >
             before["restarts"], 30, what="the supervisor to restart the kubelet")

    # The deletions made while it was down are carried out once it is back.
    wait_for(lambda: not netns.exists(forced_ns), 30, what="the force-deleted pod's netns gone")
    wait_for(lambda: not netns.exists(doomed_ns), 30, what="the deleted pod's netns gone")
    wait_for(lambda: gone(client, "doomed"), 30, what="the gracefully deleted pod gone")
    # The pod that ran on: the very same processes, IP and restart count.
    after = pods.running("steady")
    ns_after, pids_after = _pod_pids(uid)
    assert ns_after == ns_before and pids_after == pids_before
    assert after["status"]["podIP"] == steady["status"]["podIP"]
    assert _cs(after)["restartCount"] == 0
    assert _cs(after)["containerID"] == _cs(steady)["containerID"]
    echoes = [p for p in psutil.process_iter(["cmdline"])
              if (p.info["cmdline"] or [])[-2:] == ["netlab.images", "echo"]
              and p.pid in pids_after]
    assert len(echoes) == 1, "no duplicate container after adoption"
    # The crash loop carries on from its count, it does not start over.
    pods.wait("loop", lambda p: _cs(p)["restartCount"] >= loop_count)


def test_the_overlay_follows_the_node_objects(lab, client):
    worker2 = lab.plan.node("worker2")

    def wired(node: str) -> bool:
        fdb, _neigh, routes = netns.run_in_netns(lab.ns(node), lambda: _overlay())
        return worker2.vtep_mac in fdb and str(worker2.pod_subnet) in routes

    assert wired("worker1") and wired("control-plane")
    old_uid = client.get("nodes", "worker2")["metadata"]["uid"]
    # Hold worker2's kubelet still, so that it cannot register again at once.
    kubelet = psutil.Process(_component(lab.name, "kubelet-worker2")["pid"])
    kubelet.suspend()
    try:
        client.delete("nodes", "worker2")
        wait_for(lambda: not wired("worker1") and not wired("control-plane"), 20,
                 what="every peer to unwire the deleted Node")
    finally:
        kubelet.resume()
    # Its kubelet finds its Node gone, registers it again, and the peers rewire it.
    wait_for(lambda: wired("worker1") and wired("control-plane"), 30,
             what="the peers to wire the re-registered Node")
    again = client.get("nodes", "worker2")
    assert again["metadata"]["uid"] != old_uid
    wait_for(lambda: _node_ready(client.get("nodes", "worker2")), 20, what="worker2 Ready")


def _overlay() -> tuple[dict, dict, dict]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return read_overlay(ipr)


# --- netlab down ----------------------------------------------------------------------------


def test_down_leaves_no_pod_process_behind(make_lab):
    small = make_lab(workers=1, external=False, control_plane=True)
    with SyncClient(lab_client(small.name)) as c:
        wait_for(lambda: any(n["metadata"]["name"] == "worker1" and _node_ready(n)
                             for n in c.list("nodes")["items"]), 60, what="worker1 Ready")
        c.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "left"},
                  "spec": {"nodeName": "worker1", "containers": [
                      {"name": "echo", "image": ECHO}]}}, namespace="default")
        wait_for(lambda: c.get("pods", "left", "default")["status"].get("phase") == "Running",
                 30, what="the pod Running")
        uid = c.get("pods", "left", "default")["metadata"]["uid"]
    _, pids = _pod_pids(uid)
    assert pids
    from netlab.lab import lifecycle

    lifecycle.down(small.name)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in pids)
    assert not [n for n in netns.list_netns() if n.startswith(f"{small.name}-")]
