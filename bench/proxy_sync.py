#!/usr/bin/env python3
"""How long the proxy takes to program nftables: a full sync, and one changed Service.

Run as root:  .venv/bin/python bench/proxy_sync.py [--runs 5] [--small 1000] [--large 10000]

Everything happens in one scratch network namespace (``nlb…-proxy``, removed
at the end); no lab is needed because a sync's cost is the table's, not the
traffic's. Services have 10 endpoints each, spread over 100 nodes' /24s with
this node owning one of them, as a Proxier would see a 100-node cluster.

1. Full sync of ``--small`` Services: Python text generation plus one
   transaction, through libnftables (what the proxy uses) and through an
   ``nft -f -`` process (the same text), from an empty table and replacing a
   full one. Baseline and ratio: the ``nft -f -`` process.
2. One changed Service (one endpoint replaced, the common rolling-update step)
   while ``--large`` Services exist: a partial sync. Baseline and ratio: the
   full sync of the same table, which is what a proxy without partial syncs
   pays for every change. Also printed: the deferred garbage collection that
   deletes what the changes emptied.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from netlab.kernel import netns, nft
from netlab.node.proxy import ruleset
from netlab.node.proxy.model import Endpoint, ServicePort, ServicePortName
from netlab.node.proxy.ruleset import Garbage, ProxyConfig

CFG = ProxyConfig(pod_cidr="10.244.0.0/16", service_cidr="10.96.0.0/16",
                  local_pod_cidr="10.244.1.0/24")
ENDPOINTS = 10


def service(i: int, generation: int = 0) -> ServicePort:
    eps = []
    for j in range(ENDPOINTS):
        n = i * ENDPOINTS + j + generation * 7919  # a later generation: other pods
        eps.append(Endpoint(f"10.244.{n % 100}.{n // 100 % 250 + 2}", 8080, f"pod-{n}"))
    return ServicePort(ServicePortName("bench", f"svc{i}", "http", "tcp"),
                       f"10.96.{i // 250}.{i % 250 + 1}", 80,
                       30000 + i if i < 2000 else None, None, tuple(sorted(eps)))


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def full_sync(ns: str, ports: list[ServicePort], backend: str) -> tuple[float, float]:
    """(seconds generating text, seconds applying it)."""
    started = time.perf_counter()
    text = ruleset.full_ruleset(CFG, ports)
    generated = time.perf_counter()
    nft.apply(ns, text, backend)
    return generated - started, time.perf_counter() - generated


def bench_full(ns: str, count: int, runs: int) -> None:
    ports = [service(i) for i in range(count)]
    print(f"full sync, {count} Services x {ENDPOINTS} endpoints "
          f"({sum(len(ruleset.port_objects(p).chains) for p in ports)} chains), "
          f"median of {runs}:")
    results: dict[tuple[str, str], list[float]] = {}
    gen: list[float] = []
    for _ in range(runs):
        for backend in ("library", "command"):
            nft.delete_table(ns, CFG.table)
            g, a = full_sync(ns, ports, backend)
            gen.append(g)
            results.setdefault((backend, "empty"), []).append(g + a)
            g, a = full_sync(ns, ports, backend)  # the table is there now: replace it
            results.setdefault((backend, "replace"), []).append(g + a)
    nft.delete_table(ns, CFG.table)
    print(f"  text generation (Python):          {statistics.median(gen) * 1000:7.0f} ms")
    for start in ("empty", "replace"):
        lib = statistics.median(results[("library", start)])
        cmd = statistics.median(results[("command", start)])
        print(f"  from {start:<7} libnftables {lib:6.3f} s   nft -f - {cmd:6.3f} s   "
              f"ratio {lib / cmd:4.2f}   (target <= 1 s)")


def bench_change(ns: str, count: int, runs: int) -> None:
    ports = [service(i) for i in range(count)]
    print(f"\none changed Service while {count} Services x {ENDPOINTS} endpoints exist:")
    nft.delete_table(ns, CFG.table)
    g, a = full_sync(ns, ports, "library")
    full = g + a
    print(f"  full sync (the setup, and the baseline): {full:7.2f} s")
    garbage = Garbage()
    times = []
    for k in range(runs):
        i = count // 2 + k
        old = ports[i]
        new_eps = (*old.endpoints[1:], Endpoint(f"10.244.{k % 100}.{250 - k}", 8080, "new"))
        new = ServicePort(old.name, old.cluster_ip, old.port, old.node_port, None,
                          tuple(sorted(new_eps)))
        started = time.perf_counter()
        text, garbage = ruleset.partial_update(CFG, {old.name: (old, new)}, garbage)
        nft.apply(ns, text)
        times.append(time.perf_counter() - started)
        ports[i] = new
    median = statistics.median(times)
    print(f"  partial sync, one endpoint replaced: median {median * 1000:6.1f} ms, "
          f"min {min(times) * 1000:.1f} ms over {runs}   ratio to full {median / full:.4f}   "
          f"(target <= 150 ms)")
    collect = timed(lambda: nft.delete_objects(
        ns, CFG.table, elements=garbage.elements_by_map(), sets=sorted(garbage.sets),
        chains=sorted(garbage.chains)))
    print(f"  deferred garbage collection of {len(garbage)} objects: {collect:6.2f} s "
          f"(raw netlink: nft 1.0.6 would first list every chain)")
    nft.delete_table(ns, CFG.table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    args = parser.parse_args()
    ns = f"nlb{uuid.uuid4().hex[:7]}-proxy"
    netns.create_netns(ns)
    try:
        print(f"nft backend: {nft.backend_name()}; scratch namespace {ns}\n")
        bench_full(ns, args.small, args.runs)
        bench_change(ns, args.large, args.runs)
    finally:
        nft.forget(ns)
        netns.delete_netns(ns)


if __name__ == "__main__":
    main()
