"""What the entry point of every long-running netlab process shares.

The per-lab supervisor and the components it starts (API server, scheduler,
controller manager, node lifecycle controller, kubelet, kube-proxy) log to
stderr in one format, which the supervisor writes to the lab's log files, and
stop on SIGTERM (SIGINT too, when run by hand):

- ``setup_logging``: that format, at INFO (or the level asked for);
- ``on_stop_signal``: call something on SIGTERM or SIGINT;
- ``stop_event``: an event that SIGTERM or SIGINT sets;
- ``run_until_stopped``: run a coroutine until it returns or a signal cancels it.

Stdlib only: it imports nothing of netlab.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

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
