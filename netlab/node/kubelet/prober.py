"""The probes of one pod's containers, and what their results mean for the pod.

``PodProber`` belongs to a pod worker (``pods.py``). For each running container
attempt it runs that container's probes (``probes.ProbeWorker``): the startup
probe first, when there is one, and liveness and readiness once it passed.
It keeps the results the status needs (``started``, ``ready`` per container)
and turns failures into what Kubernetes does with them:

- every failed probe: a Warning ``Unhealthy`` event with the probe's output;
- readiness flipping: the container's ``ready`` (and so the pod's Ready
  condition) follows, at the next status;
- liveness, or a startup probe out of attempts: a kill request for that very
  attempt, which the worker carries out (``Killing``) before restarting it.

After a kubelet restart, a container whose status in the API (same
containerID) said ready or started keeps that until its probe speaks again,
so an adopted pod never flaps to NotReady.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from netlab.api.views import Container, status_of
from netlab.node.kubelet import status as podstatus
from netlab.node.kubelet.events import WARNING
from netlab.node.kubelet.probes import LIVENESS, READINESS, STARTUP, ProbeTarget, ProbeWorker
from netlab.node.runtime import ContainerState, execs

if TYPE_CHECKING:
    from netlab.node.kubelet.pods import PodWorker

EXEC_OUTPUT_LIMIT = 10 * 1024


class PodProber:
    def __init__(self, worker: PodWorker) -> None:
        self.w = worker
        self.probes: dict[str, tuple[int, list[ProbeWorker]]] = {}  # by container: attempt
        self.ready: dict[str, bool] = {}
        self.started: dict[str, bool] = {}
        self.started_at: dict[str, float] = {}  # of the probed attempt: initialDelaySeconds

    def _api_status(self, name: str) -> dict[str, Any]:
        for cs in status_of(self.w.pod or {}).get("containerStatuses") or []:
            if cs.get("name") == name:
                return cs
        return {}

    def ensure(self, pod: dict[str, Any], c: Container, state: ContainerState) -> None:
        """Probe this attempt of container ``c`` (no-op if it is probed already)."""
        name, attempt = c.get("name", ""), state.restart_count
        have = self.probes.get(name)
        if have is not None and have[0] == attempt:
            return
        self.stop(name)
        api = self._api_status(name)
        same = api.get("containerID") == podstatus.container_id(self.w.uid, name, attempt)
        startup = c.get("startupProbe")
        self.started[name] = startup is None or (same and bool(api.get("started")))
        self.ready[name] = c.get("readinessProbe") is None or (same and bool(api.get("ready")))
        self.probes[name] = (attempt, [])
        self.started_at[name] = state.started_at or time.time()
        if startup is not None and not self.started[name]:  # (started when it has none)
            self._add(pod, c, attempt, STARTUP, startup, False)
        else:
            self._start_main(pod, c, attempt)

    def _start_main(self, pod: dict[str, Any], c: Container, attempt: int) -> None:
        if c.get("livenessProbe"):
            self._add(pod, c, attempt, LIVENESS, c["livenessProbe"], True)
        if c.get("readinessProbe"):
            self._add(pod, c, attempt, READINESS, c["readinessProbe"],
                      self.ready.get(c.get("name", ""), False))

    def _add(self, pod: dict[str, Any], c: Container, attempt: int, kind: str,
             probe: dict[str, Any], initial: bool) -> None:
        name = c.get("name", "")
        sandbox = self.w.sandbox
        assert sandbox is not None

        def report(kind: str, ok: bool, message: str, act: bool) -> None:
            self._result(pod, c, attempt, kind, ok, message, act)

        async def exec_fn(argv: list[str], timeout: float) -> tuple[int, str]:
            return await self._exec(name, argv, timeout)

        worker = ProbeWorker(kind, probe, ProbeTarget(sandbox.ip or "", c),
                             self.started_at.get(name), exec_fn, self.w.s.http, report, initial)
        self.probes[name][1].append(worker)
        worker.start()

    def _result(self, pod: dict[str, Any], c: Container, attempt: int, kind: str,
                ok: bool, message: str, act: bool) -> None:
        name = c.get("name", "")
        have = self.probes.get(name)
        if have is None or have[0] != attempt:
            return  # a result about an attempt that is gone
        if not ok:
            self.w.event(pod, WARNING, "Unhealthy", f"{kind} probe failed: {message}", name)
        if not act:
            return
        if kind == READINESS:
            self.ready[name] = ok
        elif kind == STARTUP and ok:
            self.started[name] = True
            for worker in have[1]:
                worker.cancel()
            have[1].clear()
            self._start_main(pod, c, attempt)
        elif not ok:  # liveness, or a startup probe that ran out of attempts
            what = "liveness" if kind == LIVENESS else "startup"
            self.w.kill[(name, attempt)] = f"Container {name} failed {what} probe, will be " \
                                           "restarted"
            self.stop(name)
        self.w.wake()

    def stop(self, name: str) -> None:
        have = self.probes.pop(name, None)
        if have is not None:
            for worker in have[1]:
                worker.cancel()

    def stop_all(self) -> None:
        for name in list(self.probes):
            self.stop(name)

    async def _exec(self, name: str, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run ``argv`` in the container (exec probes); (-1, "") on timeout."""
        cri = self.w.s.cri
        spec = await cri.call(cri.runtime.exec_in_container, self.w.uid, name, argv)
        proc = await asyncio.create_subprocess_exec(
            *spec.argv, env=spec.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            return -1, ""
        finally:
            if proc.returncode is None:  # timed out, or the probe was stopped
                # The command and whatever it started, not only crun exec.
                await execs.end(proc)
        return proc.returncode or 0, out[:EXEC_OUTPUT_LIMIT].decode(errors="replace")
