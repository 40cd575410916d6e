"""Plumbing shared by the built-in image programs: identity, listening, stopping.

Every program in ``netlab/images`` runs as a pod's main process, started by the kubelet
inside the pod's network namespace. They share these small needs, kept here so that
each program stays about its protocol. Only the standard library is imported: a pod's
start-up time is the image's start-up time, and these programs start often.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time

# Tests (and anyone running a program on the host) set this to keep a server off every
# address but one; in a pod the default, all addresses, is what a container does.
BIND_ADDRESS_ENV = "NETLAB_BIND_ADDRESS"


def pod_name() -> str:
    """The pod's name: ``POD_NAME`` as the kubelet sets it, else the hostname."""
    return os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or socket.gethostname()


def hostname() -> str:
    """What ``os.Hostname()`` returns inside a Kubernetes container.

    A container runtime exports ``HOSTNAME`` (the pod's hostname, which is the pod name
    unless ``spec.hostname`` says otherwise). netlab pods may share the host's UTS
    namespace, so the environment is asked before the kernel.
    """
    return os.environ.get("HOSTNAME") or os.environ.get("POD_NAME") or socket.gethostname()


def log(message: str) -> None:
    """One line on stdout, flushed at once: ``kubectl logs`` reads a file, not a tty."""
    print(message, flush=True)


def golog(message: str) -> None:
    """A line in the format of Go's ``log`` package (stderr, ``2006/01/02 15:04:05``),
    because agnhost's users grep its logs."""
    sys.stderr.write(f"{time.strftime('%Y/%m/%d %H:%M:%S')} {message}\n")
    sys.stderr.flush()


def format_addr(addr: tuple) -> str:
    """``ip:port``, with IPv6 addresses bracketed as Go's ``net.JoinHostPort`` does."""
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_address(explicit: str | None = None) -> str | None:
    """The one address to listen on, or None for every address."""
    return explicit or os.environ.get(BIND_ADDRESS_ENV) or None


def listen_sockets(address: str | None, port: int, kind: int) -> list[socket.socket]:
    """Bound sockets for ``port`` (``kind`` is SOCK_STREAM or SOCK_DGRAM).

    With no address, one IPv4 and one IPv6-only wildcard socket, so that client
    addresses are never IPv4-mapped; the IPv6 one is skipped where IPv6 is off, as it
    may be in a pod's namespace. A stream socket is left listening.
    """
    if address:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        targets = [(family, address, True)]
    else:
        targets = [(socket.AF_INET, "0.0.0.0", True), (socket.AF_INET6, "::", False)]
    sockets: list[socket.socket] = []
    try:
        for family, host, required in targets:
            sock = socket.socket(family, kind)
            try:
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and not address:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((host, port))
                if kind == socket.SOCK_STREAM:
                    sock.listen(511)
                sock.setblocking(False)
            except OSError:
                sock.close()
                if required:
                    raise
                continue
            sockets.append(sock)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def reply_source(client: tuple) -> str:
    """The local address the kernel answers ``client`` from.

    A wildcard UDP socket does not say which address a datagram arrived on; routing
    towards the sender picks the pod IP, which is what a connection would show.
    """
    family = socket.AF_INET6 if ":" in client[0] else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(client[:2] if family == socket.AF_INET else client)
            return probe.getsockname()[0]
    except OSError:
        return ""


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: the kubelet's stop, or Ctrl-C on the host."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, event.set)
    return event
