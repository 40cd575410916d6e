#!/usr/bin/env python3
"""How long the proxy takes to program nftables: a full sync, and one changed Service.

Run as root:  .venv/bin/python bench/proxy_sync.py [--runs 7] [--small 1000] [--large 10000]
                                                   [--shard-ports 1000] [--skip-full]
                                                   [--skip-partial]

No lab is needed because a sync's cost is the table's, not the traffic's:
everything happens in scratch network namespaces (``nlb…``, removed at the
end). Services have 10 endpoints each, spread over 100 nodes' /24s with this
node owning one of them, as a Proxier would see a 100-node cluster; the first
2,000 are NodePorts. Every figure is measured for today's layout (a DNAT map
per Service, no chain per endpoint) and, in the same run and interleaved with
it, for the baseline: the layout before it, a chain per endpoint behind a
verdict map (``bench/proxy_layout_before.py``: the old ``ruleset.py``, read
from git history), with the same shard tables.

1. Full sync of ``--small`` Services: Python text generation plus one
   libnftables transaction, from an empty namespace.
2. One changed Service (one endpoint replaced, the common rolling-update step)
   while ``--large`` Services exist: a partial sync. Each layout has its own
   namespace (a commit's cost depends on every chain in the namespace), and
   changes alternate between them. Also printed: the deferred garbage
   collection that deletes what the changes emptied.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import proxy_layout_before as before  # bench/ is on sys.path: scripts share helpers

from netlab.kernel import netns, nft
from netlab.node.proxy import ruleset
from netlab.node.proxy.model import Endpoint, ServicePort, ServicePortName
from netlab.node.proxy.ruleset import ProxyConfig

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


BEFORE = "endpoint chains (before)"


@dataclasses.dataclass
class Layout:
    """A ruleset module (today's or the frozen one) and its configuration."""

    module: Any
    cfg: Any

    def full(self, ports: list[ServicePort]) -> str:
        return str(self.module.full_ruleset(self.cfg, ports))

    def garbage(self) -> Any:
        return self.module.Garbage()


def layouts(count: int) -> dict[str, Layout]:
    shards = ruleset.shard_count(count)
    cfg = dataclasses.replace(CFG, shards=shards)
    return {"DNAT maps (after)": Layout(ruleset, cfg),
            BEFORE: Layout(before, before.ProxyConfig(**dataclasses.asdict(cfg)))}


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def full_sync(ns: str, layout: Layout, ports: list[ServicePort]) -> tuple[float, float]:
    """(seconds generating text, seconds applying it)."""
    started = time.perf_counter()
    text = layout.full(ports)
    generated = time.perf_counter()
    nft.apply(ns, text)
    return generated - started, time.perf_counter() - generated


def spread(values: list[float], unit: float = 1.0) -> str:
    return (f"median {statistics.median(values) * unit:7.3f}  "
            f"range {min(values) * unit:.3f}-{max(values) * unit:.3f}")


def bench_full(ns: str, count: int, runs: int) -> None:
    ports = [service(i) for i in range(count)]
    cfgs = layouts(count)
    print(f"full sync, {count} Services x {ENDPOINTS} endpoints, from an empty namespace, "
          f"{runs} runs each, interleaved (seconds):")
    for name, layout in cfgs.items():
        chains = sum(len(layout.module.port_objects(p).chains) for p in ports)
        print(f"  {name}: {chains} chains, {len(layout.full(ports)) / 1e6:.2f} MB of text")
    totals: dict[str, list[float]] = {name: [] for name in cfgs}
    gen: dict[str, list[float]] = {name: [] for name in cfgs}
    for _ in range(runs):
        for name, layout in cfgs.items():
            nft.apply(ns, "flush ruleset\n")
            g, a = full_sync(ns, layout, ports)
            totals[name].append(g + a)
            gen[name].append(g)
    nft.apply(ns, "flush ruleset\n")
    base = statistics.median(totals[BEFORE])
    for name in cfgs:
        print(f"  {name:<24} {spread(totals[name])}   of which text "
              f"{statistics.median(gen[name]):.3f}   ratio to before "
              f"{statistics.median(totals[name]) / base:4.2f}   (target <= 0.5 s)")


def bench_change(count: int, runs: int) -> None:
    ports = [service(i) for i in range(count)]
    cfgs = layouts(count)
    print(f"\none changed Service while {count} Services x {ENDPOINTS} endpoints exist, "
          f"{runs} changes each, alternating (milliseconds):")
    spaces = {name: f"nlb{uuid.uuid4().hex[:7]}-proxy" for name in cfgs}
    current = {name: list(ports) for name in cfgs}
    garbage = {name: layout.garbage() for name, layout in cfgs.items()}
    times: dict[str, list[float]] = {name: [] for name in cfgs}
    try:
        for name, layout in cfgs.items():
            netns.create_netns(spaces[name])
            g, a = full_sync(spaces[name], layout, ports)
            print(f"  setup: full sync, {name}: {g + a:6.1f} s")
        for k in range(runs):
            for name, layout in cfgs.items():
                i = count // 2 + k * 37
                old = current[name][i]
                new_eps = (*old.endpoints[1:], Endpoint(f"10.245.{k % 100}.{k // 100 + 2}", 8080,
                                                        "new"))
                new = ServicePort(old.name, old.cluster_ip, old.port, old.node_port, None,
                                  tuple(sorted(new_eps)))
                started = time.perf_counter()
                text, garbage[name] = layout.module.partial_update(
                    layout.cfg, {old.name: (old, new)}, garbage[name])
                nft.apply(spaces[name], text)
                times[name].append(time.perf_counter() - started)
                current[name][i] = new
        base = statistics.median(times[BEFORE])
        for name in cfgs:
            print(f"  {name:<24} {spread(times[name], 1000)}   ratio to before "
                  f"{statistics.median(times[name]) / base:4.2f}   (target <= 50 ms)")
        for name in cfgs:
            g = garbage[name]
            collect = timed(lambda g=g, ns=spaces[name]: nft.delete_objects_in(ns, {
                t: nft.TableObjects(tg.elements, tg.sets, tg.chains)
                for t, tg in g.by_table().items()}))
            print(f"  deferred garbage collection of {len(g)} objects, {name}: "
                  f"{collect * 1000:.0f} ms")
    finally:
        for name in cfgs:
            nft.forget(spaces[name])
            netns.delete_netns(spaces[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--shard-ports", type=int, default=ruleset.SHARD_PORTS,
                        help="service ports per shard table (ruleset.SHARD_PORTS)")
    parser.add_argument("--skip-full", action="store_true", help="only the partial syncs")
    parser.add_argument("--skip-partial", action="store_true", help="only the full syncs")
    args = parser.parse_args()
    ruleset.SHARD_PORTS = before.SHARD_PORTS = args.shard_ports
    ns = f"nlb{uuid.uuid4().hex[:7]}-proxy"
    netns.create_netns(ns)
    print(f"nft backend: {nft.backend_name()}; shard tables of up to {ruleset.SHARD_PORTS} "
          f"service ports\n")
    try:
        if not args.skip_full:
            bench_full(ns, args.small, args.runs)
    finally:
        nft.forget(ns)
        netns.delete_netns(ns)
    if not args.skip_partial:
        bench_change(args.large, args.runs)


if __name__ == "__main__":
    main()
