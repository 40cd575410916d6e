#!/usr/bin/env python3
"""etcd (1 and 3 members) against SQLite as the API server's store: durable
creates/s, a list of 10,000 pods and watch latency.

Run:  .venv/bin/python bench/etcd_store.py [--pods 3000] [--list-items 10000]
          [--watch-events 500] [--watchers 1]

In one run, the three stores side by side: the API server as its own process
(as the supervisor starts it) over each, on a unix socket, the stores on disk
(``BENCH_DIR``, default /var/tmp), and this process

- creating ``--pods`` pods with 32 concurrent clients (timed: creates/s), then
  more, untimed, up to ``--list-items``, and listing them all (median of 5);
- then watching pods in a namespace of their own (``--watchers`` watchers,
  the API's watch endpoint as a client sees it) while one writer creates
  ``--watch-events`` pods there one after the other: the delay from just
  before each create's request to its event's arrival at each watcher, p50
  and p99 (the create's durable commit is part of it: the store acknowledges
  a write only once its event has gone through the store's watch hub), next
  to the creates' own round trips.

The creates and the watch are cut into 5 rounds and the lists are taken one
at a time, the stores taking turns (each going first in turn), so that a
shared machine's shifting load falls on all three alike; all three stores and
servers are up throughout.

The floor, in the same run and the same way, with fresh stores: the same
creates, list and watch straight into each store, without the API server (a
store watch read by a thread), every value one of the pods as the API server
returned it (~2.4 KB: defaults and managedFields make it about 12 times the
manifest); for etcd also ``--watch-events`` single puts of that value to
etcd's JSON gateway from one client, without the store, etcd's own mean
WAL fsync time (its ``/metrics``) over the store-alone phase, per member, and
the ranges and transactions etcd counts per create (50 creates by one writer,
through the API and straight into the store). etcd is a throwaway member on
127.0.0.1, or three (``LocalEtcdCluster``, each on its own ports; the store is
given all three endpoints, as in a lab), plain HTTP: the lab's TLS is left out
so the figure compares the stores, not the transports; started and stopped by
this script. Each figure is printed with its ratio to SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# bench/ is on sys.path: the scripts share helpers
from api_server import (
    CONCURRENCY,
    create_many,
    list_latency,
    pct,
    pod,
    start_server,
    wait_ready,
    watch_latency,
)

from netlab.client import Client
from netlab.master.store import open_store
from netlab.master.store.base import Store
from netlab.master.store.etcd_server import LocalEtcd, LocalEtcdCluster, member_status

WATCH_PREFIX = "/registry/pods/bench-watch/"
# Each phase is cut into rounds in which the stores take turns (each going first in
# turn), so that the load of a shared machine, which shifts by the minute, falls on
# all of them alike.
ROUNDS = 5
LISTS = 5


@dataclass
class Figures:
    rate: float = 0.0  # creates/s over the timed creates
    lists: list[float] = field(default_factory=list)  # seconds
    watch: list[float] = field(default_factory=list)  # create sent -> event received
    acks: list[float] = field(default_factory=list)  # create sent -> create acknowledged
    raw_puts: list[float] = field(default_factory=list)  # etcd gateway put round trips
    fsync: list[tuple[float, int]] = field(default_factory=list)  # per member: mean s, count
    ops: tuple[float, float] = (0.0, 0.0)  # etcd ranges and txns per create, one writer
    leaders: list[bool] = field(default_factory=list)  # per member: is it the leader
    sample: bytes = b""  # a pod as the API server returns it


async def ops_per_create(client: Client, endpoints: list[str], count: int = 50
                         ) -> tuple[float, float]:
    """etcd ranges and transactions per create through the API, one writer."""
    before = etcd_counters(endpoints)
    for i in range(count):
        await client.create(pod(f"ops{i}"), namespace="default")
    after = etcd_counters(endpoints)
    return ((after[0] - before[0]) / count, (after[1] - before[1]) / count)


def turns(round_: int) -> list[str]:
    """The stores in round ``round_``'s order: each goes first in turn."""
    k = round_ % len(BACKENDS)
    return [*BACKENDS[k:], *BACKENDS[:k]]


