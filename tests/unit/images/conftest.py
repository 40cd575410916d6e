"""Run a built-in image program as a subprocess on 127.0.0.1 and talk to it.

Every server listens on 127.0.0.1 only (``NETLAB_BIND_ADDRESS``) on ports the kernel
just reported free. Readiness is probed by connecting until a deadline, never by
sleeping. The ``spawn`` fixture stops every process it started, in ``finally``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[3]
START_DEADLINE = 15.0  # seconds; start-up is ~0.5 s, the rest is slack for a busy CI host


class Program:
    """A running image program: its process and what it has logged so far."""

    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"program exited with {self.process.returncode}:\n{self.logs()}")

    def wait_tcp(self, port: int, deadline: float = START_DEADLINE) -> None:
        """Return once ``port`` accepts connections."""
        end = time.monotonic() + deadline
        while True:
            self.check_alive()
            try:
                with socket.create_connection((HOST, port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > end:
                    pytest.fail(f"port {port} never accepted a connection:\n{self.logs()}")
                time.sleep(0.05)  # between connection attempts, bounded by the deadline

    def wait_udp(self, port: int, payload: bytes, deadline: float = START_DEADLINE) -> bytes:
        """Send ``payload`` until an answer comes back, and return the answer."""
        end = time.monotonic() + deadline
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            sock.connect((HOST, port))
            while True:
                self.check_alive()
                try:
                    sock.send(payload)
                    return sock.recv(65535)
                except OSError:  # refused while not yet bound, or no answer yet
                    if time.monotonic() > end:
                        pytest.fail(f"udp port {port} never answered:\n{self.logs()}")

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then the exit code (SIGKILL if the program ignores it)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (the images use both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both TCP and UDP")


def base_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any pod identity, plus ``extra``."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("POD_NAME", "POD_IP", "POD_NAMESPACE", "NODE_NAME", "HOSTNAME",
                          "PORT", "TCP_PORT", "UDP_PORT", "CPU", "MEMORY", "WORKERS",
                          "DURATION")}
    env["NETLAB_BIND_ADDRESS"] = HOST
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def port() -> Callable[[], int]:
    """``port()`` returns a port free for TCP and UDP, never the same one twice in a
    module (module-scoped so that module-wide servers can have ports too)."""
    issued: set[int] = set()

    def next_port() -> int:
        while True:
            candidate = free_port()
            if candidate not in issued:
                issued.add(candidate)
                return candidate

    return next_port


class Spawner:
    """Starts ``python -m netlab.images.<module>`` programs and kills leftovers on close."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="netlab-images-")
        self.started: list[Program] = []

    def __call__(self, module: str, *args: str, env: dict[str, str] | None = None) -> Program:
        log_path = Path(self._tmp.name) / f"{module}-{len(self.started)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", f"netlab.images.{module}", *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=base_env(**(env or {})), cwd=REPO)
        program = Program(process, log_path)
        self.started.append(program)
        return program

    def close(self) -> None:
        try:
            for program in self.started:
                if program.process.poll() is None:
                    program.process.kill()
                    program.process.wait()
        finally:
            self._tmp.cleanup()


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    """``spawn(module, *args, env={...})`` starts a program for one test."""
    spawner = Spawner()
    try:
        yield spawner
    finally:
        spawner.close()


@pytest.fixture(scope="module")
def spawn_for_module() -> Iterator[Spawner]:
    """Like ``spawn``, for servers that a whole module's tests share."""
    spawner = Spawner()
    try:
        yield spawner
    finally:
        spawner.close()
