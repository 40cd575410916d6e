"""Fixtures for the store suite: every backend-agnostic test runs against each
backend, so the two cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from netlab.master.store import MemoryStore, SQLiteStore, Store

BACKENDS = ("memory", "sqlite")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(backend: str, tmp_path: Path) -> Any:
    """``make_store(**options)`` opens a store of the current backend; all are
    closed at teardown. SQLite-only options are ignored for memory."""
    stores: list[Store] = []

    def make(path: Path | None = None, **options: Any) -> Store:
        if backend == "memory":
            options.pop("synchronous", None)
            options.pop("max_batch", None)
            store: Store = MemoryStore(**options)
        else:
            store = SQLiteStore(path or tmp_path / f"store{len(stores)}.db", **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()
