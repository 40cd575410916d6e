"""WATCH: a chunked stream of newline-delimited JSON events.

``GET ...?watch=1`` answers 200 and then one ``{"type": ..., "object": ...}``
line per change, as the Kubernetes API server does for ``kubectl get -w``,
client-go reflectors and the Python client's ``watch.Watch().stream``:

* ``resourceVersion`` unset or ``"0"``: synthetic ADDED events for the current
  objects, then the changes after that state; ``N``: every change after N,
  replayed from the store's history; a compacted N gives one ERROR event with
  a 410 Expired Status, then the stream ends;
* label and field selectors filter the stream the way Kubernetes' watch cache
  does: an object that stops matching arrives as DELETED, one that starts
  matching as ADDED;
* ``allowWatchBookmarks=true``: BOOKMARK events (only
  ``metadata.resourceVersion``) while the stream is idle;
  ``sendInitialEvents=true`` ends the initial ADDED events with the
  ``k8s.io/initial-events-end`` bookmark;
* ``timeoutSeconds`` ends the stream; so do the client going away and the
  server shutting down (every open stream is registered with
  :class:`WatchHub`, which ends them all).

An idle stream has no task or timer of its own: the hub's one ticker looks at every
open stream each second (departed client, deadline, bookmark due). A supervisor task
per stream, waking each second, was the API server's second largest idle cost in a
100-node lab of about 1,000 watches.

Each stream is one store watch (``Store.watch``), which delivers history then
live events without gap. With a Table ``Accept`` every event carries a Table
of one row, with the column definitions only in the first, as kubectl expects.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from typing import Any, Optional

from aiohttp import web

from netlab.api import errors, objects, resources
from netlab.api.objects import dumps
from netlab.api.resources import Resource
from netlab.master.apiserver import conversion, render
from netlab.master.apiserver.config import Config
from netlab.master.apiserver.listing import Filter, parse_resource_version
from netlab.master.apiserver.request import Output, RequestInfo, query_bool, query_int
from netlab.master.store import (
    KV,
    CompactedError,
    Event,
    EventType,
    Store,
    StoreClosedError,
    WatchOverflowError,
)

log = logging.getLogger(__name__)

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
_TICK = 1.0  # how often an idle stream checks for a departed client
_DECODE_CACHE = 1024


class WatchHub:
    """The open watch streams of one app: shutdown ends them, and one ticker task
    supervises them all while any is open."""

    def __init__(self) -> None:
        self._streams: set[WatchStream] = set()
        self.closed = False
        self._ticker: Optional[asyncio.Task[None]] = None

    def add(self, stream: WatchStream) -> None:
        self._streams.add(stream)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.ensure_future(self._tick())

    def discard(self, stream: WatchStream) -> None:
        self._streams.discard(stream)

    def __len__(self) -> int:
        return len(self._streams)

    def close(self) -> None:
        self.closed = True
        for stream in list(self._streams):
            stream.stop()
        if self._ticker is not None:
            self._ticker.cancel()

    async def _tick(self) -> None:
        while self._streams:
            # A test's short bookmark interval shortens the tick with it.
            tick = min([_TICK] + [st.config.bookmark_interval for st in self._streams
                                  if st.bookmarks])
            await asyncio.sleep(tick)
            now = time.monotonic()
            for stream in list(self._streams):
                try:
                    stream.supervise(now)
                except Exception:  # one stream's trouble must not stop the others' ticks
                    log.exception("supervising a watch of %s", stream.res.plural)
                    stream.stop()

    def stop_resource(self, group: str, plural: str) -> None:
        """End the streams on one resource (its CustomResourceDefinition is gone)."""
        for stream in list(self._streams):
            if stream.res.group == group and stream.res.plural == plural:
                stream.stop()


class _DecodeCache:
    """Decoded stored values by (key, revision), shared by all streams: with many
    filtered watchers each event is parsed once. Values are treated as read-only."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: collections.OrderedDict[tuple[str, int], dict] = collections.OrderedDict()

    def get(self, kv: KV) -> dict:
        key = (kv.key, kv.mod_revision)
        obj = self._items.get(key)
        if obj is None:
            obj = objects.loads(kv.value)
            self._items[key] = obj
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return obj


