"""An in-process cluster for the controller tests: the real API server (memory store)
on 127.0.0.1, the real controller manager on the real client, and the small helpers
a test needs to play the parts that are not there (scheduler and kubelet)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, Callable, Optional

from aiohttp.test_utils import TestServer

from netlab.api.objects import timestamp
from netlab.client import APIError, Client
from netlab.master.apiserver import Config, make_app
from netlab.master.controllers.base import Options
from netlab.master.controllers.manager import ControllerManager
from netlab.master.store import MemoryStore

TOKEN = "controllers-test-token"


@dataclass
class Cluster:
    client: Client
    manager: ControllerManager

    async def pods(self, namespace: str = "default", selector: Optional[str] = None,
                   live_only: bool = True) -> list[dict[str, Any]]:
        items = (await self.client.list("pods", namespace, label_selector=selector))["items"]
        if live_only:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return items


@contextlib.asynccontextmanager
async def cluster(options: Optional[Options] = None,
                  controllers: Optional[list[str]] = None) -> AsyncIterator[Cluster]:
    store = MemoryStore()
    app = make_app(store, Config(tokens={TOKEN}, builtin_gc=False,
                                 builtin_namespace_deleter=False))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = Client(f"http://127.0.0.1:{server.port}", token=TOKEN)
    manager = ControllerManager(client, options or Options(), controllers)
    task = asyncio.ensure_future(manager.run())
    try:
        await asyncio.wait_for(manager.synced.wait(), 10)
        yield Cluster(client, manager)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
        await server.close()
        store.close()


async def eventually(probe: Callable[[], Awaitable[Any]], timeout: float = 10.0,
                     what: str = "the condition") -> Any:
    """Probe until truthy (a deadline, not a guess); fail with ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} "
                                 f"(last: {last!r})")
        await asyncio.sleep(0.02)  # the probe interval


def deployment(name: str, replicas: int = 1, image: str = "netlab/echo",
               **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": spec.pop("namespace", "default")},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}},
                     **spec}}


async def set_pod_state(client: Client, pod: dict[str, Any], *, ready: bool = True,
                        phase: str = "Running", ip: Optional[str] = None,
                        node: Optional[str] = None) -> Optional[dict[str, Any]]:
    """Play the kubelet for one pod: phase, Ready condition, IP."""
    meta = pod["metadata"]
    try:
        fresh = await client.get("pods", meta["name"], meta["namespace"])
    except APIError as err:
        if err.not_found:
            return None
        raise
    status = dict(fresh.get("status") or {})
    status["phase"] = phase
    stamp = timestamp()
    status.setdefault("startTime", stamp)
    status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                             "lastTransitionTime": stamp}]
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if node:
        fresh["spec"]["nodeName"] = node
    try:
        return await client.update({**fresh, "status": status}, subresource="status")
    except APIError as err:
        if err.not_found or err.conflict:
            return None
        raise


class FakeKubelet:
    """Plays every kubelet at once: pods become Running and Ready (with an IP) as soon as
    they appear, unless ``ready`` says otherwise; Job pods can be finished on demand."""

    def __init__(self, client: Client, ready: Callable[[dict[str, Any]], bool] = lambda p: True,
                 node: str = "node-a") -> None:
        self.client = client
        self.ready = ready
        self.node = node
        self._task: Optional[asyncio.Task] = None
        self._next_ip = 10
        self.seen: set[str] = set()

    async def __aenter__(self) -> FakeKubelet:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        listing = await self.client.list("pods")
        rv = listing["metadata"]["resourceVersion"]
        for pod in listing["items"]:
            await self._handle(pod)
        while True:
            async for event in self.client.watch("pods", resource_version=rv):
                obj = event["object"]
                rv = obj["metadata"].get("resourceVersion", rv)
                if event["type"] in ("ADDED", "MODIFIED"):
                    await self._handle(obj)

    async def _handle(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self.seen or pod["metadata"].get("deletionTimestamp"):
            return
        self.seen.add(uid)
        self._next_ip += 1
        await set_pod_state(self.client, pod, ready=self.ready(pod),
                            ip=f"10.244.1.{self._next_ip % 250 + 2}")


class ReadyTracker:
    """Follows pods matching ``selector`` through a watch and records, after every event,
    how many are ready and not terminating, and how many exist: exact, per revision."""

    def __init__(self, client: Client, selector: str, namespace: str = "default") -> None:
        self.client = client
        self.selector = selector
        self.namespace = namespace
        self.pods: dict[str, dict[str, Any]] = {}
        self.ready_counts: list[int] = []
        self.totals: list[int] = []
        self._task: Optional[asyncio.Task] = None
        self._started = asyncio.Event()

    async def __aenter__(self) -> ReadyTracker:
        self._task = asyncio.ensure_future(self._run())
        await self._started.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def _record(self) -> None:
        live = [p for p in self.pods.values() if not p["metadata"].get("deletionTimestamp")]
        self.totals.append(len(live))
        self.ready_counts.append(sum(1 for p in live if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or [])))

    async def _run(self) -> None:
        listing = await self.client.list("pods", self.namespace, label_selector=self.selector)
        rv = listing["metadata"]["resourceVersion"]
        self.pods = {p["metadata"]["name"]: p for p in listing["items"]}
        self._record()
        self._started.set()
        while True:
            async for event in self.client.watch("pods", self.namespace, resource_version=rv,
                                                 label_selector=self.selector):
                obj = event["object"]
                rv = obj["metadata"].get("resourceVersion", rv)
                if event["type"] == "DELETED":
                    self.pods.pop(obj["metadata"]["name"], None)
                elif event["type"] in ("ADDED", "MODIFIED"):
                    self.pods[obj["metadata"]["name"]] = obj
                else:
                    continue
                self._record()
