"""A Store in a real etcd v3, through etcd's gRPC JSON gateway.

Layout, as kube-apiserver lays it out: one etcd key per object,
``/registry/<resource>/<namespace>/<name>``, whose value is the bytes the API
server hands the store. netlab's API server stores JSON, so ``etcdctl get``
shows the object as ``kubectl get -o json`` would; kube-apiserver stores
protobuf (a ``k8s\\x00`` envelope) for built-in kinds, which etcdctl prints
as binary. JSON is the point of a lab you can read.

Revisions. Every netlab write is one etcd transaction with one operation, so
it is exactly one etcd revision: the mapping is one-to-one and in order. It is
offset by one (``REV_OFFSET``): an empty etcd is already at revision 1 and its
first write gets 2, while the Store contract (base.py) starts at 0 and gives
the first write revision 1. So ``resourceVersion = mod_revision - 1``, and a
list at resourceVersion R reads etcd at R+1.

Writes are transactions on the key's revisions, which is how kube-apiserver's
GuaranteedUpdate works:

- create: ``if create_revision(key) == 0 then put else get``;
- update/delete with ``expected_revision`` E: ``if mod_revision(key) == E+1
  then put/delete else get`` (the ``get`` tells NotFound from Conflict);
- unconditional update/delete: ``if version(key) > 0 then ...``.

Watch. One etcd watch over the whole keyspace (with ``prev_kv``) feeds the
shared ``WatchHub``: the store's revision is the last revision that watch
delivered, and a write is acknowledged only once its event has gone through
it, as with the other backends (an acknowledged write is visible to watchers).
This is kube-apiserver's watch cache in small: clients' watches never open
etcd watches of their own. History (a watch from an older resourceVersion) is
served from the last ``cache_events`` events that watch delivered, and only
when it is older than those, read with a short-lived etcd watch from the
requested revision (etcd hands such a watch its history on its next sync,
within ~100 ms). etcd refuses history older
than its compaction with ``compact_revision``, which becomes CompactedError
(410 Expired) as in the other backends.

Compaction: ``retain_revisions`` as the other backends (the store asks etcd to
compact; etcd's own ``--auto-compaction-*`` stays off). The compact revision
is found at start by a binary search over ranges at past revisions (etcd
reports "compacted" for any revision below it).

Members and failover. The store is given every member's endpoint (as
kube-apiserver's ``--etcd-servers``) and talks to one at a time, the same code
for 1 member as for 3. A request that could not reach the member, or that the
member refused without applying (no leader, not capable), moves on to the next
endpoint, until the request's deadline; a read that timed out or lost its
connection does too. A transaction that may have been applied (timed out,
connection lost after sending) is not retried: it fails with EtcdUnavailable,
which the API server answers 500, so a client never sees success for a write
etcd did not commit, nor a silent second attempt. The watch that feeds the hub
asks for a leader (gRPC metadata ``hasleader``, so a member that loses its
quorum ends it) and for progress notifications (members run with a 1 s
interval). A watch silent for ``WATCH_IDLE`` seconds is taken for a dead
connection (a member cut off by ``netlab fault link-down``) if the store has had
progress notifications (on any stream: one that starts under a steady write load
carries only events) or if a request waits for a revision etcd has committed and
the watch has not delivered; both cases reconnect to the next endpoint from the
last published revision. An idle etcd that sends no progress notifications (etcd's
default is one per 10 minutes) is not left for its silence.

Transport: HTTP/1.1 + JSON to ``/v3/kv/range``, ``/v3/kv/txn``,
``/v3/kv/compaction`` and ``/v3/watch`` (a stream of JSON lines), keys and
values base64, over TLS with a client certificate when the endpoint is
``https``. No gRPC stack is needed: aiohttp is already a dependency. All I/O
runs on one private event loop thread; the blocking methods wait on it and
the ``a``-methods await it without blocking the caller's loop.
"""

from __future__ import annotations

import asyncio
import base64
import builtins  # the stores have a list() method, which hides list in class bodies
import collections
import concurrent.futures
import contextlib
import heapq
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import AsyncGenerator, Coroutine, Sequence
from typing import Any, Optional, TypeVar

import aiohttp

