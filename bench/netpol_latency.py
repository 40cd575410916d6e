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
import time

from netpol_sync import NAMESPACES, pod, policy
from proxy_latency import measure, server_and_client, summary

from netlab.node.netpol.agent import PolicyAgent

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--policies", type=int, default=1000)
    args = parser.parse_args()
    with server_and_client(SERVER_IP, CLIENT_IP) as (node_ns, client_ns):
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
                samples.setdefault(count, []).extend(
                    measure(client_ns, per_round, (SERVER_IP, 8080)))
                agent.cleanup()
        none, many = summary(samples[0]), summary(samples[args.policies])
        print(f"\nper-connection latency, client -> isolated server on one bridge, "
              f"{args.connections} connections each ({ROUNDS} rounds, alternating order):")
        print(f"  no policies:        median {none[0] * 1e6:6.0f} us  p90 {none[1] * 1e6:6.0f} us")
        print(f"  {args.policies} policies:    median {many[0] * 1e6:6.0f} us  "
              f"p90 {many[1] * 1e6:6.0f} us")
        print(f"  ratio {many[0] / none[0]:5.2f} (median), {many[1] / none[1]:5.2f} (p90); "
              f"target <= 1.1")


if __name__ == "__main__":
    main()
