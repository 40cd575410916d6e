"""SPDY pods/exec (kubectl before 1.30) in the API server: the version negotiated and
answered, the streams translated to the kubelet's WebSocket both ways (the real
kubelet /exec handler running commands on this host, as test_apiserver_exec does),
the exit Status per version, upstream's errors before the upgrade; and, against a
fake kubelet WebSocket, resizes as channel 4, stdin's EOF as v5's close, the stream
creation timeout and a malformed frame ending only its session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import urllib.parse
from typing import Any, Optional

import aiohttp
import psutil
from apiserver_kit import PODS, TOKEN
from test_apiserver_exec import _query, _setup, dial, kubelet

from netlab.api import remotecommand as rc
from netlab.api import spdy
from netlab.master.apiserver.spdyexec import ExecSession


class SpdyClient:
    """kubectl's end of a SPDY connection, over any read/write pair."""

    def __init__(self, read: Any, write: Any) -> None:
        self.read, self.write = read, write
        self.framer = spdy.Framer()
        self.frames: list[spdy.Frame] = []
        self.closed = False

    async def send(self, *frames: spdy.Frame) -> None:
        await self.write(b"".join(self.framer.encode(f) for f in frames))

    async def open(self, sid: int, kind: str) -> None:
        await self.send(spdy.SynStream(sid, {"streamtype": [kind]}))

    async def until(self, pred: Any, timeout: float = 10) -> None:
        while not pred():
            assert not self.closed, f"connection closed; frames so far {self.frames}"
            data = await asyncio.wait_for(self.read(), timeout)
            if not data:
                self.closed = True
                continue
            self.frames.extend(self.framer.feed(data))

    def data(self, sid: int) -> bytes:
        return b"".join(f.data for f in self.frames
                        if isinstance(f, spdy.DataFrame) and f.stream_id == sid)

    def fin(self, sid: int) -> bool:
        return any(isinstance(f, spdy.DataFrame) and f.stream_id == sid
                   and f.flags & spdy.FLAG_FIN for f in self.frames)

    def replied(self) -> set[int]:
        return {f.stream_id for f in self.frames if isinstance(f, spdy.SynReply)}


