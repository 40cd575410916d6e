"""Events: what a component did and why, as core/v1 Event objects.

What ``kubectl describe`` and ``kubectl get events`` show is how a user learns
why a pod is Pending, was evicted or restarts, so every component (the
scheduler, each controller, the kubelets) records core/v1 Events through this
one recorder, the way client-go's broadcaster does:

- recording never blocks the caller: the event joins a queue and sender tasks
  post it (the scheduling loop never waits on the API for an event);
- repeats are aggregated: the same object, reason and message within ten
  minutes bumps ``count`` and ``lastTimestamp`` of the Event already posted
  (one PATCH), so a pod retried for an hour leaves one FailedScheduling event,
  not hundreds;
- events are sharded by that key over a few senders, keeping the order of
  each key while different keys go in parallel;
- a full queue drops events and says so in the log: events inform, they never
  carry state;
- a component may make its events yield to its own work (``defer``): each event
  then waits, at most ``max_defer`` seconds after it was recorded, until ``defer``
  returns (the kubelet's start slots having room, ``kubelet.startgate``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

import aiohttp

from netlab.api.timefmt import format_time
from netlab.api.views import meta_of
from netlab.client import APIError, Client

log = logging.getLogger("netlab.events")

NORMAL, WARNING = "Normal", "Warning"
AGGREGATE_WINDOW = 600.0  # seconds, as client-go's EventCorrelator
QUEUE_LIMIT = 10000
MAX_DEFER = 2.0  # seconds an event may wait for ``defer`` after it was recorded
PRUNE_AT = 4096  # aggregation entries kept before old ones are dropped


def ref_of(obj: dict[str, Any]) -> dict[str, Any]:
    """An ``involvedObject`` reference to a Pod or Node."""
    meta = meta_of(obj)
    kind = obj.get("kind") or ("Pod" if meta.get("namespace") else "Node")
    ref = {"kind": kind, "apiVersion": obj.get("apiVersion") or "v1",
           "name": meta.get("name", ""), "uid": meta.get("uid", "")}
    if kind == "Node":
        ref["uid"] = meta.get("name", "")  # Kubernetes refers to nodes by name in events
    else:
        ref["namespace"] = meta.get("namespace") or "default"
    if meta.get("resourceVersion"):
        ref["resourceVersion"] = meta["resourceVersion"]
    return ref


@dataclass
class _Posted:
    name: str
    namespace: str
    count: int
    last_at: float


class EventRecorder:
    """Posts Events for ``component`` (``source.component``, ``reportingComponent``)."""

    def __init__(self, client: Client, component: str, host: str = "",
                 senders: int = 4) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._queues: list[asyncio.Queue] = [asyncio.Queue() for _ in range(senders)]
        self._posted: dict[tuple, _Posted] = {}
        self._prune_at = PRUNE_AT
        self._tasks: list[asyncio.Task] = []
        self.dropped = 0
        # Awaited with the seconds an event may still wait before it is posted.
        self.defer: Optional[Callable[[float], Awaitable[None]]] = None
        self.max_defer = MAX_DEFER

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str,
              aggregate: bool = True) -> None:
        """Record an event about ``obj``; ``aggregate=False`` for one that cannot repeat
        (``Scheduled``), which then costs no memory here."""
        self.emit(ref_of(obj), type_, reason, message, aggregate)

    def emit(self, ref: dict[str, Any], type_: str, reason: str, message: str,
             aggregate: bool = True) -> None:
        """Record an event about the object ``ref`` (an ``involvedObject`` reference,
        e.g. with a ``fieldPath`` naming one container)."""
        key = (ref["kind"], ref.get("namespace", ""), ref["name"], ref["uid"],
               ref.get("fieldPath", ""), type_, reason, message) if aggregate else None
        queue = self._queues[hash((ref.get("namespace"), ref["name"])) % len(self._queues)]
        if queue.qsize() >= QUEUE_LIMIT:
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("event queue full: %d events dropped so far", self.dropped)
            return
        queue.put_nowait((key, ref, type_, reason, message, time.time()))
        if not self._tasks:
            self.start()

    def normal(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, WARNING, reason, message)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.ensure_future(self._send_loop(q)) for q in self._queues]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout``) until every queued event is posted."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues)), timeout)

    async def _send_loop(self, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            try:
                if self.defer is not None:
                    recorded = item[5]
                    await self.defer(min(self.max_defer,
                                         recorded + self.max_defer - time.time()))
                await self._send(*item)
            except asyncio.CancelledError:
                raise
            except (APIError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
                log.info("event %s %s not recorded: %s", item[1]["name"], item[3], err)
            except Exception:
                log.exception("event %s %s failed", item[1]["name"], item[3])
            finally:
                queue.task_done()

    async def _send(self, key: Optional[tuple], ref: dict[str, Any], type_: str, reason: str,
                    message: str, at: float) -> None:
        stamp = format_time(datetime.fromtimestamp(at, timezone.utc))
        namespace = ref.get("namespace") or "default"
        posted = self._posted.get(key) if key is not None else None
        if posted is not None and at - posted.last_at < AGGREGATE_WINDOW:
            posted.count += 1
            posted.last_at = at
            try:
                await self.client.patch("events", posted.name, {
                    "count": posted.count, "lastTimestamp": stamp}, posted.namespace)
                return
            except APIError as err:
                if not err.not_found:
                    raise  # deleted meanwhile (its namespace went): post it afresh
        name = f"{ref['name']}.{time.time_ns():x}"
        await self.client.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref, "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host
                                                        else {})},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host or
            self.component})
        if key is None:
            return
        self._posted[key] = _Posted(name, namespace, 1, at)
        if len(self._posted) > self._prune_at:
            cutoff = at - AGGREGATE_WINDOW
            self._posted = {k: v for k, v in self._posted.items() if v.last_at >= cutoff}
            # Amortised: prune again only once the table has doubled.
            self._prune_at = max(PRUNE_AT, 2 * len(self._posted))
