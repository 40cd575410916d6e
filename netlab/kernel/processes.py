"""Stopping processes by ownership: by pid, checked with psutil, never by name; and
this process's own standing with the kernel (its OOM score, its C heap).

A lab owns exactly the processes that run inside its network namespaces (and
the supervisor it recorded). Nothing here matches command lines, so another
lab's processes, or the host's, are never touched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

import psutil

from netlab.kernel.namespaces import libc
from netlab.kernel.netns import pids_in_netns

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


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


def trim_heap() -> None:
    """Give this process's free heap back to the system (glibc keeps what a burst
    freed); nothing where the C library is not glibc."""
    with contextlib.suppress(AttributeError):
        libc.malloc_trim(0)


def keep_large_allocations_in_heap(mmap_threshold: int, trim_threshold: int) -> bool:
    """Serve allocations below ``mmap_threshold`` from the heap and keep up to
    ``trim_threshold`` of free memory at its top, instead of glibc's dynamic thresholds
    (which any explicit setting turns off): a process that allocates and frees buffers
    of a MiB at a high rate otherwise maps and faults them in again each time. False
    where the C library has no ``mallopt`` (not glibc)."""
    try:
        mallopt = libc.mallopt
    except AttributeError:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and \
        bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
