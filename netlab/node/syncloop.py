"""The loop every nftables node agent runs: sync when something changed, on stop or
on a timer, and remove its table when stopped.

kube-proxy (``netlab.node.proxy``) and the NetworkPolicy agent (``netlab.node.netpol``)
both keep a desired state fed by informers and program it with one ``sync()`` that
runs in an executor (it writes to the kernel). The loop waits for the informers'
first lists (so a restart never programs a half-known world), then syncs, asks the
agent how long to wait, and waits for the next change, for stop, or for that
timeout, whichever comes first. The change flag is cleared *before* each sync: a
change that arrives while a sync runs must wake the next one. On the way out it
stops the informers and the client, then runs the agent's ``cleanup``.

The agent's state has one writer at a time: informer events reach it through a
:class:`ChangeGate`, which applies them on the loop between syncs and holds those
that arrive while ``sync()`` runs in its thread until it returns. Without it a
sync iterating the agent's dicts while an event changed them died with
"dictionary changed size during iteration" (seen at 100 nodes and 1,000 pods),
and a change applied mid-sync could be marked done by it without being read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

from netlab.client import Client
from netlab.client.workqueue import SharedInformers
from netlab.tasks import until_first

R = TypeVar("R")


class RateLimited:
    """``due_in`` for an agent whose syncs are rate-limited as kube-proxy's
    BoundedFrequencyRunner limits ``syncProxyRules``: a token bucket that refills
    one sync per ``min_interval`` seconds of ``clock`` and holds at most ``burst``
    (kube-proxy's ``--iptables-min-sync-period`` and ``burstSyncs``). With a burst
    of 1 a sync waits ``min_interval`` after the previous one; with 2, a change
    after a quiet spell is synced at once even if one sync just ran, which is what
    a new Service followed by its first ready endpoints needs. The agent sets
    ``min_interval``, ``clock`` and ``burst`` and calls ``_count_sync`` after each
    sync that wrote something."""

    min_interval: float
    clock: Callable[[], float]
    burst: int = 1
    _tokens: float | None = None  # None: never synced, the bucket is full
    _tokens_at: float = 0.0  # the clock when _tokens was last brought up to date

    def _available(self) -> float:
        if self._tokens is None or self.min_interval <= 0:
            return float(self.burst)
        refilled = (self.clock() - self._tokens_at) / self.min_interval
        return min(float(self.burst), self._tokens + refilled)

    def due_in(self) -> float:
        """Seconds until ``sync()`` may run (0: now)."""
        if self._tokens is None or self._tokens >= 1.0:
            return 0.0
        # Linear refill: the missing part of a token is there min_interval later.
        return max(0.0, self._tokens_at + (1.0 - self._tokens) * self.min_interval
                   - self.clock())

    def _count_sync(self) -> None:
        """Take a sync's token (the bucket may not go below empty: a forced sync
        does not make the next ones wait longer)."""
        self._tokens = max(0.0, self._available() - 1.0)
        self._tokens_at = self.clock()


class ChangeGate:
    """Applies the agent's state changes on the event loop, never during a sync:
    ``apply(fn, *args)`` calls ``fn(*args)`` at once between syncs, or holds it
    while ``run(sync)`` has a sync running in the executor and applies it, in
    arrival order, when the sync returns. Either way it sets ``changed``."""

    def __init__(self, changed: asyncio.Event):
        self.changed = changed
        self._syncing = False
        self._held: list[tuple[Callable[..., object], tuple[object, ...]]] = []

    def apply(self, fn: Callable[..., object], *args: object) -> None:
        if self._syncing:
            self._held.append((fn, args))
        else:
            fn(*args)
        self.changed.set()

    async def run(self, sync: Callable[[], R]) -> R:
        """``sync()`` in the default executor, with changes held meanwhile."""
        self._syncing = True
        try:
            return await asyncio.get_running_loop().run_in_executor(None, sync)
        finally:
            self._syncing = False
            held, self._held = self._held, []
            for fn, args in held:
                fn(*args)


async def run_sync_loop(informers: SharedInformers, client: Client, gate: ChangeGate,
                        stop: asyncio.Event, sync: Callable[[], R],
                        next_wait: Callable[[R], float], cleanup: Callable[[], object],
                        before_sync: Callable[[], None] | None = None) -> None:
    """Drive ``sync`` until ``stop`` is set; see the module docstring. ``next_wait``
    reports a sync's result and says how many seconds to wait at most before the next;
    the informers' handlers change the agent through ``gate``."""
    loop = asyncio.get_running_loop()
    changed = gate.changed
    informers.start()
    try:
        await until_first(informers.wait_synced(), stop.wait())
        while not stop.is_set():
            if before_sync is not None:
                before_sync()
            changed.clear()
            result = await gate.run(sync)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(until_first(changed.wait(), stop.wait()),
                                       next_wait(result))
    finally:
        await informers.stop()
        await client.close()
        await loop.run_in_executor(None, cleanup)