@contextlib.asynccontextmanager
async def upgraded(c: Any, query: list[tuple[str, str]], versions: str) -> Any:
    """A raw connection upgraded to SPDY for pods/p/exec; yields (client, 101 head)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", c.raw.server.port)
    target = f"{PODS}/p/exec?{urllib.parse.urlencode(query)}"
    writer.write((f"POST {target} HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {TOKEN}\r\nConnection: Upgrade\r\n"
                  f"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {versions}\r\n"
                  "Content-Length: 0\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        yield SpdyClient(lambda: reader.read(65536), write), head
    finally:
        writer.close()


async def test_v4_exec_with_stdin_output_and_exit_code(api, memory_store):
    async with kubelet() as port, api(memory_store, remote_command=dial) as c:
        await _setup(c, port)
        query = _query("sh", "-c", "cat; echo bye >&2; exit 7", stdin="true", stdout="true",
                       stderr="true", container="c")
        versions = f"{rc.V4},{rc.V3},{rc.V2},{rc.V1}"
        async with upgraded(c, query, versions) as (client, head):
            assert head.startswith(b"HTTP/1.1 101"), head
            assert b"X-Stream-Protocol-Version: v4.channel.k8s.io" in head
            # As kubectl: the error stream first, then stdin, stdout, stderr.
            for sid, kind in ((1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")):
                await client.open(sid, kind)
            await client.until(lambda: client.replied() == {1, 3, 5, 7})
            await client.send(spdy.DataFrame(3, b"piped "), spdy.DataFrame(3, b"in"),
                              spdy.DataFrame(3, b"", spdy.FLAG_FIN))  # stdin EOF ends cat
            await client.until(lambda: all(client.fin(s) for s in (1, 5, 7)))
            assert client.data(5) == b"piped in" and client.data(7) == b"bye\n"
            status = json.loads(client.data(1))
            assert status["reason"] == "NonZeroExitCode"
            assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]
            # Once kubectl closes, the API server says GOAWAY and closes too.
        assert (await c.request("GET", f"{PODS}/p"))[0] == 200


async def test_garbage_ends_the_session_and_its_command_only(api, memory_store):
    token = str(random.Random().randrange(10**6, 10**7))
    async with kubelet() as port, api(memory_store, remote_command=dial) as c:
        await _setup(c, port)
        query = _query("sleep", token, stdout="true", container="c")

        def sleeping() -> list[psutil.Process]:
            return [p for p in psutil.process_iter(["cmdline"])
                    if p.info["cmdline"] == ["sleep", token]]

        async with upgraded(c, query, rc.V4) as (client, _):
            await client.open(1, "error")
            await client.open(3, "stdout")
            await client.until(lambda: client.replied() == {1, 3})
            await _wait(lambda: bool(sleeping()))
            await client.write(b"\x80\x03\x00\x09\x00\x00\x00\x01\x00")  # 9: too short
            await client.until(lambda: client.closed)
            assert any(isinstance(f, spdy.GoAway) and f.status == spdy.GOAWAY_PROTOCOL_ERROR
                       for f in client.frames)
        await _wait(lambda: not sleeping())  # the kubelet ended the command
        assert (await c.request("GET", f"{PODS}/p"))[0] == 200


async def test_v3_and_v2_get_the_failures_message_as_text(api, memory_store):
    async with kubelet() as port, api(memory_store, remote_command=dial) as c:
        await _setup(c, port)
        for versions, wanted in ((rc.V3, rc.V3), (f"{rc.V2}, {rc.V1}", rc.V2)):
            for command, text in ((["sh", "-c", "exit 2"],
                                   b"command terminated with non-zero exit code: error "
                                   b"executing command [sh -c exit 2], exit code 2"),
                                  (["true"], b"")):
                query = _query(*command, stdout="true", container="c")
                async with upgraded(c, query, versions) as (client, head):
                    assert f"X-Stream-Protocol-Version: {wanted}".encode() in head, head
                    await client.open(1, "error")
                    await client.open(3, "stdout")
                    await client.until(lambda: client.fin(1) and client.fin(3))
                    assert client.data(1) == text


async def test_errors_before_the_upgrade_are_upstreams(api, memory_store):
    async with kubelet() as port, api(memory_store, remote_command=dial) as c:
        await _setup(c, port)

        async def status(query: Any, headers: dict) -> tuple[int, dict]:
            async with c.raw.post(f"{PODS}/p/exec", params=query, headers={
                    "Authorization": f"Bearer {TOKEN}", **headers}) as r:
                return r.status, json.loads(await r.text())

        spdy_headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                        "X-Stream-Protocol-Version": rc.V4}
        code, err = await status(_query("true", stdout="true", container="d"), spdy_headers)
        assert (code, err["message"]) == (
            400, 'unable to upgrade connection: container not found ("d")')
        code, err = await status(_query("true", stdout="true", container="c"),
                                 {**spdy_headers, "X-Stream-Protocol-Version": "v9.x"})
        assert code == 403 and err["message"] == (
            "unable to upgrade: unable to negotiate protocol: client supports [v9.x], server "
            "accepts [v5.channel.k8s.io v4.channel.k8s.io v3.channel.k8s.io "
            "v2.channel.k8s.io channel.k8s.io]")
        code, err = await status(_query("true", stdout="true", container="c"),
                                 {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
        assert code == 400 and "X-Stream-Protocol-Version is required" in err["message"]
        code, err = await status(_query("true", stdout="true", container="c"), {})
        assert (code, err["message"]) == (400, "Upgrade request required")


async def test_a_request_without_upgrade_never_reaches_the_kubelet(api, memory_store):
    """Upstream's UpgradeAwareHandler answers 400 itself: the kubelet is not asked, so
    its view of the container (not found, here) does not change the answer."""
    dialled: list[str] = []

    async def counting_dial(*args: Any) -> tuple[Any, Any]:
        dialled.append(args[1])
        return await dial(*args)

    async with kubelet() as port, api(memory_store, remote_command=counting_dial) as c:
        await _setup(c, port)
        for kind in ("exec", "attach"):
            for container in ("c", "d"):  # the kubelet knows c, not d
                query = _query("true", stdout="true", container=container)
                async with c.raw.post(f"{PODS}/p/{kind}", params=query, headers={
                        "Authorization": f"Bearer {TOKEN}"}) as r:
                    body = json.loads(await r.text())
                assert (r.status, body["message"]) == (400, "Upgrade request required")
        assert dialled == []


# -- against a fake kubelet WebSocket ---------------------------------------------------


class FakeKubeletSocket:
    """The kubelet's WebSocket as the session sees it: what it was sent, and messages
    the test feeds it (None: the kubelet closes)."""

    protocol = rc.V5

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.incoming: asyncio.Queue[Optional[bytes]] = asyncio.Queue()
        self.closed = asyncio.Event()

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self) -> None:
        self.closed.set()

    def __aiter__(self) -> FakeKubeletSocket:
        return self

    async def __anext__(self) -> aiohttp.WSMessage:
        data = await self.incoming.get()
        if data is None:
            raise StopAsyncIteration
        return aiohttp.WSMessage(aiohttp.WSMsgType.BINARY, data, None)


def pipe() -> tuple[Any, Any, Any, Any]:
    """(client read, client write, server read, server write) over two queues."""
    up: asyncio.Queue[bytes] = asyncio.Queue()
    down: asyncio.Queue[bytes] = asyncio.Queue()

    async def client_write(data: bytes) -> None:
        up.put_nowait(data)

    async def server_write(data: bytes) -> None:
        down.put_nowait(data)

    return down.get, client_write, up.get, server_write


async def _wait(pred: Any, timeout: float = 10) -> None:
    async def poll() -> None:
        while not pred():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def test_resizes_and_stdin_reach_the_kubelet_as_channels():
    cread, cwrite, sread, swrite = pipe()
    kubelet_ws = FakeKubeletSocket()
    expected = rc.spdy_streams(rc.V4, rc.StreamOptions(("sh",), True, True, False, True, "c"))
    assert expected == {"error", "stdin", "stdout", "resize"}
    server = asyncio.ensure_future(
        ExecSession(sread, swrite, rc.V4, expected, kubelet_ws).serve())
    client = SpdyClient(cread, cwrite)
    try:
        for sid, kind in ((1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize")):
            await client.open(sid, kind)
        await client.until(lambda: client.replied() == {1, 3, 5, 7})
        # Two sizes in one frame, a third cut across two frames, then a bad one and more.
        await client.send(spdy.DataFrame(7, b'{"Width":80,"Height":24}\n{"Width":100,'
                                            b'"Height":30}\n{"Width":1'),
                          spdy.DataFrame(3, b"ls\n"),
                          spdy.DataFrame(7, b'20,"Height":40}\n'),
                          spdy.DataFrame(3, b"", spdy.FLAG_FIN),
                          spdy.DataFrame(7, b'{"Width":"wide"}\n{"Width":1,"Height":1}\n'))
        wanted = [rc.frame(rc.RESIZE, b'{"Width": 80, "Height": 24}'),
                  rc.frame(rc.RESIZE, b'{"Width": 100, "Height": 30}'),
                  rc.frame(rc.STDIN, b"ls\n"),
                  rc.frame(rc.RESIZE, b'{"Width": 120, "Height": 40}'),
                  rc.close_frame(rc.STDIN)]
        await _wait(lambda: len(kubelet_ws.sent) >= len(wanted))
        assert [json.loads(m[1:]) if m[0] == rc.RESIZE else m for m in kubelet_ws.sent] == \
            [json.loads(m[1:]) if m[0] == rc.RESIZE else m for m in wanted]
        # The kubelet answers, then closes: output and Status, then FIN on every stream.
        kubelet_ws.incoming.put_nowait(rc.frame(rc.STDOUT, b"file\n"))
        kubelet_ws.incoming.put_nowait(rc.frame(rc.ERROR, rc.encode_status(
            rc.success_status())))
        kubelet_ws.incoming.put_nowait(None)
        await client.until(lambda: all(client.fin(s) for s in (1, 3, 5, 7)))
        assert client.data(5) == b"file\n"
        assert json.loads(client.data(1)) == rc.success_status()
        assert kubelet_ws.sent[len(wanted):] == []  # the bad size and what followed: dropped
        await cwrite(b"")  # kubectl closes: the session ends with GOAWAY
        await asyncio.wait_for(server, 10)
        await client.until(lambda: any(isinstance(f, spdy.GoAway) for f in client.frames))
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


async def test_unasked_streams_are_refused_and_missing_ones_time_out():
    cread, cwrite, sread, swrite = pipe()
    kubelet_ws = FakeKubeletSocket()
    session = ExecSession(sread, swrite, rc.V4, {"error", "stdout"}, kubelet_ws,
                          creation_timeout=0.5)
    server = asyncio.ensure_future(session.serve())
    client = SpdyClient(cread, cwrite)
    await client.open(1, "error")
    await client.open(3, "stdin")  # the query asked for no stdin
    await client.open(5, "error")  # a second error stream
    await client.until(lambda: len([f for f in client.frames
                                    if isinstance(f, spdy.RstStream)]) == 2)
    assert client.replied() == {1}
    # No stdout stream ever comes: the session ends and the kubelet's socket closes.
    await asyncio.wait_for(server, 10)
    assert kubelet_ws.closed.is_set()
    await client.until(lambda: any(isinstance(f, spdy.GoAway) for f in client.frames))


async def test_a_malformed_frame_ends_the_session_with_goaway():
    cread, cwrite, sread, swrite = pipe()
    kubelet_ws = FakeKubeletSocket()
    server = asyncio.ensure_future(
        ExecSession(sread, swrite, rc.V4, {"error", "stdout"}, kubelet_ws).serve())
    client = SpdyClient(cread, cwrite)
    await client.open(1, "error")
    await client.until(lambda: client.replied() == {1})
    await cwrite(b"\x80\x03\x00\x01\x00\x00\x00\x02\xff\xff")  # SYN_STREAM too short
    await asyncio.wait_for(server, 10)
    assert kubelet_ws.closed.is_set()
    await client.until(lambda: any(isinstance(f, spdy.GoAway)
                                   and f.status == spdy.GOAWAY_PROTOCOL_ERROR
                                   for f in client.frames))


async def test_large_output_arrives_whole_in_bounded_data_frames():
    """The kubelet's messages go out as views of what it sent (no copies), cut into
    DATA frames of at most CHUNK bytes, in order, stdout and stderr apart."""
    from netlab.master.apiserver.spdyexec import CHUNK
    cread, cwrite, sread, swrite = pipe()
    kubelet_ws = FakeKubeletSocket()
    server = asyncio.ensure_future(ExecSession(
        sread, swrite, rc.V4, {"error", "stdout", "stderr"}, kubelet_ws).serve())
    client = SpdyClient(cread, cwrite)
    try:
        for sid, kind in ((1, "error"), (3, "stdout"), (5, "stderr")):
            await client.open(sid, kind)
        await client.until(lambda: client.replied() == {1, 3, 5})
        big = random.Random(7).randbytes(CHUNK // 2) * 5
        kubelet_ws.incoming.put_nowait(rc.frame(rc.STDOUT, big))
        kubelet_ws.incoming.put_nowait(rc.frame(rc.STDERR, b"warn\n"))
        kubelet_ws.incoming.put_nowait(rc.frame(rc.STDOUT, b"tail"))
        kubelet_ws.incoming.put_nowait(rc.frame(rc.ERROR, rc.encode_status(
            rc.success_status())))
        kubelet_ws.incoming.put_nowait(None)
        await client.until(lambda: all(client.fin(s) for s in (1, 3, 5)))
        assert client.data(3) == big + b"tail" and client.data(5) == b"warn\n"
        assert json.loads(client.data(1)) == rc.success_status()
        assert max(len(f.data) for f in client.frames if isinstance(f, spdy.DataFrame)) \
            == CHUNK
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
