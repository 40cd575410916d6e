"""netlab's etcd: a revisioned key/value log with watch, used by the API server.

``base`` defines the interface and types, ``watch`` the shared watch
machinery, ``sqlite`` the durable default backend, ``etcd`` a backend in a
real etcd and ``memory`` an in-memory one. ``open_store`` picks a backend
from a URL-ish string so that callers (the API server's command line, the lab
config) need not import a backend.
"""

from __future__ import annotations

from typing import Any

from netlab.master.store.base import (
    KV,
    CompactedError,
    ConflictError,
    Event,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    ListResult,
    NotFoundError,
    Store,
    StoreClosedError,
    StoreError,
    WatchOverflowError,
)
from netlab.master.store.memory import MemoryStore
from netlab.master.store.sqlite import SQLiteStore
from netlab.master.store.watch import Watch

__all__ = [
    "KV",
    "CompactedError",
    "ConflictError",
    "Event",
    "EventType",
    "FutureRevisionError",
    "KeyExistsError",
    "ListResult",
    "MemoryStore",
    "NotFoundError",
    "SQLiteStore",
    "Store",
    "StoreClosedError",
    "StoreError",
    "Watch",
    "WatchOverflowError",
    "open_store",
]


def open_store(spec: str, **options: Any) -> Store:
    """Open a store from ``spec``: ``memory:``, ``sqlite:<path>`` (a bare path
    also means SQLite) or ``etcd:<http(s)://host:port>[,<another member>...]``
    (every member, as kube-apiserver's ``--etcd-servers``). ``options`` go to the
    backend's constructor (for etcd: ``ca``, ``cert``, ``key``)."""
    if spec in ("memory", "memory:"):
        return MemoryStore(**options)
    if spec.startswith("etcd:"):
        from netlab.master.store.etcd import EtcdStore

        endpoints = spec[len("etcd:"):]
        if not endpoints.startswith(("http://", "https://")):
            raise ValueError("store spec needs an endpoint: etcd:https://<host>:<port>")
        return EtcdStore(endpoints, **options)
    if spec.startswith("sqlite:"):
        spec = spec[len("sqlite:"):]
        if spec.startswith("//"):  # sqlite:///abs/path
            spec = spec[2:]
    if not spec:
        raise ValueError("store spec needs a path: sqlite:<path>")
    return SQLiteStore(spec, **options)
