#!/usr/bin/env python3
"""Per-connection latency to an isolated pod with 1,000 NetworkPolicies, against none.

Run as root:  .venv/bin/python bench/netpol_latency.py [--connections 2000] [--policies 1000]

A network-only lab (one worker, no overlay) with two hand-made pods on the
worker's bridge (``netlab-policy`` judges bridged traffic through
br_netfilter): a server answering every TCP connection with one byte, and a
client opening connections to it one after another and timing each. Only a
connection's first packet walks the policy chains (the rest are established),
so this is where a ruleset's per-packet cost shows.

- **none**: the agent's table with no policy in the cluster (what every lab
  has until someone writes one).
- **N policies**: the cluster of ``bench/netpol_sync.py`` (``--policies``
  policies over 1,000 pods, on other nodes), plus, in the server's own
  namespace, a default-deny and a policy allowing the client on 8080; the
  server is isolated, the client is not. The agent is the real one
  (:class:`PolicyAgent`), so the table is what a node would hold.

Rounds alternate the order and pool the samples (the machine's load drifts).
Printed: median and p90 for each, and the ratio (target <= 1.1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from netpol_sync import NAMESPACES, pod, policy
from proxy_latency import CLIENT, SERVER, make_pod, wait_for_server

from netlab.kernel import netns, nft
from netlab.kernel.processes import kill_in_netns
from netlab.lab import lifecycle
from netlab.node.netpol.agent import PolicyAgent
from netlab.topology import load_topology, plan_lab

ROUNDS = 4
SERVER_IP, CLIENT_IP = "10.244.1.10", "10.244.1.20"


def bench_pod(name: str, ip: str, role: str) -> dict:
    return {"metadata": {"namespace": "bench", "name": name, "uid": f"uid-{name}",
                         "labels": {"role": role}},
            "spec": {"nodeName": "worker1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": ip}}


def program(node_ns: str, policies: int) -> PolicyAgent:
    agent = PolicyAgent("worker1", node_ns, "10.244.1.0/24", min_interval=0.0)
    agent.update_namespace({"metadata": {"name": "bench"}})
    agent.update_pod(bench_pod("server", SERVER_IP, "server"))
    agent.update_pod(bench_pod("client", CLIENT_IP, "client"))
    if policies:
        for n in range(NAMESPACES):
            agent.update_namespace({"metadata": {"name": f"ns{n}",
                                                 "labels": {"tier": f"t{n % 4}"}}})
        for i in range(1000):
            other = pod(i)  # the cluster's other pods live on other nodes
            other["spec"]["nodeName"] = "elsewhere"
            other["status"]["podIP"] = f"10.245.{i // 250}.{i % 250 + 1}"
            agent.update_pod(other)
        for i in range(policies - 2):
            agent.update_policy(policy(i))
        agent.update_policy({"metadata": {"namespace": "bench", "name": "deny-all"},
                             "spec": {"podSelector": {}}})
        agent.update_policy({"metadata": {"namespace": "bench", "name": "allow-client"},
                             "spec": {"podSelector": {"matchLabels": {"role": "server"}},
                                      "ingress": [{"from": [{"podSelector": {"matchLabels": {
                                          "role": "client"}}}],
                                          "ports": [{"port": 8080}]}]}})
    result = agent.sync(force=True)
    assert result.ok, result.error
    return agent


def measure(client_ns: str, connections: int) -> list[float]:
    out = subprocess.run(["ip", "netns", "exec", client_ns, sys.executable, "-c", CLIENT,
                          SERVER_IP, "8080", str(connections), "200"],
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--policies", type=int, default=1000)
    args = parser.parse_args()
    lab = f"nlb{uuid.uuid4().hex[:7]}"
    tmp = Path(tempfile.mkdtemp(prefix="netlab-bench-"))
    path = tmp / f"{lab}.yaml"
    path.write_text(yaml.safe_dump({"name": lab, "cluster": {"overlay": "none"}, "nodes": [
        {"name": "control-plane", "role": "control-plane"},
        {"name": "worker1", "role": "worker"}]}))
    pods: list[str] = []
    try:
        lifecycle.up(path, control_plane=False)
        plan = plan_lab(load_topology(path)).node("worker1")
        node_ns, gateway = plan.netns, str(plan.gateway)
        for name, address in (("server", SERVER_IP), ("client", CLIENT_IP)):
            pods.append(f"{lab}-worker1-{name}")
            make_pod(lab, node_ns, pods[-1], f"{address}/24", gateway)
        subprocess.Popen(["ip", "netns", "exec", pods[0], sys.executable, "-c", SERVER],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        wait_for_server(pods[1], SERVER_IP)
        samples: dict[int, list[float]] = {}
        per_round = max(1, args.connections // ROUNDS)
        for r in range(ROUNDS):
            for count in ((0, args.policies) if r % 2 == 0 else (args.policies, 0)):
                started = time.perf_counter()
                agent = program(node_ns, count)
                setup = time.perf_counter() - started
                if r == 0:
                    compiled = agent.last_compiled
                    isolated = len(compiled.isolated) if compiled else 0
                    print(f"  ({count} policies programmed in {setup:.1f} s; "
                          f"{isolated} isolated pod directions on this node)")
                samples.setdefault(count, []).extend(measure(pods[1], per_round))
                agent.cleanup()
        none, many = summary(samples[0]), summary(samples[args.policies])
        print(f"\nper-connection latency, client -> isolated server on one bridge, "
              f"{args.connections} connections each ({ROUNDS} rounds, alternating order):")
        print(f"  no policies:        median {none[0] * 1e6:6.0f} us  p90 {none[1] * 1e6:6.0f} us")
        print(f"  {args.policies} policies:    median {many[0] * 1e6:6.0f} us  "
              f"p90 {many[1] * 1e6:6.0f} us")
        print(f"  ratio {many[0] / none[0]:5.2f} (median), {many[1] / none[1]:5.2f} (p90); "
              f"target <= 1.1")
    finally:
        kill_in_netns(pods)
        for name in pods:
            netns.delete_netns(name)
        lifecycle.down(lab)
        nft.forget(f"{lab}-worker1")


if __name__ == "__main__":
    main()
