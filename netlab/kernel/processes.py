"""Stopping processes by ownership: by pid, checked with psutil, never by name.

A lab owns exactly the processes that run inside its network namespaces (and
the supervisor it recorded). Nothing here matches command lines, so another
lab's processes, or the host's, are never touched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

import psutil

from netlab.kernel.netns import pids_in_netns


def _protected() -> set[int]:
    """Ourselves and our ancestors: ``netlab down`` may be run from inside a lab node."""
    pids = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        pids.update(p.pid for p in psutil.Process().parents())
    return pids


def stop_pids(pids: Iterable[int], timeout: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL whatever is still alive at the deadline; return the pids stopped."""
    procs = []
    for pid in set(pids) - _protected():
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            procs.append(proc)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=timeout)
    return [p.pid for p in procs]


def kill_in_netns(names: Iterable[str], timeout: float = 3.0) -> list[int]:
    """Stop every process living in any of the given network namespaces."""
    return stop_pids(pids_in_netns(names), timeout=timeout)


def is_running(pid: int, create_time: float | None = None) -> bool:
    """True when ``pid`` is alive and, if given, is the same process we recorded
    (pids are reused; the start time tells them apart)."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.01:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def raise_oom_score(by: int = 0, to: int | None = None) -> None:
    """Make the calling process a likelier OOM-kill victim: its ``oom_score_adj``
    raised ``to`` a value or ``by`` an amount (at most 1000). Raising one's own score
    needs no privilege; without /proc the OOM killer chooses by size alone."""
    try:
        with open("/proc/self/oom_score_adj", "r+") as f:
            score = int(f.read() or 0)
            f.seek(0)
            f.write(str(min(1000, max(score, to if to is not None else score + by))))
    except (OSError, ValueError):
        pass