_cache = _DecodeCache(_DECODE_CACHE)


def classify(ev: Event, flt: Filter) -> Optional[tuple[str, KV]]:
    """The event a watcher with ``flt`` sees for a store event, and the version of the
    object it carries (always with the event's revision); None if it sees nothing."""
    if ev.type is EventType.DELETE:
        if flt.trivial or flt.matches(_cache.get(ev.kv)):
            return "DELETED", ev.kv
        return None
    if flt.trivial:
        return ("ADDED" if ev.is_create else "MODIFIED"), ev.kv
    now = flt.matches(_cache.get(ev.kv))
    before = ev.prev_kv is not None and flt.matches(_cache.get(ev.prev_kv))
    if now:
        return ("MODIFIED" if before else "ADDED"), ev.kv
    if before:
        # As Kubernetes' watch cache: the previous content, at this event's revision.
        prev = ev.prev_kv
        assert prev is not None
        return "DELETED", KV(prev.key, prev.value, prev.create_revision, ev.revision)
    return None


class WatchStream:
    """One watch request being served."""

    def __init__(self, request: web.Request, store: Store, config: Config, info: RequestInfo,
                 output: Output) -> None:
        self.request = request
        self.store = store
        self.config = config
        self.res: Resource = info.resource
        self.version = info.version
        self.output = output
        self.info = info
        query = request.query
        self.flt = Filter(self.res, self.version, query.get("labelSelector", ""),
                          query.get("fieldSelector", ""), name=info.name)
        self.include_object = query.get("includeObject", "")
        timeout = query_int(query, "timeoutSeconds")
        if timeout is None or timeout <= 0:
            low, high = config.watch_timeout_range
            timeout = int(random.uniform(low, high))
        self.deadline = time.monotonic() + timeout
        self.bookmarks = query_bool(query, "allowWatchBookmarks")
        initial = query.get("sendInitialEvents")
        self.send_initial = None if initial is None else query_bool(query, "sendInitialEvents")
        self.rv = parse_resource_version(query.get("resourceVersion"))
        self._stopped = asyncio.Event()
        self._watch: Any = None
        self._headers_sent = False
        self._delivered = 0
        self.resp: Optional[web.StreamResponse] = None
        # Bookmarks: a revision sampled one interval ago, and the deliveries then.
        self._next_bookmark = time.monotonic() + config.bookmark_interval
        self._sampled: Optional[int] = None
        self._seen = 0
        self._bookmarking: Optional[asyncio.Task[None]] = None
        self._ended = False

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.close()

    # --- encoding ---------------------------------------------------------------------------

    def _object_bytes(self, kv: KV) -> bytes:
        form = self.output.form
        if form in ("json", "yaml") and not conversion.needs_conversion(self.res, self.version):
            return objects.with_resource_version(kv.value, kv.mod_revision)
        obj = objects.decode_stored(kv.value, kv.mod_revision)
        if form == "table":
            table = render.table(self.res, self.version, [obj], self.output,
                                 self.include_object, headers=not self._headers_sent)
            self._headers_sent = True
            return dumps(table)
        if form == "metadata":
            return dumps(render.partial_metadata(obj, self.output.version))
        return dumps(render.served(self.res, self.version, obj))

    def _bookmark_bytes(self, revision: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        if self.output.form == "table":
            obj: dict[str, Any] = {"kind": "Table", "apiVersion":
                                   f"meta.k8s.io/{self.output.version}", "metadata": meta,
                                   "columnDefinitions": [], "rows": []}
        elif self.output.form == "metadata":
            obj = {"kind": "PartialObjectMetadata",
                   "apiVersion": f"meta.k8s.io/{self.output.version}", "metadata": meta}
        else:
            obj = {"kind": self.res.kind, "apiVersion": self.res.api_version(self.version),
                   "metadata": meta}
        return b'{"type":"BOOKMARK","object":' + dumps(obj) + b"}\n"

    async def _send(self, data: bytes) -> None:
        assert self.resp is not None
        await self.resp.write(data)

    async def _event(self, kind: str, kv: KV) -> None:
        await self._send(b'{"type":"' + kind.encode() + b'","object":' +
                         self._object_bytes(kv) + b"}\n")

    async def _error(self, err: errors.APIError) -> None:
        await self._send(b'{"type":"ERROR","object":' + dumps(err.status()) + b"}\n")

    # --- serving ---------------------------------------------------------------------------

    def _prefix(self) -> str:
        ns = self.info.namespace if self.res.namespaced else None
        if self.flt.name is not None and ns:
            return resources.store_key(self.res, ns, self.flt.name)
        return resources.store_prefix(self.res, ns)

    async def serve(self) -> web.StreamResponse:
        prefix = self._prefix()
        if self.rv is not None and self.rv > self.store.current_revision():
            raise errors.timeout(f"Too large resource version: {self.rv}, current: "
                                 f"{self.store.current_revision()}")
        self.resp = web.StreamResponse(status=200, headers={
            "Content-Type": "application/json", "Cache-Control": "no-cache, private"})
        self.resp.enable_chunked_encoding()
        await self.resp.prepare(self.request)
        # ConnectionError: the client went away; StoreClosedError: the server is closing.
        with contextlib.suppress(ConnectionError, RuntimeError, StoreClosedError):
            await self._stream(prefix)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.resp.write_eof()
        return self.resp

    async def _stream(self, prefix: str) -> None:
        start = self.rv
        synthetic = self.send_initial if self.send_initial is not None else start is None
        if synthetic:
            page = await self.store.alist(prefix)
            for kv in page.items:
                if self._stopped.is_set():
                    return
                if self.flt.name is not None and not kv.key.endswith("/" + self.flt.name):
                    continue
                if self.flt.matches_kv(kv):
                    await self._event("ADDED", kv)
            start = page.revision
            if self.send_initial and self.bookmarks:
                await self._send(self._bookmark_bytes(start, initial_end=True))
        try:
            self._watch = self.store.watch(prefix, from_revision=start)
        except CompactedError as err:
            await self._error(errors.too_old_resource_version(err.requested,
                                                              err.compact_revision))
            return
        if self._stopped.is_set():
            self._watch.close()
            return
        try:
            await self._pump()
        finally:
            self._watch.close()

    async def _pump(self) -> None:
        # Events take the shortest path (one await per event, no task or timer each);
        # the hub's ticker handles the timeout, departed clients and bookmarks.
        self._seen = self._delivered
        try:
            async for ev in self._watch:
                seen = classify(ev, self.flt)
                if seen is not None:
                    await self._event(*seen)
                self._delivered += 1
        except CompactedError as err:
            await self._error(errors.too_old_resource_version(err.requested,
                                                              err.compact_revision))
        except WatchOverflowError:
            pass  # the client resumes from the last revision it saw
        finally:
            self._ended = True
            if self._bookmarking is not None:
                self._bookmarking.cancel()
                with contextlib.suppress(BaseException):
                    await self._bookmarking

    def supervise(self, now: float) -> None:
        """The hub's look at this stream: end it past its deadline or when the client
        has gone; send a bookmark when one is due."""
        watch = self._watch
        if watch is None or self._ended:
            return  # still sending the initial events, or done
        transport = self.request.transport
        if now >= self.deadline or transport is None or transport.is_closing():
            watch.close()  # ends the event loop in _pump
            return
        if not self.bookmarks or now < self._next_bookmark:
            return
        # A revision sampled one interval ago: every event up to it was published long
        # since, so a stream idle since then delivered them all.
        if self._sampled is not None and self._delivered == self._seen and \
                (self._bookmarking is None or self._bookmarking.done()):
            self._bookmarking = asyncio.ensure_future(
                self._bookmark(max(watch.revision, self._sampled)))
        self._sampled = self.store.current_revision()
        self._seen = self._delivered
        self._next_bookmark = now + self.config.bookmark_interval

    async def _bookmark(self, revision: int) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send(self._bookmark_bytes(revision))


async def serve_watch(request: web.Request, store: Store, config: Config, hub: WatchHub,
                      info: RequestInfo, output: Output) -> web.StreamResponse:
    if hub.closed:
        raise errors.service_unavailable("the server is shutting down")
    stream = WatchStream(request, store, config, info, output)
    hub.add(stream)
    try:
        return await stream.serve()
    finally:
        hub.discard(stream)
