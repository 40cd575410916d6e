"""Fixtures for the API server suite.

``async def`` tests run on a fresh event loop each (a small hook below, so the
suite needs no asyncio plugin). ``api(store)`` serves ``make_app`` in-process
with aiohttp's TestServer on 127.0.0.1 and yields a JSON client (see
``apiserver_kit``). ``any_store`` runs a test against both store backends.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any, Optional

import pytest
from apiserver_kit import serve

from netlab.master.store import MemoryStore, SQLiteStore, Store

TEST_TIMEOUT = 30.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    """Run coroutine tests with asyncio.run (bounded, so a hang fails instead of stalling)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), TEST_TIMEOUT))
    return True


@pytest.fixture
def memory_store() -> Any:
    store = MemoryStore()
    yield store
    store.close()


@pytest.fixture(params=["memory", "sqlite"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    store: Store = MemoryStore() if request.param == "memory" else SQLiteStore(
        tmp_path / "store.db")
    yield store
    store.close()


@pytest.fixture
def api() -> Any:
    """``async with api(store, **config) as c`` serves an app on ``store``."""
    return serve


