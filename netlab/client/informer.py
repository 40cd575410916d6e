"""Informers: a local, always-current cache of one resource, fed by list + watch.

This is client-go's informer pattern, which every Kubernetes component is
built on, in small: list the resource, remember the list's resourceVersion,
watch from it, and apply each event to the cache before telling the handlers.
When the watch ends (timeout, server restart) it resumes from the last
resourceVersion seen; when the server says that version is too old (410), it
lists again and reports the difference as events, so no change is ever lost
and a component never polls.

Handlers receive ``(event_type, obj, old)`` with event_type ADDED, MODIFIED or
DELETED; they must not block (hand work to a queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, Callable, Union

import aiohttp

from netlab.api.views import meta_of
from netlab.client.http import APIError, Client

log = logging.getLogger("netlab.informer")

Handler = Callable[[str, dict[str, Any], Union[dict[str, Any], None]], Union[Awaitable[None], None]]
RETRY_START, RETRY_MAX = 0.2, 5.0
WATCH_TIMEOUT = 300  # seconds a single watch request may run before it is renewed


def object_key(obj: Mapping[str, Any]) -> str:
    meta = meta_of(obj)
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


class Informer:
    """Keeps ``cache`` equal to the server's view of ``resource`` (optionally filtered)."""

    def __init__(self, client: Client, resource: str, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None):
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache: dict[str, dict[str, Any]] = {}
        self.resource_version: str | None = None
        self.synced = asyncio.Event()
        self._handlers: list[Handler] = []
        self._task: asyncio.Task | None = None

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.cache.get(key)

    def items(self) -> list[dict[str, Any]]:
        return list(self.cache.values())

    async def _notify(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        for handler in self._handlers:
            try:
                result = handler(kind, obj, old)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # one bad handler must not stop the informer
                log.exception("%s handler failed on %s %s", self.resource, kind, object_key(obj))

    async def _relist(self) -> None:
        listing = await self.client.list(self.resource, self.namespace,
                                         label_selector=self.label_selector,
                                         field_selector=self.field_selector)
        fresh = {object_key(o): o for o in listing.get("items", [])}
        kind = listing.get("kind", "").removesuffix("List")
        api_version = listing.get("apiVersion")
        old_cache, self.cache = self.cache, {}
        for key, obj in fresh.items():
            obj.setdefault("kind", kind)
            obj.setdefault("apiVersion", api_version)
            self.cache[key] = obj
            previous = old_cache.get(key)
            if previous is None:
                await self._notify("ADDED", obj, None)
            elif previous.get("metadata", {}).get("resourceVersion") != \
                    obj.get("metadata", {}).get("resourceVersion"):
                await self._notify("MODIFIED", obj, previous)
        for key, obj in old_cache.items():
            if key not in fresh:
                await self._notify("DELETED", obj, None)
        self.resource_version = meta_of(listing).get("resourceVersion")
        self.synced.set()

    async def _watch_once(self) -> None:
        async for event in self.client.watch(
                self.resource, self.namespace, resource_version=self.resource_version,
                label_selector=self.label_selector, field_selector=self.field_selector,
                timeout_seconds=WATCH_TIMEOUT):
            kind: str = event.get("type") or ""
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    self.resource_version = None  # too old: list again
                    return
                raise APIError(obj.get("code") or 500, obj)
            rv = meta_of(obj).get("resourceVersion")
            if kind == "BOOKMARK":
                self.resource_version = rv or self.resource_version
                continue
            key = object_key(obj)
            old = self.cache.get(key)
            if kind == "DELETED":
                self.cache.pop(key, None)
            else:
                self.cache[key] = obj
            self.resource_version = rv or self.resource_version
            await self._notify(kind, obj, old)

    async def run(self) -> None:
        """List and watch forever, resuming after every interruption."""
        delay = RETRY_START
        while True:
            try:
                if self.resource_version is None:
                    await self._relist()
                await self._watch_once()
                delay = RETRY_START
            except asyncio.CancelledError:
                raise
            except APIError as err:
                if err.code == 410:
                    self.resource_version = None
                    continue
                log.warning("%s watch failed: %s; retrying in %.1fs", self.resource, err, delay)
                await asyncio.sleep(delay)  # retry backoff while the server is unreachable
                delay = min(delay * 2, RETRY_MAX)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as err:
                log.info("%s watch interrupted (%s); resuming in %.1fs", self.resource, err, delay)
                await asyncio.sleep(delay)  # retry backoff while the server is unreachable
                delay = min(delay * 2, RETRY_MAX)

    @property
    def started(self) -> bool:
        return self._task is not None

    def start(self) -> asyncio.Task:
        self._task = asyncio.ensure_future(self.run())
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
