"""netlab.node.syncloop.run_sync_loop: stopped before the informers ever synced, it
leaves no task of its own behind (its waits are netlab.tasks.until_first's); and its
ChangeGate keeps informer events from changing the agent's state under a sync."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from netlab.node.syncloop import ChangeGate, run_sync_loop


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
            informers, client, ChangeGate(asyncio.Event()), stop,  # type: ignore[arg-type]
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
            informers, client, ChangeGate(changed), stop,  # type: ignore[arg-type]
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


def test_an_event_during_a_sync_waits_for_it_and_is_applied_after():
    """The 100-node crash: a NetworkPolicy agent's sync iterated its pods while a pod
    event added one ("dictionary changed size during iteration")."""
    async def main() -> None:
        state = {i: i for i in range(3)}
        halfway, resume = threading.Event(), threading.Event()

        def sync() -> list[int]:
            values = iter(state.values())
            first = [next(values)]
            halfway.set()
            resume.wait(5)
            return first + list(values)  # raises if the dict changed meanwhile

        gate = ChangeGate(asyncio.Event())
        running = asyncio.ensure_future(gate.run(sync))
        await asyncio.get_running_loop().run_in_executor(None, halfway.wait, 5)
        gate.apply(state.__setitem__, 99, 99)
        gate.apply(state.__setitem__, 99, 100)
        assert 99 not in state and gate.changed.is_set()
        resume.set()
        assert await asyncio.wait_for(running, 5) == [0, 1, 2]
        assert state[99] == 100  # applied after the sync, in arrival order
        gate.apply(state.pop, 99)  # between syncs: at once
        assert 99 not in state
    asyncio.run(main())
