#!/usr/bin/env python3
"""``kubectl exec POD -- true`` against ``netlab exec POD -- true``, in the same run.

Run as root:  .venv/bin/python bench/exec_roundtrip.py [--runs 30] [--kubectl PATH]

A lab with one worker runs a busybox pod. Each round times, wall clock and one
after the other in alternating order, one ``kubectl exec`` (kubectl -> API
server -> kubelet over HTTPS and WebSocket -> the runtime's exec helper) and one
``netlab exec`` (the CLI reads the lab's state and execs the same helper
itself). Both are whole processes, as a user runs them, so both include their
program's start (Go for kubectl, Python for netlab). Printed: median and p90 of
each and the ratio of the medians.
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


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {out.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--kubectl", default="/usr/lib/google-cloud-sdk/bin/kubectl.1.33")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    busybox.build(ImageStore())
    lab = f"nlb{os.getpid() % 100000}"
    netlab = [sys.executable, "-m", "netlab.cli.main"]
    topo = {"name": lab, "nodes": [{"name": "control-plane", "role": "control-plane"},
                                   {"name": "worker1", "role": "worker"}]}
    with lab_with_pod(topo, 2, POD, args.kubectl) as kubectl:
        via_kubectl = [*kubectl, "exec", "bench-exec", "--", "true"]
        via_netlab = [*netlab, "exec", "--lab", lab, "bench-exec", "--", "true"]
        timed(via_kubectl)  # warm both (page cache, first TLS handshake)
        timed(via_netlab)
        k_times: list[float] = []
        n_times: list[float] = []
        for i in range(args.runs):
            pair = [(via_kubectl, k_times), (via_netlab, n_times)]
            for argv, into in pair if i % 2 == 0 else reversed(pair):
                into.append(timed(argv))
    k50, n50 = percentile(k_times, 50), percentile(n_times, 50)
    print(f"kubectl exec -- true: p50 {k50 * 1000:.0f} ms, "
          f"p90 {percentile(k_times, 90) * 1000:.0f} ms")
    print(f"netlab exec -- true:  p50 {n50 * 1000:.0f} ms, "
          f"p90 {percentile(n_times, 90) * 1000:.0f} ms")
    print(f"ratio kubectl/netlab (p50): {k50 / n50:.2f}")


if __name__ == "__main__":
    main()
