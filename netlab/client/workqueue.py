"""Work queues and the controller loop: client-go's controller pattern, in asyncio.

A controller watches objects through shared informers, turns every change into
a key (``namespace/name``) on its queue, and reconciles one key at a time:
read the desired state from the caches, compare with the world, act through
the API. The queue makes that safe and cheap:

- a key waiting in the queue is never added twice (a burst of events costs
  one reconcile);
- a key being reconciled is never handed to a second worker; if it changes
  meanwhile it is reconciled once more afterwards;
- a failed reconcile is retried with per-key exponential backoff;
- ``add_after`` schedules a key for later (a grace period, a probe window);
- keys come out in the order they went in, or, with an ``order`` function,
  lowest ``order(key)`` first and in the order they went in among equals (the
  scheduler's pods, highest priority first).

Every component built on it (scheduler, controller manager, kubelet, proxy)
therefore converges after any restart or lost race by simply reconciling again.
``run_together`` runs a set of such loops (workers, controllers) as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Hashable, Iterable
from typing import Any, Callable, Optional

from netlab.client.http import Client
from netlab.client.informer import Informer

log = logging.getLogger("netlab.controller")

BACKOFF_START, BACKOFF_MAX = 0.05, 30.0


class WorkQueue:
    """A deduplicating, rate-limited queue of keys; ``order`` sorts the waiting keys."""

    def __init__(self, order: Optional[Callable[[Hashable], Any]] = None) -> None:
        self._order = order
        self._queue: asyncio.Queue[Any] = asyncio.PriorityQueue() if order else asyncio.Queue()
        self._seq = 0  # ties in order(key) go first in, first out
        self._waiting: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}

    def add(self, key: Hashable) -> None:
        if key in self._processing:
            self._dirty.add(key)  # run again once the current reconcile ends
            return
        if key in self._waiting:
            return
        self._waiting.add(key)
        if self._order is None:
            self._queue.put_nowait(key)
        else:
            self._seq += 1
            self._queue.put_nowait((self._order(key), self._seq, key))

    def add_after(self, key: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        timer = self._timers.get(key)
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if timer is not None and timer.when() <= due:
            return  # an earlier wake-up is already scheduled
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def retry(self, key: Hashable) -> float:
        """Schedule a failed key again with exponential backoff; return the delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(BACKOFF_START * (2 ** failures), BACKOFF_MAX)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    async def get(self) -> Hashable:
        item = await self._queue.get()
        key: Hashable = item if self._order is None else item[2]
        self._waiting.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._waiting)

    def shutdown(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


class SharedInformers:
    """One informer per (resource, namespace, selectors), shared by every controller
    of a process, so each resource is listed and watched once. An informer got with
    ``deferred=True`` is left out of ``start`` and ``wait_synced``: its owner starts it
    (``Informer.start``) when it first needs the resource, and ``stop`` stops it with
    the rest."""

    def __init__(self, client: Client):
        self.client = client
        self._informers: dict[tuple, Informer] = {}
        self._deferred: set[tuple] = set()

    def get(self, resource: str, namespace: str | None = None, *,
            label_selector: str | None = None, field_selector: str | None = None,
            deferred: bool = False) -> Informer:
        key = (resource, namespace, label_selector, field_selector)
        if key not in self._informers:
            self._informers[key] = Informer(self.client, resource, namespace,
                                            label_selector=label_selector,
                                            field_selector=field_selector)
            if deferred:
                self._deferred.add(key)
        elif not deferred:
            self._deferred.discard(key)  # someone needs it from the start after all
        return self._informers[key]

    def start(self) -> None:
        for key, informer in self._informers.items():
            if not informer.started and key not in self._deferred:
                informer.start()

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.synced.wait() for key, i in self._informers.items()
                               if key not in self._deferred or i.started))

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers.values()))


async def run_workers(name: str, queue: WorkQueue,
                      reconcile: Callable[[Hashable], Awaitable[None]],
                      workers: int = 1) -> None:
    """Reconcile keys from ``queue`` forever with ``workers`` concurrent workers."""

    async def worker() -> None:
        while True:
            key = await queue.get()
            try:
                await reconcile(key)
                queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # retried with backoff: the world may catch up
                delay = queue.retry(key)
                log.warning("%s: reconcile %s failed (%s: %s); retrying in %.2fs",
                            name, key, type(exc).__name__, exc, delay)
            finally:
                queue.done(key)

    try:
        await run_together(worker() for _ in range(workers))
    finally:
        queue.shutdown()


async def run_together(loops: Iterable[Awaitable[object]]) -> None:
    """Run ``loops`` concurrently until every one returns. When one fails, or this is
    cancelled, the others are cancelled and waited for before the error propagates."""
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
