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
    """``due_in`` for an agent that syncs at most once per ``min_interval`` seconds of
    ``clock`` (kube-proxy's ``--iptables-min-sync-period``). The agent sets the three
    attributes and stamps ``_last_sync`` after each sync."""

    min_interval: float
    clock: Callable[[], float]
    _last_sync: float | None

    def due_in(self) -> float:
        """Seconds until ``sync()`` may run (0: now)."""
        if self._last_sync is None:
            return 0.0
        return max(0.0, self._last_sync + self.min_interval - self.clock())


async def run_sync_loop(informers: SharedInformers, client: Client, changed: asyncio.Event,
                        stop: asyncio.Event, sync: Callable[[], R],
                        next_wait: Callable[[R], float], cleanup: Callable[[], object],
                        before_sync: Callable[[], None] | None = None) -> None:
    """Drive ``sync`` until ``stop`` is set; see the module docstring. ``next_wait``
    reports a sync's result and says how many seconds to wait at most before the next."""
    loop = asyncio.get_running_loop()
    informers.start()
    try:
        await until_first(informers.wait_synced(), stop.wait())
        while not stop.is_set():
            if before_sync is not None:
                before_sync()
            changed.clear()
            result = await loop.run_in_executor(None, sync)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(until_first(changed.wait(), stop.wait()),
                                       next_wait(result))
    finally:
        await informers.stop()
        await client.close()
        await loop.run_in_executor(None, cleanup)
