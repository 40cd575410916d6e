"""SQLite backend specifics: persistence across reopen, single ownership,
group commit, commit failures, and durability of acknowledged writes across
kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from netlab.master.store import KV, SQLiteStore, StoreError

P = "/registry/pods/"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def test_reopen_keeps_data_revision_and_compaction(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SQLiteStore(db) as store:
        store.create(P + "a", b"a1")       # 1
        store.create(P + "b", b"b1")       # 2
        store.update(P + "a", b"a2")       # 3
        store.delete(P + "b")              # 4
        store.compact(4)  # the trailing delete's row is compacted away
    with SQLiteStore(db) as store:
        assert store.current_revision() == 4
        assert store.compact_revision() == 4
        assert store.list(P).items == [KV(P + "a", b"a2", 1, 3)]
        assert store.create(P + "c", b"c1").mod_revision == 5  # never reused
        evs = [store.watch(P, 4).get(timeout=5)]
        assert evs[0] is not None and evs[0].revision == 5
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_one_owner_at_a_time(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SQLiteStore(db), pytest.raises(StoreError, match="in use"):
        SQLiteStore(db)
    SQLiteStore(db).close()  # released on close


def test_concurrent_writers_share_commits(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        async def main() -> list[KV]:
            return await asyncio.gather(*(store.acreate(f"{P}k{i}", b"v") for i in range(64)))

        kvs = asyncio.run(asyncio.wait_for(main(), 20))
        assert sorted(kv.mod_revision for kv in kvs) == list(range(1, 65))
        stats = store.stats()
        assert stats["writes"] == 64
        # All 64 are queued within one loop iteration, so at most a couple of
        # commits happen; 32 leaves a wide margin on a loaded machine.
        assert stats["commits"] <= 32


def test_max_batch_one_disables_group_commit(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db", max_batch=1, synchronous="NORMAL") as store:
        threads = [threading.Thread(target=store.create, args=(f"{P}k{i}", b"v"))
                   for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.stats()["commits"] == store.stats()["writes"] == 16


class _FailingCommit:
    """Wraps the writer connection and fails the next COMMIT like a full disk."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.armed = True

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and self.armed:
            self.armed = False
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_failed_commit_fails_the_batch_and_recovers(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.create(P + "a", b"v")
        real = store._wconn
        store._wconn = _FailingCommit(real)  # type: ignore[assignment]
        w = store.watch(P)
        with pytest.raises(StoreError, match="disk is full"):
            store.create(P + "b", b"v")
        assert store.current_revision() == 1
        assert store.get(P + "b") is None
        kv = store.create(P + "b", b"v")
        assert kv.mod_revision == 2  # the failed write's revision was not used
        ev = w.get(timeout=5)
        assert ev is not None and ev.kv == kv
        store._wconn = real  # type: ignore[assignment]


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    """A child writes from 4 threads and prints each acknowledged revision; we
    SIGKILL it mid-load, reopen the file and find every acknowledged write,
    and no hole in the revision sequence."""
    db = tmp_path / "s.db"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "durability_child.py"), str(db), "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    # A deadline, should the child hang instead of writing.
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(line)
            if len(acked) >= 300:
                break
        os.kill(proc.pid, signal.SIGKILL)  # mid-load: the writers are still going
        rest, err = proc.communicate()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"child did not run: {err}"
    acked += rest.splitlines(keepends=True)
    pairs = [line.split() for line in acked if line.endswith("\n")]
    assert len(pairs) >= 300
    with SQLiteStore(db) as store:
        for rev, key in pairs:
            kv = store.get(key)
            assert kv is not None and kv.mod_revision == int(rev), f"lost acked write {key}"
        # Only creates happened, so every revision up to the current one is a live key.
        items = store.list(P).items
        assert sorted(kv.mod_revision for kv in items) == list(
            range(1, store.current_revision() + 1))
        assert store.current_revision() >= max(int(rev) for rev, _ in pairs)
