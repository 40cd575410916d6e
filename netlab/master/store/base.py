"""The storage interface of the API server: a revisioned key/value log with watch.

This is etcd's role in the Kubernetes picture (docs/architecture.md, section 1).
The API server keeps every object under ``/registry/<resource>/<namespace>/<name>``
and uses the store's revision as the object's ``resourceVersion``.

The model is etcd v3's multi-version store, in small:

* Every successful write (create, update, delete) is one new *global revision*:
  an int, strictly increasing, starting at 1, never reused (not even after a
  restart or a compaction). A failed write consumes no revision.
* A key's ``create_revision`` is the revision that created it and its
  ``mod_revision`` the revision of its last write. ``mod_revision`` is what
  optimistic concurrency compares (``expected_revision``).
* History is kept, so the store can list the state *at a past revision* and
  replay the changes *after a revision* to a watcher. ``compact(rev)`` forgets
  history before ``rev``; asking for it afterwards raises ``CompactedError``
  (the API server turns that into 410 Gone, "too old resource version").

Revision rule, used by both ``list`` and ``watch``: a revision ``R`` is
*readable* iff ``compact_revision() <= R``. ``list(revision=R)`` returns the
state at ``R``; ``watch(from_revision=R)`` yields every change with revision
``> R``. Both match Kubernetes' resourceVersion semantics (a list at RV, then a
watch "from" that RV exclusive), so the API server can pass resourceVersions
straight through; an etcd backend would add 1 for etcd's inclusive start.

Writes are acknowledged only once durable. Every write exists in a blocking
form (``create``) for threads and an awaitable form (``acreate``) for the
API server's asyncio loop; both go through ``_submit``, which a backend
implements once. The awaitable form needs no thread per pending write, which
is what lets a backend batch many concurrent writers into one commit.

Backends: ``sqlite.SQLiteStore`` (the default, durable, like k3s's kine),
``etcd.EtcdStore`` (a real etcd, as kube-apiserver uses) and
``memory.MemoryStore`` (for unit tests of other components).
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Optional

if TYPE_CHECKING:
    from netlab.master.store.watch import Watch


# --------------------------------------------------------------------- data


@dataclass(frozen=True)
class KV:
    """One version of one key.

    For a DELETE (the value returned by ``delete`` and ``Event.kv`` of a DELETE
    event) this is the *tombstone*: ``value`` is the last value the key held and
    ``mod_revision`` is the revision of the delete itself, so that every write
    returns the KV whose ``mod_revision`` is the revision it produced.
    """

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(str, enum.Enum):
    PUT = "PUT"  # a create or an update; tell them apart with Event.is_create
    DELETE = "DELETE"


@dataclass(frozen=True)
class Event:
    """One change, as a watcher sees it.

    ``kv`` is the key after the change (the tombstone for DELETE, see ``KV``);
    ``prev_kv`` is the version it replaced, or None for a create.
    """

    type: EventType
    kv: KV
    prev_kv: Optional[KV] = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type is EventType.PUT and self.kv.create_revision == self.kv.mod_revision


class ListResult(NamedTuple):
    """A page of a list. ``revision`` is the revision the page was read at:
    pass it back as ``list(revision=...)`` with ``start_after`` = the last key to
    get the next page of the same consistent snapshot."""

    items: list[KV]
    revision: int
    more: bool


# ------------------------------------------------------------------- errors


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class KeyExistsError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class NotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StoreError):
    """The key's mod_revision is not the one the caller expected (a lost race)."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(
            f"conflict on {key}: expected mod_revision {expected}, current is {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class CompactedError(StoreError):
    """The requested revision's history was compacted away (etcd ErrCompacted,
    Kubernetes 410 Gone "Expired"). The client must re-list."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(
            f"Expired: revision {requested} has been compacted "
            f"(oldest readable revision is {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevisionError(StoreError):
    """A list at a revision the store has not reached yet (etcd ErrFutureRev)."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(
            f"revision {requested} is in the future (current revision is {current})")
        self.requested = requested
        self.current = current


