"""The API server process listens before it is ready: a component that connects while
it starts waits in the accept queue and is answered once it serves, instead of being
refused and retrying with a growing backoff (issue 16: the demo's start-up)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

# Runs the API server's entry point as `python -m netlab.master.apiserver` does, with
# an import hook that holds the import of the API itself (netlab.master.apiserver.app)
# until the test creates the gate file: the server is "still starting" for as long as
# the test wants, with no timing involved.
GATED = textwrap.dedent("""\
    import os, runpy, sys, time

    GATE = sys.argv.pop(1)

    class Gate:
        def find_spec(self, name, path=None, target=None):
            if name == "netlab.master.apiserver.app":
                while not os.path.exists(GATE):
                    time.sleep(0.01)  # the test's gate, not a readiness guess
            return None

    sys.meta_path.insert(0, Gate())
    runpy.run_module("netlab.master.apiserver", run_name="__main__", alter_sys=True)
    """)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _connect(port: int, deadline: float) -> socket.socket:
    while True:
        sock = socket.socket()
        try:
            sock.connect(("127.0.0.1", port))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # probe interval


def test_a_client_connecting_while_the_api_server_starts_is_answered_when_it_serves(
        tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    port = _free_port()
    script = tmp_path / "gated.py"
    script.write_text(GATED)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(gate), "--lab", "listener-test",
         "--bind", f"127.0.0.1:{port}", "--token-file", str(token), "--store", "memory:"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # The API is not even imported yet, and the listener takes the connection.
        early = _connect(port, time.monotonic() + 30)
        assert not gate.exists() and proc.poll() is None
        with early:
            early.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            gate.touch()
            early.settimeout(30)
            answer = b""
            while chunk := early.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok"), answer[-200:]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
