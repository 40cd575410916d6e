"""Fixtures for the store suite: every backend-agnostic test runs against each
backend, so they cannot drift apart.

The etcd backend runs against a throwaway etcd (127.0.0.1, free ports, a
temporary data directory) per test, started by ``LocalEtcd`` and stopped by
its pid at teardown; those cases carry the ``etcd`` marker and are skipped,
with the reason, only where the etcd binary is missing (CI installs it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

from netlab.master.store import MemoryStore, SQLiteStore, Store
from netlab.master.store.etcd_server import INSTALL_HINT, LocalEtcd, etcd_binary

BACKENDS = ("memory", "sqlite", pytest.param("etcd", marks=pytest.mark.etcd))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needing = [item for item in items if item.get_closest_marker("etcd")]
    if not needing or etcd_binary() is not None:
        return
    if os.environ.get("CI") == "true":  # CI installs etcd: a skip there would hide a backend
        raise pytest.UsageError(f"the etcd store tests need the etcd binary; {INSTALL_HINT}")
    skip = pytest.mark.skip(reason=f"needs the etcd binary (not on PATH); {INSTALL_HINT}")
    for item in needing:
        item.add_marker(skip)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(backend: str, tmp_path: Path) -> Any:
    """``make_store(**options)`` opens a store of the current backend; all are
    closed at teardown. SQLite-only options are ignored for memory and etcd."""
    stores: list[Store] = []
    etcds: list[LocalEtcd] = []

    def make(path: Path | None = None, **options: Any) -> Store:
        if backend in ("memory", "etcd"):
            options.pop("synchronous", None)
            options.pop("max_batch", None)
        if backend == "memory":
            store: Store = MemoryStore(**options)
        elif backend == "etcd":
            from netlab.master.store.etcd import EtcdStore

            etcd = LocalEtcd(tmp_path / f"etcd{len(etcds)}")
            etcds.append(etcd)
            etcd.start()
            store = EtcdStore(etcd.endpoint, **options)
        else:
            store = SQLiteStore(path or tmp_path / f"store{len(stores)}.db", **options)
        stores.append(store)
        return store

    try:
        yield make
    finally:
        try:
            for store in stores:
                store.close()
        finally:
            for etcd in etcds:
                etcd.stop()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()
