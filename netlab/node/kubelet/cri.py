"""The container runtime as the kubelet's event loop sees it: async calls, exit events.

``netlab.node.runtime.Runtime`` is a blocking library (files, netlink,
processes). ``AsyncRuntime`` runs each call on a bounded thread pool, so one
slow sandbox never stalls the loop, and a burst of pods is worked through
at a pace the machine can take.

Container exits arrive as events, not by polling: ``watch_exit`` opens a
pidfd on the container's PID 1 (verified against its recorded start time) and
registers it with the event loop, which wakes the pod's worker the moment the
process ends. The real kubelet learns the same thing by relisting the runtime
every second (PLEG); a pidfd tells at once, for free.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from netlab.kernel.processes import is_running
from netlab.node.runtime import ContainerSpec, ContainerState, PodSpec, Runtime, Sandbox

T = TypeVar("T")


class ExitWatch:
    """Calls ``callback`` once, when the process ``pid`` (started at ``start_time``) ends."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pid: int, start_time: float | None,
                 callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback: Callable[[], None] | None = callback
        self._fd: int | None = None
        try:
            fd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            loop.call_soon(self._fire)
            return
        # The pidfd pins the process: if it is still the recorded one now, the fd
        # reports its exit, never a later process's that reuses the pid.
        if not is_running(pid, start_time):
            os.close(fd)
            loop.call_soon(self._fire)
            return
        self._fd = fd
        loop.add_reader(fd, self._fire)

    def _fire(self) -> None:
        callback, self._callback = self._callback, None
        self.cancel()
        if callback is not None:
            callback()

    def cancel(self) -> None:
        self._callback = None
        if self._fd is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None


class AsyncRuntime:
    """``Runtime`` calls on a thread pool."""

    def __init__(self, runtime: Runtime, workers: int = 8) -> None:
        self.runtime = runtime
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cri")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))

    async def run_pod_sandbox(self, pod: PodSpec) -> Sandbox:
        return await self.call(self.runtime.run_pod_sandbox, pod)

    async def start_container(self, uid: str, spec: ContainerSpec,
                              restart_count: int) -> ContainerState:
        return await self.call(self.runtime.start_container, uid, spec, restart_count)

    async def stop_container(self, uid: str, name: str, grace: float) -> ContainerState | None:
        return await self.call(self.runtime.stop_container, uid, name, grace)

    async def stop_pod_sandbox(self, uid: str, grace: float) -> list[ContainerState]:
        return await self.call(self.runtime.stop_pod_sandbox, uid, grace)

    async def remove_pod_sandbox(self, uid: str) -> None:
        await self.call(self.runtime.remove_pod_sandbox, uid, 0.0)

    def _observe(self, uid: str, names: list[str]
                 ) -> dict[str, tuple[ContainerState | None, ContainerState | None]]:
        out = {}
        for name in names:
            cur = self.runtime.container_status(uid, name)
            prev = None
            if cur is not None and cur.restart_count > 0:
                prev = self.runtime.container_status(uid, name, cur.restart_count - 1)
            out[name] = (cur, prev)
        return out

    async def observe(self, uid: str, names: list[str]
                      ) -> dict[str, tuple[ContainerState | None, ContainerState | None]]:
        """Current and previous attempt of each named container, in one pool call."""
        return await self.call(self._observe, uid, names)

    def watch_exit(self, state: ContainerState, callback: Callable[[], None]) -> ExitWatch:
        assert state.pid is not None
        return ExitWatch(asyncio.get_running_loop(), state.pid, state.pid_start_time, callback)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
