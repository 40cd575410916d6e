"""Container logs: reading the runtime's CRI log files the way ``kubectl logs`` asks.

conmon writes each line of a container's output as
``<RFC3339Nano> <stdout|stderr> <F|P> <text>`` (CRI's format; ``P`` marks a
piece of a line it read without its end). ``LogOptions`` carries
kubectl's options and ``read_log`` produces the bytes kubectl prints:

- the text of each line, pieces rejoined; with ``timestamps`` prefixed by the
  line's timestamp, as the kubelet does;
- ``tail_lines``: only the last N lines; ``since``: only lines at or after a
  time (``sinceSeconds``/``sinceTime``); ``limit_bytes``: stop after N bytes;
- ``follow``: after the end of the file, wait for more until the container
  exits, following conmon to a new file when it rotates the log (past the
  container's log size limit it writes a new one and renames it over the old).
  Growth is noticed through inotify on the log's directory (conmon appends; it
  writes the exit record there too), with a slow timer as the fallback where
  inotify is unavailable.

The parsing is pure and unit-tested; only ``follow`` touches the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Callable

from netlab.api.timefmt import parse_time

READ_CHUNK = 64 * 1024
FALLBACK_PERIOD = 0.5  # seconds between looks when inotify is unavailable
IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since: datetime | None = None
    limit_bytes: int | None = None


@dataclass(frozen=True)
class LogLine:
    timestamp: str
    stream: str
    partial: bool
    text: bytes


def parse_line(raw: bytes) -> LogLine | None:
    """One CRI log record (without its newline); None if it is not one."""
    parts = raw.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
        return None
    text = parts[3] if len(parts) == 4 else b""
    stamp = parts[0].decode(errors="replace")
    if stamp.endswith("+00:00"):  # conmon's UTC offset; the kubelet prints UTC as Z
        stamp = stamp[:-6] + "Z"
    return LogLine(stamp, parts[1].decode(), parts[2] == b"P", text)


class LineAssembler:
    """Joins partial records into whole lines and renders them with the options."""

    def __init__(self, opts: LogOptions) -> None:
        self.opts = opts
        self._pending: list[bytes] = []
        self._pending_ts = ""

    def feed(self, record: LogLine) -> bytes | None:
        """The rendered line this record completes, or None (a partial, or filtered)."""
        if not self._pending:
            self._pending_ts = record.timestamp
        self._pending.append(record.text)
        if record.partial:
            return None
        text, ts = b"".join(self._pending), self._pending_ts
        self._pending = []
        if self.opts.since is not None:
            when = parse_time(ts)
            if when is not None and when < self.opts.since:
                return None
        prefix = (ts + " ").encode() if self.opts.timestamps else b""
        return prefix + text + b"\n"


def render(lines: Iterable[bytes], opts: LogOptions,
           assembler: LineAssembler | None = None) -> list[bytes]:
    """Whole-file rendering: parse, rejoin, filter, then tail (lines are the unit)."""
    assembler = assembler or LineAssembler(opts)
    out: deque[bytes] | list[bytes] = deque(maxlen=opts.tail_lines) \
        if opts.tail_lines is not None else []
    for raw in lines:
        record = parse_line(raw.rstrip(b"\n"))
        if record is None:
            continue
        rendered = assembler.feed(record)
        if rendered is not None:
            out.append(rendered)
    return list(out)


class _Limiter:
    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def take(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[:self.left]
        self.left -= len(data)
        return data

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0


class _Inotify:
    """Readable when something changes in a directory (a thin libc wrapper)."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
        if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, "inotify_add_watch")
        self.fd = fd
        self.changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 4096):
                pass
        self.changed.set()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


def _rotated(f: BinaryIO, path: Path) -> bool:
    """Whether ``path`` is now another file than the open ``f``: conmon, past its
    ``--log-size-max``, writes a new log and renames it over the old one."""
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except OSError:
        return False


async def read_log(path: Path, opts: LogOptions,
                   finished: Callable[[], Awaitable[bool]] | None = None
                   ) -> AsyncIterator[bytes]:
    """Yield the log as ``kubectl logs`` prints it. With ``opts.follow``, keep
    yielding new lines until ``finished()`` says the container has exited, across
    conmon's rotations of the file (``_rotated``)."""
    limiter = _Limiter(opts.limit_bytes)
    watcher: _Inotify | None = None
    if opts.follow:
        with contextlib.suppress(OSError):
            watcher = _Inotify(path.parent)  # before reading: no append can slip by
    f: BinaryIO | None = None
    try:
        f = open(path, "rb")  # noqa: SIM115 (replaced by the new file at a rotation)
        head = f.read()
        complete, _, rest = head.rpartition(b"\n")
        assembler = LineAssembler(opts)
        whole = render(complete.split(b"\n") if complete else [], opts, assembler)
        out: list[bytes] = []
        size = 0
        for line in whole:
            chunk = limiter.take(line)
            if chunk:
                out.append(chunk)
                size += len(chunk)
            if limiter.done:
                break
            if size >= READ_CHUNK:  # one write per chunk of lines, not one per line
                yield b"".join(out)
                out, size = [], 0
        if out:
            yield b"".join(out)
        if limiter.done:
            return
        if not opts.follow or finished is None:
            return
        buffer = rest
        last_round = False
        while True:
            data = f.read(READ_CHUNK)
            if data:
                buffer += data
                *records, buffer = buffer.split(b"\n")
                out = []
                for raw in records:
                    record = parse_line(raw)
                    rendered = assembler.feed(record) if record else None
                    if rendered:
                        chunk = limiter.take(rendered)
                        if chunk:
                            out.append(chunk)
                        if limiter.done:
                            break
                if out:
                    yield b"".join(out)
                if limiter.done:
                    return
                # A container that writes faster than this reads would keep the loop
                # from ever running anything else (the client's departure included,
                # so a kubectl killed mid-follow left the kubelet reading for good
                # and its heartbeats stopped): let it run once per chunk.
                await asyncio.sleep(0)
                continue
            if _rotated(f, path):
                # What conmon wrote to the old file is read (it writes only to the
                # new one once it is in place), then the new one from its start.
                if f.read(1):
                    f.seek(-1, os.SEEK_CUR)
                    continue
                f.close()
                f = open(path, "rb")  # noqa: SIM115
                continue
            if last_round:
                return
            if await finished():
                last_round = True  # read what conmon wrote before it recorded the exit
                continue
            if watcher is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    # Woken by inotify; the timeout re-checks that the container lives.
                    await asyncio.wait_for(watcher.changed.wait(), 5.0)
                watcher.changed.clear()
            else:
                await asyncio.sleep(FALLBACK_PERIOD)  # no inotify: look again shortly
    finally:
        if f is not None:
            f.close()
        if watcher is not None:
            watcher.close()