from netlab.master.store.base import (
    DEFAULT_RETAIN,
    KV,
    CompactedError,
    ConflictError,
    Event,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    ListResult,
    NotFoundError,
    OpKind,
    Store,
    StoreClosedError,
    StoreError,
    WriteOp,
    auto_compact_target,
    check_list_args,
    prefix_end,
)
from netlab.master.store.watch import DEFAULT_BUFFER_LIMIT, DEFAULT_HISTORY_PAGE, Watch, WatchHub

log = logging.getLogger("netlab.store.etcd")

REV_OFFSET = 1  # etcd revision = store revision + REV_OFFSET (see the module docstring)
DEFAULT_CACHE_EVENTS = 1000
ALL_KEYS = "AA=="  # base64 of "\0": as key and range_end, every key
_RETRYABLE = ("no leader", "leader changed", "timed out", "not capable", "stopped",
              "too many requests")
# Refusals that say the request was not applied: a transaction may be retried elsewhere.
_NOT_APPLIED = ("no leader", "not capable", "too many requests")
ATTEMPT_TIMEOUT = 10.0  # one request to one member; etcd's own request timeout is ~7 s
# A watch silent this long, from a member that sends progress notifications (netlab's
# every 1 s) or while a request waits for a committed revision, is a dead connection.
WATCH_IDLE = 5.0
# etcd's gRPC gateway passes Grpc-Metadata-* headers as gRPC metadata; this one makes
# the member end the watch when it has no leader (clientv3.WithRequireLeader).
_REQUIRE_LEADER = {"Grpc-Metadata-hasleader": "true"}

T = TypeVar("T")


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _kv(raw: dict[str, Any]) -> KV:
    return KV(_unb64(raw.get("key")).decode("utf-8", "replace"), _unb64(raw.get("value")),
              int(raw.get("create_revision", 0)) - REV_OFFSET,
              int(raw.get("mod_revision", 0)) - REV_OFFSET)


def _event(raw: dict[str, Any]) -> Event:
    kv = _kv(raw["kv"])
    prev = _kv(raw["prev_kv"]) if raw.get("prev_kv") else None
    if raw.get("type") == "DELETE":
        # etcd's delete event carries only the key and revision: the tombstone
        # of the Store contract holds the last value (from prev_kv).
        tomb = KV(kv.key, prev.value if prev else b"",
                  prev.create_revision if prev else kv.mod_revision, kv.mod_revision)
        return Event(EventType.DELETE, tomb, prev)
    return Event(EventType.PUT, kv, prev if kv.create_revision != kv.mod_revision else None)


class EtcdError(StoreError):
    """An error etcd answered with (gRPC code and message)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(f"etcd: {message}")
        self.code = code
        self.etcd_message = message

    @property
    def compacted(self) -> bool:
        return "has been compacted" in self.etcd_message

    @property
    def future(self) -> bool:
        return "future revision" in self.etcd_message


class EtcdUnavailable(StoreError):
    """etcd could not be reached before the deadline."""


# A connection that could not be opened in time (sock_connect): nothing was sent, so
# even a transaction moves on to the next member. Before aiohttp 3.10 it was the
# generic ServerTimeoutError (also raised for a read timeout): no such shortcut then.
_CONNECT_TIMEOUT: type[Exception] = getattr(aiohttp, "ConnectionTimeoutError", EtcdError)


def ssl_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def parse_endpoints(endpoints: str | Sequence[str]) -> builtins.list[str]:
    """``https://a:2379,https://b:2379`` (or a list) -> the endpoints, without slashes."""
    items = endpoints.split(",") if isinstance(endpoints, str) else builtins.list(endpoints)
    out = [e.strip().rstrip("/") for e in items if e.strip()]
    if not out or not all(e.startswith(("http://", "https://")) for e in out):
        raise ValueError(f"etcd endpoints must be http(s)://host:port, got {endpoints!r}")
    if len({e.split(":", 1)[0] for e in out}) != 1:
        raise ValueError("etcd endpoints must all be http or all https")
    return out


