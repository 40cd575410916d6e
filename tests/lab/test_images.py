"""Real images, as a user meets them: ``kubectl run --image=busybox`` runs busybox
in its own root filesystem, its ``wget`` reaches a Service, an image built with
umoci and saved with ``skopeo copy ... docker-archive:`` loads and runs with its own
Entrypoint, Cmd, Env and WorkingDir, a corrupt archive is refused with exit 2 and
nothing stored, and the escape pod of issue 12 cannot touch the host.

The busybox image comes from the host's store (the set-up builds it); when it is
missing, the module builds it and removes it again afterwards. Every other image
and pod a test adds is removed in ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from imagekit import store_files
from labkit import KUBECTL, busybox_images, kubectl, netlab_cli, wait_for

from netlab.images import busybox
from netlab.images.store import ImageNotFoundError, ImageStore, StoredImage

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")
needs_tools = pytest.mark.skipif(not (shutil.which("umoci") and shutil.which("skopeo")),
                                 reason="umoci and skopeo (Debian packages) build the test image")

ECHO = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata: {name: img-echo, labels: {app: img-echo}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - {name: echo, image: netlab/echo, ports: [{name: http, containerPort: 8080}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: img-echo}
    spec:
      selector: {app: img-echo}
      ports: [{name: http, port: 80, targetPort: http}]
    """)


@pytest.fixture(scope="module")
def busybox_image() -> Iterator[StoredImage]:
    with busybox_images() as store:
        image = store.lookup("busybox")
        assert image is not None
        yield image


def _jsonpath(kubeconfig, pod: str, path: str) -> str:
    return kubectl(kubeconfig, "get", "pod", pod, "-o", f"jsonpath={path}").stdout


def _phase(kubeconfig, pod: str) -> str:
    return _jsonpath(kubeconfig, pod, "{.status.phase}")


def _running(kubeconfig, pod: str, timeout: float = 90) -> None:
    wait_for(lambda: _phase(kubeconfig, pod) == "Running", timeout, interval=0.2,
             what=f"pod {pod} to be Running")


def _delete(kubeconfig, *pods: str) -> None:
    kubectl(kubeconfig, "delete", "pod", *pods, "--ignore-not-found", "--grace-period=0",
            "--force", "--wait=true", "--timeout=60s")


def test_busybox_runs_and_its_wget_reaches_a_service(cluster_lab, kubeconfig, busybox_image):
    try:
        assert kubectl(kubeconfig, "apply", "-f", "-", stdin=ECHO).returncode == 0
        out = kubectl(kubeconfig, "run", "busy", "--image=busybox", "--", "sleep", "3600")
        assert out.returncode == 0, out.stderr
        _running(kubeconfig, "busy")
        status = "{.status.containerStatuses[0].imageID}"
        assert _jsonpath(kubeconfig, "busy", status) == busybox_image.id
        assert _jsonpath(kubeconfig, "busy", "{.spec.containers[0].imagePullPolicy}") == "Always"

        def in_busy(*argv: str) -> subprocess.CompletedProcess:
            return kubectl(kubeconfig, "exec", "busy", "--", *argv)

        # busybox's own wget, through cluster DNS and kube-proxy, to the echo pod.
        answer = wait_for(lambda: (lambda r: r.returncode == 0 and r.stdout)(
            in_busy("wget", "-qO-", "http://img-echo")), 60, interval=0.5,
            what="wget in busybox to answer from the Service")
        assert json.loads(answer)["pod"] == "img-echo", answer
        # What it runs on: busybox's files, the pod's resolv.conf, no host files.
        seen = in_busy("sh", "-c", "readlink /bin/sh; grep -c svc.cluster.local "
                       "/etc/resolv.conf; ls /usr/lib/python3* >/dev/null 2>&1 && echo HOST || "
                       "echo OWN-ROOT; cat /proc/1/cmdline | tr '\\0' ' '")
        assert seen.stdout.split() == ["/bin/busybox", "1", "OWN-ROOT", "sleep", "3600"], seen
    finally:
        _delete(kubeconfig, "busy", "img-echo")
        kubectl(kubeconfig, "delete", "service", "img-echo", "--ignore-not-found")


def test_the_escape_pod_cannot_touch_the_host(kubeconfig, busybox_image):
    target = Path("/root") / f"ESCAPED_FROM_POD-{uuid.uuid4().hex[:8]}"
    try:
        out = kubectl(kubeconfig, "run", "escape", "--image=busybox", "--restart=Never",
                      "--image-pull-policy=IfNotPresent", "--command", "--", "sh", "-c",
                      f"touch {target} && echo TOUCHED-MY-OWN")
        assert out.returncode == 0, out.stderr
        wait_for(lambda: _phase(kubeconfig, "escape") in ("Succeeded", "Failed"), 60,
                 interval=0.2, what="the escape pod to finish")
        # It wrote in its own root filesystem, never the host's.
        assert kubectl(kubeconfig, "logs", "escape").stdout.split() == ["TOUCHED-MY-OWN"]
        assert not target.exists()
    finally:
        _delete(kubeconfig, "escape")
        with contextlib.suppress(FileNotFoundError):
            target.unlink()  # only if the test failed: never leave it behind


def test_an_image_not_stored_is_err_image_never_pull_naming_what_is(kubeconfig, busybox_image):
    name = f"nlt{uuid.uuid4().hex[:8]}/absent:1"
    try:
        out = kubectl(kubeconfig, "run", "absent", f"--image={name}", "--restart=Never")
        assert out.returncode == 0, out.stderr
        path = ("{.status.containerStatuses[0].state.waiting.reason}|"
                "{.status.containerStatuses[0].state.waiting.message}")
        text = wait_for(lambda: (lambda t: t.startswith("ErrImageNeverPull|") and t)(
            _jsonpath(kubeconfig, "absent", path)), 60, interval=0.2, what="ErrImageNeverPull")
        assert name in text and "busybox:latest" in text and "netlab/echo" in text, text
    finally:
        _delete(kubeconfig, "absent")


