"""Probes: exec, tcpSocket and httpGet, for liveness, readiness and startup.

One ``ProbeWorker`` task per probe of a running container attempt, as the
kubelet's prober runs them: wait ``initialDelaySeconds`` from the container's
start, then probe every ``periodSeconds`` with ``timeoutSeconds``; the result
flips after ``successThreshold`` successes or ``failureThreshold`` failures in
a row. The worker reports each flip (and each failure, for the Unhealthy
event) to the pod worker, which owns the consequences: readiness sets the
container's ``ready``, a failed liveness or startup probe restarts it.

The kubelet runs in its node's network namespace, which holds ``cni0``, so
tcpSocket and httpGet reach the pod IP directly, as on a real node. exec runs
the command inside the container (``Runtime.exec_in_container``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp

from netlab.api.views import Container

LIVENESS, READINESS, STARTUP = "Liveness", "Readiness", "Startup"
OUTPUT_LIMIT = 10 * 1024  # what the kubelet keeps of an exec probe's output

ExecFn = Callable[[list[str], float], Awaitable[tuple[int, str]]]
ResultFn = Callable[[str, bool, str, bool], None]  # kind, ok, message, flipped


@dataclass(frozen=True)
class ProbeTarget:
    pod_ip: str
    container: Container  # the pod spec's container (for named ports)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str = ""


def _port(value: Any, container: Container) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f'port "{value}" is not a named port of the container')


async def tcp_probe(host: str, port: int, timeout: float) -> Outcome:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        return Outcome(False, f"dial tcp {host}:{port}: i/o timeout")
    except OSError as err:
        why = os.strerror(err.errno).lower() if err.errno else str(err)
        return Outcome(False, f"dial tcp {host}:{port}: connect: {why}")
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return Outcome(True)


async def http_probe(session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                     timeout: float) -> Outcome:
    try:
        async with session.get(url, headers=headers, allow_redirects=True,
                               timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = await resp.content.read(OUTPUT_LIMIT)
            if 200 <= resp.status < 400:
                return Outcome(True)
            text = body.decode(errors="replace").strip()
            message = f"HTTP probe failed with statuscode: {resp.status}"
            return Outcome(False, message + (f": {text[:200]}" if text else ""))
    except asyncio.TimeoutError:
        return Outcome(False, f'Get "{url}": context deadline exceeded (Client.Timeout '
                              "exceeded while awaiting headers)")
    except aiohttp.ClientConnectorError as err:
        errno = getattr(err.os_error, "errno", None)
        why = os.strerror(errno).lower() if errno else str(err.os_error)
        return Outcome(False, f'Get "{url}": dial tcp {err.host}:{err.port}: connect: {why}')
    except (aiohttp.ClientError, OSError) as err:
        return Outcome(False, f'Get "{url}": {err}')


async def run_probe(probe: dict[str, Any], target: ProbeTarget, exec_fn: ExecFn,
                    session: aiohttp.ClientSession) -> Outcome:
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "exec" in probe:
            command = [str(c) for c in (probe["exec"] or {}).get("command") or []]
            if not command:
                return Outcome(False, "exec probe has no command")
            code, output = await exec_fn(command, timeout)
            if code == 0:
                return Outcome(True)
            if code < 0:
                return Outcome(False, f"command {command!r} timed out")
            return Outcome(False, output.strip()[:OUTPUT_LIMIT] or
                           f"command {command!r} exited with {code}")
        if "tcpSocket" in probe:
            tcp = probe["tcpSocket"] or {}
            port = _port(tcp.get("port"), target.container)
            return await tcp_probe(tcp.get("host") or target.pod_ip, port, timeout)
        if "httpGet" in probe:
            http = probe["httpGet"] or {}
            port = _port(http.get("port"), target.container)
            scheme = (http.get("scheme") or "HTTP").lower()
            host = http.get("host") or target.pod_ip
            path = http.get("path") or "/"
            if not path.startswith("/"):
                path = "/" + path
            headers = {"User-Agent": "kube-probe/1.31", "Accept": "*/*"}
            for h in http.get("httpHeaders") or []:
                headers[h.get("name", "")] = h.get("value", "")
            return await http_probe(session, f"{scheme}://{host}:{port}{path}", headers,
                                    timeout)
    except ValueError as err:
        return Outcome(False, str(err))
    if "grpc" in probe:
        return Outcome(True, "grpc probes are not supported by netlab; treated as passing")
    return Outcome(False, "the probe names no handler (exec, tcpSocket or httpGet)")


class ProbeWorker:
    """Runs one probe of one container attempt until cancelled."""

    def __init__(self, kind: str, probe: dict[str, Any], target: ProbeTarget,
                 started_at: float | None, exec_fn: ExecFn, session: aiohttp.ClientSession,
                 report: ResultFn, initial: bool) -> None:
        self.kind = kind
        self.probe = probe
        self.target = target
        self.started_at = started_at or time.time()
        self.exec_fn = exec_fn
        self.session = session
        self.report = report
        self.result = initial
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        period = max(float(self.probe.get("periodSeconds") or 10), 0.1)
        need_ok = int(self.probe.get("successThreshold") or 1)
        need_fail = int(self.probe.get("failureThreshold") or 3)
        delay = float(self.probe.get("initialDelaySeconds") or 0)
        wait = self.started_at + delay - time.time()
        if wait > 0:
            await asyncio.sleep(wait)  # initialDelaySeconds, from the container's start
        oks = fails = 0
        while True:
            began = time.monotonic()
            outcome = await run_probe(self.probe, self.target, self.exec_fn, self.session)
            if outcome.ok:
                oks, fails = oks + 1, 0
                if not self.result and oks >= need_ok:
                    self.result = True
                    self.report(self.kind, True, outcome.message, True)
            else:
                oks, fails = 0, fails + 1
                flipped = self.result is not False and fails >= need_fail
                if flipped:
                    self.result = False
                self.report(self.kind, False, outcome.message, flipped or (
                    fails >= need_fail and self.kind != READINESS))
            # The probe period: the pacing Kubernetes gives every probe.
            await asyncio.sleep(max(0.0, period - (time.monotonic() - began)))
