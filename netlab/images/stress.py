"""``netlab/stress``: burn a requested share of CPU and hold a requested amount of memory.

The load generator for the autoscaling and resource-limit parts of netlab: a
HorizontalPodAutoscaler needs pods whose CPU use is known, and a memory limit needs a
pod that exceeds it.

``--cpu`` is the total to burn, in Kubernetes CPU units (``500m``, ``0.5``, ``2``). It is
split evenly across ``--workers`` processes (default: one per started core), each of
which duty-cycles: in every 100 ms period it computes until it has used its share of
that period in CPU time, then sleeps the rest. Counting CPU time rather than wall time
keeps the burn near the target when the host is busy.

``--memory`` (a quantity such as ``100Mi``) is allocated and touched page by page, so
it is resident and counted against the pod's memory limit, and held until the end.
``--duration`` (``30s``, ``1m``, or seconds) ends the run; without it the program
runs until SIGTERM. Both exit 0.

The environment sets the same things (``CPU``, ``MEMORY``, ``WORKERS``, ``DURATION``);
arguments win. With neither CPU nor memory asked for, one core is burnt; with only
memory asked for, no CPU is.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time

from netlab.images._common import log
from netlab.units import QuantityError, cpu_millis, format_cpu, memory_bytes, parse_duration

PERIOD = 0.1
_PAGE = 4096


class _Stop(Exception):
    """Raised by the SIGTERM handler to unwind the burn loop wherever it is."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def burn(share: float, deadline: float | None, parent: int | None = None) -> None:
    """Use ``share`` of one core until ``deadline`` (monotonic), or until ``parent``
    is no longer this process's parent, or forever."""
    while True:
        start = time.monotonic()
        cpu_start = time.thread_time()
        budget = share * PERIOD
        # Compute until this period's CPU budget is spent, or the period is over when
        # the host gives us less CPU than we ask for.
        while (time.thread_time() - cpu_start < budget
               and time.monotonic() - start < PERIOD):
            for value in range(2000):
                value * value  # the work is the point
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        if parent is not None and os.getppid() != parent:
            return  # orphaned: the main process is gone, so is the pod
        rest = start + PERIOD - now
        if deadline is not None:
            rest = min(rest, deadline - now)
        if rest > 0:
            time.sleep(rest)  # the idle part of the duty cycle, not a wait for anything


def hold_memory(num_bytes: int) -> bytearray:
    """A buffer of ``num_bytes`` whose every page is written, hence resident."""
    buffer = bytearray(num_bytes)
    # bytearray() memory comes zeroed from mmap and is not resident until written.
    pages = len(range(0, num_bytes, _PAGE))
    buffer[::_PAGE] = b"\x01" * pages
    return buffer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netlab/stress", description="Burn a share of CPU and hold memory.")
    parser.add_argument("--cpu", help="CPU to burn in total, e.g. 500m, 0.5, 2 (env CPU)")
    parser.add_argument("--workers", type=int,
                        help="processes sharing the burn (env WORKERS; default one per core)")
    parser.add_argument("--memory", help="memory to allocate and hold, e.g. 100Mi (env MEMORY)")
    parser.add_argument("--duration", help="stop after this long: 30s, 1m, 45 (env DURATION)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = os.environ
    cpu = args.cpu if args.cpu is not None else env.get("CPU")
    memory = args.memory if args.memory is not None else env.get("MEMORY")
    workers_text = args.workers if args.workers is not None else env.get("WORKERS")
    duration_text = args.duration if args.duration is not None else env.get("DURATION")
    try:
        millis = cpu_millis(cpu) if cpu else (0 if memory else 1000)
        num_bytes = memory_bytes(memory) if memory else 0
        workers = int(workers_text) if workers_text else max(1, math.ceil(millis / 1000))
        duration = parse_duration(duration_text, signed=True) if duration_text else None
    except (QuantityError, ValueError) as exc:
        log(f"stress: {exc}")
        return 2
    if millis < 0 or num_bytes < 0 or workers < 1:
        log("stress: --cpu and --memory must not be negative, --workers must be at least 1")
        return 2
    share = millis / 1000 / workers
    deadline = time.monotonic() + duration if duration is not None else None

    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    children: list[int] = []
    try:
        if share > 0:
            parent = os.getpid()
            for _ in range(workers - 1):
                pid = os.fork()
                if pid == 0:  # a worker: dies with SIGTERM as any process would
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    try:
                        burn(share, deadline, parent)
                    finally:
                        os._exit(0)
                children.append(pid)
        held = hold_memory(num_bytes) if num_bytes else None
        log(f"stress: burning {format_cpu(millis)} CPU in "
            f"{workers if share > 0 else 0} worker(s), holding {num_bytes} bytes"
            + (f", for {duration:g}s" if duration is not None else ", until SIGTERM"))
        if share > 0:
            burn(share, deadline)
        else:
            while deadline is None or time.monotonic() < deadline:
                left = 1.0 if deadline is None else deadline - time.monotonic()
                time.sleep(max(0.0, min(1.0, left)))
        del held
    except _Stop:
        log("stress: stopping")
    except MemoryError:
        log(f"stress: cannot allocate {num_bytes} bytes")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