def _umoci_image(work: Path, name: str) -> Path:
    """An image built as a user would without a registry: umoci makes an OCI layout
    (a static busybox, an Entrypoint, Cmd, Env, WorkingDir), skopeo saves it as a
    docker archive."""
    def run(*argv: str) -> None:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, f"{argv}: {out.stderr}"

    layout, bundle = work / "oci", work / "bundle"
    run("umoci", "init", "--layout", str(layout))
    run("umoci", "new", "--image", f"{layout}:v1")
    run("umoci", "unpack", "--image", f"{layout}:v1", str(bundle))
    (bundle / "rootfs" / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox.find_busybox(), bundle / "rootfs" / "bin" / "busybox")
    run("umoci", "repack", "--image", f"{layout}:v1", str(bundle))
    script = ('echo "greeting=$GREETING args=$* dir=$(/bin/busybox pwd)"; '
              "exec /bin/busybox sleep 3600")
    entry = ["/bin/busybox", "sh", "-c", script, "app"]
    run("umoci", "config", "--image", f"{layout}:v1",
        *(f"--config.entrypoint={e}" for e in entry), "--config.cmd=one", "--config.cmd=two",
        "--config.env=GREETING=from-the-image", "--config.workingdir=/srv")
    archive = work / "app.tar"
    run("skopeo", "--insecure-policy", "copy", f"oci:{layout}:v1",
        f"docker-archive:{archive}:{name}")
    return archive


APP_POD = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata: {name: NAME}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: IMAGE
        imagePullPolicy: Never
        EXTRA
    """)


@needs_tools
def test_a_skopeo_archive_loads_and_runs_with_its_entrypoint_and_env(kubeconfig, tmp_path):
    name = f"nlt{uuid.uuid4().hex[:8]}/app:v1"
    store = ImageStore()
    try:
        archive = _umoci_image(tmp_path, name)
        out = netlab_cli("image", "load", str(archive))
        assert out.returncode == 0, out.stderr
        assert f"Loaded image: {name}" in out.stdout
        assert name in netlab_cli("image", "ls", "-q").stdout.split()
        pods = {"app-own": "", "app-args": "args: [three]\n    env: [{name: GREETING, value: pod}]"}
        for pod, extra in pods.items():
            manifest = APP_POD.replace("NAME", pod).replace("IMAGE", name).replace("EXTRA", extra)
            assert kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest).returncode == 0
        for pod in pods:
            _running(kubeconfig, pod)

        def log(pod: str) -> str:
            return kubectl(kubeconfig, "logs", pod).stdout.strip()

        wait_for(lambda: log("app-own") and log("app-args"), 30, interval=0.2, what="the logs")
        assert log("app-own") == "greeting=from-the-image args=one two dir=/srv"
        assert log("app-args") == "greeting=pod args=three dir=/srv"  # args replace Cmd
    finally:
        _delete(kubeconfig, "app-own", "app-args")
        with contextlib.suppress(ImageNotFoundError):
            store.remove(name)
    assert store.lookup(name) is None


def test_a_corrupt_archive_exits_2_and_stores_nothing(tmp_path, busybox_image):
    from imagekit import config, docker_save, layer

    store = ImageStore()
    before = store_files(store.root)
    tars = [layer([("bin", "dir"), ("bin/x", "file", "x" * 20000)])]
    name = f"nlt{uuid.uuid4().hex[:8]}/corrupt:1"
    archive = docker_save(tmp_path / "good.tar", [((name,), config(tars), tars)])
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(archive.read_bytes()[:15000])
    try:
        out = netlab_cli("image", "load", str(truncated))
        assert out.returncode == 2, out
        assert "nothing was stored" in out.stderr
        out = netlab_cli("image", "load", "-", stdin="not an archive\n" * 100)
        assert out.returncode == 2 and "nothing was stored" in out.stderr, out
        assert netlab_cli("image", "rm", name).returncode == 2  # never stored
        assert store_files(store.root) == before
    finally:
        with contextlib.suppress(ImageNotFoundError):
            store.remove(name)


ESCAPE_ASKED = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata: {name: escape-asked}
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 0
      containers:
      - name: c
        image: busybox
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'touch /x/ESCAPED && echo TOUCHED-THE-HOST']
        securityContext: {privileged: true}
        volumeMounts: [{name: x, mountPath: /x}]
      volumes:
      - name: x
        hostPath: {path: HOSTDIR, type: DirectoryOrCreate}
    """)


def test_privileged_with_a_host_path_writes_the_host(kubeconfig, busybox_image, tmp_path):
    """What the escape pod cannot do, a pod whose spec asks for it (privileged, and the
    host directory as a volume) does."""
    host_dir = tmp_path / "x"
    try:
        out = kubectl(kubeconfig, "apply", "-f", "-",
                      stdin=ESCAPE_ASKED.replace("HOSTDIR", str(host_dir)))
        assert out.returncode == 0, out.stderr
        wait_for(lambda: _phase(kubeconfig, "escape-asked") in ("Succeeded", "Failed"), 60,
                 interval=0.2, what="the pod to finish")
        assert kubectl(kubeconfig, "logs", "escape-asked").stdout.split() == \
            ["TOUCHED-THE-HOST"]
        assert (host_dir / "ESCAPED").exists()
    finally:
        _delete(kubeconfig, "escape-asked")
