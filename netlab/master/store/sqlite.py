"""The default Store: a revision log in one SQLite file, like k3s's kine.

Schema: one row per write, its primary key *is* the revision.

    log(rev PRIMARY KEY, key, deleted, create_rev, prev_rev, value)
    meta(name PRIMARY KEY, value)            -- 'compact_rev'

A key's current state is its row with the highest rev (absent if that row is
a tombstone, ``deleted = 1``); its state at revision R is its highest row
<= R. A watch's history is simply the rows with rev in a range, joined to
``prev_rev`` for the previous value. Compaction to C deletes every row that
has a successor <= C and every tombstone <= C, so each key keeps exactly the
row in force at C: lists at >= C and watches after >= C stay exact.

Writes: one writer thread owns the only writing connection and assigns
revisions. Callers queue a WriteOp and wait on a future (a thread blocks, a
coroutine awaits without holding a thread). The writer takes *everything*
queued, applies it in one transaction and commits once: group commit, so N
concurrent writers share one fsync. Only after COMMIT returns are the events
published to watchers and the futures resolved, so an acknowledged write is
durable and already visible to watchers and readers.

Durability: WAL mode with ``synchronous=FULL`` (the default) fsyncs the WAL at
every commit, so an acknowledged write survives kill -9 *and* power loss.
``synchronous="NORMAL"`` skips that fsync; in WAL mode it still survives a
process crash (the data is in the OS page cache) but not power loss. Group
commit makes FULL cheap enough that there is little reason to lower it.

Reads use a small pool of read-only connections; WAL lets them run while the
writer commits, each statement (or explicit read transaction) on a snapshot.

One process owns a database (revisions are assigned in memory and watchers
are fed in-process), enforced by an exclusive flock on ``<path>.lock``.
"""

from __future__ import annotations

import builtins  # the stores have a list() method, which hides list in class bodies
import collections
import concurrent.futures
import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Optional, Union, cast

from netlab.master.store.base import (
    DEFAULT_RETAIN,
    KV,
    CompactedError,
    Event,
    EventType,
    FutureRevisionError,
    ListResult,
    Store,
    StoreClosedError,
    StoreError,
    WriteOp,
    apply_op,
    auto_compact_target,
    check_list_args,
    prefix_end,
)
from netlab.master.store.watch import DEFAULT_BUFFER_LIMIT, DEFAULT_HISTORY_PAGE, Watch, WatchHub

DEFAULT_MAX_BATCH = 512
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    rev        INTEGER PRIMARY KEY,
    key        TEXT    NOT NULL,
    deleted    INTEGER NOT NULL,
    create_rev INTEGER NOT NULL,
    prev_rev   INTEGER NOT NULL,
    value      BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

_LATEST = "SELECT rev, create_rev, deleted, value FROM log WHERE key = ? ORDER BY rev DESC LIMIT 1"
_INSERT = ("INSERT INTO log (rev, key, deleted, create_rev, prev_rev, value) "
           "VALUES (?, ?, ?, ?, ?, ?)")
_REVISIONS = ("SELECT (SELECT MAX(rev) FROM log), "
              "(SELECT value FROM meta WHERE name = 'compact_rev')")


@dataclass(frozen=True)
class _Compact:
    """A compaction request, queued like a write so it serializes with them."""

    revision: int


_Request = Union[WriteOp, _Compact]


def _key_range(prefix: str, start_after: str = "") -> tuple[str, list[object]]:
    """SQL condition (on column ``key`` of alias ``l``) and its parameters."""
    cond = ["l.key >= ?"]
    args: list[object] = [prefix]
    if start_after:
        cond.append("l.key > ?")
        args.append(start_after)
    end = prefix_end(prefix)
    if end is not None:
        cond.append("l.key < ?")
        args.append(end)
    return " AND ".join(cond), args


