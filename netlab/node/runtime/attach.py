"""A client of conmon's attach socket and control fifo: the container's own stdio.

conmon (see ``oci_runtime``) serves every container it monitors on
``<socket dir>/<container id>/attach``, a unix SEQPACKET socket, as CRI-O's
``AttachContainer`` uses it:

- each message conmon sends is one chunk of the container's output, its first
  byte the pipe it came from (2 stdout, 3 stderr: conmon's ``stdpipe_t``, where 1
  is stdin and unused; a terminal's output is 2);
- each message written to it is the container's stdin (dropped by conmon when the
  container was not started with ``-i``); a half-close (``SHUT_WR``), or the end
  of the connection, closes the container's stdin unless conmon was told
  ``--leave-stdin-open`` (``stdinOnce: false``);
- the connection ends when conmon exits, i.e. when the container has exited.

A terminal is resized through the bundle's ``ctl`` fifo: ``1 HEIGHT WIDTH\\n``
(one line at a time: see ``AttachConnection.resize``).

The socket's path is reached through an ``O_PATH`` descriptor of its directory
(``/proc/self/fd/N/attach``), as podman does, so its length never matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import struct
import termios
from pathlib import Path

STDOUT_PIPE, STDERR_PIPE = 2, 3  # conmon's stdpipe_t: 0 none, 1 stdin (unused)
# conmon reads at most CONN_SOCK_BUF_SIZE (32 KiB) of a message; a SEQPACKET message
# longer than the read is truncated, so stdin goes in smaller messages.
STDIN_CHUNK = 8192
# conmon's STDIO_BUF_SIZE plus the pipe byte.
RECV_SIZE = 8192 + 1


RESIZE_WAIT, RESIZE_POLL = 1.0, 0.005  # seconds


def _unread(fifo: Path) -> int:
    """Bytes written to ``fifo`` that its reader (conmon) has not read yet."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0
    finally:
        os.close(fd)


class AttachError(OSError):
    pass


class AttachConnection:
    """One attach: output messages in, stdin and resizes out. Use from one loop."""

    def __init__(self, sock: socket.socket, ctl: Path) -> None:
        self.sock = sock
        self.ctl = ctl
        self._stdin_closed = False

    @classmethod
    async def open(cls, socket_dir: Path, ctl: Path) -> AttachConnection:
        """Connect to the container's attach socket; AttachError when conmon is not
        there (the container has exited)."""
        loop = asyncio.get_running_loop()
        try:
            dir_fd = os.open(socket_dir, os.O_PATH | os.O_CLOEXEC)
        except OSError as err:
            raise AttachError(err.errno, f"no attach socket: {err.strerror}") from err
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, f"/proc/self/fd/{dir_fd}/attach")
        except OSError as err:
            sock.close()
            raise AttachError(err.errno, f"cannot attach: {err.strerror}") from err
        finally:
            os.close(dir_fd)
        return cls(sock, ctl)

    async def recv(self) -> tuple[int, bytes] | None:
        """The next chunk of output as (pipe, data); None once conmon has gone."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                message = await loop.sock_recv(self.sock, RECV_SIZE)
            except (ConnectionError, OSError):
                return None
            if not message:
                return None
            if len(message) > 1:
                return message[0], message[1:]

    async def send_stdin(self, data: bytes) -> None:
        """Write to the container's stdin (nothing once it was closed)."""
        if self._stdin_closed:
            return
        loop = asyncio.get_running_loop()
        for start in range(0, len(data), STDIN_CHUNK):
            try:
                await loop.sock_sendall(self.sock, data[start:start + STDIN_CHUNK])
            except (ConnectionError, OSError):
                self._stdin_closed = True
                return

    def close_stdin(self) -> None:
        """The client's stdin ended: half-close, as CRI-O does (conmon closes the
        container's stdin unless it leaves it open)."""
        if self._stdin_closed:
            return
        self._stdin_closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    async def resize(self, width: int, height: int) -> None:
        """Resize the container's terminal (conmon applies it to the pty).

        conmon before 2.1.8 handles only the first line of each read of its control
        fifos, once per line it holds (``line_process_func(ctlbuf)``): two resizes read
        together (kubectl sends its size + 1 and then its size, back to back) would
        leave the pty at the first. So a resize is written only once conmon has read
        what was written before, from ``ctl`` and from the ``winsz`` fifo it relays
        to (bounded: after a second it is written anyway). Both empty is seen twice,
        a poll apart: conmon reads ``ctl`` and then writes ``winsz`` in one callback,
        and a look between the two would see both empty with the line in flight."""
        try:
            fd = os.open(self.ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return  # conmon is gone, or no reader: the resize has nowhere to go
        try:
            deadline = asyncio.get_running_loop().time() + RESIZE_WAIT
            empty_before = False
            while True:
                empty = not (_unread(self.ctl) or _unread(self.ctl.with_name("winsz")))
                if (empty and empty_before) or asyncio.get_running_loop().time() > deadline:
                    break
                empty_before = empty
                await asyncio.sleep(RESIZE_POLL)
            with contextlib.suppress(OSError):
                os.write(fd, f"1 {int(height)} {int(width)}\n".encode())
        finally:
            os.close(fd)

    def close(self) -> None:
        self.sock.close()
