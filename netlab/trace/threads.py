"""Setup tasks run side by side on fresh threads, which Ctrl-C cannot cut short.

Opening a capture socket or installing trace rules in a namespace runs on a
thread of its own (a thread's namespace may be switched; the caller's never
is). ``netlab.kernel.netns.parallel`` would do, but a Ctrl-C arriving while
it joins would return to the caller with tasks still running, and a task
that finishes after the cleanup ran would leave a socket open or a trace
table behind. Here every task is waited for before the interrupt is passed
on, so whatever the tasks created is known to the cleanup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Callable


def run_all(tasks: Iterable[Callable[[], None]]) -> None:
    """Run the tasks concurrently and wait for all of them; an interrupt that
    arrives meanwhile is raised once they are done. Tasks handle their own errors."""
    threads = [threading.Thread(target=task, name="netlab-trace", daemon=True)
               for task in tasks]
    for thread in threads:
        thread.start()
    interrupted: BaseException | None = None
    for thread in threads:
        while thread.is_alive():
            try:
                thread.join()
            except BaseException as exc:  # KeyboardInterrupt, SystemExit from a handler
                interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted
