"""Events the controllers record: ``kubectl describe`` shows why things happened.

Kubernetes' controllers tell users what they did through core/v1 Events
(``ScalingReplicaSet``, ``SuccessfulCreate``, ``SuccessfulRescale``,
``Completed``...), attached to the object they acted for. ``EventRecorder`` is
client-go's broadcaster in small: recording never blocks a reconcile (the
event joins a bounded queue a background task drains), and a repeat of the
same reason and message for the same object within ten minutes bumps the
existing Event's ``count`` instead of creating another, as the
EventCorrelator does. Events are informative, never load-bearing: a full
queue or a failed write is logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from netlab.api.objects import timestamp
from netlab.client import APIError, Client

log = logging.getLogger("netlab.controllers.events")

NORMAL, WARNING = "Normal", "Warning"
AGGREGATE_WINDOW = 600.0
QUEUE_LIMIT = 2000
SENDERS = 2


class EventRecorder:
    """Posts Events in the background; ``for_component`` gives each controller its name."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], str, str, str]] = \
            asyncio.Queue(QUEUE_LIMIT)
        # (uid, reason, message) -> (namespace, event name, count, first seen)
        self._seen: dict[tuple[str, str, str], tuple[str, str, int, float]] = {}
        self._tasks: list[asyncio.Task] = []

    def for_component(self, component: str) -> ComponentRecorder:
        return ComponentRecorder(self, component)

    def record(self, component: str, obj: Mapping[str, Any], etype: str, reason: str,
               message: str) -> None:
        meta = obj.get("metadata") or {}
        ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
               "name": meta.get("name", ""), "uid": meta.get("uid", "")}
        if meta.get("namespace"):
            ref["namespace"] = meta["namespace"]
        if meta.get("resourceVersion"):
            ref["resourceVersion"] = meta["resourceVersion"]
        try:
            self._queue.put_nowait((component, ref, etype, reason, message))
        except asyncio.QueueFull:
            log.warning("event queue full; dropping %s %s for %s", reason, message, ref["name"])

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._send_loop()) for _ in range(SENDERS)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _send_loop(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._send(*item)
            except (APIError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                log.info("could not record event %s: %s", item[3], exc)

    async def _send(self, component: str, ref: dict[str, Any], etype: str, reason: str,
                    message: str) -> None:
        now = time.monotonic()
        key = (ref["uid"], reason, message)
        namespace = ref.get("namespace") or "default"
        seen = self._seen.get(key)
        stamp = timestamp()
        if seen is not None and now - seen[3] < AGGREGATE_WINDOW:
            _, name, count, first = seen
            try:
                await self.client.patch("events", name, {"count": count + 1,
                                                         "lastTimestamp": stamp}, namespace)
                self._seen[key] = (namespace, name, count + 1, first)
                return
            except APIError as err:
                if not err.not_found:
                    raise
        if len(self._seen) > 5000:  # forget the oldest half; aggregation is best effort
            for old in sorted(self._seen, key=lambda k: self._seen[k][3])[:2500]:
                del self._seen[old]
        name = f"{ref['name']}.{time.time_ns():x}"
        await self.client.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref, "reason": reason, "message": message, "type": etype,
            "source": {"component": component}, "firstTimestamp": stamp,
            "lastTimestamp": stamp, "count": 1, "reportingComponent": component,
            "reportingInstance": component}, namespace=namespace)
        self._seen[key] = (namespace, name, 1, now)


class ComponentRecorder:
    """An ``EventRecorder`` bound to one controller's name (the event ``source``)."""

    def __init__(self, recorder: EventRecorder, component: str) -> None:
        self._recorder = recorder
        self.component = component

    def normal(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self._recorder.record(self.component, obj, NORMAL, reason, message)

    def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self._recorder.record(self.component, obj, WARNING, reason, message)
