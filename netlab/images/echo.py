"""``netlab/echo``: a TCP and UDP server that says which pod answered and whom it saw.

Pods of this image make Service load balancing and SNAT visible: every answer names
the pod, its IP and the client address as the pod saw it. It is the default workload
of netlab's examples and lab tests.

Protocol (the proxy tests count endpoints by these exact formats)::

    identity line:  pod=<pod> ip=<podIP> client=<clientIP>:<clientPort>

    TCP, line mode  The server sends nothing on connect. Every line X received (ended
                    by \\n, \\r\\n, or the end of the stream) is answered with
                    "<identity line> echo=X\\n". The connection stays open.
    TCP, HTTP mode  Chosen when the first line is an HTTP request line. Answers are
                    HTTP/1.1 with keep-alive. ``GET /healthz`` -> 200 ``ok\\n``;
                    ``GET /hostname`` -> 200 with the pod name; any other request ->
                    200 JSON {"pod", "namespace", "node", "podIP", "client", "path",
                    "method"} and a newline.
    UDP             Each datagram X is answered with one datagram
                    "<identity line> echo=X\\n" (X without its trailing newline).

IPv6 clients are written ``[addr]:port``. ``<podIP>`` is ``POD_IP`` from the
environment, else the local address the packet arrived on. The pod name is
``POD_NAME``, else ``HOSTNAME``, else the kernel's hostname; ``POD_NAMESPACE`` and
``NODE_NAME`` fill the JSON (empty when unset).

Ports: TCP and UDP both listen on 8080 by default. ``--port`` (env ``PORT``) sets
both; ``--tcp-port``/``--udp-port`` (env ``TCP_PORT``/``UDP_PORT``) set one; -1 turns
a protocol off. Arguments win over the environment. ``--address`` (env
``NETLAB_BIND_ADDRESS``) listens on one address instead of all.

Logs: one stdout line per TCP connection, per HTTP request and per UDP datagram.
SIGTERM closes the listeners and exits 0 at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import socket
import sys
from typing import cast
from urllib.parse import urlsplit

from netlab.images._common import (
    bind_address,
    format_addr,
    listen_sockets,
    log,
    pod_name,
    reply_source,
    stop_event,
)

DEFAULT_PORT = 8080
# Any token in capitals, a target and a version: curl, wget, kube-proxy health checks
# and browsers all send this; a person typing into nc almost never does.
_REQUEST_LINE = re.compile(rb"^[A-Z]+ \S+ HTTP/\d\.\d\r?\n$")
_MAX_HEADERS = 100
_REASONS = {200: "OK", 400: "Bad Request"}


class Identity:
    """Who this pod is; the address part is filled in per connection when unknown."""

    def __init__(self) -> None:
        self.pod = pod_name()
        self.namespace = os.environ.get("POD_NAMESPACE", "")
        self.node = os.environ.get("NODE_NAME", "")
        self.pod_ip = os.environ.get("POD_IP", "")

    def ip(self, local_ip: str) -> str:
        return self.pod_ip or local_ip

    def line(self, local_ip: str, client: str) -> bytes:
        return f"pod={self.pod} ip={self.ip(local_ip)} client={client}".encode()


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    """The next line with its newline, a final unterminated piece, or b"" at the end.
    An over-long line is answered in pieces rather than dropping the connection."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    except asyncio.LimitOverrunError as exc:
        return await reader.readexactly(exc.consumed)


class EchoServer:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.writers: set[asyncio.StreamWriter] = set()

    async def handle_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        client = format_addr(writer.get_extra_info("peername"))
        local_ip = writer.get_extra_info("sockname")[0]
        log(f"tcp connection from {client}")
        try:
            first = await _read_line(reader)
            if _REQUEST_LINE.match(first):
                await self._serve_http(first, reader, writer, client, local_ip)
            else:
                await self._serve_lines(first, reader, writer, client, local_ip)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        finally:
            self.writers.discard(writer)
            writer.close()

    async def _serve_lines(self, line: bytes, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter, client: str, local_ip: str) -> None:
        prefix = self.identity.line(local_ip, client) + b" echo="
        while line:
            writer.write(prefix + _strip_eol(line) + b"\n")
            await writer.drain()
            line = await _read_line(reader)

    async def _serve_http(self, line: bytes, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter, client: str, local_ip: str) -> None:
        while line:
            try:
                method, target, version = line.decode("latin-1").split()
                headers = await _read_headers(reader)
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await _discard_body(reader, headers)
            except (ValueError, asyncio.LimitOverrunError):
                self._respond(writer, 400, "text/plain", b"bad request\n", keep_alive=False)
                await writer.drain()
                return
            connection = headers.get("connection", "").lower()
            keep_alive = (connection != "close" if version == "HTTP/1.1"
                          else connection == "keep-alive")
            status, content_type, body = self._answer(method, target, client, local_ip)
            self._respond(writer, status, content_type, body, keep_alive,
                          head=method == "HEAD")
            await writer.drain()
            log(f"http {client} {method} {target} {status}")
            if not keep_alive:
                return
            line = await _read_line(reader)
            while line in (b"\r\n", b"\n"):  # RFC 9112 lets clients send stray CRLFs
                line = await _read_line(reader)
            if line and not _REQUEST_LINE.match(line):
                self._respond(writer, 400, "text/plain", b"bad request\n", keep_alive=False)
                await writer.drain()
                return

    def _answer(self, method: str, target: str, client: str,
                local_ip: str) -> tuple[int, str, bytes]:
        path = urlsplit(target).path
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/hostname":
            return 200, "text/plain", self.identity.pod.encode()
        identity = self.identity
        body = {"pod": identity.pod, "namespace": identity.namespace, "node": identity.node,
                "podIP": identity.ip(local_ip), "client": client, "path": target,
                "method": method}
        return 200, "application/json", json.dumps(body).encode() + b"\n"

    def _respond(self, writer: asyncio.StreamWriter, status: int, content_type: str,
                 body: bytes, keep_alive: bool, head: bool = False) -> None:
        head_lines = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
            "Server: netlab-echo",
        ]
        writer.write("\r\n".join(head_lines).encode() + b"\r\n\r\n" + (b"" if head else body))


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = await reader.readuntil(b"\n")
        if line in (b"\r\n", b"\n"):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise ValueError("malformed header")
        headers[name.strip().lower()] = value.strip()
    raise ValueError("too many headers")


