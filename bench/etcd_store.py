#!/usr/bin/env python3
"""etcd (1 and 3 members) against SQLite as the API server's store: durable
creates/s and list latency.

Run:  .venv/bin/python bench/etcd_store.py [--pods 3000]

In one run, for each store: the API server as its own process (as the
supervisor starts it) on a unix socket, the store on disk (``BENCH_DIR``,
default /var/tmp), and this process creating ``--pods`` pods with 32
concurrent clients, then listing them (median of 5). The same creates and
list straight into each store, without the API server, are the floor. etcd is
a throwaway member on 127.0.0.1, or three (``LocalEtcdCluster``, each on its
own ports; the store is given all three endpoints, as in a lab), plain HTTP:
the lab's TLS is left out so the figure compares the stores, not the
transports; started and stopped by this script. Each figure is printed with
its ratio to SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from api_server import pod, start_server  # bench/ is on sys.path: scripts share helpers

from netlab.client import Client
from netlab.master.store import open_store
from netlab.master.store.etcd_server import LocalEtcd, LocalEtcdCluster

CONCURRENCY = 32


async def api_figures(sock_path: str, count: int) -> tuple[float, float]:
    async with Client(unix_socket=sock_path, timeout=60) as client:
        deadline = time.monotonic() + 60
        while not await client.readyz():
            if time.monotonic() > deadline:
                raise SystemExit("the API server did not become ready")
            await asyncio.sleep(0.05)  # probe interval
        queue = [f"p{i}" for i in range(count)]

        async def worker() -> None:
            while queue:
                await client.create(pod(queue.pop()), namespace="default")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        rate = count / (time.perf_counter() - start)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            await client.list("pods", "default")
            times.append(time.perf_counter() - start)
        return rate, statistics.median(times)


def store_figures(spec: str, count: int) -> tuple[float, float]:
    store = open_store(spec)
    value = json.dumps(pod("x")).encode()
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda i: store.create(f"/registry/pods/default/p{i}", value),
                          range(count)))
        rate = count / (time.perf_counter() - start)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            store.list("/registry/pods/")
            times.append(time.perf_counter() - start)
        return rate, statistics.median(times)
    finally:
        store.close()


BACKENDS = ("sqlite", "etcd", "etcd3")  # etcd3: a 3-member cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=3000)
    args = parser.parse_args()
    n = args.pods
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as tmp:
        workdir = Path(tmp)
        figures: dict[str, dict[str, tuple[float, float]]] = {"api": {}, "store": {}}
        for backend in BACKENDS:
            for layer in ("api", "store"):
                sub = workdir / f"{backend}-{layer}"
                sub.mkdir()
                etcd: LocalEtcd | LocalEtcdCluster | None = None
                if backend == "etcd":
                    etcd = LocalEtcd(sub / "etcd")
                elif backend == "etcd3":
                    etcd = LocalEtcdCluster(sub / "etcd")
                try:
                    if isinstance(etcd, LocalEtcd):
                        spec = f"etcd:{etcd.start().endpoint}"
                    elif isinstance(etcd, LocalEtcdCluster):
                        spec = f"etcd:{','.join(etcd.start().endpoints)}"
                    else:
                        spec = f"sqlite:{sub / 'store.db'}"
                    if layer == "store":
                        figures[layer][backend] = store_figures(spec, n)
                        continue
                    proc, sock_path = start_server(sub, spec)
                    try:
                        figures[layer][backend] = asyncio.run(api_figures(sock_path, n))
                    finally:
                        proc.terminate()
                        proc.wait(timeout=10)
                finally:
                    if etcd:
                        etcd.stop()
    print(f"{n} pods, {CONCURRENCY} concurrent writers, every create durable")
    for layer, what in (("api", "through the API server"), ("store", "store alone")):
        s_rate, s_list = figures[layer]["sqlite"]
        print(f"{what}:")
        for backend in BACKENDS:
            rate, listed = figures[layer][backend]
            print(f"  {backend:6s} creates/s {rate:7.0f} (x{rate / s_rate:.2f})   "
                  f"list {n} {listed * 1000:5.0f} ms (x{listed / s_list:.2f})")


if __name__ == "__main__":
    main()
