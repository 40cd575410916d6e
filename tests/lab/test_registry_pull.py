"""Pulling from a real registry, as a user meets it: Debian's ``docker-registry``
(distribution 2.8) runs inside the lab, on the control-plane node's underlay address,
twice over one storage directory: anonymous on port 5000, htpasswd (Basic auth) on
port 5001. The test builds an image (busybox from busybox-static, plus a layer and
an Env of its own), pushes it with ``skopeo copy --dest-tls-verify=false`` run in
that node's namespace, and pods pull it:

- anonymously; ``Pulling`` and ``Successfully pulled image`` events; it runs with
  the image's own Cmd and Env;
- from the authenticated registry with an ``imagePullSecret`` (dockerconfigjson);
  and with the secret on the namespace's ServiceAccount instead of the pod;
- with a wrong password: ``ErrImagePull``, then ``ImagePullBackOff`` in ``kubectl
  get pod``, and ``Failed to pull image ... 401 Unauthorized`` and ``Back-off
  pulling image`` events;
- a tag the registry does not have: a ``... not found`` event;
- a "registry" that accepts connections and never answers: the pull times out
  with a clear event, and meanwhile another pod on that node starts;
- ``netlab image pull`` with ``--creds``, from inside the lab.

Nothing leaves the lab: the registry listens on a lab address, and every pull is
of that address. Every process the test starts is stopped by pid in ``finally``,
and every image it stored is removed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from imagekit import config, layer
from labkit import KUBECTL, kubectl, wait_for

from netlab.images import busybox
from netlab.images.reference import normalise
from netlab.images.store import ImageNotFoundError, ImageStore

REGISTRY = shutil.which("docker-registry")
pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host"),
    pytest.mark.skipif(REGISTRY is None or shutil.which("skopeo") is None,
                       reason="docker-registry and skopeo (Debian packages, scripts/setup.sh) "
                              "serve and push the test image"),
]
USER, PASSWORD = "alice", "pull-" + uuid.uuid4().hex[:8]
REGISTRY_CONFIG = """\
version: 0.1
log: {{level: info, fields: {{service: registry}}}}
storage:
  filesystem: {{rootdirectory: {root}}}
http: {{addr: "{addr}"}}
{auth}"""


@dataclass
class Registries:
    ns: str
    ip: str
    repo: str  # team/app-<random>: this run's repository

    @property
    def anonymous(self) -> str:
        return f"{self.ip}:5000/{self.repo}:v1"

    @property
    def private(self) -> str:
        return f"{self.ip}:5001/{self.repo}:v1"


def _bcrypt(password: str) -> str:
    # The registry's htpasswd takes bcrypt only; the stdlib's crypt (libxcrypt) makes it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def _in_ns(ns: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _stop(process: subprocess.Popen, program: str | None = None) -> None:
    """Stop a process this module started, by its pid, after checking that the pid
    still runs that program (``ip netns exec`` execs it: the pid is the program's)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        proc = psutil.Process(process.pid)
        if Path(proc.exe()).resolve() == Path(program or str(REGISTRY)).resolve():
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _image_archive(path: Path) -> None:
    base, _ = busybox.busybox_layer(busybox.find_busybox())
    own = layer([("etc", "dir"), ("etc/registry-marker", "file", "came from the registry\n")])
    cfg = config([base, own], cmd=["sh", "-c", "echo pulled:$MSG; cat /etc/registry-marker; "
                                   "exec sleep 3600"],
                 env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                      "MSG=from-the-registry"])
    path.write_bytes(busybox.docker_archive([(("app:v1",), cfg, [base, own])]))


