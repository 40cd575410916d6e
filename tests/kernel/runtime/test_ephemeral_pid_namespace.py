"""An ephemeral container with a target joins the target's PID namespace (crun
joins ``/proc/<target PID 1>/ns/pid``): ``ps`` in it sees the target's processes."""

from __future__ import annotations

from rtkit import as_kubelet, log_text, wait_exited, wait_log

from netlab.node.kubelet.ephemeral import pid_namespace
from netlab.node.runtime import ContainerSpec


def test_a_debug_container_sees_its_targets_processes(rlab, pods):
    rt = rlab.runtime("worker1")
    sb, target = pods.run("worker1", "debugme", "sh", "-c", "echo ready; exec sleep 600")
    wait_log(target, "ready")
    assert target.pid is not None
    debug = ContainerSpec("debugger", command=("sh", "-c", "ps -eo pid=,comm="),
                          pid_namespace=pid_namespace(target))
    as_kubelet(rt, lambda: rt.start_container(sb, debug, 0))
    done = wait_exited(rt, sb, "debugger")
    assert (done.exit_code, done.reason) == (0, "Completed")
    procs = [line.split() for line in log_text(done).splitlines() if line.strip()]
    # The target's PID 1 (sleep) is PID 1 here too; the debugger is not PID 1.
    assert ["1", "sleep"] in procs and ["1", "sh"] not in procs, procs
    assert rt.container_status(sb, "c").state == "running"  # the target goes on


def test_without_a_target_it_has_a_pid_namespace_of_its_own(rlab, pods):
    rt = rlab.runtime("worker2")
    sb, target = pods.run("worker2", "alone", "sh", "-c", "echo ready; exec sleep 600")
    wait_log(target, "ready")
    debug = ContainerSpec("debugger", command=("sh", "-c", "ps -eo pid=,comm="))
    as_kubelet(rt, lambda: rt.start_container(sb, debug, 0))
    procs = [line.split() for line in log_text(wait_exited(rt, sb, "debugger")).splitlines()]
    assert ["1", "sh"] in procs and not any(p[1:] == ["sleep"] for p in procs), procs
