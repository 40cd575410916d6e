"""How the supervisor starts a component: forked from the fork server, or exec'd.

The Python components (``python -m netlab...``) are forked from the lab's fork
server (``netlab.lab.forkserver``), which has imported them once; anything
else (an etcd member) is exec'd as before. Both come back as an object with
``asyncio.subprocess.Process``'s face (``pid``, ``returncode``, ``wait``,
``terminate``, ``kill``), so the supervisor's restart loop does not care which.

A forked component is not the supervisor's child but the server's: the server
reaps it and reports its exit code; the supervisor holds a pidfd on it, which
tells it of the exit even if the server itself has died, and signals it through
that pidfd, so a signal never reaches a recycled pid. If the server cannot start
or dies, the launcher starts another; if that fails too, components are exec'd.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from netlab.kernel import netns
from netlab.lab.components import Component

log = logging.getLogger("netlab.supervisor")

EXIT_REPORT_GRACE = 2.0  # how long an exit's code may trail its pidfd
START_TIMEOUT = 30.0  # a fork server answers a request in milliseconds; this is a hang


class LaunchError(OSError):
    """The fork server refused or failed a start."""


def python_module(argv: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """``(module, args)`` when ``argv`` is ``<this python> -m module args...``."""
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m":
        return argv[2], list(argv[3:])
    return None


class ForkedProcess:
    """A component forked by the fork server, seen through a pidfd."""

    def __init__(self, pid: int, exit_code: asyncio.Future[int]):
        self.pid = pid
        self.returncode: int | None = None
        self._exit_code = exit_code
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone (and reaped): the report is coming
            self._pidfd = None

    async def wait(self) -> int:
        if self._pidfd is not None:
            loop = asyncio.get_running_loop()
            gone: asyncio.Future[None] = loop.create_future()

            def exited() -> None:
                if not gone.done():
                    gone.set_result(None)

            loop.add_reader(self._pidfd, exited)
            try:
                await gone
            finally:
                loop.remove_reader(self._pidfd)
                os.close(self._pidfd)
                self._pidfd = None
        try:
            code = await asyncio.wait_for(asyncio.shield(self._exit_code), EXIT_REPORT_GRACE)
        except asyncio.TimeoutError:
            code = -1  # the server died with it: the code is lost
        self.returncode = code
        return code

    def send_signal(self, sig: int) -> None:
        if self._pidfd is None:
            raise ProcessLookupError(self.pid)
        signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Launcher:
    """Starts components; owns the lab's fork server (a child of the supervisor)."""

    def __init__(self, lab: str = "", pass_fds: tuple[int, ...] = ()):
        self.lab = lab
        self.pass_fds = pass_fds
        self._server: asyncio.subprocess.Process | None = None
        self._channel: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self.disabled = os.environ.get("NETLAB_FORKSERVER", "1") == "0"

    async def _ensure_server(self) -> socket.socket:
        if self._channel is not None:
            return self._channel
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._server = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "netlab.lab.forkserver", str(theirs.fileno()),
                *([self.lab] if self.lab else []),  # for ps: whose server this is
                stdin=asyncio.subprocess.DEVNULL, pass_fds=(theirs.fileno(), *self.pass_fds))
        finally:
            theirs.close()
        ours.setblocking(False)
        self._channel = ours
        self._reader = asyncio.ensure_future(self._read(ours))
        return ours

    async def _read(self, channel: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(channel, 64 * 1024)
                if not data:
                    break
                message = json.loads(data)
                if "exited" in message:
                    future = self._exits.pop(int(message["exited"]), None)
                    if future is not None and not future.done():
                        future.set_result(int(message["code"]))
                    continue
                if "pid" in message:
                    # Registered now, before the requester resumes: the exit report
                    # may be in the very next packet.
                    future = asyncio.get_running_loop().create_future()
                    self._exits[int(message["pid"])] = message["exit"] = future
                reply = self._pending.pop(int(message.get("id") or 0), None)
                if reply is not None and not reply.done():
                    reply.set_result(message)
        except (OSError, ValueError) as exc:
            log.warning("fork server channel: %s", exc)
        finally:
            self._server_gone(channel)

    def _server_gone(self, channel: socket.socket) -> None:
        if self._channel is channel:  # not closed by us: the server died
            self._channel = None
            channel.close()
            log.warning("the fork server exited; the next start launches another")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LaunchError("the fork server exited"))
        self._pending.clear()

    async def _fork(self, comp: Component, module: str, args: list[str],
                    log_path: str) -> ForkedProcess:
        async with self._lock:  # one request in flight keeps pid and reply paired simply
            channel = await self._ensure_server()
            request_id = next(self._ids)
            reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[request_id] = reply
            await asyncio.get_running_loop().sock_sendall(channel, json.dumps({
                "id": request_id, "module": module, "args": args, "netns": comp.netns,
                "log": log_path, "fds": list(comp.pass_fds)}).encode())
            message = await asyncio.wait_for(reply, START_TIMEOUT)
            if "error" in message:
                raise LaunchError(message["error"])
            return ForkedProcess(int(message["pid"]), message["exit"])

    async def start(self, comp: Component, log_path: str) -> Any:
        """Start ``comp`` with stdout and stderr appended to ``log_path``."""
        target = python_module(comp.argv)
        if target is not None and not self.disabled:
            try:
                return await self._fork(comp, target[0], target[1], log_path)
            except (LaunchError, OSError, asyncio.TimeoutError) as exc:
                log.warning("fork server could not start %s (%s); starting it directly",
                            comp.name, exc)
        with open(log_path, "ab", buffering=0) as logfile:
            return await asyncio.create_subprocess_exec(
                *comp.argv, stdin=asyncio.subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                pass_fds=comp.pass_fds, start_new_session=True,
                preexec_fn=(lambda: netns.join_netns(comp.netns)) if comp.netns else None)

    async def close(self) -> None:
        """Stop the fork server, after the components: closing its channel ends it."""
        channel, self._channel = self._channel, None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if channel is not None:
            channel.close()
        if self._server is not None and self._server.returncode is None:
            try:
                await asyncio.wait_for(self._server.wait(), 5.0)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._server.kill()
                await self._server.wait()