@pytest.fixture(scope="module")
def registries(cluster_lab) -> Iterator[Registries]:
    node = cluster_lab.plan.node("control-plane")
    ns, ip = node.netns, str(node.underlay.ip)
    work = Path(tempfile.mkdtemp(prefix="nlt-registry-", dir="/var/tmp"))
    started: list[subprocess.Popen] = []
    reg = Registries(ns, ip, f"team/app-{uuid.uuid4().hex[:8]}")
    try:
        (work / "htpasswd").write_text(f"{USER}:{_bcrypt(PASSWORD)}\n")
        auth = textwrap.dedent(f"""\
            auth:
              htpasswd: {{realm: netlab-test, path: {work / 'htpasswd'}}}
            """)
        for port, extra in ((5000, ""), (5001, auth)):
            cfg = work / f"config-{port}.yml"
            cfg.write_text(REGISTRY_CONFIG.format(root=work / "storage", addr=f"{ip}:{port}",
                                                  auth=extra))
            with open(work / f"registry-{port}.log", "wb") as log:
                started.append(subprocess.Popen(
                    ["ip", "netns", "exec", ns, str(REGISTRY), "serve", str(cfg)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        for port, want in ((5000, "200"), (5001, "401")):
            wait_for(lambda p=port, w=want: _in_ns(
                ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
                f"http://{ip}:{p}/v2/").stdout == w, 30, interval=0.2,
                what=f"the registry on {ip}:{port} to answer")
        _image_archive(work / "app.tar")
        pushed = _in_ns(ns, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                        f"docker-archive:{work / 'app.tar'}", f"docker://{reg.anonymous}")
        assert pushed.returncode == 0, pushed.stderr
        yield reg
    finally:
        for process in started:
            _stop(process)
        store = ImageStore()
        for name in (reg.anonymous, reg.private):
            with contextlib.suppress(ImageNotFoundError, PermissionError):
                store.remove(name)
        shutil.rmtree(work, ignore_errors=True)


def _pod(name: str, image: str, policy: str = "IfNotPresent", secret: str | None = None,
         namespace: str = "default", node: str | None = None) -> str:
    spec: dict = {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": name, "namespace": namespace},
                  "spec": {"terminationGracePeriodSeconds": 0,
                           "containers": [{"name": "app", "image": image,
                                           "imagePullPolicy": policy}]}}
    if node:
        spec["spec"]["nodeName"] = node
    if secret:
        spec["spec"]["imagePullSecrets"] = [{"name": secret}]
    return json.dumps(spec)


def _waiting_reason(kubeconfig: Path, pod: str, namespace: str = "default") -> str:
    return kubectl(kubeconfig, "get", "pod", pod, "-n", namespace, "-o",
                   "jsonpath={.status.containerStatuses[0].state.waiting.reason}").stdout


def _phase(kubeconfig: Path, pod: str, namespace: str = "default") -> str:
    return kubectl(kubeconfig, "get", "pod", pod, "-n", namespace, "-o",
                   "jsonpath={.status.phase}").stdout


def _events(kubeconfig: Path, pod: str, namespace: str = "default") -> list[tuple[str, str]]:
    out = kubectl(kubeconfig, "get", "events", "-n", namespace, "--field-selector",
                  f"involvedObject.name={pod}", "-o", "json")
    assert out.returncode == 0, out.stderr
    return [(e.get("reason", ""), e.get("message", "")) for e in json.loads(out.stdout)["items"]]


def _delete(kubeconfig: Path, *pods: str, namespace: str = "default") -> None:
    kubectl(kubeconfig, "delete", "pod", *pods, "-n", namespace, "--ignore-not-found",
            "--grace-period=0", "--force", "--wait=true", "--timeout=60s")


def _secret(kubeconfig: Path, name: str, server: str, password: str,
            namespace: str = "default") -> None:
    out = kubectl(kubeconfig, "create", "secret", "docker-registry", name, "-n", namespace,
                  f"--docker-server={server}", f"--docker-username={USER}",
                  f"--docker-password={password}")
    assert out.returncode == 0, out.stderr


def test_anonymous_pull_runs_the_image(kubeconfig, registries):
    try:
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=_pod("anon", registries.anonymous))
        assert out.returncode == 0, out.stderr
        wait_for(lambda: _phase(kubeconfig, "anon") == "Running", 120, interval=0.3,
                 what="the pulled pod to run")
        logs = wait_for(lambda: (lambda o: "registry" in o and o)(
            kubectl(kubeconfig, "logs", "anon").stdout), 30, interval=0.3,
            what="the pod's output")
        assert logs.split("\n")[:2] == ["pulled:from-the-registry", "came from the registry"]
        events = _events(kubeconfig, "anon")
        assert ("Pulling", f'Pulling image "{registries.anonymous}"') in events, events
        assert any(r == "Pulled" and m.startswith(
            f'Successfully pulled image "{registries.anonymous}" in ') and "including waiting"
            in m for r, m in events), events
        stored = ImageStore().lookup(registries.anonymous)
        assert stored is not None and stored.names == (normalise(registries.anonymous),)
    finally:
        _delete(kubeconfig, "anon")


def test_pull_with_an_image_pull_secret(kubeconfig, registries):
    ns = f"nlt-pull-{uuid.uuid4().hex[:6]}"
    try:
        assert kubectl(kubeconfig, "create", "namespace", ns).returncode == 0
        _secret(kubeconfig, "regcred", f"{registries.ip}:5001", PASSWORD, ns)
        out = kubectl(kubeconfig, "apply", "-f", "-",
                      stdin=_pod("private", registries.private, "Always", "regcred", ns))
        assert out.returncode == 0, out.stderr
        wait_for(lambda: _phase(kubeconfig, "private", ns) == "Running", 120, interval=0.3,
                 what="the pod pulled with its secret to run")
        # The same secret on the namespace's ServiceAccount serves a pod that names none.
        wait_for(lambda: kubectl(kubeconfig, "get", "serviceaccount", "default", "-n", ns)
                 .returncode == 0, 30, interval=0.3, what="the default ServiceAccount")
        patched = kubectl(kubeconfig, "patch", "serviceaccount", "default", "-n", ns, "-p",
                          '{"imagePullSecrets": [{"name": "regcred"}]}')
        assert patched.returncode == 0, patched.stderr
        out = kubectl(kubeconfig, "apply", "-f", "-",
                      stdin=_pod("via-sa", registries.private, "Always", None, ns))
        assert out.returncode == 0, out.stderr
        wait_for(lambda: _phase(kubeconfig, "via-sa", ns) == "Running", 120, interval=0.3,
                 what="the pod pulled with its ServiceAccount's secret to run")
        assert any(r == "Pulled" and m.startswith("Successfully pulled image")
                   for r, m in _events(kubeconfig, "via-sa", ns))
    finally:
        kubectl(kubeconfig, "delete", "namespace", ns, "--ignore-not-found", "--wait=true",
                "--timeout=120s")


def test_a_wrong_secret_backs_off(kubeconfig, registries, tmp_path):
    watch_log = tmp_path / "watch.txt"
    watcher = None
    try:
        _secret(kubeconfig, "wrongcred", f"{registries.ip}:5001", "not-the-password")
        with open(watch_log, "w") as sink:
            watcher = subprocess.Popen([str(KUBECTL), "--kubeconfig", str(kubeconfig), "get",
                                        "pods", "--watch", "--no-headers", "--field-selector",
                                        "metadata.name=wrong"],
                                       stdout=sink, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        out = kubectl(kubeconfig, "apply", "-f", "-",
                      stdin=_pod("wrong", registries.private, "Always", "wrongcred"))
        assert out.returncode == 0, out.stderr

        def backed_off() -> bool:
            # Every failed attempt shows ErrImagePull, then ImagePullBackOff until the
            # next: wait for that order (a retry repeats it, should a watch miss one).
            seen = watch_log.read_text()
            return "ErrImagePull" in seen and "ImagePullBackOff" in seen[
                seen.index("ErrImagePull"):]

        try:
            wait_for(backed_off, 120, interval=0.3,
                     what="kubectl get pods --watch to show ErrImagePull, then ImagePullBackOff")
        except AssertionError as err:
            raise AssertionError(f"{err}; it showed:\n{watch_log.read_text()}") from None
        assert _waiting_reason(kubeconfig, "wrong") in ("ErrImagePull", "ImagePullBackOff")
        assert _phase(kubeconfig, "wrong") == "Pending"
        events = wait_for(lambda: (lambda e: any(r == "BackOff" for r, _ in e) and e)(
            _events(kubeconfig, "wrong")), 60, interval=0.3, what="the BackOff event")
        failed = [m for r, m in events if r == "Failed" and m.startswith("Failed to pull")]
        assert failed and failed[0].startswith(f'Failed to pull image "{registries.private}": ')
        assert "401 Unauthorized" in failed[0], failed
        assert ("BackOff", f'Back-off pulling image "{registries.private}"') in events
        assert ("Failed", "Error: ErrImagePull") in events
        assert ("Failed", "Error: ImagePullBackOff") in events
        described = kubectl(kubeconfig, "describe", "pod", "wrong").stdout
        assert "Back-off pulling image" in described
    finally:
        if watcher is not None and watcher.poll() is None:
            watcher.terminate()
            watcher.wait(10)
        _delete(kubeconfig, "wrong")
        kubectl(kubeconfig, "delete", "secret", "wrongcred", "--ignore-not-found")


def test_a_missing_image_says_not_found(kubeconfig, registries):
    image = f"{registries.ip}:5000/{registries.repo}:no-such-tag"
    try:
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=_pod("missing", image))
        assert out.returncode == 0, out.stderr
        events = wait_for(lambda: (lambda e: any(m.startswith("Failed to pull") for _, m in e)
                                   and e)(_events(kubeconfig, "missing")), 120, interval=0.3,
                          what="the failed pull's event")
        failed = next(m for _, m in events if m.startswith("Failed to pull"))
        normal = normalise(image)
        assert failed == (f'Failed to pull image "{image}": failed to pull and unpack image '
                          f'"{normal}": failed to resolve reference "{normal}": {normal}: '
                          "not found"), failed
        assert _waiting_reason(kubeconfig, "missing") in ("ErrImagePull", "ImagePullBackOff")
    finally:
        _delete(kubeconfig, "missing")


def test_netlab_image_pull_with_credentials(registries):
    name = registries.private
    try:
        out = _in_ns(registries.ns, sys.executable, "-m", "netlab.cli.main", "image", "pull",
                     name, "--creds", f"{USER}:{PASSWORD}")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"Pulled image: {name}\n  digest sha256:"), out.stdout
        refused = _in_ns(registries.ns, sys.executable, "-m", "netlab.cli.main", "image",
                         "pull", name)
        assert refused.returncode == 1
        assert "401 Unauthorized" in refused.stderr, refused.stderr
    finally:
        with contextlib.suppress(ImageNotFoundError):
            ImageStore().remove(name)


# Accepts every connection and never answers: a registry that hangs.
SILENT_SERVER = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(64)
held = []
while True:
    held.append(server.accept()[0])
"""


def test_a_hanging_registry_times_out_and_the_kubelet_stays_responsive(kubeconfig,
                                                                        registries):
    image = f"{registries.ip}:5002/{registries.repo}:v1"
    silent = subprocess.Popen(["ip", "netns", "exec", registries.ns, sys.executable, "-c",
                               SILENT_SERVER, registries.ip, "5002"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: ":5002" in _in_ns(registries.ns, "ss", "-ltnH").stdout, 30,
                 interval=0.2, what="the silent server to listen")
        out = kubectl(kubeconfig, "apply", "-f", "-",
                      stdin=_pod("hang", image, "Always", node="worker1"))
        assert out.returncode == 0, out.stderr
        wait_for(lambda: any(r == "Pulling" for r, _ in _events(kubeconfig, "hang")), 60,
                 interval=0.3, what="the pull to start")
        # While that pull waits on the registry, the same kubelet starts another pod.
        out = kubectl(kubeconfig, "apply", "-f", "-",
                      stdin=_pod("alive", "netlab/echo", "IfNotPresent", node="worker1"))
        assert out.returncode == 0, out.stderr
        wait_for(lambda: _phase(kubeconfig, "alive") == "Running", 60, interval=0.3,
                 what="a pod on the same node to run during the hanging pull")
        assert not any(m.startswith("Failed to pull") for _, m in _events(kubeconfig, "hang"))
        events = wait_for(lambda: (lambda e: any(m.startswith("Failed to pull") for _, m in e)
                                   and e)(_events(kubeconfig, "hang")), 120, interval=0.5,
                          what="the hanging pull to fail")
        failed = next(m for _, m in events if m.startswith("Failed to pull"))
        assert failed.startswith(f'Failed to pull image "{image}": failed to pull and unpack '
                                 f'image "{image}": failed to resolve reference'), failed
        assert "the registry did not answer in time (timeout)" in failed, failed
    finally:
        _stop(silent, sys.executable)
        _delete(kubeconfig, "hang", "alive")
