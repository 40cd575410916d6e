"""An in-memory Store: the same contract as SQLiteStore, without durability.

For unit tests of the components above the store (API server handlers,
controllers) and as the second backend that keeps ``base.Store`` honest about
being backend-agnostic: the shared test suite runs against both.

Layout: ``_versions[key]`` is the key's history (events in revision order,
the last one is its current state) and ``_log`` is every event with revision
> compact revision, in order. Because each revision is exactly one event,
``_log[i]`` has revision ``compact + 1 + i``, so history reads are slicing.
One lock serializes writes, reads and compaction; publishing to watchers
happens under it, which keeps publish order equal to revision order.
"""

from __future__ import annotations

import bisect
import builtins  # the stores have a list() method, which hides list in class bodies
import concurrent.futures
import threading

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


def _state(versions: list[Event], revision: int) -> KV | None:
    """The key's KV as of ``revision`` from its version list (None if absent)."""
    for ev in reversed(versions):
        if ev.revision <= revision:
            return ev.kv if ev.type is EventType.PUT else None
    return None


class MemoryStore(Store):
    """A thread-safe in-memory store. ``retain_revisions`` (0 = keep all) is
    the automatic compaction window, as in SQLiteStore."""

    def __init__(self, *, retain_revisions: int = DEFAULT_RETAIN,
                 watch_buffer: int = DEFAULT_BUFFER_LIMIT,
                 history_page: int = DEFAULT_HISTORY_PAGE) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, list[Event]] = {}
        self._keys: list[str] = []  # sorted keys of _versions
        self._log: list[Event] = []
        self._rev = 0
        self._compact = 0
        self._retain = retain_revisions
        self._closed = False
        self._hub = WatchHub(self._history, 0, buffer_limit=watch_buffer,
                             page_size=history_page)

    # ---- reads

    def get(self, key: str) -> KV | None:
        with self._lock:
            self._check_open()
            versions = self._versions.get(key)
            if not versions or versions[-1].type is EventType.DELETE:
                return None
            return versions[-1].kv

    def list(self, prefix: str, revision: int = 0, limit: int = 0,
             start_after: str = "") -> ListResult:
        check_list_args(revision, limit)
        with self._lock:
            self._check_open()
            rev = self._check_revision(revision)
            end = prefix_end(prefix)
            if start_after >= prefix:
                i = bisect.bisect_right(self._keys, start_after)
            else:
                i = bisect.bisect_left(self._keys, prefix)
            items: list[KV] = []
            more = False
            for key in self._keys[i:]:
                if end is not None and key >= end:
                    break
                kv = _state(self._versions[key], rev)
                if kv is None:
                    continue
                if limit and len(items) == limit:
                    more = True
                    break
                items.append(kv)
            return ListResult(items, rev, more)

    def _check_revision(self, revision: int) -> int:
        if revision == 0:
            return self._rev
        if revision < self._compact:
            raise CompactedError(revision, self._compact)
        if revision > self._rev:
            raise FutureRevisionError(revision, self._rev)
        return revision

    def current_revision(self) -> int:
        return self._rev

    def compact_revision(self) -> int:
        return self._compact

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError()

    # ---- writes

    def _submit(self, op: WriteOp) -> concurrent.futures.Future[Event]:
        fut: concurrent.futures.Future[Event] = concurrent.futures.Future()
        try:
            with self._lock:
                self._check_open()
                versions = self._versions.get(op.key)
                latest = _state(versions, self._rev) if versions else None
                ev = apply_op(op, latest, self._rev + 1)
                self._rev = ev.revision
                if versions is None:
                    self._versions[op.key] = [ev]
                    bisect.insort(self._keys, op.key)
                else:
                    versions.append(ev)
                self._log.append(ev)
                self._hub.publish([ev])
                target = auto_compact_target(self._rev, self._compact, self._retain)
                if target:
                    self._compact_locked(target)
        except StoreError as err:
            fut.set_exception(err)
        else:
            fut.set_result(ev)
        return fut

    # ---- watch

    def watch(self, prefix: str, from_revision: int | None = None) -> Watch:
        with self._lock:
            self._check_open()
            if from_revision is not None and from_revision < self._compact:
                raise CompactedError(from_revision, self._compact)
        return self._hub.register(prefix, from_revision)

    def _history(self, prefix: str, after: int, upto: int, limit: int) -> builtins.list[Event]:
        with self._lock:
            if after < self._compact:
                raise CompactedError(after, self._compact)
            out: list[Event] = []
            # _log[i].revision == self._compact + 1 + i
            start = after - self._compact
            stop = min(upto, self._rev) - self._compact
            for ev in self._log[start:stop]:
                if ev.kv.key.startswith(prefix):
                    out.append(ev)
                    if len(out) >= limit:
                        break
            return out

    # ---- maintenance

    def compact(self, revision: int) -> None:
        with self._lock:
            self._check_open()
            if revision > self._rev:
                raise FutureRevisionError(revision, self._rev)
            self._compact_locked(revision)

    def _compact_locked(self, revision: int) -> None:
        if revision <= self._compact:
            return
        drop = revision - self._compact
        touched = {ev.kv.key for ev in self._log[:drop]}
        del self._log[:drop]
        self._compact = revision
        for key in touched:
            versions = self._versions[key]
            # Keep every version after the compact revision, plus the one in
            # force at it (unless that is a delete), so lists at >= it still work.
            i = 0
            while i < len(versions) and versions[i].revision <= revision:
                i += 1
            keep = versions[i:]
            if i and versions[i - 1].type is EventType.PUT:
                keep.insert(0, versions[i - 1])
            if keep:
                self._versions[key] = keep
            else:
                del self._versions[key]
                del self._keys[bisect.bisect_left(self._keys, key)]

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._hub.close()
