"""The kubelet's port-forward dial: ``localhost:port`` inside the pod's network namespace,
as CRI runtimes dial it, so a server bound only to the pod's loopback is reachable."""

from __future__ import annotations

import asyncio
import socket

import pytest

from netlab.kernel import links, netns
from netlab.node.kubelet.portforward import dial


def _lo_up() -> None:
    with links.netlink() as ipr:
        links.ensure_up(ipr, "lo")


def _listen() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_dial_reaches_a_server_on_the_pods_loopback_only(make_netns):
    pod = make_netns("pf", _lo_up)
    server = netns.run_in_netns(pod, _listen)
    port = server.getsockname()[1]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = await asyncio.wait_for(dial(pod, port), 10)
        with sock:
            conn, _ = await asyncio.wait_for(loop.sock_accept(server), 10)
            with conn:
                await loop.sock_sendall(sock, b"ping")
                conn.setblocking(True)
                conn.sendall(b"pong:" + conn.recv(4))
                got = b""
                while len(got) < 9:
                    chunk = await asyncio.wait_for(loop.sock_recv(sock, 9 - len(got)), 10)
                    assert chunk, got
                    got += chunk
                assert got == b"pong:ping"
        # The same port on another namespace's loopback is not the pod's server.
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(dial(other, port), 10)

    other = make_netns("pf2", _lo_up)
    try:
        server.setblocking(False)
        asyncio.run(main())
    finally:
        server.close()
