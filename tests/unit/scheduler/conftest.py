"""Fixtures for the scheduler and node lifecycle tests.

``async def`` tests run on a fresh event loop each, bounded by a timeout (no
asyncio plugin needed). ``api_server`` serves netlab's real API server app
in-process on 127.0.0.1 with an in-memory store, and yields a netlab
``Client`` for it: the components under test talk to it exactly as they talk
to a lab's API server, with no root and no namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator
from typing import Any, Callable, Optional

import pytest
from aiohttp.test_utils import TestServer

from netlab.client import Client
from netlab.master.apiserver import Config, make_app
from netlab.master.store import MemoryStore

TEST_TIMEOUT = 30.0
TOKEN = "scheduler-test"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), TEST_TIMEOUT))
    return True


@contextlib.asynccontextmanager
async def _serve() -> AsyncIterator[Client]:
    store = MemoryStore()
    server = TestServer(make_app(store, Config(tokens={TOKEN})), host="127.0.0.1")
    await server.start_server()
    client = Client(f"http://127.0.0.1:{server.port}", token=TOKEN, timeout=10.0)
    try:
        yield client
    finally:
        await client.close()
        await server.close()
        store.close()


@pytest.fixture
def api_server() -> Callable[[], Any]:
    """``async with api_server() as client``: a live API server for one test."""
    return _serve
