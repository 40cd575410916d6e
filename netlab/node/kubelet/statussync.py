"""The status manager: writes each pod's computed status to ``pods/status``, coalesced.

Pod workers hand it the status they computed, as often as they like; it
writes only what differs from what the API server holds, one write in flight
per pod, always the latest. A worker that recomputes ten times while a write
is in flight causes one more write, not ten. This is the kubelet's
status_manager: it decouples running pods from the API's latency, and keeps a
burst of pods from turning into a burst of redundant writes.

Each write is a JSON merge patch of ``status`` against the newest status known
to be on the server (the informer's copy, or the answer to our own last
write, whichever has the higher resourceVersion): keys that disappeared
become ``null``, lists are replaced whole. No resourceVersion precondition is
needed: the kubelet owns these fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import aiohttp

from netlab.api.views import meta_of, status_of
from netlab.client import APIError, Client
from netlab.client.apply import merge_diff

log = logging.getLogger("netlab.kubelet.status")
RETRY_START, RETRY_MAX = 0.2, 5.0


def _rv(obj: Optional[dict[str, Any]]) -> int:
    try:
        return int(meta_of(obj or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass
class _Entry:
    namespace: str
    name: str
    uid: str
    desired: Optional[dict[str, Any]] = None
    server: Optional[dict[str, Any]] = None  # newest known pod object on the server
    task: Optional[asyncio.Task] = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    gone: bool = False


class StatusManager:
    def __init__(self, client: Client, concurrency: int = 8) -> None:
        self.client = client
        self._entries: dict[str, _Entry] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self.writes = 0

    def observed(self, pod: dict[str, Any]) -> None:
        """The informer's copy of a pod: the newest server state, if it is newer."""
        meta = meta_of(pod)
        entry = self._entries.get(meta.get("uid", ""))
        if entry is not None and _rv(pod) >= _rv(entry.server):
            entry.server = pod

    def set(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        """Make ``status`` the pod's desired status; written in the background."""
        meta = meta_of(pod)
        uid = meta.get("uid", "")
        entry = self._entries.get(uid)
        if entry is None:
            entry = self._entries[uid] = _Entry(meta.get("namespace") or "default",
                                                meta.get("name", ""), uid, server=pod)
            entry.idle.set()
        elif _rv(pod) >= _rv(entry.server):
            entry.server = pod
        entry.desired = status
        if entry.task is None and not entry.gone and self._differs(entry):
            entry.idle.clear()
            entry.task = asyncio.ensure_future(self._write_loop(entry))

    @staticmethod
    def _differs(entry: _Entry) -> bool:
        server_status = status_of(entry.server or {})
        return entry.desired is not None and entry.desired != server_status

    async def flush(self, uid: str, timeout: float = 10.0) -> None:
        """Wait until the pod's desired status is on the server (or the pod is gone)."""
        entry = self._entries.get(uid)
        if entry is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(entry.idle.wait(), timeout)

    def forget(self, uid: str) -> None:
        entry = self._entries.pop(uid, None)
        if entry is not None:
            entry.gone = True
            if entry.task is not None:
                entry.task.cancel()

    def desired(self, uid: str) -> Optional[dict[str, Any]]:
        entry = self._entries.get(uid)
        return entry.desired if entry else None

    async def _write_loop(self, entry: _Entry) -> None:
        delay = RETRY_START
        try:
            while not entry.gone and self._differs(entry):
                desired = entry.desired
                server_status = status_of(entry.server or {})
                patch = merge_diff(server_status, desired)
                try:
                    async with self._slots:
                        updated = await self.client.patch(
                            "pods", entry.name, {"status": patch}, entry.namespace,
                            subresource="status")
                    self.writes += 1
                    delay = RETRY_START
                except APIError as err:
                    if err.not_found:
                        entry.gone = True  # deleted: nothing left to report on
                        break
                    log.warning("status of %s/%s not written: %s", entry.namespace, entry.name,
                                err)
                    await asyncio.sleep(delay)  # retry backoff
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
                    log.info("status of %s/%s not written (%s); retrying", entry.namespace,
                             entry.name, err)
                    await asyncio.sleep(delay)  # retry backoff while the API is away
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                if meta_of(updated).get("uid") == entry.uid and \
                        _rv(updated) >= _rv(entry.server):
                    entry.server = updated
                if entry.desired is desired and self._differs(entry):
                    # The server normalised something we keep sending (not ours to own):
                    # accept its version rather than write forever.
                    break
        finally:
            entry.task = None
            entry.idle.set()
