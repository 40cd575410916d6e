"""Restart safety: pods outlive the kubelet that started them, and a new kubelet
adopts them with the same IPs, processes and restart counts."""

from __future__ import annotations

import json
import os
import select
import subprocess
import uuid
from dataclasses import asdict
from pathlib import Path

import psutil
from rtkit import PY, as_kubelet, log_text, wait_log

from netlab.kernel import netns
from netlab.node.runtime import ContainerSpec, PodSpec, Runtime

KUBELET = Path(__file__).with_name("fake_kubelet.py")


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the stand-in kubelet printed nothing in time"
    return proc.stdout.readline()


def test_containers_survive_the_kubelet_and_are_adopted_without_duplicates(rlab, pods):
    node = rlab.plan.node("worker1")
    pod = PodSpec("default", "survivor", str(uuid.uuid4()))
    kubelet = subprocess.Popen(
        [PY, str(KUBELET), str(rlab.path), node.name, json.dumps(asdict(pod))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: netns.join_netns(node.netns))
    try:
        line = read_line(kubelet, 30)
        assert line, f"the stand-in kubelet failed (exit {kubelet.wait()})"
        made = json.loads(line)
    finally:
        kubelet.kill()  # the kubelet crashes
        kubelet.wait()
    rt = Runtime(rlab.name, node)  # what a restarted kubelet process would make
    assert made["state"] == "running"
    container = psutil.Process(made["pid"])
    assert container.is_running() and container.status() != psutil.STATUS_ZOMBIE
    assert os.getsid(made["pid"]) == made["pid"]  # a session of its own

    adopted = [a for a in as_kubelet(rt, rt.adopt) if a.sandbox.uid == pod.uid]
    assert len(adopted) == 1
    pods.created.append((rt, adopted[0].sandbox))
    found = adopted[0]
    assert found.problems == [] and found.sandbox.ip == made["ip"]
    [app] = found.containers
    assert (app.name, app.state, app.pid, app.restart_count) == ("app", "running", made["pid"], 1)
    # The container still logs through conmon: the kubelet was never in the way.
    before = log_text(app).count("tick")
    wait_log(app, f"tick {before + 3}")

    # The new kubelet converges as it would after a restart: nothing runs twice.
    sb = as_kubelet(rt, lambda: rt.run_pod_sandbox(pod))
    assert sb.ip == made["ip"]
    spec = ContainerSpec("app", command=("sh", "-c", "echo attempt one; sleep 600"))
    again = as_kubelet(rt, lambda: rt.start_container(sb, spec, restart_count=1))
    assert again.pid == made["pid"]
    inside = [psutil.Process(p) for p in netns.pids_in_netns([sb.netns])]
    containers = [p for p in inside if "attempt one" in " ".join(p.cmdline())]
    assert [p.pid for p in containers] == [made["pid"]]
