#!/usr/bin/env python3
"""The CPU floor of the API server as a pure TLS byte relay, against a direct TLS read, same run.

Run:  .venv/bin/python bench/tls_relay_floor.py [--mib 1024] [--runs 3] [--loop uvloop|asyncio]

The question it answers (issue 13, port-forward throughput): if the kubelet served
SPDY port-forward itself and the API server only relayed the upgraded bytes (as
kube-apiserver's UpgradeAwareHandler does), what would the API server's hop cost per
GiB? Three processes on 127.0.0.1, no lab: a source (TLS server sending zeros, as the
kubelet would), a relay (TLS server that, per connection, dials the source over TLS and
copies its bytes back, on the event loop the API server runs), and this process as the
sink (a blocking TLS client reading ``--mib`` MiB, as kubectl would). Modes, alternated:

- ``direct``: the sink reads the source itself (the baseline);
- ``relay``: through the relay, bytes as they come (plain SPDY upgrade, kubectl <= 1.30);
- ``ws``: through the relay, each piece wrapped in a WebSocket binary frame header
  (kubectl 1.31+'s ``SPDY/3.1+portforward.k8s.io`` tunnel, the bulk direction).

Printed: median MiB/s of each, the relay's throughput as a ratio of the direct one,
and the relay's CPU seconds per GiB (kernel share). Compare them with the API server's
figure from ``bench/portforward_throughput.py`` (it terminates SPDY and speaks WebSocket
to the kubelet). Loopback is a little cheaper than the lab's veth pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
from typing import Any, Optional

import psutil
from portforward_throughput import read_all  # bench/ is on sys.path

ZEROS = bytes(1 << 20)


def server_tls(certdir: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem"))
    return context


def client_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Source(asyncio.Protocol):
    """Sends zeros as fast as the transport takes them."""

    def connection_made(self, transport: Any) -> None:
        self.transport, self.paused = transport, False
        self.push()

    def push(self) -> None:
        # A few writes, then yield: a TLS transport whose peer went away may take
        # writes without ever pausing, and a loop here would never let it close.
        for _ in range(8):
            if self.paused or self.transport.is_closing():
                return
            self.transport.write(ZEROS)
        asyncio.get_running_loop().call_soon(self.push)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.push()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.paused = True


def ws_header(length: int) -> bytes:
    """A server's (unmasked) binary WebSocket frame header for ``length`` bytes."""
    if length < 126:
        return bytes((0x82, length))
    if length < 1 << 16:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


class Half(asyncio.Protocol):
    """One side of a relay: what it receives goes out on its peer's transport; a full
    peer pauses this side's reading (TCP's backpressure, as a real relay needs)."""

    def __init__(self, wrap: bool = False) -> None:
        self.peer: Optional[Half] = None
        self.transport: Any = None
        self.early: list[bytes] = []
        self.wrap = wrap

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self.early.append(data)
        elif self.peer.transport.is_closing():
            return  # the sink went: uvloop would print a line per write
        elif self.wrap:
            self.peer.transport.writelines((ws_header(len(data)), data))
        else:
            self.peer.transport.write(data)

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def serve(role: str, certdir: str, upstream: int, wrap: bool) -> None:
    loop = asyncio.get_running_loop()

    class Client(Half):
        """The sink's connection: dial the source, then copy its bytes here."""

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.dialling = loop.create_task(self.dial())

        async def dial(self) -> None:
            _, up = await loop.create_connection(lambda: Half(wrap), "127.0.0.1", upstream,
                                                 ssl=client_tls())
            up.peer, self.peer = self, up
            for data in up.early:
                up.data_received(data)

    factory: Any = Source if role == "source" else Client
    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_tls(certdir))
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def start(role: str, certdir: str, loop_kind: str, upstream: int = 0,
          wrap: bool = False) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen([sys.executable, __file__, "--role", role, "--certdir", certdir,
                             "--loop", loop_kind, "--upstream", str(upstream)] +
                            (["--wrap"] if wrap else []), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the port, once it listens
    if not line.strip():
        raise SystemExit(f"{role} did not start")
    return proc, int(line)


def read(port: int, size: int) -> float:
    """MiB/s reading ``size`` bytes over TLS from ``port`` (timed from the handshake)."""
    with socket.create_connection(("127.0.0.1", port)) as raw:
        return read_all(client_tls().wrap_socket(raw), size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--certdir", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--wrap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        if args.loop == "uvloop":
            import uvloop
            uvloop.install()
        asyncio.run(serve(args.role, args.certdir, args.upstream, args.wrap))
        return
    size = args.mib << 20
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as certdir:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-keyout", os.path.join(certdir, "key.pem"),
                        "-out", os.path.join(certdir, "cert.pem")],
                       check=True, capture_output=True)
        try:
            source, source_port = start("source", certdir, args.loop)
            procs.append(source)
            relays = {}
            for mode, wrap in (("relay", False), ("ws", True)):
                proc, port = start("relay", certdir, args.loop, source_port, wrap)
                procs.append(proc)
                relays[mode] = (psutil.Process(proc.pid), port)
            rates: dict[str, list[float]] = {"direct": [], "relay": [], "ws": []}
            cpu = {mode: [0.0, 0.0] for mode in relays}
            read(source_port, 64 << 20)  # warm up
            for mode in relays:
                read(relays[mode][1], 64 << 20)
            for i in range(args.runs):
                order = ["direct", "relay", "ws"]
                for mode in order if i % 2 == 0 else reversed(order):
                    if mode == "direct":
                        rates[mode].append(read(source_port, size))
                        continue
                    proc, port = relays[mode]
                    before = proc.cpu_times()
                    rates[mode].append(read(port, size))
                    after = proc.cpu_times()
                    cpu[mode][0] += after.user + after.system - before.user - before.system
                    cpu[mode][1] += after.system - before.system
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
    gib = args.runs * size / (1 << 30)
    direct = statistics.median(rates["direct"])
    print(f"direct TLS read: {direct:8.1f} MiB/s (median of {args.runs}, {args.mib} MiB each; "
          f"range {min(rates['direct']):.0f}-{max(rates['direct']):.0f})")
    for mode, label in (("relay", "byte relay (plain SPDY)"),
                        ("ws", "relay + WebSocket framing (tunnel)")):
        rate = statistics.median(rates[mode])
        print(f"{label}: {rate:8.1f} MiB/s, ratio {rate / direct:.3f}; relay CPU-s/GiB "
              f"{cpu[mode][0] / gib:.2f} (kernel {cpu[mode][1] / gib:.2f}) on {args.loop}")
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