class EtcdStore(Store):
    """A store in the etcd cluster at ``endpoints`` (``http(s)://host:port``, one or
    several, as a list or comma-separated), failing over between them.

    ``ca``/``cert``/``key`` are PEM files for TLS (the CA that signed etcd's
    certificate, and this client's certificate and key). ``connect_timeout``
    bounds how long opening waits for etcd to answer, and how long a request
    retries while etcd is unreachable or has no leader. ``netns_fd`` (an open
    ``/proc/<pid>/ns/net``) dials etcd from that network namespace, names resolved
    there too: how an API server inside a lab reaches an etcd outside it.
    """

    def __init__(self, endpoints: str | Sequence[str], *, ca: str | None = None,
                 cert: str | None = None,
                 key: str | None = None,
                 retain_revisions: int = DEFAULT_RETAIN,
                 watch_buffer: int = DEFAULT_BUFFER_LIMIT,
                 history_page: int = DEFAULT_HISTORY_PAGE,
                 cache_events: int = DEFAULT_CACHE_EVENTS,
                 connect_timeout: float = 30.0,
                 request_timeout: float = 30.0,
                 netns_fd: int | None = None) -> None:
        self.endpoints = parse_endpoints(endpoints)
        self._current = 0  # the member requests go to; see _failover
        self._progress_notifications = 0  # seen on the watch, over its reconnects
        self._ssl: ssl.SSLContext | bool = (
            ssl_context(ca, cert, key) if self.endpoint.startswith("https:") else False)
        self._retain = retain_revisions
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._closing = False
        self._closed = False
        self._compacting: Optional[asyncio.Future[None]] = None
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # (rev, seq, fut)
        self._seq = 0
        self._inflight: set[asyncio.Future[Any]] = set()
        # The recent events, complete for every revision > _cache_from.
        self._cache: collections.deque[Event] = collections.deque(maxlen=max(cache_events, 0))
        self._cache_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._netns_pool: concurrent.futures.ThreadPoolExecutor | None = None
        if netns_fd is not None:
            from netlab.kernel.netns import executor_in_netns_fd

            # The loop's executor runs getaddrinfo (ThreadedResolver), and _open's
            # socket factory creates sockets there: both in that namespace.
            self._netns_pool = executor_in_netns_fd(netns_fd)
            self._loop.set_default_executor(self._netns_pool)
        self._thread = threading.Thread(target=self._loop.run_forever, name="etcd-store",
                                        daemon=True)
        self._thread.start()
        try:
            self._rev, self._compact = self._run(self._open())
            self._cache_from = self._rev
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            raise
        self._hub = WatchHub(self._history, self._rev, buffer_limit=watch_buffer,
                             page_size=history_page)
        self._pump_task = asyncio.run_coroutine_threadsafe(self._pump(), self._loop)

    @property
    def endpoint(self) -> str:
        """The member requests go to now."""
        return self.endpoints[self._current]

    def _failover(self, failed: str) -> None:
        """Move on from ``failed`` to the next endpoint (once, however many requests
        saw it fail at the same time)."""
        if len(self.endpoints) > 1 and self.endpoint == failed:
            self._current = (self._current + 1) % len(self.endpoints)
            log.warning("etcd member %s failed; using %s", failed, self.endpoint)

    # ---- the private loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _open(self) -> tuple[int, int]:
        netns: dict[str, Any] = {}
        if self._netns_pool is not None:
            pool = self._netns_pool
            netns = {"resolver": aiohttp.ThreadedResolver(),
                     "socket_factory": lambda ai: pool.submit(socket.socket, *ai[:3]).result()}
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=2.0),
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64, **netns))
        try:
            header = (await self._post("/v3/kv/range", {"key": ALL_KEYS, "count_only": True},
                                       self._connect_timeout))["header"]
            current = int(header["revision"])
            return current - REV_OFFSET, await self._find_compact(current)
        except BaseException:
            await self._session.close()
            raise

    async def _find_compact(self, current: int) -> int:
        """The store's compact revision: etcd's lowest readable revision, by bisection."""
        async def readable(rev: int) -> bool:
            try:
                await self._post("/v3/kv/range", {"key": ALL_KEYS, "count_only": True,
                                                  "revision": str(rev)})
            except EtcdError as err:
                if err.compacted:
                    return False
                raise
            return True

        if current <= 1 or await readable(1):
            return 0
        low, high = 1, current  # low unreadable, high readable
        while high - low > 1:
            mid = (low + high) // 2
            if await readable(mid):
                high = mid
            else:
                low = mid
        return high - REV_OFFSET

    async def _post(self, path: str, body: dict[str, Any], timeout: float | None = None,
                    idempotent: bool = True) -> dict[str, Any]:
        """One JSON request, to the current member and then the others (see the module
        docstring), until ``timeout``. Retried while no member answers or they are
        leaderless; a read (``idempotent``) also after a timeout or a dead pooled
        connection; a transaction only when it certainly was not applied."""
        deadline = time.monotonic() + (timeout or self._request_timeout)
        delay = 0.05
        while True:
            endpoint = self.endpoint
            remaining = max(0.1, deadline - time.monotonic())
            try:
                async with self._session.post(
                        endpoint + path, json=body,
                        timeout=aiohttp.ClientTimeout(total=min(ATTEMPT_TIMEOUT, remaining),
                                                      sock_connect=2.0)) as resp:
                    data = await resp.json(content_type=None)
                if "error" in data or resp.status != 200:
                    raise EtcdError(str(data.get("message") or data.get("error") or data),
                                    int(data.get("code", 0)))
                return data
            except (aiohttp.ClientConnectorError, _CONNECT_TIMEOUT, EtcdError) as err:
                # never sent (no connection: refused, or a member cut off that never
                # answered the SYN), or refused by etcd
                if isinstance(err, EtcdError) and not any(
                        s in err.etcd_message
                        for s in (_RETRYABLE if idempotent else _NOT_APPLIED)):
                    if any(s in err.etcd_message for s in _RETRYABLE):  # maybe applied
                        self._failover(endpoint)
                        raise EtcdUnavailable(f"etcd at {endpoint}: {err.etcd_message}") \
                            from err
                    raise
                self._failover(endpoint)
                if self._closing or time.monotonic() + delay > deadline:
                    raise EtcdUnavailable(f"etcd is unavailable ({', '.join(self.endpoints)}): "
                                          f"{err}") from err
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                    asyncio.TimeoutError) as err:
                # sent, and no answer: a read is retried elsewhere, a write may be applied
                self._failover(endpoint)
                what = "timed out" if isinstance(err, asyncio.TimeoutError) else repr(err)
                if not idempotent:
                    raise EtcdUnavailable(f"etcd at {endpoint}: {path} {what}; the write may "
                                          "or may not have been applied") from err
                if self._closing or time.monotonic() + delay > deadline:
                    raise EtcdUnavailable(f"etcd is unavailable ({', '.join(self.endpoints)}): "
                                          f"{path} {what}") from err
            except (aiohttp.ClientError, ValueError) as err:
                raise StoreError(f"etcd at {endpoint}: {path} failed: {err!r}") from err
            await asyncio.sleep(delay)  # retry backoff while etcd restarts or elects
            delay = min(delay * 2, 1.0)

    async def _watch_stream(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """The messages (``result`` objects) of one etcd watch, until the caller stops."""
        endpoint = self.endpoint
        async with self._session.post(
                endpoint + "/v3/watch", json={"create_request": body},
                headers=_REQUIRE_LEADER,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=2.0)) as resp:
            if resp.status != 200:
                raise EtcdError(f"watch: HTTP {resp.status}: {(await resp.text())[:200]}")
            # Silence is a dead connection (a member cut off by link-down) only where it
            # says so: from a member known to send progress notifications (netlab's,
            # every second; known from any stream of this store, since one that starts
            # under a steady write load carries events and no notifications), or while a
            # request waits for a revision etcd has already committed. An etcd that sends
            # notifications every 10 minutes (etcd's default) is otherwise merely idle.
            chunks = resp.content.iter_any().__aiter__()
            heard = self._loop.time()
            buf = b""
            while True:
                nxt = asyncio.ensure_future(chunks.__anext__())
                try:
                    while not nxt.done():
                        await asyncio.wait((nxt,), timeout=1.0)
                        silent = self._loop.time() - heard
                        if not nxt.done() and silent > WATCH_IDLE and (
                                self._progress_notifications or self._waiters):
                            raise EtcdUnavailable(f"the watch on {endpoint} has been "
                                                  f"silent for {silent:.0f}s")
                    chunk = nxt.result()
                except StopAsyncIteration:
                    return
                finally:
                    nxt.cancel()
                heard = self._loop.time()
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    msg = json.loads(line)
                    if "error" in msg:
                        err = msg["error"]
                        raise EtcdError(str(err.get("message", err)), int(err.get("code", 0)))
                    result = msg.get("result", {})
                    if not (result.get("events") or result.get("created")
                            or result.get("canceled")):  # a progress notification
                        self._progress_notifications += 1
                    yield result

    # ---- reads

    def _check_open(self) -> None:
        if self._closed or self._closing:
            raise StoreClosedError()

    async def _aget(self, key: str) -> KV | None:
        data = await self._post("/v3/kv/range", {"key": _b64(key)})
        kvs = data.get("kvs") or []
        kv = _kv(kvs[0]) if kvs else None
        if kv is not None:
            await self._published(kv.mod_revision)
        return kv

    def get(self, key: str) -> KV | None:
        self._check_open()
        return self._run(self._aget(key))

    async def aget(self, key: str) -> KV | None:
        self._check_open()
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self._aget(key), self._loop))

    async def _alist(self, prefix: str, revision: int, limit: int,
                     start_after: str) -> ListResult:
        check_list_args(revision, limit)
        start = prefix
        if start_after and start_after >= prefix:
            start = start_after + "\0"
        end = prefix_end(prefix)
        body: dict[str, Any] = {"key": _b64(start) if start else ALL_KEYS,
                                "range_end": _b64(end) if end is not None else ALL_KEYS}
        if revision:
            body["revision"] = str(revision + REV_OFFSET)
        if limit:
            body["limit"] = str(limit)
        try:
            data = await self._post("/v3/kv/range", body)
        except EtcdError as err:
            if err.compacted:
                raise CompactedError(revision, max(self._compact, revision + 1)) from None
            if err.future:
                raise FutureRevisionError(revision, self._rev) from None
            raise
        at = revision or int(data["header"]["revision"]) - REV_OFFSET
        # etcd may be a few events ahead of the watch that feeds the hub: a read is
        # returned once its revision is the store's, so that a watch from it (the
        # next thing a client does) is never "in the future".
        await self._published(at)
        return ListResult([_kv(raw) for raw in data.get("kvs") or []], at,
                          bool(data.get("more")))

    def list(self, prefix: str, revision: int = 0, limit: int = 0,
             start_after: str = "") -> ListResult:
        self._check_open()
        return self._run(self._alist(prefix, revision, limit, start_after))

    async def alist(self, prefix: str, revision: int = 0, limit: int = 0,
                    start_after: str = "") -> ListResult:
        self._check_open()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            self._alist(prefix, revision, limit, start_after), self._loop))

    def current_revision(self) -> int:
        return self._rev

    def compact_revision(self) -> int:
        return self._compact

    # ---- writes

    def _submit(self, op: WriteOp) -> concurrent.futures.Future[Event]:
        if self._closing:
            fut: concurrent.futures.Future[Event] = concurrent.futures.Future()
            fut.set_exception(StoreClosedError())
            return fut
        return asyncio.run_coroutine_threadsafe(self._write(op), self._loop)

    async def _write(self, op: WriteOp) -> Event:
        if self._closing:
            raise StoreClosedError()
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            ev = await self._txn(op)
            await self._published(ev.revision)
        finally:
            self._inflight.discard(task)
        target = auto_compact_target(self._rev, self._compact, self._retain)
        if target and self._compacting is None:
            with contextlib.suppress(StoreError):
                await self._acompact(target, physical=False)
        return ev

    async def _txn(self, op: WriteOp) -> Event:
        key = _b64(op.key)
        if op.kind is OpKind.CREATE:
            compare = {"target": "CREATE", "key": key, "result": "EQUAL", "create_revision": "0"}
        elif op.expected_revision:
            compare = {"target": "MOD", "key": key, "result": "EQUAL",
                       "mod_revision": str(op.expected_revision + REV_OFFSET)}
        else:
            compare = {"target": "VERSION", "key": key, "result": "GREATER", "version": "0"}
        if op.kind is OpKind.DELETE:
            success = {"request_delete_range": {"key": key, "prev_kv": True}}
        else:
            success = {"request_put": {"key": key, "value": _b64(op.value), "prev_kv": True}}
        data = await self._post("/v3/kv/txn", {
            "compare": [compare], "success": [success],
            "failure": [{"request_range": {"key": key}}]}, idempotent=False)
        resp = (data.get("responses") or [{}])[0]
        if not data.get("succeeded"):
            kvs = (resp.get("response_range") or {}).get("kvs") or []
            if op.kind is OpKind.CREATE:
                raise KeyExistsError(op.key)
            if not kvs:
                raise NotFoundError(op.key)
            raise ConflictError(op.key, op.expected_revision, _kv(kvs[0]).mod_revision)
        rev = int(data["header"]["revision"]) - REV_OFFSET
        if op.kind is OpKind.DELETE:
            prevs = (resp.get("response_delete_range") or {}).get("prev_kvs") or []
            if not prevs:  # deleted by someone else between compare and delete: impossible
                raise NotFoundError(op.key)
            prev = _kv(prevs[0])
            return Event(EventType.DELETE, KV(op.key, prev.value, prev.create_revision, rev),
                         prev)
        raw_prev = (resp.get("response_put") or {}).get("prev_kv")
        prev_kv = _kv(raw_prev) if raw_prev else None
        kv = KV(op.key, op.value, prev_kv.create_revision if prev_kv else rev, rev)
        return Event(EventType.PUT, kv, prev_kv)

    async def _published(self, revision: int) -> None:
        """Wait until the watch pump has published ``revision``; bounded by the request
        timeout, so that a request fails (5xx) rather than hangs while no member can
        feed the watch (the pump keeps trying, and later requests succeed)."""
        if self._rev >= revision:
            return
        fut = self._loop.create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (revision, self._seq, fut))
        try:
            await asyncio.wait_for(fut, self._request_timeout)
        except asyncio.TimeoutError:
            raise EtcdUnavailable(
                f"etcd's watch did not deliver revision {revision + REV_OFFSET} within "
                f"{self._request_timeout:.0f}s (members: {', '.join(self.endpoints)})") from None

    def _release(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._rev:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    # ---- watch

    async def _pump(self) -> None:
        """Follow every change in etcd and publish it, reconnecting after failures."""
        delay = 0.05
        while not self._closing:
            endpoint = self.endpoint
            stream = self._watch_stream({
                "key": ALL_KEYS, "range_end": ALL_KEYS, "prev_kv": True,
                "progress_notify": True,
                "start_revision": str(self._rev + REV_OFFSET + 1)})
            try:
                async for msg in stream:
                    delay = 0.05
                    if msg.get("canceled"):
                        compact = int(msg.get("compact_revision", 0)) - REV_OFFSET
                        self._lost_history(compact)
                        break
                    events = [_event(raw) for raw in msg.get("events") or []]
                    events = [ev for ev in events if ev.revision > self._rev]
                    if events:
                        self._remember(events)
                        self._hub.publish(events)
                        self._rev = events[-1].revision
                        self._release()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a member restarting or cut off: resume elsewhere
                if self._closing:
                    return
                self._failover(endpoint)
                log.warning("etcd watch on %s interrupted at revision %d: %r; resuming",
                            endpoint, self._rev, err)
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()
            await asyncio.sleep(delay)  # reconnect backoff
            delay = min(delay * 2, 1.0)

    def _remember(self, events: builtins.list[Event]) -> None:
        if self._cache.maxlen == 0:
            self._cache_from = events[-1].revision
            return
        with self._cache_lock:
            for ev in events:
                if len(self._cache) == self._cache.maxlen:
                    self._cache_from = self._cache[0].revision
                self._cache.append(ev)

    def _cached(self, prefix: str, after: int, upto: int,
                limit: int) -> builtins.list[Event] | None:
        """History from the recent events, or None if it reaches further back."""
        with self._cache_lock:
            if after < self._cache_from:
                return None
            events = list(self._cache)
        out: builtins.list[Event] = []
        for ev in events:
            if ev.revision <= after or not ev.kv.key.startswith(prefix):
                continue
            if ev.revision > upto or len(out) >= limit:
                break
            out.append(ev)
        return out

    def _lost_history(self, compact: int) -> None:
        """etcd compacted past what the pump had read (someone else compacted
        while it was disconnected): every watcher must re-list."""
        log.error("etcd history compacted to %d while the store was at %d; "
                  "ending every watch", compact, self._rev)
        self._hub.reset(compact, CompactedError(self._rev, compact))
        self._compact = max(self._compact, compact)
        self._rev = max(self._rev, compact)
        with self._cache_lock:
            self._cache.clear()
            self._cache_from = self._rev
        self._release()

    def _history(self, prefix: str, after: int, upto: int, limit: int) -> builtins.list[Event]:
        if after < self._compact:
            raise CompactedError(after, self._compact)
        if self._closed:
            raise StoreClosedError()
        cached = self._cached(prefix, after, upto, limit)
        if cached is not None:
            return cached
        return self._run(self._ahistory(prefix, after, upto, limit))

    async def _ahistory(self, prefix: str, after: int, upto: int,
                        limit: int) -> builtins.list[Event]:
        out: list[Event] = []
        if after >= upto:
            return out
        # The whole keyspace, not just the prefix: each revision <= upto is an
        # event, so reaching upto tells the read it is complete.
        stream = self._watch_stream({"key": ALL_KEYS, "range_end": ALL_KEYS, "prev_kv": True,
                                     "start_revision": str(after + REV_OFFSET + 1)})
        try:
            async for msg in stream:
                if msg.get("canceled"):
                    compact = int(msg.get("compact_revision", 0)) - REV_OFFSET
                    self._compact = max(self._compact, compact)
                    raise CompactedError(after, compact)
                for raw in msg.get("events") or []:
                    ev = _event(raw)
                    if ev.revision > upto:
                        return out
                    if ev.kv.key.startswith(prefix):
                        out.append(ev)
                        if len(out) >= limit:
                            return out
                    if ev.revision == upto:
                        return out
        finally:
            await stream.aclose()
        raise StoreError(f"etcd watch ended before revision {upto}")

    def watch(self, prefix: str, from_revision: int | None = None) -> Watch:
        self._check_open()
        if from_revision is not None and from_revision < self._compact:
            raise CompactedError(from_revision, self._compact)
        return self._hub.register(prefix, from_revision)

    # ---- maintenance

    async def _acompact(self, revision: int, physical: bool = True) -> None:
        """Compact etcd to ``revision`` (store numbering). etcd refuses older
        revisions as soon as it applies the request; ``physical`` also waits
        for the space to be reclaimed (the automatic compaction does not)."""
        while self._compacting is not None:  # one at a time
            await asyncio.shield(self._compacting)
        if revision <= self._compact:
            return
        if revision > self._rev:
            raise FutureRevisionError(revision, self._rev)
        self._compacting = self._loop.create_future()
        try:
            await self._post("/v3/kv/compaction",
                             {"revision": str(revision + REV_OFFSET), "physical": physical})
            self._compact = max(self._compact, revision)
        except EtcdError as err:
            if not err.compacted:
                raise
        finally:
            self._compacting.set_result(None)
            self._compacting = None

    def compact(self, revision: int) -> None:
        self._check_open()
        self._run(self._acompact(revision))

    def status(self) -> dict[str, Any]:
        """etcd's own status of the member this store talks to (version, leader, size)."""
        self._check_open()
        return self._run(self._post("/v3/maintenance/status", {}))

    def close(self) -> None:
        if self._closing:
            self._thread.join()
            return
        self._closing = True

        async def drain() -> None:
            if self._inflight:  # queued writes still complete
                await asyncio.gather(*list(self._inflight), return_exceptions=True)
            self._pump_task.cancel()
            for _, _, fut in self._waiters:
                if not fut.done():
                    fut.set_exception(StoreClosedError())
            await self._session.close()

        with contextlib.suppress(Exception):
            self._run(drain())
        self._hub.close()
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
