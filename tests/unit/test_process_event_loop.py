"""``netlab.process.run``: the components' main coroutine runs on uvloop when it is
installed, on asyncio's own loop when it is not or when NETLAB_EVENT_LOOP=asyncio."""

from __future__ import annotations

import asyncio
import sys

import pytest

from netlab import process


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_when_installed(monkeypatch):
    pytest.importorskip("uvloop", reason="uvloop is not installed on this host")
    monkeypatch.delenv("NETLAB_EVENT_LOOP", raising=False)
    assert process.event_loop_kind() == "uvloop"
    assert process.run(_loop_module()).startswith("uvloop")


def test_asyncio_when_asked(monkeypatch):
    monkeypatch.setenv("NETLAB_EVENT_LOOP", "asyncio")
    assert process.event_loop_kind() == "asyncio"
    assert process.run(_loop_module()).startswith("asyncio")


def test_asyncio_when_uvloop_is_missing(monkeypatch):
    monkeypatch.delenv("NETLAB_EVENT_LOOP", raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert process.event_loop_kind() == "asyncio"
    assert process.run(_loop_module()).startswith("asyncio")
