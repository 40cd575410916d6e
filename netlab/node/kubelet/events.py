"""Events: what happened to a pod or the node, and why, as core/v1 Event objects.

``EventRecorder`` is the kubelet's event broadcaster in small. Recording never
blocks the caller: an event joins a queue and is posted in the background, so
a pod worker never waits on the API for an event. Repeats are aggregated as
client-go's EventCorrelator does: the same object, reason, message and source
within ten minutes bumps ``count`` and ``lastTimestamp`` of the existing Event
(one PATCH) instead of creating another, which keeps a crash loop or a failing
probe from flooding the API. Events are sharded by that key over a few sender
tasks, so the order for one key is kept while different keys go in parallel.
A full queue drops events (and says so in the log), as client-go does: they
are informative, never load-bearing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

import aiohttp

from netlab.api.timefmt import format_time
from netlab.client import APIError, Client

log = logging.getLogger("netlab.kubelet.events")

NORMAL, WARNING = "Normal", "Warning"
AGGREGATE_WINDOW = 600.0  # seconds, as the EventCorrelator's
QUEUE_LIMIT = 1000


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    name: str
    namespace: str
    uid: str
    api_version: str = "v1"
    field_path: str = ""

    def to_api(self) -> dict[str, Any]:
        ref = {"kind": self.kind, "name": self.name, "namespace": self.namespace,
               "uid": self.uid, "apiVersion": self.api_version}
        if self.field_path:
            ref["fieldPath"] = self.field_path
        return ref


def pod_ref(pod: dict[str, Any], container: Optional[str] = None,
            init: bool = False) -> ObjectRef:
    meta = pod.get("metadata") or {}
    path = ""
    if container:
        path = f"spec.{'initContainers' if init else 'containers'}{{{container}}}"
    return ObjectRef("Pod", meta.get("name", ""), meta.get("namespace") or "default",
                     meta.get("uid", ""), field_path=path)


def node_ref(node: str) -> ObjectRef:
    # Kubernetes refers to a node in its events with the node's name as uid.
    return ObjectRef("Node", node, "default", node)


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    first: str
    last_at: float


class EventRecorder:
    def __init__(self, client: Client, host: str, component: str = "kubelet",
                 shards: int = 3) -> None:
        self.client = client
        self.host = host
        self.component = component
        self._queues: list[asyncio.Queue] = [asyncio.Queue() for _ in range(shards)]
        self._seen: dict[tuple, _Seen] = {}
        self._tasks: list[asyncio.Task] = []
        self.dropped = 0

    def record(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        key = (ref.kind, ref.namespace, ref.name, ref.uid, ref.field_path, type_, reason,
               message)
        queue = self._queues[hash(key) % len(self._queues)]
        if queue.qsize() >= QUEUE_LIMIT:
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("event queue full: dropped %d events so far", self.dropped)
            return
        queue.put_nowait((key, ref, type_, reason, message, time.time()))

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._send_loop(q)) for q in self._queues]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout``) until every queued event is sent (tests, shutdown)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues)), timeout)

    async def _send_loop(self, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            try:
                await self._send(*item)
            except asyncio.CancelledError:
                raise
            except (APIError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
                log.info("event %s/%s not recorded: %s", item[1].name, item[3], err)
            except Exception:
                log.exception("event %s/%s failed", item[1].name, item[3])
            finally:
                queue.task_done()

    async def _send(self, key: tuple, ref: ObjectRef, type_: str, reason: str, message: str,
                    at: float) -> None:
        stamp = format_time_epoch(at)
        seen = self._seen.get(key)
        if seen is not None and at - seen.last_at < AGGREGATE_WINDOW:
            seen.count += 1
            seen.last_at = at
            try:
                await self.client.patch("events", seen.name, {
                    "count": seen.count, "lastTimestamp": stamp}, seen.namespace)
                return
            except APIError as err:
                if not err.not_found:
                    raise
                # Deleted meanwhile (namespace gone, or expired): record it afresh.
        name = f"{ref.name}.{time.time_ns():x}"
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ref.namespace},
            "involvedObject": ref.to_api(), "reason": reason, "message": message,
            "type": type_, "source": {"component": self.component, "host": self.host},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "eventTime": None, "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        await self.client.create(event)
        self._seen[key] = _Seen(name, ref.namespace, 1, stamp, at)
        if len(self._seen) > 4096:
            cutoff = at - AGGREGATE_WINDOW
            self._seen = {k: v for k, v in self._seen.items() if v.last_at >= cutoff}


def format_time_epoch(epoch: float) -> str:
    return format_time(datetime.fromtimestamp(epoch, timezone.utc))