def chunks(items: list[str], count: int) -> list[list[str]]:
    size = -(-len(items) // count)
    return [items[i:i + size] for i in range(0, len(items), size)]


async def api_figures(servers: dict[str, tuple[str, list[str]]],
                      args: argparse.Namespace, total: int) -> dict[str, Figures]:
    """``servers``: store -> (the API server's socket, etcd endpoints or [])."""
    def factory(sock_path: str) -> Callable[[], Client]:
        return lambda: Client(unix_socket=sock_path, timeout=60)

    factories = {b: factory(sock_path) for b, (sock_path, _) in servers.items()}
    clients = {b: make() for b, make in factories.items()}
    out = {b: Figures() for b in servers}
    try:
        for client in clients.values():
            await wait_ready(client, timeout=60)
        names = [f"p{i}" for i in range(total)]
        spent = dict.fromkeys(servers, 0.0)
        for r, chunk in enumerate(chunks(names[:args.pods], ROUNDS)):
            for b in turns(r):
                spent[b] += len(chunk) / await create_many(clients[b], chunk)
        for b, client in clients.items():
            out[b].rate = args.pods / spent[b]
            if total > args.pods:
                await create_many(client, names[args.pods:])
        for r in range(LISTS):
            for b in turns(r):
                out[b].lists.append(await list_latency(clients[b], as_table=False, runs=1))
        for b, (_, endpoints) in servers.items():
            out[b].sample = json.dumps(await clients[b].get("pods", "p0", "default")).encode()
            if endpoints:
                out[b].ops = await ops_per_create(clients[b], endpoints)
        for r in range(ROUNDS):
            for b in turns(r):
                out[b].watch += await watch_latency(
                    factories[b], args.watchers, args.watch_events // ROUNDS,
                    acks=out[b].acks, prefix=f"w{r}-")
    finally:
        for client in clients.values():
            await client.close()
    return out


def store_watch(store: Store, value: bytes, events: int, out: Figures, round_: int) -> None:
    """One writer creating ``events`` keys one after the other; a thread reading a
    store watch timestamps each event as it gets it."""
    arrived: dict[str, float] = {}
    watch = store.watch(WATCH_PREFIX)

    def reader() -> None:
        while len(arrived) < events:
            ev = watch.get(timeout=60)
            if ev is None:
                return
            arrived[ev.kv.key] = time.perf_counter()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    sent: dict[str, float] = {}
    try:
        for i in range(events):
            key = f"{WATCH_PREFIX}r{round_}-w{i}"
            sent[key] = time.perf_counter()
            store.create(key, value)
            out.acks.append(time.perf_counter() - sent[key])
        thread.join(60)
    finally:
        watch.close()
    out.watch += [arrived[key] - sent[key] for key in sent]


def store_figures(specs: dict[str, tuple[str, list[str]]], args: argparse.Namespace,
                  total: int, value: bytes) -> dict[str, Figures]:
    """``specs``: store -> (its ``--store`` spec, etcd endpoints or []); every key
    gets ``value``."""
    out = {b: Figures() for b in specs}
    stores: dict[str, Store] = {}
    try:
        for b, (spec, _) in specs.items():
            stores[b] = open_store(spec)

        def create(b: str, keys: range) -> float:
            start = time.perf_counter()
            list(pool.map(lambda i: stores[b].create(f"/registry/pods/default/p{i}", value),
                          keys))
            return time.perf_counter() - start

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            spent = dict.fromkeys(specs, 0.0)
            size = -(-args.pods // ROUNDS)
            for r, first in enumerate(range(0, args.pods, size)):
                for b in turns(r):
                    spent[b] += create(b, range(first, min(first + size, args.pods)))
            for b in specs:
                out[b].rate = args.pods / spent[b]
                create(b, range(args.pods, total))
        for r in range(LISTS):
            for b in turns(r):
                start = time.perf_counter()
                stores[b].list("/registry/pods/default/")
                out[b].lists.append(time.perf_counter() - start)
        for b, (_, endpoints) in specs.items():
            if endpoints:
                before = etcd_counters(endpoints)
                for i in range(50):
                    stores[b].create(f"/registry/pods/default/ops{i}", value)
                after = etcd_counters(endpoints)
                out[b].ops = ((after[0] - before[0]) / 50, (after[1] - before[1]) / 50)
        for r in range(ROUNDS):
            for b in turns(r):
                store_watch(stores[b], value, args.watch_events // ROUNDS, out[b], r)
                endpoints = specs[b][1]
                if endpoints:  # the store's first endpoint, the one it talks to
                    out[b].raw_puts += gateway_puts(endpoints[0], args.watch_events // ROUNDS,
                                                    value)
        for b, (_, endpoints) in specs.items():
            out[b].fsync = [wal_fsync(e) for e in endpoints]
            out[b].leaders = [bool(member_status(e, None).get("leader")) for e in endpoints]
        return out
    finally:
        for store in stores.values():
            store.close()


def gateway_puts(endpoint: str, events: int, value: bytes) -> list[float]:
    """Round trips of single puts to etcd's JSON gateway, one client, one keep-alive
    connection: etcd's commit (raft, WAL fsync) plus the gateway, without the store."""
    url = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    encoded = base64.b64encode(value).decode()
    times = []
    try:
        for i in range(events):
            body = json.dumps({"key": base64.b64encode(f"/bench-raw/k{i}".encode()).decode(),
                               "value": encoded})
            start = time.perf_counter()
            conn.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - start)
            if response.status != 200:
                raise SystemExit(f"etcd put answered {response.status}")
    finally:
        conn.close()
    return times


def metrics(endpoint: str) -> dict[str, float]:
    """A member's Prometheus counters without labels (name -> value)."""
    values: dict[str, float] = {}
    with urllib.request.urlopen(endpoint + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            name, _, number = line.partition(" ")
            if name.startswith("etcd_") and "{" not in name:
                values[name] = float(number)
    return values


def etcd_counters(endpoints: list[str]) -> tuple[float, float]:
    """Ranges served (summed over members: a read is served by one) and transactions
    applied (the most of any member: every member applies every write)."""
    counted = [metrics(e) for e in endpoints]
    return (sum(m["etcd_mvcc_range_total"] for m in counted),
            max(m["etcd_mvcc_txn_total"] for m in counted))


def wal_fsync(endpoint: str) -> tuple[float, int]:
    """Mean WAL fsync time (s) and fsync count since the member started."""
    values = metrics(endpoint)
    count = int(values["etcd_disk_wal_fsync_duration_seconds_count"])
    return values["etcd_disk_wal_fsync_duration_seconds_sum"] / max(count, 1), count


BACKENDS = ("sqlite", "etcd", "etcd3")  # etcd3: a 3-member cluster


def start_stores(stack: contextlib.ExitStack, workdir: Path
                 ) -> dict[str, tuple[str, list[str]]]:
    """Every store, started (etcd members stop when ``stack`` closes): store ->
    (its ``--store`` spec, etcd endpoints or [])."""
    specs: dict[str, tuple[str, list[str]]] = {}
    for backend in BACKENDS:
        sub = workdir / backend
        sub.mkdir(parents=True)
        endpoints: list[str] = []
        if backend == "etcd":
            endpoints = [stack.enter_context(LocalEtcd(sub / "etcd")).endpoint]
        elif backend == "etcd3":
            endpoints = stack.enter_context(LocalEtcdCluster(sub / "etcd")).endpoints
        specs[backend] = (f"etcd:{','.join(endpoints)}" if endpoints
                          else f"sqlite:{sub / 'store.db'}", endpoints)
    return specs


def run_layer(workdir: Path, layer: str, args: argparse.Namespace, total: int,
              value: bytes = b"") -> dict[str, Figures]:
    """All three stores up at once, fresh, for one layer ("api" or "store")."""
    with contextlib.ExitStack() as stack:
        specs = start_stores(stack, workdir / layer)
        if layer == "store":
            return store_figures(specs, args, total, value)
        servers: dict[str, tuple[str, list[str]]] = {}
        for backend, (spec, endpoints) in specs.items():
            proc, sock_path = start_server(workdir / layer / backend, spec)
            stack.callback(proc.wait, timeout=10)
            stack.callback(proc.terminate)
            servers[backend] = (sock_path, endpoints)
        return asyncio.run(api_figures(servers, args, total))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=3000, help="timed concurrent creates")
    parser.add_argument("--list-items", type=int, default=10000,
                        help="pods in the list (created up to this many)")
    parser.add_argument("--watch-events", type=int, default=500)
    parser.add_argument("--watchers", type=int, default=1)
    args = parser.parse_args()
    total = max(args.pods, args.list_items)
    with open("/proc/loadavg") as f:
        load_start = f.read().split()[:3]
    figures: dict[str, dict[str, Figures]] = {"api": {}, "store": {}}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as tmp:
        figures["api"] = run_layer(Path(tmp), "api", args, total)
        # the floor stores pods the size the API server stores them (~2.4 KB, not the
        # ~0.2 KB of the manifest): a list's cost in etcd's gateway grows with the bytes
        value = figures["api"]["sqlite"].sample
        figures["store"] = run_layer(Path(tmp), "store", args, total, value)
    with open("/proc/loadavg") as f:
        load_end = f.read().split()[:3]
    print(f"load average {' '.join(load_start)} at start, {' '.join(load_end)} at end; "
          f"{time.monotonic() - started:.0f} s")
    print(f"creates/s over {args.pods} creates by {CONCURRENCY} concurrent writers, every "
          f"create durable; list of {total}, median of 5; watch: {args.watch_events} "
          f"creates by one writer, one at a time")
    for layer, what in (("api", f"through the API server ({args.watchers} watcher(s))"),
                        ("store", f"store alone, values of {len(value)} bytes (a pod as the "
                                  "API server returned it; a store watch read by a thread)")):
        base = figures[layer]["sqlite"]
        print(f"{what}:")
        for backend in BACKENDS:
            fig = figures[layer][backend]
            w50, w99 = pct(fig.watch, 0.5), pct(fig.watch, 0.99)
            listed, base_listed = statistics.median(fig.lists), statistics.median(base.lists)
            print(f"  {backend:6s} creates/s {fig.rate:6.0f} (x{fig.rate / base.rate:.2f})  "
                  f"list {total} {ms(listed)} (x{listed / base_listed:.1f})  "
                  f"watch p50 {ms(w50)} (x{w50 / pct(base.watch, 0.5):.1f}) "
                  f"p99 {ms(w99)} (x{w99 / pct(base.watch, 0.99):.1f})  "
                  f"create alone p50 {ms(pct(fig.acks, 0.5))} p99 {ms(pct(fig.acks, 0.99))}")
    print("etcd alone (one client, single puts to the JSON gateway; mean WAL fsync per member "
          "over the store-alone phase, the store's own member first):")
    for backend in BACKENDS[1:]:
        fig = figures["store"][backend]
        fsyncs = ", ".join(f"{mean * 1000:.2f} ms x {count}{' (leader)' if leader else ''}"
                           for (mean, count), leader in zip(fig.fsync, fig.leaders))
        ops = "; ".join(f"{where} {ranges:.1f} ranges, {txns:.1f} txns"
                        for where, (ranges, txns) in (("API", figures["api"][backend].ops),
                                                      ("store", fig.ops)))
        print(f"  {backend:6s} put p50 {ms(pct(fig.raw_puts, 0.5))} "
              f"p99 {ms(pct(fig.raw_puts, 0.99))}   WAL fsync {fsyncs}   "
              f"per create (etcd's counts): {ops}")


if __name__ == "__main__":
    main()
