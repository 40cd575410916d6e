#!/usr/bin/env python3
"""A big lab's cost: ``up`` until every Node is Ready, idle CPU, and memory per node.

Run as root:  .venv/bin/python bench/scale_lab.py [--workers 99] [--idle 60]

Brings up a lab of one control-plane node and ``--workers`` workers (no external
client), and prints:

- ``up`` until every Node is Ready (``lifecycle.up`` returns then), and, as the
  same-run baseline, ``up`` of the identical topology's network alone
  (``--network-only``: namespaces, links, overlay, no process);
- idle CPU: every component's CPU time over ``--idle`` seconds once the lab is up,
  as a percentage of one core, per node too;
- memory: the proportional set size (PSS, psutil) of every component, in total
  and per cluster node (the kubelet, proxy and NetworkPolicy agent of one node),
  and the number of processes;

each with issue 16's target beside it. The figures move with the machine's load;
the up/network-only ratio is the one to compare across machines.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import psutil
import yaml

from netlab.lab import lifecycle
from netlab.lab.state import components_path, read_json

# Issue 16's targets for 100 nodes, on 2 cores.
UP_TARGET_S = 15.0
IDLE_TARGET_PCT = 20.0
PSS_TARGET_MIB = 15.0


def topology(name: str, workers: int) -> dict:
    nodes = [{"name": "control-plane", "role": "control-plane"}]
    nodes += [{"name": f"w{i}"} for i in range(1, workers + 1)]
    return {"name": name, "network": {"subnet": "192.168.0.0/22"},
            "cluster": {"podSubnet": "10.244.0.0/14"}, "nodes": nodes}


def processes(lab: str) -> dict[str, psutil.Process]:
    out = {}
    for name, row in (read_json(components_path(lab)) or {}).items():
        try:
            out[name] = psutil.Process(row["pid"])
        except (KeyError, TypeError, psutil.Error):
            continue
    return out


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for name, proc in procs.items():
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        out[name] = t.user + t.system + t.children_user + t.children_system
    return out


def pss_mib(procs: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for name, proc in procs.items():
        try:
            out[name] = proc.memory_full_info().pss / 2**20
        except psutil.Error:
            continue
    return out


def node_of(component: str) -> str | None:
    """The node a per-node component serves (kubelet-w1 -> w1); None for the control
    plane's own (apiserver, scheduler, controller-manager, dns)."""
    for prefix in ("kubelet-", "proxy-", "netpol-"):
        if component.startswith(prefix):
            return component[len(prefix):]
    return None


def timed_up(path: Path, network_only: bool) -> float:
    start = time.perf_counter()
    lifecycle.up(path, control_plane=not network_only, ready_timeout=600)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=99)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle sampling")
    args = parser.parse_args()
    nodes = args.workers + 1
    print(f"lab of {nodes} nodes (1 control plane, {args.workers} workers); "
          f"load average at start {psutil.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        name = f"bs{uuid.uuid4().hex[:6]}"
        path = Path(tmp) / f"{name}.yaml"
        path.write_text(yaml.safe_dump(topology(name, args.workers)))
        try:
            network = timed_up(path, network_only=True)
        finally:
            lifecycle.down(name)
        try:
            up = timed_up(path, network_only=False)
            procs = processes(name)
            before = cpu_seconds(procs)
            start = time.monotonic()
            time.sleep(args.idle)  # the measurement window itself, not a wait for readiness
            after = cpu_seconds(procs)
            window = time.monotonic() - start
            pss = pss_mib(procs)
        finally:
            lifecycle.down(name)
    idle = sum(after[n] - before.get(n, 0.0) for n in after) / window * 100
    per_node: dict[str, float] = defaultdict(float)
    for component, mib in pss.items():
        node = node_of(component)
        if node is not None:
            per_node[node] += mib
    control = sum(mib for c, mib in pss.items() if node_of(c) is None)
    median_node = statistics.median(per_node.values())
    print(f"up until every Node is Ready  {up:7.1f} s   network alone {network:6.1f} s   "
          f"ratio {up / network:5.1f}   target <= {UP_TARGET_S:.0f} s")
    print(f"idle CPU over {window:.0f} s        {idle:7.1f} % of one core   "
          f"{idle / nodes:.2f} % per node   target <= {IDLE_TARGET_PCT:.0f} %")
    print(f"memory (PSS)                  {sum(pss.values()):7.0f} MiB in {len(procs)} "
          f"processes; per node {median_node:.1f} MiB (median; kubelet, proxy, netpol), "
          f"control plane {control:.0f} MiB   target <= {PSS_TARGET_MIB:.0f} MiB per node")


if __name__ == "__main__":
    main()
