"""Resource limits and usage: what ``kubectl describe`` and ``kubectl top`` will show.

The memory and cpu limits are enforced by cgroups where the host has the
controllers (v1 on netlab's CI machines); a test skips, naming the missing
controller, only where the host lacks it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rtkit import PY, as_kubelet, log_text, wait_exited, wait_log

from netlab.node.runtime import CgroupHost, ContainerSpec, Runtime, cgroups

ALLOCATE = ("chunks = []\n"
            "for i in range(1, 1025):\n"
            "    chunks.append(b'x' * (1 << 20))\n"
            "    if i % 16 == 0: print(f'allocated {i} MiB', flush=True)\n"
            "print('survived', flush=True)\n")


def require(rt: Runtime, controller: str) -> None:
    if not rt.cgroups.has(controller) and rt.cgroups.version != "v2":
        pytest.skip(rt.cgroups.missing.get(controller, f"no {controller} controller"))
    if controller in rt.cgroups.missing:
        pytest.skip(rt.cgroups.missing[controller])


def test_a_process_allocating_past_its_memory_limit_is_oomkilled(rlab, pods):
    rt = rlab.runtime("worker1")
    require(rt, "memory")
    sb, st = pods.run("worker1", "hog", PY, "-c", ALLOCATE, memory_limit_bytes=64 << 20)
    assert st.warnings == []
    done = wait_exited(rt, sb)
    assert (done.reason, done.exit_code, done.signal) == ("OOMKilled", 137, 9)
    out = log_text(done)
    assert "allocated 16 MiB" in out and "survived" not in out
    assert "allocated 80 MiB" not in out  # it died near its 64 MiB


def test_cpu_limit_is_written_enforced_and_measured(rlab, pods):
    rt = rlab.runtime("worker2")
    require(rt, "cpu")
    sb, st = pods.run("worker2", "burner", PY, "-c", "print('burning', flush=True)\n"
                      "while True: pass", cpu_limit_millis=200)
    assert st.running and st.warnings == []
    wait_log(st, "burning")
    cg = cgroups.group(rt.cgroups, rlab.name, sb.uid, "c")
    assert cgroups.limits(cg)["cpu_quota_us"] == 20_000
    assert cgroups.limits(cg)["cpu_period_us"] == 100_000
    usage = as_kubelet(rt, lambda: rt.usage(window=1.0))
    pod = usage.pods[sb.uid]
    assert pod.source == "cgroup"
    # A busy loop on a machine with two cores, held to 200m by the quota.
    assert 50 <= pod.cpu_millis <= 260, pod
    assert pod.memory_bytes > 1 << 20
    assert usage.node.cpu_millis >= pod.cpu_millis
    assert usage.node.memory_bytes >= pod.memory_bytes
    # The container's own cgroup, read as cAdvisor reads it: the pod's one container
    # is its whole burn.
    container = usage.containers[sb.uid]["c"]
    assert container.source == "cgroup" and 50 <= container.cpu_millis <= 260, container
    assert 0 < container.memory_bytes <= pod.memory_bytes
    assert usage.running == {sb.uid}  # its container runs: kubectl top lists the pod
    stat_dir = cg.dir_for("cpu")
    with open(os.path.join(stat_dir, "cpu.stat")) as f:
        throttled = dict(line.split() for line in f)["nr_throttled"]
    assert int(throttled) > 0  # the kernel held it back
    # Without cgroup counters, psutil over the pod's processes sees the same burn.
    blind = Runtime(rlab.name, rt.node, cgroup_host=CgroupHost("none"))
    fallback = as_kubelet(blind, lambda: blind.usage(window=1.0)).pods[sb.uid]
    assert fallback.source == "psutil" and 50 <= fallback.cpu_millis <= 300, fallback
    blind_usage = as_kubelet(blind, lambda: blind.usage(window=1.0))
    assert blind_usage.containers == {} and blind_usage.running is None  # cannot tell


def test_limits_that_cannot_be_enforced_are_reported_with_a_reason(rlab, pods):
    reason = "no memory cgroup controller: (as on a host without one)"
    rt = Runtime(rlab.name, rlab.plan.node("worker1"),
                 cgroup_host=CgroupHost("none", {}, {"memory": reason, "cpu": reason}))
    sb = pods.sandbox("worker1", "unlimited")
    st = as_kubelet(rt, lambda: rt.start_container(
        sb, ContainerSpec("c", command=("sleep", "600"), memory_limit_bytes=64 << 20)))
    assert st.running
    assert st.warnings == [f"limits not enforced: {reason}"]
    assert rt.container_status(sb, "c").warnings == st.warnings  # kept for the kubelet's events


def test_the_container_is_in_its_groups_from_its_first_instruction_and_conmon_is_not(
        rlab, pods):
    """On cgroup v1 the container is born in its groups (crun create moves itself
    there first): its PID 1 is in each of them before its command runs, and conmon,
    whose memory must not count against the container's limit, stays out."""
    rt = rlab.runtime("worker1")
    require(rt, "memory")
    sb, st = pods.run("worker1", "born", "sh", "-c", "cat /proc/self/cgroup; exec sleep 600",
                      memory_limit_bytes=64 << 20)
    text = wait_log(st, "memory:")
    cg = cgroups.group(rt.cgroups, rlab.name, sb.uid, "c")
    mine = {line.split(":")[1]: line.split(":")[2] for line in text.splitlines()
            if line.count(":") >= 2}
    for directory in cg.unique_dirs():
        groups = Path(directory, "cgroup.procs").read_text().split()
        assert groups, f"nothing in {directory}"
        assert str(st.pid) in groups or rt.cgroups.version == "v2"
    memory_dir = cg.dir_for("memory")
    assert memory_dir is not None and mine["memory"] and memory_dir.endswith(mine["memory"])
    conmon = json.loads((Path(sb.directory) / "c" / "0.conmon.json").read_text())["pid"]
    assert str(conmon) not in Path(memory_dir, "cgroup.procs").read_text().split()
