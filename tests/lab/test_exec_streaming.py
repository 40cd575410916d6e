"""``kubectl exec``, ``kubectl cp``, ``kubectl attach`` and the official Python client's
``stream()``, against one lab running a busybox pod.

kubectl 1.30 and 1.33 speak WebSocket (v5/v4.channel.k8s.io); kubectl 1.27 and 1.29
speak SPDY, which the API server translates to the kubelet's WebSocket. What a user
sees is checked, with both: exit statuses, the bytes through stdin and stdout,
``stty size`` under a pty before and after a resize, files copied both ways,
``kubectl attach`` following a container's output, and that killing kubectl -9
mid-exec leaves no process of the exec and no fd in the servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import random
import select
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from labkit import KUBECTL, busybox_images, containers_gone, kubectl, settled_fds, wait_for

from netlab.lab.state import components_path, read_json

BIN = "/usr/lib/google-cloud-sdk/bin/kubectl.1.{}"
WEBSOCKET_VERSIONS = ("30", "33")
SPDY_VERSIONS = ("27", "29")
VERSIONS = SPDY_VERSIONS + WEBSOCKET_VERSIONS
POD = "shell"

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

POD_YAML = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {POD}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: sh, image: busybox, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: talker}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: talk
    image: busybox
    command: [sh, -c, 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done']
---
apiVersion: v1
kind: Pod
metadata: {{name: quitter}}
spec:
  terminationGracePeriodSeconds: 0
  restartPolicy: Never
  containers:
  - {{name: stay, image: busybox, command: [sleep, "3600"]}}
  - {{name: quick, image: busybox, command: [sh, -c, echo bye], stdin: true, stdinOnce: true}}
"""


@pytest.fixture(scope="module")
def pod(cluster_lab, kubeconfig: Path) -> Iterator[Path]:
    """The running busybox pod; yields the kubeconfig. The image is built if missing
    and then removed again, once the pods' containers are gone."""
    uids: list[str] = []
    with busybox_images():
        try:
            out = kubectl(kubeconfig, "apply", "-f", "-", stdin=POD_YAML)
            assert out.returncode == 0, out.stderr
            wait_for(lambda: kubectl(kubeconfig, "get", "pod", POD, "talker", "quitter", "-o",
                                     "jsonpath={.items[*].status.phase}").stdout
                     == "Running Running Running", 120, interval=0.2,
                     what="the busybox pods to run")
            uids = kubectl(kubeconfig, "get", "pod", POD, "talker", "quitter", "-o",
                           "jsonpath={.items[*].metadata.uid}").stdout.split()
            yield kubeconfig
        finally:
            kubectl(kubeconfig, "delete", "pod", POD, "talker", "quitter", "--wait=false")
            # Grace 0: the API forgets the pods at once and the kubelet stops their
            # containers after; the image goes only once no container of them is left.
            containers_gone(cluster_lab.name, uids)


def _binary(version: str) -> str:
    binary = BIN.format(version)
    if not os.path.exists(binary):
        pytest.skip(f"{binary} is missing on this host")
    return binary


