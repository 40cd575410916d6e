"""The lab supervisor: one process per lab that keeps its components running.

``netlab up`` starts it detached (its own session) once the network exists.
It starts every component inside its node's network namespace, restarts any
that exits with exponential backoff (as kubelet restarts containers), logs each
to ``/run/netlab/<lab>/logs/<component>.log`` and records pids and restart
counts in ``components.json``. On SIGTERM it stops the components and exits.

The API server's host-side listeners (the unix socket and the loopback port)
are created here, once, and handed to every incarnation of the API server: a
restarted API server keeps the same port, so a kubeconfig stays valid.

Run as ``python -m netlab.lab.supervisor LAB``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from netlab.lab import components as catalog
from netlab.lab.launcher import Launcher
from netlab.lab.state import (
    components_path,
    endpoints_path,
    load_state,
    log_dir,
    socket_path,
    write_json,
)
from netlab.process import on_stop_signal, setup_logging

log = logging.getLogger("netlab.supervisor")

BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
STABLE_AFTER = 10.0  # a component that ran this long restarts without delay
STOP_TIMEOUT = 5.0


@dataclass
class Running:
    component: catalog.Component
    process: Any = None  # asyncio.subprocess.Process or launcher.ForkedProcess
    restarts: int = 0
    started: float = 0.0
    last_exit: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Supervisor:
    def __init__(self, lab: str, components: list[catalog.Component]):
        self.lab = lab
        # The fork server inherits every fd a component is handed (the API server's
        # listeners, the host netns fd), so its children can keep them.
        self.launcher = Launcher(lab, tuple(sorted({fd for c in components for fd in c.pass_fds})))
        self.running = {c.name: Running(c) for c in components}
        self.stopping = asyncio.Event()

    def _record(self) -> None:
        table = {}
        for name, run in self.running.items():
            proc = run.process
            table[name] = {"pid": proc.pid if proc and proc.returncode is None else None,
                           "netns": run.component.netns, "restarts": run.restarts,
                           "lastExit": run.last_exit, "started": run.started}
        write_json(components_path(self.lab), table)

    async def _start(self, run: Running) -> Any:
        comp = run.component
        path = log_dir(self.lab) / f"{comp.name}.log"
        with open(path, "ab", buffering=0) as logfile:
            logfile.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {comp.name} "
                          f"in {comp.netns}: {' '.join(comp.argv)}\n".encode())
        return await self.launcher.start(comp, str(path))

    async def _keep_running(self, run: Running) -> None:
        backoff = BACKOFF_START
        while not self.stopping.is_set():
            run.started = time.time()
            try:
                run.process = await self._start(run)
            except OSError as exc:
                log.error("cannot start %s: %s", run.component.name, exc)
                run.process = None
            else:
                self._record()
                run.last_exit = await run.process.wait()
            if self.stopping.is_set():
                break
            ran = time.time() - run.started
            backoff = BACKOFF_START if ran > STABLE_AFTER else min(backoff * 2, BACKOFF_MAX)
            run.restarts += 1
            log.warning("%s exited with %s after %.1fs; restarting in %.1fs",
                        run.component.name, run.last_exit, ran, backoff)
            self._record()
            with contextlib.suppress(asyncio.TimeoutError):
                # The restart backoff: wake early only to stop.
                await asyncio.wait_for(self.stopping.wait(), backoff)

    async def _stop_all(self) -> None:
        procs = [r.process for r in self.running.values()
                 if r.process is not None and r.process.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        if procs:
            _, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs],
                                            timeout=STOP_TIMEOUT)
            for proc in procs:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            if pending:
                await asyncio.wait(pending, timeout=STOP_TIMEOUT)

    async def run(self) -> None:
        on_stop_signal(self.stopping.set)
        tasks = [asyncio.ensure_future(self._keep_running(r)) for r in self.running.values()]
        await self.stopping.wait()
        log.info("stopping %d components", len(tasks))
        await self._stop_all()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.launcher.close()
        self._record()


def _listeners(lab: str) -> tuple[socket.socket, socket.socket]:
    """The API server's host-side sockets: a 0600 unix socket and 127.0.0.1:<free port>."""
    path = str(socket_path(lab))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # created 0600: only root may use the CLI's socket
    try:
        unix.bind(path)
    finally:
        os.umask(old)
    unix.listen(128)
    loopback = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    loopback.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    loopback.bind(("127.0.0.1", 0))
    loopback.listen(128)
    for sock in (unix, loopback):
        sock.set_inheritable(True)
    return unix, loopback


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="netlab-supervisor")
    parser.add_argument("lab")
    args = parser.parse_args(argv)
    setup_logging()
    state = load_state(args.lab)
    if state is None:
        sys.exit(f"no lab named {args.lab}")
    plan = state.plan()
    log_dir(args.lab).mkdir(parents=True, exist_ok=True)
    unix, loopback = _listeners(args.lab)
    port = loopback.getsockname()[1]
    write_json(endpoints_path(args.lab), {
        "unix": str(socket_path(args.lab)), "loopback": f"127.0.0.1:{port}",
        "underlay": f"{plan.node(plan.topology.control_plane.name).underlay.ip}:"
                    f"{catalog.APISERVER_PORT}"})
    # An etcd outside the lab is on the host's network: the API server, inside the
    # control-plane namespace, dials it from this one (see EtcdStore's netns_fd).
    etcd = catalog.etcd_client(plan)
    host_netns = (os.open("/proc/self/ns/net", os.O_RDONLY)
                  if etcd is not None and etcd.external else None)
    components = catalog.components(plan, unix_fd=unix.fileno(), loopback_fd=loopback.fileno(),
                                    host_netns_fd=host_netns)
    asyncio.run(Supervisor(args.lab, components).run())


if __name__ == "__main__":
    main()