async def _discard_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    """Read past a request body so the next request on the connection parses."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\n")) not in (b"\r\n", b"\n"):
                    pass  # trailer fields
                return
            await reader.readexactly(size + 2)
    length = int(headers.get("content-length", "0") or "0")
    if length < 0:
        raise ValueError("negative Content-Length")
    await reader.readexactly(length)


class _UDPEcho(asyncio.DatagramProtocol):
    def __init__(self, identity: Identity, bound_ip: str) -> None:
        self.identity = identity
        self.bound_ip = bound_ip
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's protocol is given its DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        client = format_addr(addr)
        local_ip = self.identity.pod_ip or self.bound_ip or reply_source(addr)
        log(f"udp datagram from {client} ({len(data)} bytes)")
        assert self.transport is not None
        self.transport.sendto(
            self.identity.line(local_ip, client) + b" echo=" + _strip_eol(data) + b"\n", addr)


def _port(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        port = int(value)
    except ValueError:
        raise SystemExit(f"echo: {name} must be a port number, got {value!r}") from None
    if port != -1 and not 0 < port < 65536:
        raise SystemExit(f"echo: {name} must be 1-65535 or -1 (off), got {port}")
    return port


def parse_ports(args: argparse.Namespace, env: dict[str, str]) -> tuple[int, int]:
    """(tcp, udp) ports: a specific argument, then --port, then the same order in the
    environment, then 8080. -1 means off."""
    both = _port(args.port, "--port")
    env_both = _port(env.get("PORT"), "PORT")
    ports = []
    for specific, env_name in ((args.tcp_port, "TCP_PORT"), (args.udp_port, "UDP_PORT")):
        candidates = (_port(specific, f"--{env_name.lower().replace('_', '-')}"), both,
                      _port(env.get(env_name), env_name), env_both, DEFAULT_PORT)
        ports.append(next(port for port in candidates if port is not None))
    return ports[0], ports[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netlab/echo",
        description="Answer TCP lines, HTTP requests and UDP datagrams with the pod's "
                    "name, its IP and the client address it saw.")
    parser.add_argument("--port", help="TCP and UDP port (env PORT; default 8080)")
    parser.add_argument("--tcp-port", help="TCP port, -1 for none (env TCP_PORT)")
    parser.add_argument("--udp-port", help="UDP port, -1 for none (env UDP_PORT)")
    parser.add_argument("--address", help="listen on this address only "
                                          "(env NETLAB_BIND_ADDRESS; default all)")
    return parser


async def serve(tcp_port: int, udp_port: int, address: str | None) -> int:
    identity = Identity()
    server = EchoServer(identity)
    stop = stop_event()
    loop = asyncio.get_running_loop()
    servers: list[asyncio.AbstractServer] = []
    transports: list[asyncio.BaseTransport] = []
    try:
        if tcp_port != -1:
            for sock in listen_sockets(address, tcp_port, socket.SOCK_STREAM):
                servers.append(await asyncio.start_server(server.handle_tcp, sock=sock))
        if udp_port != -1:
            for sock in listen_sockets(address, udp_port, socket.SOCK_DGRAM):
                bound = sock.getsockname()[0]
                bound = "" if bound in ("0.0.0.0", "::") else bound
                transport, _ = await loop.create_datagram_endpoint(
                    functools.partial(_UDPEcho, identity, bound), sock=sock)
                transports.append(transport)
    except OSError as exc:
        log(f"echo: cannot listen: {exc}")
        return 1
    def where(port: int) -> str:
        return "off" if port == -1 else f"{address or '*'}:{port}"

    log(f"echo: pod={identity.pod} listening on tcp {where(tcp_port)} udp {where(udp_port)}")
    await stop.wait()
    log("echo: stopping")
    for listener in servers:
        listener.close()
    for open_transport in transports:
        open_transport.close()
    for writer in list(server.writers):
        writer.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    tcp_port, udp_port = parse_ports(args, dict(os.environ))
    if tcp_port == -1 and udp_port == -1:
        log("echo: both TCP and UDP are off; nothing to serve")
        return 1
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(tcp_port, udp_port, bind_address(args.address)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
