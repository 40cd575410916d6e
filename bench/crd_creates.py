#!/usr/bin/env python3
"""Custom-object creates/s against Pod creates/s, through the API, in the same run.

Run:  .venv/bin/python bench/crd_creates.py [--objects 2000] [--rounds 2]

The API server runs as its own process on a unix socket with the SQLite store on
disk, as in ``bench/api_server.py`` (whose helpers this reuses). A CRD with a
structural schema (types, bounds, a pattern, a default, a status subresource and
printer columns) is created and awaited until Established; then rounds alternate
Pod creates and custom-object creates (32 concurrent clients each), so both see
the same machine load. The figure is the ratio of the two rates (target >= 0.8):
schema validation, pruning and defaulting must cost no more than the built-in
Pod path (defaulting, validation, admission).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from api_server import CONCURRENCY, pod, start_server, wait_ready

from netlab.client import Client

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/bench.example.com/v1/namespaces/default/widgets"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.bench.example.com"},
    "spec": {
        "group": "bench.example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "required": ["size", "image"], "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 100},
                    "image": {"type": "string", "pattern": "^[a-z/]+$"},
                    "env": {"type": "array", "items": {
                        "type": "object", "required": ["name"], "properties": {
                            "name": {"type": "string"}, "value": {"type": "string"}}}},
                    "mode": {"type": "string", "enum": ["a", "b"], "default": "a"}}},
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
            }}},
        }],
    },
}


def widget(name: str) -> dict:
    return {"apiVersion": "bench.example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"size": 3, "image": "netlab/echo", "env": [{"name": "A", "value": "1"}]}}


async def rate(names: list[str], create) -> float:  # type: ignore[no-untyped-def]
    queue = list(names)

    async def worker() -> None:
        while queue:
            await create(queue.pop())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(names) / (time.perf_counter() - start)


async def established(client: Client, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        crd = await client.request("GET", f"{CRDS}/widgets.bench.example.com")
        if any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or []):
            return
        if time.monotonic() > deadline:
            raise SystemExit("the CRD was not established")
        await asyncio.sleep(0.05)  # probe interval


async def run(args: argparse.Namespace, sock_path: str) -> None:
    async with Client(unix_socket=sock_path, timeout=60) as client:
        await wait_ready(client)
        await client.request("POST", CRDS, body=CRD)
        await established(client)
        pods: list[float] = []
        crs: list[float] = []
        for r in range(args.rounds):
            names = [f"r{r}-{i}" for i in range(args.objects)]
            pods.append(await rate(names, lambda n: client.create(pod(n), namespace="default")))
            crs.append(await rate(names, lambda n: client.request("POST", WIDGETS,
                                                                   body=widget(n))))
        pod_rate, cr_rate = sum(pods) / len(pods), sum(crs) / len(crs)
        print(f"creates ({args.rounds} rounds x {args.objects} objects each, {CONCURRENCY} "
              "concurrent, durable):")
        for r, (p, c) in enumerate(zip(pods, crs)):
            print(f"  round {r + 1}: Pods {p:7.0f}/s   Widgets {c:7.0f}/s   ratio {c / p:.2f}")
        print(f"  mean:    Pods {pod_rate:7.0f}/s   Widgets {cr_rate:7.0f}/s   "
              f"ratio CR/Pod {cr_rate / pod_rate:.2f}   (target >= 0.8)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as tmp:
        proc, sock_path = start_server(Path(tmp))
        try:
            asyncio.run(run(args, sock_path))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