class SQLiteStore(Store):
    """A durable store in the SQLite file ``path`` (created if missing).

    ``retain_revisions`` (0 = keep all) is the automatic compaction window;
    ``synchronous`` is "FULL" or "NORMAL" (see the module docstring);
    ``max_batch`` caps the writes per commit (1 disables group commit);
    ``watch_buffer`` is the per-watcher limit of undelivered events.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 retain_revisions: int = DEFAULT_RETAIN,
                 synchronous: str = "FULL",
                 max_batch: int = DEFAULT_MAX_BATCH,
                 watch_buffer: int = DEFAULT_BUFFER_LIMIT,
                 history_page: int = DEFAULT_HISTORY_PAGE,
                 busy_timeout_ms: int = 5000) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.path = os.fspath(path)
        self._retain = retain_revisions
        self._max_batch = max_batch
        self._busy_ms = busy_timeout_ms
        self._lockfd = self._lock_file(self.path + ".lock")
        conn = None
        try:
            conn = self._connect()
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":  # e.g. a filesystem without shared memory
                raise StoreError(f"{self.path}: cannot use WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StoreError(f"{self.path}: unknown schema version {version}")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            last, compact = conn.execute(_REVISIONS).fetchone()
        except BaseException:
            if conn is not None:
                conn.close()
            os.close(self._lockfd)
            raise
        self._wconn = conn
        self._compact = compact or 0
        # After compacting away a trailing delete, MAX(rev) can be below the
        # compact revision; revisions must still never go backwards.
        self._rev = max(last or 0, self._compact)
        self._hub = WatchHub(self._history, self._rev, buffer_limit=watch_buffer,
                             page_size=history_page)
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._queue: collections.deque[
            tuple[_Request, concurrent.futures.Future[Optional[Event]]]] = collections.deque()
        self._qcond = threading.Condition(threading.Lock())
        self._closing = False
        self._closed = False
        self._commits = 0  # write transactions committed (compactions excluded)
        self._writes = 0  # revisions written through them
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()

    @staticmethod
    def _lock_file(path: str) -> int:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                f"store {path[:-5]} is in use (opened by another process or store)") from None
        return fd

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: we issue BEGIN/COMMIT ourselves. check_same_thread is
        # off so close() can close connections; each is used by one thread at a time.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        return conn

    # ---- read connections

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StoreClosedError()
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=1")
        try:
            yield conn
        finally:
            broken = False
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    broken = True
            with self._pool_lock:
                if self._closed or broken:
                    conn.close()
                else:
                    self._pool.append(conn)

    @staticmethod
    def _revisions(conn: sqlite3.Connection) -> tuple[int, int]:
        """(current, compact) revision as of the connection's snapshot."""
        last, compact = conn.execute(_REVISIONS).fetchone()
        compact = compact or 0
        return max(last or 0, compact), compact

    # ---- reads

    def get(self, key: str) -> KV | None:
        with self._reader() as conn:
            row = conn.execute(_LATEST, (key,)).fetchone()
        if row is None or row[2]:
            return None
        rev, create_rev, _, value = row
        return KV(key, value, create_rev, rev)

    def list(self, prefix: str, revision: int = 0, limit: int = 0,
             start_after: str = "") -> ListResult:
        check_list_args(revision, limit)
        cond, args = _key_range(prefix, start_after)
        with self._reader() as conn:
            conn.execute("BEGIN")  # one snapshot for the revision check and the rows
            current, compact = self._revisions(conn)
            if revision == 0:
                revision = current
            elif revision < compact:
                raise CompactedError(revision, compact)
            elif revision > current:
                raise FutureRevisionError(revision, current)
            # Each key's newest row <= revision, unless it is a tombstone.
            sql = (f"SELECT l.key, l.value, l.create_rev, l.rev FROM log l "
                   f"WHERE {cond} AND l.rev <= ? AND l.deleted = 0 AND NOT EXISTS ("
                   f"SELECT 1 FROM log n WHERE n.key = l.key AND n.rev > l.rev AND n.rev <= ?) "
                   f"ORDER BY l.key")
            params = [*args, revision, revision]
            if limit:
                sql += " LIMIT ?"
                params.append(limit + 1)
            rows = conn.execute(sql, params).fetchall()
            conn.execute("COMMIT")
        more = bool(limit) and len(rows) > limit
        if more:
            del rows[limit:]
        return ListResult([KV(*r) for r in rows], revision, more)

    def current_revision(self) -> int:
        return self._rev

    def compact_revision(self) -> int:
        return self._compact

    def stats(self) -> dict[str, int]:
        """Counters for tests and benchmarks: ``writes / commits`` is the mean
        group-commit batch size."""
        return {"commits": self._commits, "writes": self._writes,
                "watchers": self._hub.watcher_count()}

    def _history(self, prefix: str, after: int, upto: int, limit: int) -> builtins.list[Event]:
        cond, args = _key_range(prefix)
        sql = (f"SELECT l.rev, l.key, l.deleted, l.create_rev, l.value, "
               f"p.rev, p.deleted, p.create_rev, p.value "
               f"FROM log l LEFT JOIN log p ON p.rev = l.prev_rev "
               f"WHERE l.rev > ? AND l.rev <= ? AND {cond} ORDER BY l.rev LIMIT ?")
        with self._reader() as conn:
            conn.execute("BEGIN")
            _, compact = self._revisions(conn)
            if after < compact:
                raise CompactedError(after, compact)
            rows = conn.execute(sql, [after, upto, *args, limit]).fetchall()
            conn.execute("COMMIT")
        out = []
        for rev, key, deleted, create_rev, value, prev, pdel, pcreate, pvalue in rows:
            kv = KV(key, value, create_rev, rev)
            # A create has no previous version (prev_rev may point at a tombstone).
            prev_kv = None
            if prev is not None and not pdel and create_rev != rev:
                prev_kv = KV(key, pvalue, pcreate, prev)
            out.append(Event(EventType.DELETE if deleted else EventType.PUT, kv, prev_kv))
        return out

    # ---- writes

    def _submit(self, op: WriteOp) -> concurrent.futures.Future[Event]:
        # A write's future always gets an Event (None is what a compaction's gets).
        return cast("concurrent.futures.Future[Event]", self._enqueue(op))

    def _enqueue(self, req: _Request) -> concurrent.futures.Future[Optional[Event]]:
        fut: concurrent.futures.Future[Optional[Event]] = concurrent.futures.Future()
        with self._qcond:
            if self._closing:
                fut.set_exception(StoreClosedError())
                return fut
            self._queue.append((req, fut))
            if len(self._queue) == 1:
                self._qcond.notify()
        return fut

    def _write_loop(self) -> None:
        while True:
            with self._qcond:
                while not self._queue and not self._closing:
                    self._qcond.wait()
                if not self._queue:
                    return  # closing and drained
                n = min(len(self._queue), self._max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
            # A future cancelled before we start (its awaiting task was
            # cancelled) is dropped: that write never happens.
            batch = [(r, f) for r, f in batch if f.set_running_or_notify_cancel()]
            try:
                if batch:
                    self._commit(batch)
            except BaseException as err:  # never leave a caller waiting forever
                wrapped = err if isinstance(err, StoreError) else StoreError(f"write failed: {err}")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(wrapped)
            target = auto_compact_target(self._rev, self._compact, self._retain)
            if target:
                # On failure it is retried after the next batch; history just
                # grows a little meanwhile.
                with contextlib.suppress(sqlite3.Error):
                    self._commit([(_Compact(target), None)])

    def _commit(self,
                batch: Sequence[tuple[_Request, Optional[concurrent.futures.Future]]]) -> None:
        """Apply ``batch`` in one transaction; then publish, then acknowledge."""
        conn = self._wconn
        rev = self._rev
        compact = self._compact
        events: list[Event] = []
        results: list[object] = []  # per request: Event, None (compaction) or StoreError
        conn.execute("BEGIN IMMEDIATE")
        try:
            for req, _ in batch:
                if isinstance(req, _Compact):
                    if req.revision > rev:
                        results.append(FutureRevisionError(req.revision, rev))
                    else:
                        compact = self._compact_txn(conn, compact, req.revision)
                        results.append(None)
                    continue
                row = conn.execute(_LATEST, (req.key,)).fetchone()
                latest = None
                prev_rev = 0
                if row is not None:
                    prev_rev = row[0]
                    if not row[2]:
                        latest = KV(req.key, row[3], row[1], row[0])
                try:
                    ev = apply_op(req, latest, rev + 1)
                except StoreError as err:
                    results.append(err)
                    continue
                rev += 1
                deleted = ev.type is EventType.DELETE
                conn.execute(_INSERT, (rev, req.key, int(deleted), ev.kv.create_revision,
                                       prev_rev, ev.kv.value))
                events.append(ev)
                results.append(ev)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._rev = rev
        self._compact = compact
        if events:
            self._commits += 1
            self._writes += len(events)
        self._hub.publish(events)
        for (_, fut), res in zip(batch, results):
            if fut is None:
                continue
            if isinstance(res, StoreError):
                fut.set_exception(res)
            else:
                fut.set_result(res)

    @staticmethod
    def _compact_txn(conn: sqlite3.Connection, old: int, new: int) -> int:
        """Compact history from ``old`` to ``new`` inside the open transaction.

        Only rows in (old, new] need looking at: rows <= old are already one
        per key, and a row is superseded iff some row's prev_rev points at it.
        """
        if new <= old:
            return old
        conn.execute("DELETE FROM log WHERE rev IN (SELECT prev_rev FROM log "
                     "WHERE rev > ? AND rev <= ? AND prev_rev > 0)", (old, new))
        conn.execute("DELETE FROM log WHERE rev > ? AND rev <= ? AND deleted = 1", (old, new))
        conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('compact_rev', ?)",
                     (new,))
        return new

    # ---- watch

    def watch(self, prefix: str, from_revision: int | None = None) -> Watch:
        if self._closed:
            raise StoreClosedError()
        if from_revision is not None and from_revision < self._compact:
            raise CompactedError(from_revision, self._compact)
        return self._hub.register(prefix, from_revision)

    # ---- maintenance

    def compact(self, revision: int) -> None:
        self._enqueue(_Compact(revision)).result()

    def close(self) -> None:
        with self._qcond:
            if self._closing:
                already = True
            else:
                already = False
                self._closing = True
                self._qcond.notify_all()
        if already:
            self._writer.join()
            return
        self._writer.join()  # drains the queue: queued writes still complete
        self._hub.close()
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()
        with contextlib.suppress(sqlite3.Error):
            # Fold the WAL into the main file so the directory is tidy at rest.
            self._wconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._wconn.close()
        os.close(self._lockfd)
