#!/usr/bin/env python3
"""API server figures: durable creates/s, list latency at 10,000 pods, watch delivery.

Run:  .venv/bin/python bench/api_server.py [--pods 10000] [--watchers 100]

The API server runs as its own process (``python -m netlab.master.apiserver``),
exactly as the supervisor starts it, on a unix socket, with the SQLite store on
disk; the load comes from this process over that socket. Each figure is printed
with a baseline measured in the same run, as a ratio:

- creates/s through the API vs. creates/s straight into a SQLite store (the
  floor the API adds HTTP, JSON, defaulting and validation on top of);
- list latency of 10,000 pods (JSON and Table) vs. listing the same 10,000 keys
  from a store directly;
- watch delivery latency (create sent -> event received, so the create's own
  durable commit is included) at every one of 100 watchers vs. 1 watcher.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netlab.client import APIError, Client
from netlab.master.store import open_store

CONCURRENCY = 32


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "netlab/echo",
                                     "env": [{"name": "A", "value": "1"}]}]}}


def start_server(workdir: Path, store: str | None = None) -> tuple[subprocess.Popen, str]:
    """An API server on a unix socket in ``workdir``, over ``store`` (a ``--store``
    spec; default a SQLite file in ``workdir``)."""
    sock_path = str(workdir / "api.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(512)
    server.set_inheritable(True)
    (workdir / "token").write_text("bench\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netlab.master.apiserver", "--lab", "bench",
         "--unix-fd", str(server.fileno()), "--token-file", str(workdir / "token"),
         "--store", store or f"sqlite:{workdir / 'store.db'}"],
        pass_fds=(server.fileno(),), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server.close()
    return proc, sock_path


async def wait_ready(client: Client, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await client.readyz():
        if time.monotonic() > deadline:
            raise SystemExit("the API server did not become ready")
        await asyncio.sleep(0.05)  # probe interval


async def create_many(client: Client, names: list[str]) -> float:
    queue = list(names)

    async def worker() -> None:
        while queue:
            await client.create(pod(queue.pop()), namespace="default")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(names) / (time.perf_counter() - start)


def store_baseline(workdir: Path, count: int) -> tuple[float, float]:
    """Creates/s (32 threads) and list time of ``count`` keys, straight into a store."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    store = open_store(f"sqlite:{workdir / 'baseline.db'}")
    value = json.dumps(pod("x")).encode()
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda i: store.create(f"/registry/pods/default/p{i}", value),
                          range(count)))
        rate = count / (time.perf_counter() - start)
        start = time.perf_counter()
        store.list("/registry/pods/")
        return rate, time.perf_counter() - start
    finally:
        store.close()


async def list_latency(client: Client, as_table: bool, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await client.list("pods", "default", as_table=as_table)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def watch_latency(client_factory, watchers: int, events: int = 50,
                        acks: list[float] | None = None, prefix: str = "w") -> list[float]:
    """Per-(event, watcher) delay from sending the create to delivery of its event
    (the create's own round trip included: events can arrive before its response).
    ``acks``, if given, receives each create's own round trip (sent -> response), the
    part of the delay that is the write itself. The pods are named ``prefix`` + a
    number, so that repeated calls on one server do not collide."""
    clients = [client_factory() for _ in range(watchers)]
    received: list[dict[str, float]] = [{} for _ in range(watchers)]
    ready = [asyncio.Event() for _ in range(watchers)]
    done = asyncio.Event()

    async def watch(i: int) -> None:
        rv = (await clients[i].list("pods", "bench-watch"))["metadata"]["resourceVersion"]
        ready[i].set()
        async for event in clients[i].watch("pods", "bench-watch", resource_version=rv):
            if event["type"] == "ADDED":
                received[i][event["object"]["metadata"]["name"]] = time.perf_counter()
                if len(received[i]) == events and all(len(r) == events for r in received):
                    done.set()

    writer = client_factory()
    with contextlib.suppress(APIError):
        await writer.create({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "bench-watch"}})
    tasks = [asyncio.ensure_future(watch(i)) for i in range(watchers)]
    await asyncio.gather(*(r.wait() for r in ready))
    sent: dict[str, float] = {}
    for n in range(events):
        name = f"{prefix}{watchers}-{n}"
        sent[name] = time.perf_counter()
        await writer.create(pod(name), namespace="bench-watch")
        if acks is not None:
            acks.append(time.perf_counter() - sent[name])
    await asyncio.wait_for(done.wait(), 60)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in [*clients, writer]:
        await c.close()
    for name in sent:
        await writer.delete("pods", name, "bench-watch", grace_period=0)
    await writer.close()
    return [r[name] - sent[name] for r in received for name in sent]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(args: argparse.Namespace, workdir: Path, sock_path: str) -> None:
    def factory() -> Client:
        return Client(unix_socket=sock_path, timeout=60)

    async with factory() as client:
        await wait_ready(client)
        api_rate = await create_many(client, [f"p{i}" for i in range(args.pods)])
        store_rate, store_list = store_baseline(workdir, args.pods)
        print(f"creates ({args.pods} pods, {CONCURRENCY} concurrent, durable):")
        print(f"  API {api_rate:7.0f}/s   store alone {store_rate:7.0f}/s   "
              f"ratio API/store {api_rate / store_rate:.2f}   (target >= 500/s)")
        json_list = await list_latency(client, as_table=False)
        table_list = await list_latency(client, as_table=True)
        print(f"list of {args.pods} pods (median of 5):")
        print(f"  JSON {json_list * 1000:6.0f} ms   Table {table_list * 1000:6.0f} ms   "
              f"store alone {store_list * 1000:6.0f} ms   ratio JSON/store "
              f"{json_list / store_list:.1f}   (target <= 1 s)")
    one = await watch_latency(factory, 1)
    many = await watch_latency(factory, args.watchers)
    print(f"watch delivery, create sent -> event received ({len(many)} deliveries):")
    print(f"  {args.watchers} watchers p50 {pct(many, 0.5) * 1000:5.1f} ms  "
          f"p99 {pct(many, 0.99) * 1000:5.1f} ms   1 watcher p50 {pct(one, 0.5) * 1000:5.1f} ms  "
          f"p99 {pct(one, 0.99) * 1000:5.1f} ms   ratio p99 "
          f"{pct(many, 0.99) / max(pct(one, 0.99), 1e-6):.1f}   (target p99 <= 20 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--watchers", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as tmp:
        workdir = Path(tmp)
        proc, sock_path = start_server(workdir)
        try:
            asyncio.run(run(args, workdir, sock_path))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
