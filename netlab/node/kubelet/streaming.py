"""The kubelet's ``/exec`` and ``/attach`` endpoints: remote commands over WebSocket.

The API server relays ``pods/exec`` and ``pods/attach`` here (the kubelet API's
``/exec/{namespace}/{pod}/{container}?command=...&stdin=1&...``). The
connection is upgraded to a WebSocket speaking ``v5.channel.k8s.io`` or
``v4.channel.k8s.io`` (``netlab.api.remotecommand``); the command runs through
the runtime's exec (``Kubelet.exec_spec``, the same entry ``netlab exec`` uses),
with pipes, or a pty when ``tty`` is asked for, sized by the resize channel.
When the command ends its output is flushed, its exit Status goes on the error
channel and the WebSocket closes. When the client goes away first, the
command's process group is killed and reaped: nothing outlives the stream.

``attach``: a container started with ``stdin: true`` or ``tty: true`` is attached
through conmon's attach socket (``attach.py``: stdin, output, resizes); any other
container has no stdin, so attach streams its log from now on until it exits, and
stdin sent to it is dropped (conmon would drop it too).

SPDY (kubectl before 1.30, and 1.30+'s fallback) is refused with a 400 that
says so, instead of a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import struct
import termios
from collections.abc import Awaitable
from typing import Any, Callable

import aiohttp
from aiohttp import web

from netlab.api import remotecommand as rc
from netlab.node.kubelet.attach import attach_stdio
from netlab.node.kubelet.logs import LogOptions, read_log
from netlab.node.runtime import execs
from netlab.node.runtime.containers import AttachInfo

log = logging.getLogger("netlab.kubelet.streaming")

CHUNK = 32 * 1024
# util-linux: a new session whose controlling terminal is stdin, then exec.
SETSID = shutil.which("setsid") or "/usr/bin/setsid"


def text_response(code: int, message: str) -> web.Response:
    # The reason goes in a header too: the API server's WebSocket client keeps the
    # headers of a refused handshake, not its body.
    header = message.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")
    return web.Response(status=code, text=message + "\n", content_type="text/plain",
                        headers={"X-Netlab-Error": header})


def register(app: web.Application, kubelet: Any) -> None:
    """Add the streaming routes; ``kubelet`` supplies ``exec_spec`` and ``attach_source``."""
    for verb in ("exec", "attach"):
        handler = _handler(kubelet, verb == "exec")
        for method in ("GET", "POST"):
            app.router.add_route(method, f"/{verb}/{{namespace}}/{{pod}}/{{container}}",
                                 handler)


def upgrade_refusal(request: web.BaseRequest) -> tuple[int, str] | None:
    """Why this request cannot become a remote-command WebSocket, or None."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        # Upstream answers a request without an upgrade "Upgrade request required"; the
        # rest says why kubectl before 1.30 (SPDY, relayed without its upgrade) fails.
        return 400, ("Upgrade request required: netlab serves exec and attach over "
                     f"WebSocket ({', '.join(rc.PROTOCOLS)}) only, not SPDY: use kubectl 1.30 "
                     "or newer")
    offered = rc.offered_protocols(request.headers.get("Sec-WebSocket-Protocol"))
    if rc.negotiate(offered) is None:
        return 403, rc.refusal_message(offered)
    return None