def _kubectl(kubeconfig: Path, version: str, *args: str, stdin: bytes | None = None,
             timeout: float = 60, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
    return subprocess.run([_binary(version), "--kubeconfig", str(kubeconfig), *args],
                          input=stdin, capture_output=True, timeout=timeout, check=False,
                          env=None if env is None else {**os.environ, **env})


@pytest.mark.parametrize("version", VERSIONS)
def test_exec_exit_status_and_output(pod, version):
    out = _kubectl(pod, version, "exec", POD, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert out.returncode == 3, out.stderr
    assert out.stdout == b"out\n"
    assert b"err\n" in out.stderr
    assert b"command terminated with exit code 3" in out.stderr
    ok = _kubectl(pod, version, "exec", POD, "--", "true")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_exec_stdin_is_piped_through(pod, version):
    data = b"".join(b"line %d\n" % i for i in range(2000))
    out = _kubectl(pod, version, "exec", "-i", POD, "--", "cat", stdin=data)
    assert out.returncode == 0, out.stderr
    assert out.stdout == data


def test_kubectl_1_30_with_websockets_off_uses_spdy(pod):
    # kubectl 1.30's switch back to SPDY, the path its fallback takes too.
    out = _kubectl(pod, "30", "-v=8", "exec", POD, "--", "sh", "-c", "echo out; exit 3",
                   env={"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"})
    assert out.returncode == 3, out.stderr
    assert out.stdout == b"out\n"
    # (-v=8 logs the 101's headers: SPDY answered, no WebSocket tried)
    assert b"Upgrade: SPDY/3.1" in out.stderr and b"websocket" not in out.stderr.lower(), \
        out.stderr


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read_until(fd: int, wanted: bytes, seen: bytearray, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted!r} in {bytes(seen)!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            assert chunk, f"the terminal closed before {wanted!r}: {bytes(seen)!r}"
            seen += chunk


@pytest.mark.parametrize("version", ("27", *WEBSOCKET_VERSIONS))
def test_exec_tty_sees_its_size_and_a_resize(pod, version):
    master, slave = pty.openpty()
    _set_size(slave, 31, 101)
    proc = subprocess.Popen(
        [_binary(version), "--kubeconfig", str(pod), "exec", "-it", POD, "--", "sh", "-c",
         "stty size; while read line; do stty size; done; exit 4"],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, b"31 101", seen)
        _set_size(master, 42, 120)  # the kernel signals SIGWINCH to kubectl
        # kubectl sends the resize from its own goroutine: press Enter until the
        # shell's next ``stty size`` shows it.
        deadline = time.monotonic() + 30
        while b"42 120" not in seen:
            assert time.monotonic() < deadline, f"no resize seen: {bytes(seen)!r}"
            os.write(master, b"\r")
            with contextlib.suppress(AssertionError):
                _read_until(master, b"42 120", seen, timeout=1)
        os.write(master, b"\x04")  # ^D: read sees end of file, the loop ends
        assert proc.wait(timeout=30) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_ctrl_c_interrupts_the_command_under_a_tty(pod):
    token = str(random.Random().randrange(10**6, 10**7))
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [_binary("33"), "--kubeconfig", str(pod), "exec", "-it", POD, "--", "sleep", token],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    try:
        wait_for(lambda: any(p.info["cmdline"] == ["sleep", token]
                             for p in psutil.process_iter(["cmdline"])), 60, interval=0.1,
                 what="the sleep to run in the pod")
        os.write(master, b"\x03")  # kubectl's raw terminal passes ^C to the pod's pty
        assert proc.wait(timeout=30) == 130  # SIGINT, as in a real cluster
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@pytest.mark.parametrize("up_version,down_version", [("33", "30"), ("27", "27")])
def test_kubectl_cp_both_ways_is_byte_identical(pod, tmp_path, up_version, down_version):
    """Into the pod and back (tar over exec): WebSocket at 1.30 and 1.33, SPDY at 1.27."""
    data = random.Random(int(up_version)).randbytes(300_000)
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    remote = f"/tmp/blob-{up_version}.bin"
    up = _kubectl(pod, up_version, "cp", str(src), f"{POD}:{remote}")
    assert up.returncode == 0, up.stderr
    size = _kubectl(pod, up_version, "exec", POD, "--", "wc", "-c", remote)
    assert size.stdout.split()[0] == str(len(data)).encode()
    back = tmp_path / "back.bin"
    down = _kubectl(pod, down_version, "cp", f"{POD}:{remote}", str(back))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == data


def test_python_client_stream_with_stdin_and_exit_code(pod):
    from kubernetes import client, config
    from kubernetes.stream import stream

    api = client.CoreV1Api(config.new_client_from_config(str(pod)))
    resp = stream(api.connect_get_namespaced_pod_exec, POD, "default",
                  command=["sh", "-c", "cat; echo oops >&2; exit 5"], stdin=True, stdout=True,
                  stderr=True, tty=False, _preload_content=False)
    try:
        resp.write_stdin("hello from python\n")
        resp.close_channel(0)  # v5: stdin EOF, so cat ends
        resp.run_forever(timeout=60)
        assert resp.read_stdout() == "hello from python\n"
        assert resp.read_stderr() == "oops\n"
        assert resp.returncode == 5
    finally:
        resp.close()
    # The preloaded form gives stdout.
    assert stream(api.connect_get_namespaced_pod_exec, POD, "default",
                  command=["echo", "hi"], stderr=True, stdin=False, stdout=True,
                  tty=False) == "hi\n"


def _exec_processes(token: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if token in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
    return found


def _dead(proc: psutil.Process) -> bool:
    """Gone for good: a zombie still counts (nobody reaped it: a leak in the pod)."""
    try:
        proc.status()
    except psutil.NoSuchProcess:
        return True
    return False


def _component(lab: str, name: str) -> psutil.Process:
    return psutil.Process((read_json(components_path(lab)) or {})[name]["pid"])


@pytest.mark.parametrize("version,flags", [("33", "-i"), ("33", "-it"), ("27", "-i"),
                                           ("27", "-it")])
def test_kill_9_of_kubectl_leaves_no_exec_behind(cluster_lab, pod, version, flags):
    node = _kubectl(pod, "33", "get", "pod", POD, "-o", "jsonpath={.spec.nodeName}").stdout
    servers = [_component(cluster_lab.name, "apiserver"),
               _component(cluster_lab.name, f"kubelet-{node.decode()}")]
    assert _kubectl(pod, "33", "exec", POD, "--", "true").returncode == 0  # warm both
    fds = settled_fds(servers)  # the warm-up's streams may still be closing
    token = str(random.Random().randrange(10**6, 10**7))
    master, slave = pty.openpty()  # kubectl's terminal, for -t
    proc = subprocess.Popen([_binary(version), "--kubeconfig", str(pod), "exec", flags, POD,
                             "--", "sleep", token], stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    try:
        # The sleep in the container and the runtime's exec helper (crun exec, its
        # parent, which names the command only in the process spec it was handed).
        wait_for(lambda: any(p.name() == "sleep" for p in _exec_processes(token)), 60,
                 interval=0.1, what="the exec'd sleep to start")
        sleep = next(p for p in _exec_processes(token) if p.name() == "sleep")
        helper = sleep.parent()
        assert helper is not None and helper.name() == "crun", helper
        started = [sleep, helper]
        proc.kill()
        proc.wait()
        wait_for(lambda: all(_dead(p) for p in started), 30, interval=0.1,
                 what="no process of the exec to be left, nor a zombie")
        # Nor a socket, pipe or pty in the API server or the kubelet.
        wait_for(lambda: all(p.num_fds() <= n for p, n in zip(servers, fds)), 30,
                 interval=0.1, what=f"the servers' fds to be back at {fds}")
        # And the API server keeps serving execs.
        again = _kubectl(pod, version, "exec", POD, "--", "echo", "still")
        assert (again.returncode, again.stdout) == (0, b"still\n"), again.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@pytest.mark.parametrize("version", ("29", *WEBSOCKET_VERSIONS))
def test_attach_streams_the_containers_output_from_now_on(pod, version):
    # The last tick written before attaching: attach must not replay what came before.
    last = _kubectl(pod, version, "logs", "talker", "--tail=1")
    assert last.returncode == 0 and last.stdout.startswith(b"tick "), last
    before = int(last.stdout.split()[1])
    proc = subprocess.Popen([_binary(version), "--kubeconfig", str(pod), "attach", "talker"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen = bytearray()

        def ticks() -> list[int]:
            # Whole lines only: the first may begin where attaching cut into it, the
            # last may end where a read did.
            return [int(line[5:]) for line in bytes(seen).split(b"\n")[:-1]
                    if line[:5] == b"tick " and line[5:].isdigit()]

        deadline = time.monotonic() + 30
        while not ticks():
            assert time.monotonic() < deadline, f"no whole tick line: {bytes(seen)!r}"
            _read_until(proc.stdout.fileno(), b"\n", more := bytearray())
            seen += more
        assert ticks()[0] >= before, f"attach replayed output from before it: {bytes(seen)!r}"
        _read_until(proc.stdout.fileno(), b"tick %d\n" % (max(ticks()) + 3), seen)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("version", ("27", "33"))
def test_exec_errors_are_upstreams(pod, version):
    missing = _kubectl(pod, version, "exec", "nope", "--", "true")
    assert missing.returncode != 0
    assert b'pods "nope" not found' in missing.stderr
    wrong = _kubectl(pod, version, "exec", POD, "-c", "nope", "--", "true")
    assert wrong.returncode != 0
    assert b"container nope is not valid for pod shell" in wrong.stderr, wrong.stderr


def _pod_phase(kubeconfig: Path, name: str) -> str:
    return kubectl(kubeconfig, "get", "pod", name, "-o", "jsonpath={.status.phase}").stdout


def _apply(kubeconfig: Path, manifest: str) -> None:
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
    assert out.returncode == 0, out.stderr


def _busybox_pod(name: str, container: str, restart: str = "Always") -> str:
    """A one-container busybox pod; ``container``: the container's other fields, in YAML
    flow style."""
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 0
  restartPolicy: {restart}
  containers:
  - {{image: busybox, {container}}}
"""


def _stdin_pod(name: str, once: bool, command: str) -> str:
    return _busybox_pod(name, f"name: main, stdin: true, stdinOnce: {str(once).lower()}, "
                              f"command: [sh, -c, '{command}']", restart="Never")


@pytest.mark.parametrize("version", ("27", "33"))
def test_kubectl_run_i_rm_pipes_stdin_to_the_container(pod, version):
    name = f"catter-{version}"
    out = _kubectl(pod, version, "run", name, "-i", "--rm", "--restart=Never",
                   "--image=busybox", "--", "sh", "-c", "cat; echo done",
                   stdin=b"hello from kubectl run\n", timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"hello from kubectl run\ndone\n"), out.stdout
    assert f'pod "{name}" deleted'.encode() in out.stdout


@pytest.mark.parametrize("version", ("27", "33"))
def test_attach_to_a_container_that_has_ended_is_refused_as_upstream(pod, version):
    # Its pod is still Running (the other container is), but upstream's kubelet only
    # attaches to running containers; kubectl run -i falls back to the log on this.
    wait_for(lambda: kubectl(pod, "get", "pod", "quitter", "-o", 'jsonpath={.status.'
                             'containerStatuses[?(@.name=="quick")].state.terminated.reason}'
                             ).stdout == "Completed", 60, interval=0.2, what="quick to end")
    out = _kubectl(pod, version, "attach", "-i", "quitter", "-c", "quick", stdin=b"")
    assert out.returncode == 1, out.stderr
    assert b"container quick not found in pod quitter_default" in out.stderr


@pytest.mark.parametrize("version", ("27", "33"))
def test_kubectl_run_i_rm_shows_a_quick_commands_output(pod, version):
    name = f"quick-{version}-{random.randrange(1 << 20)}"
    out = _kubectl(pod, version, "run", name, "--image=busybox", "--restart=Never", "--rm",
                   "-i", "--command", "--", "sh", "-c", "echo out-one; echo err-two >&2",
                   timeout=120)
    assert out.returncode == 0, out.stderr
    assert b"out-one" in out.stdout + out.stderr and b"err-two" in out.stdout + out.stderr
    assert f'pod "{name}" deleted'.encode() in out.stdout + out.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_attach_i_pipes_stdin_and_stdin_once_closes_it_after(pod, version):
    name = f"once-{version}"
    _apply(pod, _stdin_pod(name, True, "cat; echo stdin closed"))
    try:
        wait_for(lambda: _pod_phase(pod, name) == "Running", 120, interval=0.2,
                 what=f"pod {name} to run")
        out = _kubectl(pod, version, "attach", "-i", name, stdin=b"hello attach\n")
        assert out.returncode == 0, out.stderr
        # The output of the container until it exited: stdinOnce closed its stdin
        # when the attach's stdin ended (v5's close, or SPDY's FIN relayed as it), so
        # cat ended.
        assert out.stdout == b"hello attach\nstdin closed\n", out.stdout
        assert b"If you don't see a command prompt, try pressing enter." in out.stderr
        wait_for(lambda: _pod_phase(pod, name) == "Succeeded", 60, interval=0.2,
                 what=f"pod {name} to succeed")
        logs = kubectl(pod, "logs", name).stdout
        assert logs == "hello attach\nstdin closed\n"
    finally:
        kubectl(pod, "delete", "pod", name, "--wait=false")


def test_python_client_attach_with_stdin_twice(pod):
    from kubernetes import client, config
    from kubernetes.stream import stream

    _apply(pod, _stdin_pod("reader", False,
                           'while read line; do echo "got $line"; done; echo eof'))
    api = client.CoreV1Api(config.new_client_from_config(str(pod)))
    try:
        wait_for(lambda: _pod_phase(pod, "reader") == "Running", 120, interval=0.2,
                 what="pod reader to run")
        for word in ("first", "second"):  # stdinOnce false: stdin outlives an attach
            resp = stream(api.connect_get_namespaced_pod_attach, "reader", "default",
                          container="main", stdin=True, stdout=True, stderr=True,
                          tty=False, _preload_content=False)
            try:
                resp.write_stdin(f"{word}\n")
                seen = ""
                deadline = time.monotonic() + 30
                while f"got {word}\n" not in seen:
                    assert time.monotonic() < deadline, seen
                    resp.update(timeout=1)
                    seen += resp.read_stdout() if resp.peek_stdout() else ""
            finally:
                resp.close()
        assert _pod_phase(pod, "reader") == "Running"
        assert "eof" not in kubectl(pod, "logs", "reader").stdout
    finally:
        kubectl(pod, "delete", "pod", "reader", "--wait=false")


TARGET_YAML = _busybox_pod("target", "name: app, command: [sh, -c, 'echo app-started; "
                                    "exec sleep 3600']")


def _ephemeral_state(kubeconfig: Path, index: int) -> str:
    return kubectl(kubeconfig, "get", "pod", "target", "-o", "jsonpath={.status."
                   f"ephemeralContainerStatuses[{index}].state.terminated.reason}}").stdout


def test_kubectl_debug_runs_in_the_targets_pid_namespace(cluster_lab, pod):
    lab = cluster_lab.name
    _apply(pod, TARGET_YAML)
    try:
        wait_for(lambda: _pod_phase(pod, "target") == "Running", 120, interval=0.2,
                 what="pod target to run")
        out = _kubectl(pod, "33", "debug", "target", "--image=busybox", "--target=app",
                       "--", "sh", "-c", "ps -o pid,comm; echo debug-done")
        assert out.returncode == 0, out.stderr
        name = kubectl(pod, "get", "pod", "target", "-o",
                       "jsonpath={.spec.ephemeralContainers[0].name}").stdout
        assert name.startswith("debugger-")
        wait_for(lambda: _ephemeral_state(pod, 0) == "Completed", 120, interval=0.2,
                 what="the debug container to complete")
        logs = kubectl(pod, "logs", "target", "-c", name)
        assert logs.returncode == 0, logs.stderr
        lines = [line.split() for line in logs.stdout.splitlines()]
        # The target's PID 1 is sleep: the debugger shares the target's PID namespace.
        assert ["1", "sleep"] in lines and ["debug-done"] in lines, logs.stdout
        status = kubectl(pod, "get", "pod", "target", "-o", "jsonpath={.status."
                         "ephemeralContainerStatuses[0].state.terminated.exitCode} "
                         "{.status.ephemeralContainerStatuses[0].restartCount} "
                         "{.status.phase}").stdout
        assert status == "0 0 Running", status
        # It is never restarted, and the pod's own container goes on.
        assert kubectl(pod, "exec", "target", "-c", "app", "--", "true").returncode == 0

        # Interactive: kubectl debug -i attaches to the new container's stdin. kubectl
        # gives it stdin but not stdinOnce, so (as CRI-O and containerd) the attach
        # ends with kubectl's stdin and the container's stdin stays open: it reads one
        # line, and what it saw is in its log.
        out = _kubectl(pod, "33", "debug", "target", "-i", "--image=busybox",
                       "--target=app", "--", "sh", "-c", 'read line; echo "got $line"',
                       stdin=b"piped into debug\n", timeout=120)
        assert out.returncode == 0, out.stderr
        assert b"If you don't see a command prompt, try pressing enter." in out.stderr
        wait_for(lambda: _ephemeral_state(pod, 1) == "Completed", 60, interval=0.2,
                 what="the interactive debug container to complete")
        second = kubectl(pod, "get", "pod", "target", "-o",
                         "jsonpath={.spec.ephemeralContainers[1].name}").stdout
        assert kubectl(pod, "logs", "target", "-c", second).stdout == "got piped into debug\n"
        # They go with the pod: no container of it is left in crun.
        uid = kubectl(pod, "get", "pod", "target", "-o", "jsonpath={.metadata.uid}").stdout
        assert uid and kubectl(pod, "delete", "pod", "target", "--wait=false").returncode == 0
        containers_gone(lab, [uid])
    finally:
        kubectl(pod, "delete", "pod", "target", "--wait=false")


TERMINAL_YAML = _busybox_pod("terminal", "name: term, stdin: true, tty: true, "
                                        "command: [sh, -c, 'while read line; do stty size; done']")


def _spawn_in_pty(*argv: str, rows: int = 31, cols: int = 101) -> tuple[subprocess.Popen, int]:
    master, slave = pty.openpty()
    _set_size(slave, rows, cols)
    proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    return proc, master


def _press_enter_until(master: int, wanted: bytes, seen: bytearray) -> None:
    deadline = time.monotonic() + 30
    while wanted not in seen:
        assert time.monotonic() < deadline, f"no {wanted!r}: {bytes(seen)!r}"
        os.write(master, b"\r")
        with contextlib.suppress(AssertionError):
            _read_until(master, wanted, seen, timeout=1)


def test_attach_it_to_a_terminal_container_sees_its_size_and_a_resize(pod):
    _apply(pod, TERMINAL_YAML)
    proc = None
    master = -1
    try:
        wait_for(lambda: _pod_phase(pod, "terminal") == "Running", 120, interval=0.2,
                 what="pod terminal to run")
        proc, master = _spawn_in_pty(_binary("33"), "--kubeconfig", str(pod), "attach", "-it",
                                     "terminal")
        seen = bytearray()
        _press_enter_until(master, b"31 101", seen)  # kubectl's size, through conmon's ctl
        _set_size(master, 42, 120)
        _press_enter_until(master, b"42 120", seen)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        if master >= 0:
            os.close(master)
        kubectl(pod, "delete", "pod", "terminal", "--wait=false")


def test_attach_it_to_a_container_without_a_tty_warns_as_kubectl_does(pod):
    proc, master = _spawn_in_pty(_binary("33"), "--kubeconfig", str(pod), "attach", "-it",
                                 "talker")
    try:
        seen = bytearray()
        _read_until(master, b"Unable to use a TTY - container talk did not allocate one", seen)
        _read_until(master, b"tick ", seen)  # and then its output, as without -t
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


@pytest.mark.parametrize("version", ("27", *WEBSOCKET_VERSIONS))
def test_kubectl_debug_it_with_netlab_echo_shows_the_pods_ip(pod, version):
    """``kubectl debug -it POD --image=netlab/echo --target=...`` (issue's words): the
    ephemeral container shares the pod's network, so ``ip addr`` there shows the pod's
    IP; kubectl 1.27 attaches over SPDY, 1.30 and 1.33 over WebSocket."""
    ip = kubectl(pod, "get", "pod", POD, "-o", "jsonpath={.status.podIP}").stdout.strip()
    assert ip, "the pod has no IP"
    proc, master = _spawn_in_pty(
        _binary(version), "--kubeconfig", str(pod), "debug", "-it", POD, "--image=netlab/echo",
        "--target=sh", "--", "sh", "-c", "while read x; do ip -4 addr show eth0; done")
    try:
        seen = bytearray()
        _press_enter_until(master, f"inet {ip}/".encode(), seen)
        os.write(master, b"\x04")  # ^D: the loop's read ends, so does the container
        assert proc.wait(timeout=60) == 0, bytes(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
