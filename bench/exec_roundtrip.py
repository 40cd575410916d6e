#!/usr/bin/env python3
"""``kubectl exec POD -- true`` against ``netlab exec POD -- true``, in the same run.

Run as root:  .venv/bin/python bench/exec_roundtrip.py [--runs 30]
                  [--kubectl 1.27 --kubectl 1.33]

A lab with one worker runs a busybox pod. Each round times, wall clock and one
after the other in an order that rotates every round, one ``kubectl exec`` per
``--kubectl`` (a version, for /usr/lib/google-cloud-sdk/bin/kubectl.VERSION, or a
path; default 1.33): kubectl -> API server -> kubelet over HTTPS and WebSocket ->
the runtime's exec helper; kubectl before 1.30 speaks SPDY to the API server,
which translates it to the kubelet's WebSocket. And one ``netlab exec`` (the CLI
reads the lab's state and execs the same helper itself). All are whole
processes, as a user runs them, so all include their program's start (Go for
kubectl, Python for netlab). Printed: median and p90 of each and the ratio of
each kubectl's median to netlab's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from kubelet_pods import lab_with_pod, percentile

from netlab.images import busybox
from netlab.images.store import ImageStore

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-exec"},
       "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
           "name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.{}"


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {out.stderr.decode()}")
    return elapsed


def kubectl_binary(version_or_path: str) -> str:
    return version_or_path if os.sep in version_or_path else KUBECTL.format(version_or_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--kubectl", action="append", metavar="VERSION|PATH",
                        help="a kubectl to time (repeat it to compare; default 1.33)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    binaries = [kubectl_binary(k) for k in args.kubectl or ["1.33"]]
    for binary in binaries:
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} is not an executable kubectl")
    busybox.build(ImageStore())
    lab = f"nlb{os.getpid() % 100000}"
    netlab = [sys.executable, "-m", "netlab.cli.main"]
    topo = {"name": lab, "nodes": [{"name": "control-plane", "role": "control-plane"},
                                   {"name": "worker1", "role": "worker"}]}
    with lab_with_pod(topo, 2, POD, binaries[0]) as kubectl:
        config = kubectl[1:]  # --kubeconfig PATH
        commands = [(os.path.basename(b).replace("kubectl.", "kubectl ") + " exec",
                     [b, *config, "exec", "bench-exec", "--", "true"]) for b in binaries]
        commands.append(("netlab exec", [*netlab, "exec", "--lab", lab, "bench-exec",
                                         "--", "true"]))
        for _, argv in commands:
            timed(argv)  # warm each (page cache, first TLS handshake)
        times: dict[str, list[float]] = {name: [] for name, _ in commands}
        for i in range(args.runs):
            shift = i % len(commands)
            for name, argv in commands[shift:] + commands[:shift]:
                times[name].append(timed(argv))
    n50 = percentile(times["netlab exec"], 50)
    for name, values in times.items():
        p50 = percentile(values, 50)
        print(f"{name} -- true: p50 {p50 * 1000:.0f} ms, "
              f"p90 {percentile(values, 90) * 1000:.0f} ms"
              + ("" if name == "netlab exec" else f", ratio to netlab (p50) {p50 / n50:.2f}"))


if __name__ == "__main__":
    main()
