"""Nothing of a lab's pods survives its teardown: no process, namespace, cgroup,
mount or file, whether ``cleanup_lab`` runs before ``netlab down`` (the order
``down`` is to use) or only after it (an older ``down``, or a crash)."""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil
from rtkit import PY, Pods, RuntimeLab, new_lab, wait_log

from netlab.kernel import netns
from netlab.kernel.processes import is_running
from netlab.lab import lifecycle
from netlab.node.runtime import cleanup_lab
from netlab.node.runtime.paths import (
    DATA_ROOT,
    is_pod_netns,
    lab_state_dir,
    pods_dir,
    read_json,
    runtime_dir,
)
from netlab.topology.plan import node_netns


@dataclass
class Populated:
    procs: list[tuple[int, float]]  # (pid, start time) of everything that must die
    cgroup_roots: list[str]


def populate(lab: RuntimeLab) -> Populated:
    """Pods on both workers: a process tree, a limited cpu burner, and a process
    entered with exec (whose caller, like ``netlab exec``, waits for it)."""
    made = Pods(lab)
    _, tree = made.run("worker1", "tree", "sh", "-c",
                       "sleep 600 & sleep 600 & echo ready; exec sleep 600")
    _, burner = made.run("worker2", "burner", PY, "-c", "print('ready', flush=True)\n"
                         "while True: pass", cpu_limit_millis=100, memory_limit_bytes=64 << 20)
    procs = []
    for st in (tree, burner):
        wait_log(st, "ready")
        procs.append((st.pid, st.pid_start_time))
    rt, sb = made.created[0]
    spec = rt.exec_in_container(sb, "c", ["sh", "-c", "echo entered; exec sleep 600"])
    execd = subprocess.Popen(spec.argv, env=spec.env, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    assert execd.stdout.readline() == "entered\n"  # it runs inside the container now
    for proc in [psutil.Process(execd.pid), *psutil.Process(execd.pid).children()]:
        procs.append((proc.pid, proc.create_time()))
    threading.Thread(target=execd.wait, daemon=True).start()
    for _, pod in made.created:
        for monitor in (pod.path / "c").glob("*.conmon.json"):
            rec = read_json(monitor)
            procs.append((rec["pid"], rec["startTime"]))
    roots = list(rt.cgroups.lab_roots(lab.name).values())
    assert roots and all(os.path.isdir(r) for r in roots)
    return Populated(procs, roots)


def assert_nothing_left(lab: str, populated: Populated) -> None:
    assert [n for n in netns.list_netns() if is_pod_netns(lab, n)] == []
    assert [pid for pid, started in populated.procs if is_running(pid, started)] == []
    assert [r for r in populated.cgroup_roots if os.path.exists(r)] == []
    assert not pods_dir(lab).exists() and not runtime_dir(lab).exists()
    assert not (DATA_ROOT / lab / "ipam").exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert f"/netlab/{lab}/" not in mounts  # no UTS namespace pin left mounted


def test_cleanup_lab_removes_every_pod_and_keeps_the_network(rlab):
    populated = populate(rlab)
    report = cleanup_lab(rlab.name)
    assert len(report.namespaces) == 2
    assert_nothing_left(rlab.name, populated)
    # The lab's own namespaces are untouched, and it takes new pods at once.
    assert all(netns.exists(node.netns) for node in rlab.plan.nodes)
    again = Pods(rlab)
    try:
        _, st = again.run("worker1", "after", "sh", "-c", "echo fine")
        assert st.reason != "StartError"
    finally:
        again.cleanup()
    assert cleanup_lab(rlab.name).namespaces == []  # idempotent


def test_netlab_down_leaves_no_pod_process_and_cleanup_after_it_removes_the_rest(tmp_path):
    lab_gen = new_lab(tmp_path)
    lab = next(lab_gen)
    try:
        populated = populate(lab)
        lifecycle.down(lab.name)  # kills everything running in the lab's namespaces
        assert [pid for pid, started in populated.procs if is_running(pid, started)] == []
        assert not netns.exists(node_netns(lab.name, "worker1"))
        cleanup_lab(lab.name)  # from any process, after any crash: the rest goes too
        assert_nothing_left(lab.name, populated)
        assert not lab_state_dir(lab.name).exists() and not (DATA_ROOT / lab.name).exists()
    finally:
        for _ in lab_gen:
            pass
