"""netlab.node.syncloop.run_sync_loop: stopped before the informers ever synced, it
leaves no task of its own behind (its waits are netlab.tasks.until_first's)."""

from __future__ import annotations

import asyncio
from typing import Any

from netlab.node.syncloop import run_sync_loop


class NeverSynced:
    started = stopped = False

    def start(self) -> None:
        self.started = True

    async def wait_synced(self) -> None:
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stopped = True


class Closing:
    closed = False

    async def close(self) -> None:
        self.closed = True


def test_stop_before_the_first_sync_leaves_no_pending_task():
    async def main() -> None:
        informers, client, stop = NeverSynced(), Closing(), asyncio.Event()
        cleaned: list[bool] = []
        loop = asyncio.ensure_future(run_sync_loop(
            informers, client, asyncio.Event(), stop,  # type: ignore[arg-type]
            lambda: None, lambda _: 60.0, lambda: cleaned.append(True)))
        await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(loop, 5)
        assert informers.stopped and client.closed and cleaned == [True]
        others: set[Any] = asyncio.all_tasks() - {asyncio.current_task()}
        assert not others, others
    asyncio.run(main())


def test_a_change_wakes_the_loop_and_stop_ends_it_cleanly():
    async def main() -> None:
        informers, client = NeverSynced(), Closing()
        informers.wait_synced = _done  # type: ignore[method-assign]
        changed, stop = asyncio.Event(), asyncio.Event()
        syncs: list[int] = []
        loop = asyncio.ensure_future(run_sync_loop(
            informers, client, changed, stop,  # type: ignore[arg-type]
            lambda: syncs.append(1), lambda _: 60.0, lambda: None))
        deadline = asyncio.get_running_loop().time() + 5
        while not syncs:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        changed.set()
        while len(syncs) < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(loop, 5)
        others: set[Any] = asyncio.all_tasks() - {asyncio.current_task()}
        assert not others, others
    asyncio.run(main())


async def _done() -> None:
    return None
