#!/usr/bin/env python3
"""How long the NetworkPolicy agent takes to sync, against kube-proxy's sync in the same run.

Run as root:  .venv/bin/python bench/netpol_sync.py [--runs 5] [--policies 1000] [--pods 1000]

Everything happens in one scratch network namespace (``nlb…-netpol``, removed
at the end); no lab is needed, because a sync's cost is compiling and
committing the table, not traffic. The cluster: ``--pods`` pods in 10
namespaces spread over 4 nodes (this node holds a quarter), every pod with
two named ports; ``--policies`` policies, a tenth of them default-deny, the
rest each selecting one app's pods and allowing a client label from the
same or a labelled namespace on a port, a named port or a range, some with
an ``ipBlock``. It is a :class:`PolicyAgent` with the real kernel, as the
``netpol-<node>`` process runs it.

1. **Full sync** (compile + render + one transaction) of the whole cluster,
   what a start or a restart costs. Compile time alone is printed too
   (target: 1,000 policies over 1,000 pods in <= 1 s on 2 cores).
   Baseline: kube-proxy's full sync of as many Services x 10 endpoints
   (``netlab.node.proxy.ruleset.full_ruleset`` + one transaction).
2. **One policy created** while the others exist: the agent's sync, which is
   what a policy costs from the agent's event to enforcement (p50 and p99
   over ``--changes`` creates). Baseline: one Service changed through
   kube-proxy's (partial) sync among as many Services, same run.

Printed: medians, p99 and the ratio agent / kube-proxy for each.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from netlab.kernel import netns, nft
from netlab.node.netpol import model, ruleset
from netlab.node.netpol.agent import PolicyAgent
from netlab.node.proxy import ruleset as proxy_ruleset
from netlab.node.proxy.model import Endpoint, ServicePort, ServicePortName
from netlab.node.proxy.ruleset import Garbage, ProxyConfig

NODES = ("worker1", "worker2", "worker3", "worker4")
NAMESPACES = 10
APPS = 25  # per namespace
PROXY_CFG = ProxyConfig(pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/16",
                        local_pod_cidr="10.244.1.0/24")


def pod(i: int) -> dict:
    node = i % len(NODES)
    return {"metadata": {"namespace": f"ns{i % NAMESPACES}", "name": f"pod{i}",
                         "uid": f"uid{i}",
                         "labels": {"app": f"app{i // NAMESPACES % APPS}",
                                    "role": "client" if i % 3 == 0 else "server"}},
            "spec": {"nodeName": NODES[node], "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                {"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}]},
            "status": {"phase": "Running", "podIP": f"10.244.{node + 1}.{i // len(NODES) + 2}"
                       if i // len(NODES) < 250 else
                       f"10.245.{node + 1}.{i // len(NODES) - 248}"}}


def policy(i: int) -> dict:
    ns = f"ns{i % NAMESPACES}"
    if i % 10 == 0:
        spec: dict = {"podSelector": {}}
    else:
        kind = i % 4
        port = [{"port": 8080 + i % 7}, {"port": "http"},
                {"port": 9000, "endPort": 9100, "protocol": "TCP"},
                {"port": "dns", "protocol": "UDP"}][kind]
        peers = [{"podSelector": {"matchLabels": {"role": "client"}}}]
        if i % 3 == 0:
            peers.append({"namespaceSelector": {"matchLabels": {"tier": f"t{i % 4}"}},
                          "podSelector": {"matchLabels": {"app": f"app{i % APPS}"}}})
        if i % 5 == 0:
            peers.append({"ipBlock": {"cidr": "192.168.0.0/16",
                                      "except": [f"192.168.{i % 250}.0/24"]}})
        spec = {"podSelector": {"matchLabels": {"app": f"app{i % APPS}"}},
                "ingress": [{"from": peers, "ports": [port]}]}
        if i % 7 == 0:
            spec["policyTypes"] = ["Ingress", "Egress"]
            spec["egress"] = [{"to": [{"namespaceSelector": {}}]}]
    return {"metadata": {"namespace": ns, "name": f"policy{i}"}, "spec": spec}


def agent_for(ns: str, pods: int, policies: int) -> PolicyAgent:
    agent = PolicyAgent("worker1", ns, "10.244.1.0/24", min_interval=0.0)
    agent.kernel.prepare = lambda: None  # type: ignore[method-assign]  # no bridge here
    for n in range(NAMESPACES):
        agent.update_namespace({"metadata": {"name": f"ns{n}", "labels": {"tier": f"t{n % 4}"}}})
    for i in range(pods):
        agent.update_pod(pod(i))
    for i in range(policies):
        agent.update_policy(policy(i))
    return agent


def service(i: int, generation: int = 0) -> ServicePort:
    eps = []
    for j in range(10):
        n = i * 10 + j + generation * 7919
        eps.append(Endpoint(f"10.244.{n % 100}.{n // 100 % 250 + 2}", 8080, f"pod-{n}"))
    return ServicePort(ServicePortName("bench", f"svc{i}", "http", "tcp"),
                       f"10.96.{i // 250}.{i % 250 + 1}", 80, None, None, tuple(sorted(eps)))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_full(ns: str, args: argparse.Namespace) -> None:
    agent = agent_for(ns, args.pods, args.policies)
    compiles, syncs, proxy = [], [], []
    ports = [service(i) for i in range(args.policies)]
    for _ in range(args.runs):
        started = time.perf_counter()  # a cold compile: selections and all, as at a start
        cluster = model.Cluster(agent.policies.values(), agent.parsed.values(),
                                agent.namespaces)
        ruleset.render_objects(agent.cfg, model.compile_node(cluster, agent.node))
        compiles.append(time.perf_counter() - started)
        agent.force_full()
        result = agent.sync(force=True)
        assert result.ok, result.error
        syncs.append(result.seconds)
        started = time.perf_counter()
        nft.apply(ns, proxy_ruleset.full_ruleset(PROXY_CFG, ports))
        proxy.append(time.perf_counter() - started)
    compiled = agent.last_compiled
    assert compiled is not None
    print(f"full sync: {args.policies} policies over {args.pods} pods "
          f"({len(compiled.local_pods)} on this node, {len(compiled.isolated)} isolated "
          f"pod directions, {result.bytes} bytes), median of {args.runs}:")
    print(f"  compile (model + text):   {statistics.median(compiles) * 1000:8.1f} ms   "
          f"(target <= 1000 ms)")
    print(f"  agent full sync:          {statistics.median(syncs) * 1000:8.1f} ms")
    print(f"  kube-proxy full sync of {args.policies} Services x 10 endpoints (baseline): "
          f"{statistics.median(proxy) * 1000:8.1f} ms")
    print(f"  ratio agent / kube-proxy: {statistics.median(syncs) / statistics.median(proxy):6.2f}")
    nft.delete_table(ns, PROXY_CFG.table)
    agent.cleanup()


def bench_change(ns: str, args: argparse.Namespace) -> None:
    agent = agent_for(ns, args.pods, args.policies)
    assert agent.sync(force=True).ok
    times = []
    for k in range(args.changes):
        created = policy(args.policies + k)
        created["metadata"]["name"] = f"new{k}"
        started = time.perf_counter()
        agent.update_policy(created)  # what the informer's event handler does
        result = agent.sync(force=True)
        assert result.ok, result.error
        times.append(time.perf_counter() - started)
    agent.cleanup()
    ports = [service(i) for i in range(args.policies)]
    nft.apply(ns, proxy_ruleset.full_ruleset(PROXY_CFG, ports))
    garbage = Garbage()
    proxy = []
    for k in range(args.changes):
        i = args.policies // 2 + k % (args.policies // 2)
        old = ports[i]
        new = ServicePort(old.name, old.cluster_ip, old.port, None, None, tuple(sorted(
            (*old.endpoints[1:], Endpoint(f"10.244.{k % 100}.{250 - k % 200}", 8080, "new")))))
        started = time.perf_counter()
        text, garbage = proxy_ruleset.partial_update(PROXY_CFG, {old.name: (old, new)},
                                                     garbage)
        nft.apply(ns, text)
        proxy.append(time.perf_counter() - started)
        ports[i] = new
    nft.delete_table(ns, PROXY_CFG.table)
    print(f"\none policy created while {args.policies} exist ({args.changes} creates):")
    print(f"  agent sync (event to enforced): p50 {statistics.median(times) * 1000:7.1f} ms   "
          f"p99 {pct(times, 0.99) * 1000:7.1f} ms")
    print(f"  kube-proxy, one Service changed among {args.policies} (baseline): "
          f"p50 {statistics.median(proxy) * 1000:7.1f} ms   p99 {pct(proxy, 0.99) * 1000:7.1f} ms")
    ratio = statistics.median(times) / statistics.median(proxy)
    print(f"  ratio agent / kube-proxy: p50 {ratio:6.2f}   "
          f"p99 {pct(times, 0.99) / pct(proxy, 0.99):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    ns = f"nlb{uuid.uuid4().hex[:7]}-netpol"
    netns.create_netns(ns)
    try:
        print(f"nft backend: {nft.backend_name()}; scratch namespace {ns}\n")
        bench_full(ns, args)
        bench_change(ns, args)
    finally:
        nft.forget(ns)
        netns.delete_netns(ns)


if __name__ == "__main__":
    main()