class WatchOverflowError(StoreError):
    """A watcher fell too far behind and was terminated so that writers never
    wait for it. The client must re-list (the API server sends a watch ERROR)."""

    def __init__(self, limit: int, revision: int) -> None:
        super().__init__(
            f"watcher too slow: more than {limit} events pending; "
            f"terminated at revision {revision}, re-list and watch again")
        self.limit = limit
        self.revision = revision


class StoreClosedError(StoreError):
    def __init__(self) -> None:
        super().__init__("store is closed")


# ------------------------------------------------------------- write ops


class OpKind(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class WriteOp:
    """A write request as a backend receives it through ``Store._submit``."""

    kind: OpKind
    key: str
    value: bytes = b""
    expected_revision: int = 0


def apply_op(op: WriteOp, latest: KV | None, revision: int) -> Event:
    """Check ``op`` against the key's latest version and build the event it makes.

    ``latest`` is the key's current KV (None if absent); ``revision`` is the
    revision the write would get. Shared by backends so the rules are one.
    Raises KeyExistsError / NotFoundError / ConflictError.
    """
    if op.kind is OpKind.CREATE:
        if latest is not None:
            raise KeyExistsError(op.key)
        return Event(EventType.PUT, KV(op.key, op.value, revision, revision))
    if latest is None:
        raise NotFoundError(op.key)
    if op.expected_revision and op.expected_revision != latest.mod_revision:
        raise ConflictError(op.key, op.expected_revision, latest.mod_revision)
    if op.kind is OpKind.UPDATE:
        kv = KV(op.key, op.value, latest.create_revision, revision)
        return Event(EventType.PUT, kv, latest)
    tomb = KV(op.key, latest.value, latest.create_revision, revision)
    return Event(EventType.DELETE, tomb, latest)


def check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty str, got {key!r}")
    if "\x00" in key:
        raise ValueError("key must not contain NUL")


def check_value(value: bytes) -> bytes:
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if not isinstance(value, bytes):
        raise TypeError(f"value must be bytes, got {type(value).__name__}")
    return value


# Every backend's default automatic compaction window (``retain_revisions``), in revisions.
DEFAULT_RETAIN = 10000


def auto_compact_target(current: int, compacted: int, retain: int) -> int:
    """Where automatic compaction should compact to now, or 0 if not yet.

    ``retain`` revisions are kept (0 = keep everything). Compaction runs in
    steps of ~10% of the window, so its cost is amortized over many writes.
    """
    if retain <= 0 or current - compacted < retain + max(1, retain // 10):
        return 0
    return current - retain


def check_list_args(revision: int, limit: int) -> None:
    if revision < 0:
        raise ValueError("revision must be >= 0")
    if limit < 0:
        raise ValueError("limit must be >= 0")


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``
    (etcd's range_end), or None when there is none (empty prefix).

    Backends compare keys by code point, which is also UTF-8 byte order, so
    SQLite's BINARY collation and Python's ``<`` agree.
    """
    p = prefix
    while p:
        c = ord(p[-1])
        if c < 0x10FFFF:
            c += 1
            if 0xD800 <= c <= 0xDFFF:  # surrogates cannot be encoded; skip them
                c = 0xE000
            return p[:-1] + chr(c)
        p = p[:-1]
    return None


# ---------------------------------------------------------------- interface


class Store(abc.ABC):
    """A revisioned key/value store with watch. Thread-safe.

    Blocking methods may be called from any thread; from an asyncio loop use
    the ``a``-prefixed coroutines, which never block the loop.
    """

    # ---- reads

    @abc.abstractmethod
    def get(self, key: str) -> KV | None:
        """The key's current version, or None."""

    @abc.abstractmethod
    def list(self, prefix: str, revision: int = 0, limit: int = 0,
             start_after: str = "") -> ListResult:
        """Keys starting with ``prefix``, sorted, as of ``revision`` (0 = current).

        ``limit`` (0 = all) caps the page; ``start_after`` skips keys <= it.
        ``more`` says whether keys remain after the page. Raises CompactedError
        if ``revision < compact_revision()``, FutureRevisionError if it is
        beyond the current revision.
        """

    @abc.abstractmethod
    def current_revision(self) -> int:
        """The revision of the last acknowledged write (0 for an empty store)."""

    @abc.abstractmethod
    def compact_revision(self) -> int:
        """The oldest readable revision (0 if never compacted)."""

    # ---- writes

    @abc.abstractmethod
    def _submit(self, op: WriteOp) -> concurrent.futures.Future[Event]:
        """Queue ``op``; the future resolves once it is durable and its event
        has been published to watchers, or fails with a StoreError."""

    def create(self, key: str, value: bytes) -> KV:
        """Create ``key`` if absent, else raise KeyExistsError."""
        return self._submit(self._op(OpKind.CREATE, key, value, 0)).result().kv

    def update(self, key: str, value: bytes, expected_revision: int = 0) -> KV:
        """Replace the value if the key's mod_revision is ``expected_revision``
        (0 = unconditional). Raises NotFoundError / ConflictError."""
        return self._submit(self._op(OpKind.UPDATE, key, value, expected_revision)).result().kv

    def delete(self, key: str, expected_revision: int = 0) -> KV:
        """Delete the key (same precondition as update); returns the tombstone
        (last value, ``mod_revision`` = the delete's revision)."""
        return self._submit(self._op(OpKind.DELETE, key, b"", expected_revision)).result().kv

    async def acreate(self, key: str, value: bytes) -> KV:
        fut = self._submit(self._op(OpKind.CREATE, key, value, 0))
        return (await asyncio.wrap_future(fut)).kv

    async def aupdate(self, key: str, value: bytes, expected_revision: int = 0) -> KV:
        fut = self._submit(self._op(OpKind.UPDATE, key, value, expected_revision))
        return (await asyncio.wrap_future(fut)).kv

    async def adelete(self, key: str, expected_revision: int = 0) -> KV:
        fut = self._submit(self._op(OpKind.DELETE, key, b"", expected_revision))
        return (await asyncio.wrap_future(fut)).kv

    async def aget(self, key: str) -> KV | None:
        return await asyncio.get_running_loop().run_in_executor(None, self.get, key)

    async def alist(self, prefix: str, revision: int = 0, limit: int = 0,
                    start_after: str = "") -> ListResult:
        return await asyncio.get_running_loop().run_in_executor(
            None, self.list, prefix, revision, limit, start_after)

    @staticmethod
    def _op(kind: OpKind, key: str, value: bytes, expected_revision: int) -> WriteOp:
        check_key(key)
        if expected_revision < 0:
            raise ValueError("expected_revision must be >= 0")
        return WriteOp(kind, key, check_value(value), expected_revision)

    # ---- watch

    @abc.abstractmethod
    def watch(self, prefix: str, from_revision: int | None = None) -> Watch:
        """Watch keys starting with ``prefix``: every change with revision
        ``> from_revision``, in revision order, first from history and then live,
        with no gap and no duplicate. ``None`` means "from now" (the current
        revision). Raises CompactedError if ``from_revision <
        compact_revision()`` (if a compaction races the watch's creation, the
        first iteration raises it instead). Iterate with ``async for`` (or
        ``for`` in a thread); close it when done.
        """

    # ---- maintenance

    @abc.abstractmethod
    def compact(self, revision: int) -> None:
        """Forget history before ``revision``: afterwards it is the oldest
        readable revision. Compacting to an already compacted revision is a
        no-op; beyond the current revision raises FutureRevisionError."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finish queued writes, end every watch, release resources. Idempotent."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
