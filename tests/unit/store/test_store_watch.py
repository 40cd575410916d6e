"""Watch, for every backend: history then live with no gap and no duplicate,
even when writes race the watch's creation; async and thread consumers;
slow watchers; compaction."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import threading
from typing import Any, Callable

import pytest

from netlab.master.store import (
    KV,
    CompactedError,
    Event,
    EventType,
    Store,
    Watch,
    WatchOverflowError,
)

P = "/registry/pods/"
TIMEOUT = 10.0  # a deadline, not a wait: every read returns as soon as data is there


def run(coro: Any, timeout: float = 20) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def take(w: Watch, n: int) -> list[Event]:
    out = []
    for _ in range(n):
        ev = w.get(timeout=TIMEOUT)
        assert ev is not None, "watch ended early"
        out.append(ev)
    return out


def take_until(w: Watch, revision: int) -> list[Event]:
    out: list[Event] = []
    while w.revision < revision:
        ev = w.get(timeout=TIMEOUT)
        assert ev is not None, "watch ended early"
        out.append(ev)
    return out


def test_watch_replays_history_then_goes_live(store: Store) -> None:
    a = store.create(P + "a", b"a1")           # 1
    store.create("/registry/services/s", b"x")  # 2, other prefix
    a2 = store.update(P + "a", b"a2")          # 3
    with store.watch(P, 0) as w:
        tomb = store.delete(P + "a")           # 4, live
        evs = take(w, 3)
    assert [e.type for e in evs] == [EventType.PUT, EventType.PUT, EventType.DELETE]
    assert [e.revision for e in evs] == [1, 3, 4]
    assert evs[0].kv == a and evs[0].prev_kv is None and evs[0].is_create
    assert evs[1].kv == a2 and evs[1].prev_kv == a and not evs[1].is_create
    assert evs[2].kv == tomb == KV(P + "a", b"a2", 1, 4) and evs[2].prev_kv == a2


def test_watch_from_is_exclusive_and_none_means_now(store: Store) -> None:
    for i in range(5):
        store.create(f"{P}k{i}", b"v")
    w_after3 = store.watch(P, 3)
    w_now = store.watch(P)
    w_future = store.watch(P, 7)
    assert w_now.from_revision == 5
    for i in range(5, 8):
        store.create(f"{P}k{i}", b"v")
    assert [e.revision for e in take(w_after3, 5)] == [4, 5, 6, 7, 8]
    assert [e.revision for e in take(w_now, 3)] == [6, 7, 8]
    assert [e.revision for e in take(w_future, 1)] == [8]
    with pytest.raises(TimeoutError):
        w_future.get(timeout=0.05)


def test_history_is_read_in_pages(make_store: Callable[..., Store]) -> None:
    store = make_store(history_page=3, synchronous="NORMAL")
    for i in range(20):
        store.create(f"{P}k{i}" if i % 2 else f"/other/{i}", b"v")
    w = store.watch(P, 0)
    assert [e.revision for e in take(w, 10)] == list(range(2, 21, 2))
    store.create(P + "live", b"v")
    assert take(w, 1)[0].kv.key == P + "live"


def test_no_gap_no_duplicate_when_writes_race_watch_creation(
        make_store: Callable[..., Store]) -> None:
    """Four threads write while the main thread opens watches at arbitrary
    revisions and reads from them. Every write is under the prefix, so each
    watch must see exactly the revisions start+1 .. end, each once, in order."""
    store = make_store(history_page=7, synchronous="NORMAL")
    per_thread = 200

    def writer(t: int) -> None:
        for i in range(per_thread):
            key = f"{P}t{t}/k{i % 10}"
            if i < 10:
                store.create(key, b"%d" % i)
            else:
                store.update(key, b"%d" % i)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    rng = random.Random(1)
    watches: list[Watch] = []
    got: dict[int, list[int]] = {}
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the threads as finely as possible
    try:
        for t in threads:
            t.start()
        last = -1
        while any(t.is_alive() for t in threads):
            cur = store.current_revision()
            if cur != last and len(watches) < 30:
                last = cur
                start = None if rng.random() < 0.3 else max(0, cur - rng.randint(0, 15))
                w = store.watch(P, start)
                watches.append(w)
                got[id(w)] = []
            # Read a little from some watch, so some are mid-stream as writes go on.
            if watches:
                w = rng.choice(watches)
                with contextlib.suppress(TimeoutError):
                    got[id(w)].append(w.get(timeout=0).revision)  # type: ignore[union-attr]
    finally:
        sys.setswitchinterval(old_interval)
        for t in threads:
            t.join()
    end = store.current_revision()
    assert end == 4 * per_thread
    assert len(watches) >= 2
    for w in watches:
        revs = got[id(w)] + [e.revision for e in take_until(w, end)]
        assert revs == list(range(w.from_revision + 1, end + 1)), f"watch from {w.from_revision}"
        with pytest.raises(TimeoutError):
            w.get(timeout=0)
        w.close()


def test_async_consumer_sees_history_and_live_in_order(store: Store) -> None:
    async def main() -> None:
        for i in range(10):
            await store.acreate(f"{P}k{i}", b"v")
        w = store.watch(P, 4)
        got: list[int] = []

        async def consume() -> None:
            async for ev in w:
                got.append(ev.revision)
                if ev.revision == 40:
                    w.close()

        task = asyncio.ensure_future(consume())
        # Writers in this loop (awaitable writes) and in a thread (blocking ones).
        thread = threading.Thread(
            target=lambda: [store.update(f"{P}k{i % 10}", b"t") for i in range(15)])
        thread.start()
        for i in range(15):
            await store.aupdate(f"{P}k{i % 10}", b"a")
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        await task
        assert got == list(range(5, 41))
        assert w.closed

    run(main())


def test_async_cancellation_loses_nothing(make_store: Callable[..., Store]) -> None:
    store = make_store(history_page=2)

    async def main() -> None:
        for i in range(6):
            await store.acreate(f"{P}k{i}", b"v")
        w = store.watch(P, 0)
        # Cancel while the first history page is being read in the executor.
        task = asyncio.ensure_future(w.__anext__())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Cancel while waiting for a live event.
        got = [(await w.__anext__()).revision for _ in range(6)]
        task = asyncio.ensure_future(w.__anext__())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.acreate(P + "live", b"v")
        got.append((await w.__anext__()).revision)
        assert got == list(range(1, 8))
        w.close()
        with pytest.raises(StopAsyncIteration):
            await w.__anext__()

    run(main())


def test_slow_watcher_is_terminated_without_blocking_writers(
        make_store: Callable[..., Store]) -> None:
    store = make_store(watch_buffer=8, synchronous="NORMAL")
    slow = store.watch(P)
    fast = store.watch(P)
    for i in range(30):  # would hang here if a full watcher blocked writers
        store.create(f"{P}k{i}", b"v")
        assert fast.get(timeout=TIMEOUT) is not None
    with pytest.raises(WatchOverflowError) as exc:
        slow.get(timeout=TIMEOUT)
    assert exc.value.limit == 8 and "too slow" in str(exc.value)
    with pytest.raises(WatchOverflowError):  # stays failed
        slow.get(timeout=0)

    fast.close()

    async def async_slow() -> None:
        w = store.watch(P)
        for i in range(9):
            await store.aupdate(f"{P}k{i}", b"x")
        with pytest.raises(WatchOverflowError):
            async for _ in w:
                pass

    run(async_slow())
    # The terminated watchers are gone from the hub; new watches work normally.
    fresh = store.watch(P)
    store.create(P + "after", b"v")
    assert take(fresh, 1)[0].kv.key == P + "after"


def test_overflow_counts_only_undelivered_events(make_store: Callable[..., Store]) -> None:
    store = make_store(watch_buffer=4, synchronous="NORMAL")
    w = store.watch(P)
    for i in range(20):  # far more than the buffer, but consumed as they come
        store.create(f"{P}k{i}", b"v")
        take(w, 1)
    assert w.revision == 20


def test_watch_at_compacted_revision_fails(store: Store) -> None:
    for i in range(6):
        store.create(f"{P}k{i}", b"v")
    store.compact(4)
    with pytest.raises(CompactedError) as exc:
        store.watch(P, 3)
    assert "Expired" in str(exc.value)
    w = store.watch(P, 4)
    evs = take(w, 2)
    assert [e.revision for e in evs] == [5, 6]


def test_compaction_racing_history_read_is_reported(make_store: Callable[..., Store]) -> None:
    store = make_store(history_page=2)
    for i in range(8):
        store.create(f"{P}k{i}", b"v")
    w = store.watch(P, 1)
    assert [e.revision for e in take(w, 2)] == [2, 3]
    store.compact(6)  # the rest of the history the watch still needs is gone
    with pytest.raises(CompactedError):
        w.get(timeout=TIMEOUT)


def test_prev_kv_survives_compaction(store: Store) -> None:
    store.create(P + "a", b"a1")   # 1
    store.create(P + "b", b"b1")   # 2
    store.delete(P + "b")          # 3
    store.update(P + "a", b"a2")   # 4
    store.create(P + "b", b"b2")   # 5
    store.update(P + "a", b"a3")   # 6
    store.compact(4)
    evs = take(store.watch(P, 4), 2)
    assert evs[0].kv == KV(P + "b", b"b2", 5, 5) and evs[0].prev_kv is None
    assert evs[1].prev_kv == KV(P + "a", b"a2", 1, 4)


def test_close_ends_watches(make_store: Callable[..., Store]) -> None:
    store = make_store()
    w_sync = store.watch(P)
    w_async = store.watch(P)
    w_closed = store.watch(P)
    w_closed.close()
    assert w_closed.get(timeout=0) is None

    async def main() -> list[Event]:
        got = []
        consumer = asyncio.ensure_future(_collect(w_async, got))
        await store.acreate(P + "a", b"v")
        await asyncio.get_running_loop().run_in_executor(None, store.close)
        await consumer
        return got

    assert [e.revision for e in run(main())] == [1]
    assert w_sync.get(timeout=TIMEOUT) is None
    assert list(w_sync) == []


async def _collect(w: Watch, out: list[Event]) -> None:
    async for ev in w:
        out.append(ev)


def test_a_commit_is_offered_only_to_the_watchers_of_its_resource(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every watcher was offered every commit: ~1,000 locks taken per Lease renewal in an
    # idle 100-node lab. Watchers are indexed by resource, and still see what they match.
    offered: list[str] = []
    push = Watch._push

    def counting_push(self: Watch, events: Any, limit: int) -> bool:
        offered.append(self.prefix)
        return push(self, events, limit)

    monkeypatch.setattr(Watch, "_push", counting_push)
    prefixes = [P, P + "default/", P + "default/a", "/registry/services/",
                "/registry/leases/", "/registry/", "/registry/po"]
    watches = {prefix: store.watch(prefix) for prefix in prefixes}
    store.create(P + "default/a", b"a")
    assert sorted(offered) == sorted(set(prefixes) - {"/registry/services/",
                                                     "/registry/leases/"})
    for prefix in prefixes:
        if prefix not in ("/registry/services/", "/registry/leases/"):
            assert take(watches[prefix], 1)[0].kv.key == P + "default/a"
    offered.clear()
    svc = store.create("/registry/services/s", b"s")
    assert sorted(offered) == ["/registry/", "/registry/po", "/registry/services/"]
    assert take(watches["/registry/services/"], 1)[0].kv == svc
    for w in watches.values():
        w.close()
    offered.clear()
    store.create(P + "default/b", b"b")
    assert offered == []  # closed watchers are forgotten by the index too