def _handler(kubelet: Any, exec_: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        try:
            opts = rc.stream_options(request.query, exec_=exec_)
        except ValueError as err:
            return text_response(400, str(err))
        if exec_:
            found = await kubelet.exec_spec(ns, pod, container, list(opts.command))
        else:
            found = await kubelet.attach_source(ns, pod, container)
        if isinstance(found, tuple) and isinstance(found[0], int):
            return text_response(*found)
        # After the checks: a client that cannot upgrade learns first what else is wrong.
        refusal = upgrade_refusal(request)
        if refusal is not None:
            return text_response(*refusal)
        ws = web.WebSocketResponse(protocols=rc.PROTOCOLS, autoping=True)
        await ws.prepare(request)
        try:
            if exec_:
                await Session(ws, opts).run(found.argv, found.env)
            elif isinstance(found, AttachInfo):
                await attach_stdio(ws, opts, found)  # the container's stdin (attach.py)
            else:
                await _attach(ws, opts, *found)
        finally:
            await ws.close()
        return ws

    return handle


async def _send(ws: web.WebSocketResponse, channel: int, data: bytes) -> None:
    if not ws.closed:
        await ws.send_bytes(rc.frame(channel, data))


async def _attach(ws: web.WebSocketResponse, opts: rc.StreamOptions, path: Any,
                  finished: Callable[[], Awaitable[bool]]) -> None:
    """Stream the container's output from now on until it exits, or the client leaves."""
    async def follow() -> None:
        async for chunk in read_log(path, LogOptions(follow=True, tail_lines=0), finished):
            await _send(ws, rc.STDOUT, chunk)
        await _send(ws, rc.ERROR, rc.encode_status(rc.success_status()))

    task = asyncio.ensure_future(follow())
    try:
        async for message in ws:  # stdin and resizes have nowhere to go: drop them
            if message.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                break
            if task.done():
                break
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class Session:
    """One exec: the process, its stdio and the WebSocket between them."""

    def __init__(self, ws: web.WebSocketResponse, opts: rc.StreamOptions) -> None:
        self.ws = ws
        self.opts = opts
        self.v5 = ws.ws_protocol == rc.V5
        self.proc: asyncio.subprocess.Process | None = None
        self.master: int | None = None  # the pty's master side (tty only)

    async def run(self, argv: list[str], env: dict[str, str]) -> None:
        try:
            await self._spawn(argv, env)
        except OSError as err:
            await _send(self.ws, rc.ERROR, rc.encode_status(rc.error_status(
                f"error executing command in container: {err}")))
            return
        assert self.proc is not None
        outputs = [asyncio.ensure_future(p) for p in self._output_pumps()]
        inbound = asyncio.ensure_future(self._inbound())
        exited = asyncio.ensure_future(self.proc.wait())
        try:
            await asyncio.wait([inbound, exited], return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                # Everything the command wrote is sent before its status, unless the
                # client leaves while something it started still holds the output open.
                pending = set(outputs)
                while pending and not inbound.done():
                    _, pending = await asyncio.wait(pending | {inbound},
                                                    return_when=asyncio.FIRST_COMPLETED)
                    pending.discard(inbound)
                code = exited.result()
                await _send(self.ws, rc.ERROR, rc.encode_status(
                    rc.exit_status(code if code >= 0 else 128 - code, list(self.opts.command))))
        finally:
            for task in (inbound, *outputs):
                task.cancel()
            try:
                await execs.end(self.proc)
            finally:
                with contextlib.suppress(Exception):
                    await exited
            for task in (inbound, *outputs):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self.master is not None:
                os.close(self.master)
                self.master = None

    async def _spawn(self, argv: list[str], env: dict[str, str]) -> None:
        pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        if not self.opts.tty:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, env=env, start_new_session=True,
                stdin=pipe if self.opts.stdin else null,
                stdout=pipe if self.opts.stdout else null,
                stderr=pipe if self.opts.stderr else null)
            return
        master, slave = os.openpty()
        try:
            os.set_blocking(master, False)
            # A session of its own with the pty as its controlling terminal (what
            # runc exec --tty gives): crun exec's command inherits both, so a shell's
            # job control and ^C work as in a real cluster. util-linux's setsid makes
            # both and then execs the helper, same pid; no preexec_fn, which is unsafe
            # in the kubelet's threads and rules out vfork. (Not start_new_session:
            # setsid forks once more when it starts as a group leader.)
            self.proc = await asyncio.create_subprocess_exec(
                SETSID, "--ctty", *argv, env=env, stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master

    def _output_pumps(self) -> list[Awaitable[None]]:
        assert self.proc is not None
        if self.master is not None:
            return [self._pump_fd(self.master)] if self.opts.stdout else []
        pumps: list[Awaitable[None]] = []
        if self.proc.stdout is not None:
            pumps.append(self._pump(self.proc.stdout, rc.STDOUT))
        if self.proc.stderr is not None:
            pumps.append(self._pump(self.proc.stderr, rc.STDERR))
        return pumps

    async def _pump(self, stream: asyncio.StreamReader, channel: int) -> None:
        while chunk := await stream.read(CHUNK):
            await _send(self.ws, channel, chunk)

    async def _pump_fd(self, fd: int) -> None:
        """The pty's output: readable until every slave end is closed (EIO)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_reader(fd, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_reader(fd)
                continue
            except OSError:  # EIO: the command and its children closed the terminal
                return
            if not chunk:
                return
            await _send(self.ws, rc.STDOUT, chunk)

    async def _inbound(self) -> None:
        """Client messages until it closes: stdin, resizes, v5's close of stdin."""
        async for message in self.ws:
            if message.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                return
            try:
                channel, payload = rc.parse_frame(message.data)
                if channel == rc.STDIN:
                    await self._write_stdin(payload)
                elif channel == rc.RESIZE:
                    self._resize(*rc.parse_resize(payload))
                elif channel == rc.CLOSE and self.v5:
                    if payload[:1] == bytes((rc.STDIN,)):
                        await self._close_stdin()
                else:
                    raise rc.FrameError(f"unexpected message on channel {channel}")
            except rc.FrameError as err:
                log.info("closing an exec stream: %s", err)
                await self.ws.close(code=aiohttp.WSCloseCode.PROTOCOL_ERROR,
                                    message=str(err)[:120].encode())
                return

    async def _write_stdin(self, data: bytes) -> None:
        if not self.opts.stdin or not data:
            return
        if self.master is not None:
            await _write_fd(self.master, data)
            return
        assert self.proc is not None
        if self.proc.stdin is None or self.proc.stdin.is_closing():
            return
        self.proc.stdin.write(data)
        with contextlib.suppress(ConnectionError):
            await self.proc.stdin.drain()

    async def _close_stdin(self) -> None:
        if self.master is not None:
            # A terminal has no half-close: send its end-of-file character, as a
            # user pressing ^D would.
            with contextlib.suppress(OSError):
                await _write_fd(self.master, b"\x04")
            return
        assert self.proc is not None
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    def _resize(self, width: int, height: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


async def _write_fd(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking fd without blocking the loop."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_writer(fd)
            continue
        view = view[written:]
