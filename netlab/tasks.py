"""Running coroutines side by side until the first one ends: the shape of every relay
(a WebSocket and its upstream, a port-forward's two directions), where one side
closing means the other must stop too.

Shared by the API server's stream relays (``master/apiserver/streaming.py``,
``portforward.py``); standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any


async def until_first(*aws: Awaitable[Any]) -> None:
    """Run ``aws`` as tasks until one finishes, then cancel the others and wait for
    them all. Their results and errors are dropped: which side ended is what matters,
    and a relay's sides end by the other's connection closing under them."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
