#!/usr/bin/env python3
"""Time ``up`` and ``down`` of the network layer: the demo lab and a 20-node lab.

Run as root:  .venv/bin/python bench/lab_up_down.py [--runs 7]

For each topology it prints the median of several runs of netlab's library
``up``/``down`` (the network layer alone, no process start-up), the same for
the ``netlab`` command end to end, and a baseline measured in the same run:
the identical network built by a script of iproute2 commands (``ip netns
add``, ``ip -n … link add …``, one process per command, the way shell-based
lab tools do it). The ratio netlab/baseline is what to compare across
machines; the absolute figures move with the machine's load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from netlab.lab import lifecycle
from netlab.topology import load_topology, plan_lab
from netlab.topology.plan import LabPlan

REPO = Path(__file__).resolve().parents[1]


def topology(name: str, workers: int) -> dict:
    nodes = [{"name": "control-plane", "role": "control-plane"}]
    nodes += [{"name": f"worker{i}", "role": "worker"} for i in range(1, workers + 1)]
    return {"name": name, "nodes": nodes}


def iproute2_script(plan: LabPlan) -> tuple[list[str], list[str]]:
    """The same network as shell commands: (up commands, down commands)."""
    net, mtu = plan.underlay_netns, plan.underlay_mtu
    cmds = [f"ip netns add {ns}" for ns in plan.namespaces]
    cmds += [f"ip -n {ns} link set lo up" for ns in plan.namespaces]
    cmds.append(f"ip -n {net} link add br0 mtu {mtu} type bridge")
    cmds.append(f"ip -n {net} link set br0 up")
    for n in plan.nodes:
        cmds.append(f"ip -n {net} link add {n.port} mtu {mtu} type veth peer name eth0 "
                    f"netns {n.netns}")
        cmds.append(f"ip -n {net} link set {n.port} master br0 up")
        cmds.append(f"ip netns exec {n.netns} sysctl -qw net.ipv4.ip_forward=1")
        cmds.append(f"ip -n {n.netns} addr add {n.underlay} dev eth0")
        cmds.append(f"ip -n {n.netns} link set eth0 up")
        if not n.in_cluster:
            continue
        cmds.append(f"ip -n {n.netns} link add cni0 mtu {plan.pod_mtu} type bridge")
        cmds.append(f"ip -n {n.netns} addr add {n.gateway} dev cni0")
        cmds.append(f"ip -n {n.netns} link set cni0 up")
        cmds.append(f"ip -n {n.netns} link add vxlan0 mtu {plan.pod_mtu} address {n.vtep_mac} "
                    f"type vxlan id 1 dstport 4789 local {n.underlay.ip} dev eth0 nolearning")
        cmds.append(f"ip -n {n.netns} addr add {n.vtep_ip}/32 dev vxlan0")
        cmds.append(f"ip -n {n.netns} link set vxlan0 up")
        for p in plan.peers_of(n.name):
            cmds.append(f"bridge -n {n.netns} fdb append {p.vtep_mac} dev vxlan0 "
                        f"dst {p.underlay_ip}")
            cmds.append(f"ip -n {n.netns} neigh replace {p.vtep_ip} lladdr {p.vtep_mac} "
                        f"dev vxlan0 nud permanent")
            cmds.append(f"ip -n {n.netns} route replace {p.pod_subnet} via {p.vtep_ip} "
                        f"dev vxlan0 onlink")
    down = [f"ip netns del {ns}" for ns in plan.namespaces]
    return cmds, down


def run_script(cmds: list[list[str]]) -> float:
    start = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(label: str, data: dict | Path, runs: int, directory: Path) -> None:
    if isinstance(data, Path):
        data = yaml.safe_load(data.read_text())
    ups, downs, cli_ups, cli_downs, base_ups, base_downs = [], [], [], [], [], []
    netlab = [sys.executable, "-m", "netlab.cli.main"]
    for _ in range(runs):
        name = f"bn{uuid.uuid4().hex[:6]}"
        path = directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**data, "name": name}))
        plan = plan_lab(load_topology(path))
        try:
            ups.append(timed(lambda: lifecycle.up(path, control_plane=False)))  # noqa: B023 (called at once)
        finally:
            downs.append(timed(lambda: lifecycle.down(name)))  # noqa: B023
        try:
            cli_ups.append(run_script([[*netlab, "up", "-q", "--network-only", str(path)]]))
        finally:
            cli_downs.append(run_script([[*netlab, "down", "-q", name]]))
        up_cmds, down_cmds = iproute2_script(plan)
        try:
            base_ups.append(run_script([c.split() for c in up_cmds]))
        finally:
            base_downs.append(run_script([c.split() for c in down_cmds]))
    med = statistics.median
    nodes = len(data["nodes"])
    print(f"{label} ({nodes} nodes, median of {runs}):")
    for what, lib, cli, base in (("up", ups, cli_ups, base_ups),
                                 ("down", downs, cli_downs, base_downs)):
        print(f"  {what:5} library {med(lib):6.3f} s   command {med(cli):6.3f} s   "
              f"iproute2 script {med(base):6.3f} s   ratio library/script "
              f"{med(lib) / med(base):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        bench("demo", REPO / "topologies" / "demo.yaml", args.runs, directory)
        bench("20 nodes", topology("x", 19), args.runs, directory)


if __name__ == "__main__":
    main()
