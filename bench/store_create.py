"""Benchmark: durable creates/s through SQLiteStore, and list latency.

Measures, in one run (these machines are noisy, so the baseline is measured
alongside and the result printed as a ratio):

* creates/s with N concurrent writers and group commit, as asyncio tasks
  (the API server's shape) and as threads;
* the baseline: the same writers with ``max_batch=1``, i.e. one create per
  transaction and one fsync each (no group commit);
* list latency of 10,000 keys at the current revision, in pages of 500, and
  at a past revision; and replaying the retained history (~10,000 events)
  to a watch.

Every write is durable (WAL, synchronous=FULL) before it is counted.

    python bench/store_create.py [--writers 16] [--seconds 3] [--keys 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

from netlab.master.store import SQLiteStore

PREFIX = "/registry/pods/default/"


def value(size: int, i: int) -> bytes:
    head = b'{"kind":"Pod","metadata":{"name":"p%d"},"pad":"' % i
    return head + b"x" * max(0, size - len(head) - 2) + b'"}'


def run_async_writers(store: SQLiteStore, writers: int, seconds: float, size: int,
                      tag: str) -> int:
    async def main() -> int:
        deadline = time.monotonic() + seconds
        counts = [0] * writers

        async def writer(w: int) -> None:
            i = 0
            while time.monotonic() < deadline:
                await store.acreate(f"{PREFIX}{tag}-{w}-{i}", value(size, i))
                i += 1
            counts[w] = i

        await asyncio.gather(*(writer(w) for w in range(writers)))
        return sum(counts)

    return asyncio.run(main())


def run_thread_writers(store: SQLiteStore, writers: int, seconds: float, size: int,
                       tag: str) -> int:
    deadline = time.monotonic() + seconds
    counts = [0] * writers

    def writer(w: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            store.create(f"{PREFIX}{tag}-{w}-{i}", value(size, i))
            i += 1
        counts[w] = i

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts)


def create_rate(path: Path, args: argparse.Namespace, *, threads: bool,
                max_batch: int) -> tuple[float, float]:
    """(creates/s, mean writes per commit) on a fresh store."""
    with SQLiteStore(path, max_batch=max_batch) as store:
        run = run_thread_writers if threads else run_async_writers
        start = time.perf_counter()
        n = run(store, args.writers, args.seconds, args.value_size, "c")
        elapsed = time.perf_counter() - start
        stats = store.stats()
    return n / elapsed, stats["writes"] / max(1, stats["commits"])


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t)
    return out


def list_latency(path: Path, args: argparse.Namespace) -> None:
    n = args.keys
    with SQLiteStore(path) as store:
        async def fill() -> None:
            for base in range(0, n, 500):
                await asyncio.gather(*(
                    store.acreate(f"{PREFIX}p{i:06d}", value(args.value_size, i))
                    for i in range(base, min(n, base + 500))))

        t = time.perf_counter()
        asyncio.run(fill())
        fill_s = time.perf_counter() - t
        filled_at = store.current_revision()
        # Some history, so the past-revision list has superseded rows to skip.
        for i in range(0, n, 10):
            store.update(f"{PREFIX}p{i:06d}", value(args.value_size, -i))

        def full() -> None:
            assert len(store.list(PREFIX).items) == n

        def paged() -> None:
            res = store.list(PREFIX, limit=500)
            got = len(res.items)
            while res.more:
                res = store.list(PREFIX, revision=res.revision, limit=500,
                                 start_after=res.items[-1].key)
                got += len(res.items)
            assert got == n

        def past() -> None:
            assert len(store.list(PREFIX, revision=filled_at).items) == n

        # The default window keeps 10,000 revisions: replay all that is kept.
        # (Automatic compaction runs just after a write is acknowledged, so
        # compact_revision() may not have caught up yet; compute the window.)
        since = max(0, store.current_revision() - 10000)
        events = store.current_revision() - since

        def replay() -> None:
            with store.watch(PREFIX, since) as w:
                for _ in range(events):
                    w.get(timeout=10)

        print(f"fill {n} keys (group commit, 500 in flight): {fill_s:.2f} s "
              f"= {n / fill_s:.0f} creates/s")
        for label, fn in ((f"list {n} keys", full),
                          (f"list {n} keys in pages of 500", paged),
                          (f"list {n} keys at a past revision", past),
                          (f"watch replay of {events} events from history", replay)):
            times = timed(fn, args.repeat)
            print(f"{label}: median {statistics.median(times) * 1000:.0f} ms, "
                  f"max {max(times) * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--value-size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", help="where to put the databases (default: a temp dir)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        print(f"store_create: SQLite WAL synchronous=FULL, {args.writers} concurrent writers, "
              f"{args.seconds:g} s per run, {args.value_size}-byte values")
        grouped, batch = create_rate(d / "a.db", args, threads=False, max_batch=512)
        print(f"group commit, asyncio tasks: {grouped:8.0f} creates/s "
              f"(mean {batch:.1f} writes per commit)")
        grouped_t, batch_t = create_rate(d / "b.db", args, threads=True, max_batch=512)
        print(f"group commit, threads:       {grouped_t:8.0f} creates/s "
              f"(mean {batch_t:.1f} writes per commit)")
        base, _ = create_rate(d / "c.db", args, threads=False, max_batch=1)
        print(f"baseline, 1 create/commit:   {base:8.0f} creates/s")
        print(f"ratio group commit / baseline: {grouped / base:.2f}x (asyncio), "
              f"{grouped_t / base:.2f}x (threads)")
        list_latency(d / "d.db", args)


if __name__ == "__main__":
    main()
