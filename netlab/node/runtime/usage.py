"""CPU and memory usage of pods and of a node, as the metrics API reports them.

Kubernetes' resource metrics are: CPU as a rate (millicores) over a window,
from two readings of a cumulative counter, and memory as the working set
(bytes in use less inactive page cache). The counters come from the pod's
cgroup where the host has one (``cpuacct.usage`` / ``cpu.stat``, and
``memory.usage_in_bytes`` / ``memory.current`` less inactive file), exactly
what cAdvisor reads; otherwise from psutil over the pod's processes (CPU times
and RSS), which misses processes that already exited but needs nothing from
the host.

A node's usage is its pods' plus the node's own processes (kubelet, proxy:
everything in the node's network namespace). ``UsageMeter`` keeps the last
reading per subject, so calling it periodically (as the kubelet's metrics
endpoint would) needs no sleeping; the first call measures over a window.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from netlab.node.runtime import cgroups


@dataclass(frozen=True)
class Sample:
    """One reading of cumulative counters."""

    cpu_ns: int
    memory_bytes: int
    at: float  # time.monotonic()
    source: str  # "cgroup" or "psutil"


@dataclass(frozen=True)
class ResourceUsage:
    cpu_millis: int  # average over the window
    memory_bytes: int  # working set at the end of the window
    window: float  # seconds
    source: str

    def __add__(self, other: ResourceUsage) -> ResourceUsage:
        source = self.source if self.source == other.source else "mixed"
        return ResourceUsage(self.cpu_millis + other.cpu_millis,
                             self.memory_bytes + other.memory_bytes,
                             max(self.window, other.window), source)


def sample_cgroup(cg: cgroups.Cgroup) -> Sample | None:
    """Read a group's counters; None if the host lacks the cpu accounting or memory."""
    cpu = cgroups.cpu_usage_ns(cg)
    mem = cgroups.memory_working_set(cg)
    if cpu is None or mem is None:
        return None
    return Sample(cpu, mem, time.monotonic(), "cgroup")


def sample_processes(pids: Iterable[int]) -> Sample:
    """CPU time and RSS summed over live processes (psutil's view)."""
    cpu = 0.0
    mem = 0
    for pid in set(pids):
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                times = proc.cpu_times()
                cpu += times.user + times.system
                mem += proc.memory_info().rss
        except psutil.Error:
            continue
    return Sample(int(cpu * 1e9), mem, time.monotonic(), "psutil")


def rate(before: Sample, after: Sample) -> ResourceUsage:
    window = max(after.at - before.at, 1e-6)
    # Counters of a process set can drop when a process exits: never report < 0.
    delta = max(0, after.cpu_ns - before.cpu_ns)
    return ResourceUsage(cpu_millis=round(delta / window / 1e6), memory_bytes=after.memory_bytes,
                         window=round(window, 3), source=after.source)


class UsageMeter:
    """Rates from successive samples, keyed by subject (a pod uid, or the node)."""

    def __init__(self, max_age: float = 60.0):
        self.max_age = max_age
        self._last: dict[str, Sample] = {}

    def has_recent(self, key: str) -> bool:
        last = self._last.get(key)
        return last is not None and time.monotonic() - last.at <= self.max_age

    def update(self, key: str, sample: Sample) -> ResourceUsage | None:
        """Store ``sample``; return the usage since the previous one (None the first time)."""
        last = self._last.get(key)
        self._last[key] = sample
        if last is None or last.source != sample.source or sample.at - last.at > self.max_age:
            return None
        return rate(last, sample)

    def forget(self, keep: Iterable[str]) -> None:
        """Drop subjects that are gone (deleted pods). A container's key is
        ``<pod uid>/<name>``: it stays while its pod's does, unless named itself."""
        wanted = set(keep)
        for key in list(self._last):
            if key not in wanted and key.partition("/")[0] not in wanted:
                del self._last[key]
