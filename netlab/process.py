"""What the entry point of every long-running netlab process shares.

The per-lab supervisor and the components it starts (API server, scheduler,
controller manager, node lifecycle controller, kubelet, kube-proxy) log to
stderr in one format, which the supervisor writes to the lab's log files, and
stop on SIGTERM (SIGINT too, when run by hand):

- ``setup_logging``: that format, at INFO (or the level asked for);
- ``on_stop_signal``: call something on SIGTERM or SIGINT;
- ``stop_event``: an event that SIGTERM or SIGINT sets;
- ``run_until_stopped``: run a coroutine until it returns or a signal cancels it;
- ``run``: the process's main coroutine on uvloop's event loop when it is installed
  (a dependency), on asyncio's own when it is not or ``NETLAB_EVENT_LOOP=asyncio``
  asks for it. The API server uses it: uvloop's TLS and socket transports copy each
  byte fewer times than asyncio's (a partial send there copies the rest into a
  buffer), and port-forward through it cost about a fifth less CPU per GiB. The
  kubelet stays on asyncio: its port-forward cost a little more on uvloop
  (docs/benchmarks.md).

Stdlib only (uvloop optional): it imports nothing of netlab.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr in the format every netlab process uses."""
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)


def on_stop_signal(callback: Callable[[], object]) -> None:
    """Call ``callback`` in the running loop on SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, callback)


def stop_event() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets (in the running loop)."""
    stop = asyncio.Event()
    on_stop_signal(stop.set)
    return stop


async def run_until_stopped(main: Awaitable[object]) -> None:
    """Run ``main`` as a task until it returns, or until SIGTERM or SIGINT cancels it
    (the cancellation ends here; any other error propagates)."""
    task = asyncio.ensure_future(main)
    on_stop_signal(task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def event_loop_kind() -> str:
    """``uvloop`` or ``asyncio``: what ``run`` runs on here."""
    if os.environ.get("NETLAB_EVENT_LOOP", "").strip().lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop's loop when ``event_loop_kind`` says so."""
    if event_loop_kind() == "uvloop":
        import uvloop
        return uvloop.run(main)
    return asyncio.run(main)
