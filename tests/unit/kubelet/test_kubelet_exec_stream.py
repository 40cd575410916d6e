"""The kubelet's /exec endpoint with a fake kubelet whose "container" is this host:
subprotocol negotiation, the channels, v5's close of stdin, text frames, a pty and its
resizes, and malformed frames or a vanished client ending the command without
crashing the server or leaking processes and fds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import types
from typing import Any

import aiohttp
import psutil
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from labkit import process_gone

from netlab.api import remotecommand as rc
from netlab.node.kubelet import streaming


class FakeKubelet:
    async def exec_spec(self, namespace: str, pod: str, container: str, argv: list[str]) -> Any:
        if pod == "missing":
            return 404, "pod does not exist"
        if container != "c":
            return 400, f'container not found ("{container}")'
        # As the runtime's exec helper: a process that runs the command as its child,
        # waits for it and exits with its status.
        return types.SimpleNamespace(argv=["sh", "-c", '"$@"; exit $?', "helper", *argv],
                                     env={"PATH": os.environ.get("PATH", "/bin")})


def _run(test: Any) -> None:
    async def main() -> None:
        app = web.Application()
        streaming.register(app, FakeKubelet())
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await test(client)
    asyncio.run(asyncio.wait_for(main(), 30))


def _url(*command: str, **flags: str) -> str:
    query = [("command", c) for c in command] + list(flags.items())
    return "/exec/ns/p/c?" + "&".join(f"{k}={aiohttp.helpers.quote(v, safe='')}"
                                      for k, v in query)


async def _collect(ws: Any) -> dict[int, bytes]:
    got: dict[int, bytes] = {}
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.BINARY:
            break
        channel, payload = rc.parse_frame(msg.data)
        got[channel] = got.get(channel, b"") + payload
    return got


def test_exec_streams_and_exit_status_v5():
    async def test(client: TestClient) -> None:
        ws = await client.ws_connect(_url("sh", "-c", "echo out; echo err >&2; exit 3",
                                          stdout="1", stderr="1"), protocols=[rc.V5, rc.V4])
        assert ws.protocol == rc.V5
        got = await _collect(ws)
        assert got[rc.STDOUT] == b"out\n" and got[rc.STDERR] == b"err\n"
        status = json.loads(got[rc.ERROR])
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    _run(test)


def test_stdin_text_and_binary_frames_and_v5_close():
    async def test(client: TestClient) -> None:
        ws = await client.ws_connect(_url("cat", stdin="true", stdout="true"),
                                     protocols=[rc.V5])
        await ws.send_str("\x00hello ")  # the Python client's text frame
        await ws.send_bytes(b"\x00world")
        await ws.send_bytes(rc.close_frame(rc.STDIN))
        got = await _collect(ws)
        assert got[rc.STDOUT] == b"hello world"
        assert json.loads(got[rc.ERROR]) == {"metadata": {}, "status": "Success"}
    _run(test)


def test_v4_is_spoken_when_asked():
    async def test(client: TestClient) -> None:
        ws = await client.ws_connect(_url("echo", "hi", stdout="1"), protocols=[rc.V4])
        assert ws.protocol == rc.V4
        got = await _collect(ws)
        assert got[rc.STDOUT] == b"hi\n" and b"Success" in got[rc.ERROR]
    _run(test)


def test_refusals():
    async def test(client: TestClient) -> None:
        try:
            await client.ws_connect(_url("true", stdout="1"), protocols=["channel.k8s.io"])
            raise AssertionError("an unsupported protocol was accepted")
        except aiohttp.WSServerHandshakeError as err:
            assert err.status == 403
            assert err.headers is not None
            assert err.headers["X-Netlab-Error"].startswith(
                "requested protocol(s) are not supported: [channel.k8s.io]")
        resp = await client.post(_url("true", stdout="1"),
                                 headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
        assert resp.status == 400 and "kubectl 1.30 or newer" in await resp.text()
        resp = await client.get(_url("true", stdout="1").replace("/p/", "/missing/"))
        assert resp.status == 404 and await resp.text() == "pod does not exist\n"
        resp = await client.get(_url("true", stdout="1").replace("/c?", "/x?"))
        assert resp.status == 400 and await resp.text() == 'container not found ("x")\n'
        resp = await client.get("/exec/ns/p/c?stdout=1")
        assert resp.status == 400 and "at least 1 command" in await resp.text()
    _run(test)


def test_tty_gets_resizes_in_order():
    async def test(client: TestClient) -> None:
        ws = await client.ws_connect(_url("sh", "-c", "read a; stty size; read b; stty size",
                                          stdin="1", stdout="1", tty="1"), protocols=[rc.V5])
        seen = b""

        async def until(wanted: bytes) -> None:
            nonlocal seen
            while wanted not in seen:
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.BINARY, (msg, seen)
                seen += rc.parse_frame(msg.data)[1]

        await ws.send_bytes(b"\x04" + json.dumps({"Width": 100, "Height": 30}).encode())
        await ws.send_bytes(b"\x00a\n")
        await until(b"30 100")
        await ws.send_bytes(b"\x04" + json.dumps({"Width": 120, "Height": 40}).encode())
        await ws.send_bytes(b"\x00b\n")
        await until(b"40 120")
        await ws.close()
    _run(test)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _started(client: TestClient, **flags: str) -> tuple[Any, int]:
    """A stream whose command prints its pid, then sleeps (with a child of its own)."""
    ws = await client.ws_connect(_url("sh", "-c", "echo $$; sleep 1000 & exec sleep 1001",
                                      stdout="1", **flags), protocols=[rc.V5])
    msg = await ws.receive()
    return ws, int(rc.parse_frame(msg.data)[1].split()[0])


def test_malformed_frames_close_the_stream_and_end_the_command():
    async def test(client: TestClient) -> None:
        before = _open_fds()
        for bad in (b"", b"\x09what", b'\x04{"Width": "wide"}', "\x07"):
            ws, pid = await _started(client, stdin="1")
            helper = psutil.Process(pid).ppid()
            if isinstance(bad, str):
                await ws.send_str(bad)
            else:
                await ws.send_bytes(bad)
            msg = await ws.receive()
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
            await ws.close()
            assert ws.close_code == aiohttp.WSCloseCode.PROTOCOL_ERROR
            assert await asyncio.to_thread(process_gone, pid)
            assert await asyncio.to_thread(process_gone, helper)
        # The server still serves.
        ws = await client.ws_connect(_url("echo", "alive", stdout="1"), protocols=[rc.V5])
        assert (await _collect(ws))[rc.STDOUT] == b"alive\n"
        # The test client's own connection at most. A killed command's pipes are closed
        # by the loop once it sees them end, which under load can come after the close.
        deadline = time.monotonic() + 10
        while _open_fds() > before + 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert _open_fds() <= before + 2
    _run(test)


def test_client_disconnect_kills_the_command_and_its_children():
    async def test(client: TestClient) -> None:
        for flags in ({}, {"stdin": "1", "tty": "1"}):
            ws, pid = await _started(client, **flags)
            children = psutil.Process(pid).children()
            helper = psutil.Process(pid).ppid()
            await ws.close()
            assert await asyncio.to_thread(process_gone, pid)
            assert await asyncio.to_thread(process_gone, helper)
            for child in children:
                assert await asyncio.to_thread(process_gone, child.pid)
    _run(test)


def test_random_messages_never_take_the_server_down():
    rng = random.Random(13)

    def message() -> bytes | str:
        channel = rng.choice([0, 0, 3, 4, 4, 255, rng.randrange(256)])
        body = rng.randbytes(rng.randrange(0, 40))
        if rng.random() < 0.3:
            return chr(channel) + body.decode("latin-1")
        return bytes((channel,)) + body if rng.random() < 0.9 else b""

    async def test(client: TestClient) -> None:
        for _ in range(25):
            ws, pid = await _started(client, stdin="1", tty=rng.choice(["0", "1"]))
            for _ in range(rng.randrange(1, 6)):
                data = message()
                with contextlib.suppress(ConnectionError):
                    if isinstance(data, str):
                        await ws.send_str(data)
                    else:
                        await ws.send_bytes(data)
            await ws.close()
            assert await asyncio.to_thread(process_gone, pid)
        ws = await client.ws_connect(_url("echo", "alive", stdout="1"), protocols=[rc.V4])
        assert (await _collect(ws))[rc.STDOUT] == b"alive\n"
    _run(test)


def test_tty_is_the_commands_controlling_terminal_without_preexec_fn(monkeypatch):
    """^C on the pty interrupts the command (130, as upstream), and the session is made
    without a preexec_fn (unsafe in the threaded kubelet)."""
    spawned: list[dict[str, Any]] = []
    real = asyncio.create_subprocess_exec

    async def recording(*argv: Any, **kwargs: Any) -> Any:
        spawned.append(kwargs)
        return await real(*argv, **kwargs)

    monkeypatch.setattr(streaming.asyncio, "create_subprocess_exec", recording)

    async def test(client: TestClient) -> None:
        ws = await client.ws_connect(
            _url("sh", "-c", 'echo "sid $(cut -d" " -f6,7 /proc/$$/stat) pid $$"; exec sleep 60',
                 stdin="1", stdout="1", tty="1"), protocols=[rc.V5])
        seen = b""
        while b"pid" not in seen or not seen.endswith(b"\n"):
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY, (msg, seen)
            seen += rc.parse_frame(msg.data)[1]
        # The shell, a child of the helper, is in the helper's session, which has the pty.
        session, tty_nr = (int(x) for x in seen.split(b"sid ")[1].split(b" pid")[0].split())
        assert tty_nr != 0 and session == psutil.Process(int(seen.split(b"pid ")[1])).ppid()
        await ws.send_bytes(b"\x00\x03")
        got = await _collect(ws)
        status = json.loads(got[rc.ERROR])
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "130"}]
        assert spawned and all("preexec_fn" not in kw for kw in spawned), spawned
    _run(test)
