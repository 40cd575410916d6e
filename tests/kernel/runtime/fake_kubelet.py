"""A stand-in kubelet for the restart test, run as its own process in a node's netns.

It makes a pod through the runtime, runs attempt 0 of container ``app`` (which
fails) and attempt 1 (which keeps running and logging), prints what it made as
one JSON line, and then waits on stdin until the test kills it with SIGKILL,
the way a kubelet dies in a crash.

Usage: python fake_kubelet.py TOPOLOGY NODE POD_JSON
"""

from __future__ import annotations

import json
import sys
import time

from netlab.node.runtime import ContainerSpec, PodSpec, Runtime
from netlab.topology import load_topology, plan_lab

ATTEMPT_ONE = ("sh", "-c", "echo attempt one; i=0; "
               "while :; do i=$((i+1)); echo tick $i; sleep 0.1; done")


def main() -> None:
    topology, node, pod_json = sys.argv[1:4]
    plan = plan_lab(load_topology(topology))
    runtime = Runtime(plan.lab, plan.node(node))
    pod = PodSpec(**json.loads(pod_json))
    sb = runtime.run_pod_sandbox(pod)
    first = runtime.start_container(sb, ContainerSpec("app", command=("sh", "-c", "exit 1")), 0)
    deadline = time.monotonic() + 10
    while first is not None and first.state != "exited" and time.monotonic() < deadline:
        time.sleep(0.02)  # probing for the exit, as the kubelet's PLEG does
        first = runtime.container_status(sb, "app")
    second = runtime.start_container(sb, ContainerSpec("app", command=ATTEMPT_ONE), 1)
    print(json.dumps({"ip": sb.ip, "netns": sb.netns, "pid": second.pid,
                      "restartCount": second.restart_count, "state": second.state}), flush=True)
    sys.stdin.read()  # until killed


if __name__ == "__main__":
    main()
