"""Containers as a user sees them: what ``hostname``, ``ps``, ``/etc/hosts`` and the
environment say inside, what ``exec`` enters, how they stop, and their logs."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from rtkit import PY, as_kubelet, log_text, wait_exited, wait_log

from netlab.node.runtime import ContainerError, ContainerSpec

# conmon writes the UTC offset as +00:00 (CRI-O's log files); containerd writes Z.
CRI_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) (stdout|stderr) [FP] ")


def test_a_container_sees_its_pod_and_only_its_own_processes(rlab, pods):
    script = ("hostname; cat /etc/hostname; grep -v '^#' /etc/hosts; echo \"PWD=$(pwd)\"; "
              "echo \"GREETING=$GREETING\"; ps -eo pid=,comm=; echo oops >&2")
    sb, _ = pods.run("worker1", "inside", "sh", "-c", script, env={"GREETING": "hi"},
                      working_dir="/tmp")
    done = wait_exited(rlab.runtime("worker1"), sb)
    assert (done.exit_code, done.reason) == (0, "Completed")
    out = log_text(done).splitlines()
    assert out[:2] == ["inside", "inside"]  # hostname, through the pod's UTS namespace
    assert f"{sb.ip}\tinside" in out and "127.0.0.1\tlocalhost" in out
    assert "PWD=/tmp" in out and "GREETING=hi" in out
    procs = [line.split() for line in out if re.match(r"^\s*\d+ ", line)]
    # A PID namespace of its own: PID 1 is the container's command, and ps sees
    # nothing but the container (sh and ps itself), never the host's processes.
    assert procs[0] == ["1", "sh"] and {p[1] for p in procs} == {"sh", "ps"}
    raw = Path(done.log_path).read_text().splitlines()
    assert all(CRI_LINE.match(line) for line in raw)
    assert any(line.endswith(" stderr F oops") for line in raw)


def test_exec_enters_the_running_container(rlab, pods):
    rt = rlab.runtime("worker2")
    sb, st = pods.run("worker2", "execme", "sh", "-c", "echo ready; exec sleep 600",
                      env={"ROLE": "db"})
    wait_log(st, "ready")
    probe = ("hostname; echo $ROLE; cat /proc/1/comm; "
             "cat /sys/class/net/eth0/address >/dev/null && echo eth0")
    spec = rt.exec_in_container(sb, "c", ["sh", "-c", probe])
    out = subprocess.run(spec.argv, env=spec.env, capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["execme", "db", "sleep", "eth0"]
    code = subprocess.run(rt.exec_in_container(sb, "c", ["sh", "-c", "exit 3"]).argv,
                          timeout=20).returncode
    assert code == 3


def test_graceful_stop_sends_sigterm_first(rlab, pods):
    rt = rlab.runtime("worker1")
    sb, st = pods.run("worker1", "polite", "sh", "-c",
                      "trap 'echo got SIGTERM; exit 0' TERM; echo ready; "
                      "while :; do sleep 0.1; done")
    wait_log(st, "ready")
    started = time.monotonic()
    done = as_kubelet(rt, lambda: rt.stop_container(sb, "c", grace_seconds=20))
    assert time.monotonic() - started < 10  # it left on SIGTERM; no need for the grace
    assert (done.state, done.exit_code, done.reason) == ("exited", 0, "Completed")
    assert "got SIGTERM" in log_text(done)


def test_sigkill_after_the_grace_period(rlab, pods):
    rt = rlab.runtime("worker1")
    sb, st = pods.run("worker1", "stubborn", "sh", "-c",
                      "trap 'echo ignoring SIGTERM' TERM; echo ready; "
                      "while :; do sleep 0.1; done")
    wait_log(st, "ready")
    started = time.monotonic()
    done = as_kubelet(rt, lambda: rt.stop_container(sb, "c", grace_seconds=1.0))
    assert time.monotonic() - started >= 1.0
    assert (done.exit_code, done.signal, done.reason) == (137, 9, "Error")
    assert "ignoring SIGTERM" in log_text(done)


def test_a_missing_command_is_a_start_error(rlab, pods):
    _, st = pods.run("worker2", "typo", "no-such-program-xyz")
    assert (st.state, st.reason, st.exit_code) == ("exited", "StartError", 128)
    assert 'executable file `no-such-program-xyz` not found in $PATH' in st.message
    # A missing working directory is made in the container's own root, as runc and
    # crun do; one that cannot be made (in /proc) is a start error.
    _, st = pods.run("worker2", "nowhere", "true", working_dir="/proc/no/such/dir")
    assert (st.reason, st.exit_code) == ("StartError", 128)
    assert "/proc/no" in st.message
    sb, st = pods.run("worker2", "made", "pwd", working_dir="/no/such/dir")
    assert log_text(wait_exited(rlab.runtime("worker2"), sb)).split() == ["/no/such/dir"]
    assert not os.path.exists("/no/such")


def test_restarts_count_up_and_keep_the_previous_log(rlab, pods):
    rt = rlab.runtime("worker2")
    sb, first = pods.run("worker2", "flaky", PY, "-c", "print('attempt zero'); raise SystemExit(2)")
    first = wait_exited(rt, sb)
    assert (first.restart_count, first.exit_code, first.reason) == (0, 2, "Error")
    spec = ContainerSpec("c", command=("sh", "-c", "echo attempt one; exec sleep 600"))
    second = as_kubelet(rt, lambda: rt.start_container(sb, spec, restart_count=1))
    assert second.running and second.restart_count == 1
    wait_log(second, "attempt one")
    assert "attempt zero" in rt.log_path(sb, "c", previous=True).read_text()
    assert "attempt one" in rt.log_path(sb, "c").read_text()
    # Asking again for the running attempt returns it; a new one must wait its turn.
    again = as_kubelet(rt, lambda: rt.start_container(sb, spec, restart_count=1))
    assert again.pid == second.pid
    with pytest.raises(ContainerError, match="still running as attempt 1"):
        as_kubelet(rt, lambda: rt.start_container(sb, spec, restart_count=2))
    assert [c.restart_count for c in rt.list_containers(sb)] == [1]


def test_a_container_spec_from_a_pod_manifest():
    spec = ContainerSpec.from_k8s({
        "name": "web", "command": ["python3"], "args": ["-m", "http.server"],
        "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {}}}],
        "workingDir": "/srv",
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "0.1"}}})
    assert spec.argv == ["python3", "-m", "http.server"]
    assert spec.env == {"A": "1"} and spec.working_dir == "/srv"
    assert (spec.cpu_limit_millis, spec.memory_limit_bytes, spec.cpu_request_millis) == (
        500, 128 << 20, 100)


def test_crun_runs_from_a_read_only_bind_of_the_hosts_binary(rlab, pods):
    """crun copies itself into a memfd and re-executes at every command unless its
    binary is on a read-only mount (its CVE-2019-5736 guard): the lab runs the host's
    crun through a read-only bind in its runtime directory, so a container cannot
    write to the binary and crun need not copy it."""
    import shutil

    from netlab.node.runtime import oci_runtime
    from netlab.node.runtime.paths import runtime_dir

    sb, st = pods.run("worker1", "rocrun", "sh", "-c", "echo up; exec sleep 600")
    wait_log(st, "up")
    binary = oci_runtime.crun_binary(rlab.name)
    assert Path(binary).parent.parent == runtime_dir(rlab.name)
    assert os.statvfs(binary).f_flag & os.ST_RDONLY
    host = os.stat(os.path.realpath(shutil.which("crun")))
    assert (os.stat(binary).st_ino, os.stat(binary).st_dev) == (host.st_ino, host.st_dev)
    with pytest.raises(OSError):
        open(binary, "r+b").close()
    listed = subprocess.run(oci_runtime.crun_argv(rlab.name, "list", "-q"),
                            capture_output=True, text=True, timeout=30)
    assert any(line.startswith(sb.uid) for line in listed.stdout.split()), listed


def test_a_containers_log_is_bounded_and_the_newest_lines_kept(rlab, pods):
    """conmon's --log-size-max (the kubelet's containerLogMaxSize): past the bound it
    starts a new file, so a chatty container cannot fill the host; what is kept is
    the newest output."""
    script = ('i=0; while [ $i -lt 3000 ]; do echo "line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; '
              'i=$((i+1)); done; echo END; exec sleep 600')
    _, st = pods.run("worker1", "chatty", "sh", "-c", script, log_size_max=64 * 1024)
    text = wait_log(st, "END", timeout=30)
    assert os.path.getsize(st.log_path) <= 64 * 1024 + 200
    assert "line-2999-" in text and "line-0-" not in text, text[:200]
