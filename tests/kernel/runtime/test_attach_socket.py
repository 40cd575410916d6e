"""A container's own stdin and terminal through conmon's attach socket, as the
kubelet's ``kubectl attach -i`` uses them: what the container reads and writes."""

from __future__ import annotations

import asyncio

from rtkit import log_text, wait_exited, wait_log

from netlab.node.runtime.attach import STDOUT_PIPE, AttachConnection, AttachError


async def _collect(conn: AttachConnection, wanted: bytes, timeout: float = 20.0) -> bytes:
    seen = b""

    async def loop() -> None:
        nonlocal seen
        while wanted not in seen:
            chunk = await conn.recv()
            assert chunk is not None, f"attach ended before {wanted!r}: {seen!r}"
            pipe, data = chunk
            assert pipe == STDOUT_PIPE, data
            seen += data

    await asyncio.wait_for(loop(), timeout)
    return seen


async def _until_closed(conn: AttachConnection, timeout: float = 20.0) -> bytes:
    seen = b""

    async def loop() -> None:
        nonlocal seen
        while (chunk := await conn.recv()) is not None:
            seen += chunk[1]

    await asyncio.wait_for(loop(), timeout)
    return seen


def test_stdin_once_container_reads_attach_stdin_until_the_attach_ends(rlab, pods):
    rt = rlab.runtime("worker1")
    sb, st = pods.run("worker1", "catter", "cat", stdin=True, stdin_once=True)
    assert st.state == "running", st
    info = rt.attach_info(sb, "c")
    assert info is not None and info.stdin and info.stdin_once and not info.tty

    async def attach() -> bytes:
        conn = await AttachConnection.open(info.socket_dir, info.ctl)
        try:
            big = b"x" * 50_000 + b"\n"  # more than one conmon read: no truncation
            await conn.send_stdin(b"hello attach\n" + big)
            seen = await _collect(conn, b"hello attach\n" + big)
            conn.close_stdin()  # stdinOnce: cat sees EOF and exits
            return seen + await _until_closed(conn)
        finally:
            conn.close()

    seen = asyncio.run(attach())
    assert seen.count(b"hello attach\n") == 1 and seen.count(b"x") == 50_000
    done = wait_exited(rt, sb)
    assert (done.exit_code, done.reason) == (0, "Completed")
    assert "hello attach" in log_text(done)  # the log has it too, as upstream


def test_leave_stdin_open_survives_one_attach_and_serves_the_next(rlab, pods):
    rt = rlab.runtime("worker2")
    sb, _ = pods.run("worker2", "reader", "sh", "-c",
                      "while read line; do echo \"got $line\"; done; echo eof",
                      stdin=True, stdin_once=False)
    info = rt.attach_info(sb, "c")
    assert info is not None and info.stdin and not info.stdin_once

    async def one(text: bytes) -> bytes:
        conn = await AttachConnection.open(info.socket_dir, info.ctl)
        try:
            await conn.send_stdin(text + b"\n")
            return await _collect(conn, b"got " + text)
        finally:
            conn.close()  # the container's stdin stays open (--leave-stdin-open)

    assert b"got first" in asyncio.run(one(b"first"))
    assert b"got second" in asyncio.run(one(b"second"))
    assert rt.container_status(sb, "c").state == "running"
    assert "eof" not in log_text(rt.container_status(sb, "c"))


def test_a_terminal_container_echoes_and_is_resized_through_ctl(rlab, pods):
    rt = rlab.runtime("worker1")
    sb, st = pods.run("worker1", "tty", "sh", "-c",
                      "echo ready; while read line; do stty size; done",
                      stdin=True, stdin_once=False, tty=True)
    wait_log(st, "ready")
    info = rt.attach_info(sb, "c")
    assert info is not None and info.tty

    async def attach() -> bytes:
        conn = await AttachConnection.open(info.socket_dir, info.ctl)
        try:
            # Back to back, as kubectl sends them: the last one wins.
            await conn.resize(width=102, height=34)
            await conn.resize(width=101, height=33)
            await conn.send_stdin(b"go\r")
            return await _collect(conn, b"33 101")
        finally:
            conn.close()

    seen = asyncio.run(attach())
    assert b"go" in seen  # the terminal echoes what was typed


def test_a_container_without_stdin_drops_it_and_an_exited_one_has_no_socket(rlab, pods):
    rt = rlab.runtime("worker2")
    sb, _ = pods.run("worker2", "nostdin", "sh", "-c",
                      "echo ready; read line; echo \"read [$line]\"")
    done = wait_exited(rt, sb)
    # Its stdin was /dev/null: read saw EOF at once, whatever an attach would send.
    assert "read []" in log_text(done)
    assert rt.attach_info(sb, "c") is None

    try:
        asyncio.run(AttachConnection.open(sb.path / "no-such-container", sb.path / "ctl"))
    except AttachError:
        pass
    else:
        raise AssertionError("attached to a socket that does not exist")
