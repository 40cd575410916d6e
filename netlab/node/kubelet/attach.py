"""``kubectl attach -i``: the kubelet's attach stream relayed to conmon's attach socket.

A container whose spec has ``stdin: true`` or ``tty: true`` was started with conmon
holding its stdin (and terminal); ``netlab.node.runtime.attach`` connects to it.
This module moves the remote-command channels (``netlab.api.remotecommand``) across,
as CRI-O's ``AttachContainer`` does:

- the container's output (conmon's pipes 2 and 3) goes out on the stdout and stderr
  channels the client asked for;
- the stdin channel is written to the socket; v5's close of stdin half-closes it,
  which closes the container's stdin when it is ``stdinOnce``; the resize channel
  goes to conmon's ``ctl`` fifo;
- the attach ends with a Success Status when the container's output ends (it has
  exited), or, for a container neither ``stdinOnce`` nor a terminal, as soon as the
  client's stdin has ended (CRI-O returns then); when the client goes away the
  connection closes, and a ``stdinOnce`` container's stdin with it.

Containers without stdin or terminal keep the output-only attach of
``streaming.py`` (the log from now on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import web

from netlab.api import remotecommand as rc
from netlab.node.runtime.attach import STDERR_PIPE, STDOUT_PIPE, AttachConnection, AttachError
from netlab.node.runtime.containers import AttachInfo

log = logging.getLogger("netlab.kubelet.attach")


async def attach_stdio(ws: web.WebSocketResponse, opts: rc.StreamOptions,
                       info: AttachInfo) -> None:
    """Relay one attach between the client's WebSocket and the container's stdio."""
    try:
        conn = await AttachConnection.open(info.socket_dir, info.ctl)
    except AttachError as err:
        await _send(ws, rc.ERROR, rc.encode_status(rc.error_status(
            f"error attaching to container: {err.strerror}")))
        return
    v5 = ws.ws_protocol == rc.V5
    stdin_ended = asyncio.Event()

    async def output() -> None:
        while (chunk := await conn.recv()) is not None:
            pipe, data = chunk
            if pipe == STDOUT_PIPE and opts.stdout:
                await _send(ws, rc.STDOUT, data)
            elif pipe == STDERR_PIPE and opts.stderr:
                await _send(ws, rc.STDERR, data)

    async def inbound() -> None:
        async for message in ws:
            if message.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                return
            try:
                channel, payload = rc.parse_frame(message.data)
                if channel == rc.STDIN:
                    if opts.stdin and payload:
                        await conn.send_stdin(payload)
                elif channel == rc.RESIZE:
                    if info.tty:
                        await conn.resize(*rc.parse_resize(payload))
                elif channel == rc.CLOSE and v5:
                    if payload[:1] == bytes((rc.STDIN,)) and opts.stdin:
                        conn.close_stdin()
                        stdin_ended.set()
                else:
                    raise rc.FrameError(f"unexpected message on channel {channel}")
            except rc.FrameError as err:
                log.info("closing an attach stream: %s", err)
                await ws.close(code=aiohttp.WSCloseCode.PROTOCOL_ERROR,
                               message=str(err)[:120].encode())
                return

    outputs = asyncio.ensure_future(output())
    client = asyncio.ensure_future(inbound())
    ended = asyncio.ensure_future(stdin_ended.wait())
    try:
        pending = {outputs, client, ended}
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if outputs in done:
                break  # the container exited: its output is complete
            if client in done:
                return  # the client left: nothing to report to
            if ended in done and not info.stdin_once and not info.tty:
                break  # CRI-O: such an attach ends with the client's stdin
        await _send(ws, rc.ERROR, rc.encode_status(rc.success_status()))
    finally:
        for task in (outputs, client, ended):
            task.cancel()
        for task in (outputs, client, ended):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        conn.close()


async def _send(ws: web.WebSocketResponse, channel: int, data: bytes) -> None:
    if not ws.closed:
        await ws.send_bytes(rc.frame(channel, data))
