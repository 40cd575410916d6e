"""Fixtures for the controller tests: ``async def`` tests run on a fresh event loop
each, bounded by a timeout (no asyncio plugin needed)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Optional

import pytest

TEST_TIMEOUT = 60.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), TEST_TIMEOUT))
    return True
