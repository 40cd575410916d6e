"""Running an etcd member: its command line (for the lab's supervisor) and a
throwaway local member (for tests and benchmarks).

The lab runs Debian's ``etcd`` binary (package ``etcd-server``) as a supervised
component; ``etcd_argv`` is its command line. ``LocalEtcd`` starts one on
127.0.0.1 with free ports and a temporary data directory, waits until it
answers (a probe with a deadline) and stops it, by the pid it started, on exit.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import psutil

INSTALL_HINT = "install it with 'apt-get install etcd-server' (and etcd-client for etcdctl)"
CLIENT_PORT, PEER_PORT = 2379, 2380


def etcd_binary() -> Optional[str]:
    return shutil.which("etcd")


@dataclass(frozen=True)
class EtcdTLS:
    """PEM files: the CA, and the member's certificate (server and client use,
    so the same pair serves clients and peers)."""

    ca: Path
    cert: Path
    key: Path


# How often a member tells an idle watch where it is (etcd's progress notification):
# the store client takes a watch that stays silent much longer for a dead connection.
PROGRESS_NOTIFY = "1s"


def etcd_argv(name: str, data_dir: Path, ip: str, tls: Optional[EtcdTLS] = None, *,
              client_port: int = CLIENT_PORT, peer_port: int = PEER_PORT,
              cluster_token: str = "netlab", fast: bool = False,
              peers: Optional[dict[str, str]] = None) -> list[str]:
    """An etcd member named ``name`` on ``ip``: clients on ``client_port``, peers on
    ``peer_port``, with client-certificate authentication on both when ``tls`` is given.
    ``peers`` (member name -> peer URL, this one included) is the initial cluster; by
    default the member is alone."""
    scheme = "https" if tls else "http"
    client = f"{scheme}://{ip}:{client_port}"
    peer = f"{scheme}://{ip}:{peer_port}"
    initial = ",".join(f"{n}={url}" for n, url in (peers or {name: peer}).items())
    argv = [etcd_binary() or "etcd", "--name", name, "--data-dir", str(data_dir),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", initial, "--initial-cluster-state", "new",
            "--initial-cluster-token", cluster_token,
            "--experimental-watch-progress-notify-interval", PROGRESS_NOTIFY,
            "--logger", "zap", "--log-outputs", "stderr"]
    if fast:  # a single member elects itself after one election timeout
        argv += ["--heartbeat-interval", "10", "--election-timeout", "100",
                 "--log-level", "warn"]
    if tls:
        argv += ["--trusted-ca-file", str(tls.ca), "--cert-file", str(tls.cert),
                 "--key-file", str(tls.key), "--client-cert-auth",
                 "--peer-trusted-ca-file", str(tls.ca), "--peer-cert-file", str(tls.cert),
                 "--peer-key-file", str(tls.key), "--peer-client-cert-auth"]
    # A member cut off from the others must not depose the leader when it comes back
    # (Raft's pre-vote; etcd 3.4 leaves it off).
    return [*argv, "--pre-vote"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalEtcd:
    """A throwaway etcd on 127.0.0.1 (plain HTTP, or TLS with ``tls``), for tests
    and benchmarks::

        with LocalEtcd() as etcd:
            store = EtcdStore(etcd.endpoint)

    A member of a larger cluster (``LocalEtcdCluster``) is given its name, ports
    and ``peers`` (name -> peer port of every member).
    """

    def __init__(self, data_dir: Optional[Path] = None, timeout: float = 20.0,
                 tls: Optional[EtcdTLS] = None, *, name: str = "local",
                 ports: Optional[tuple[int, int]] = None,
                 peers: Optional[dict[str, int]] = None) -> None:
        self.tls = tls
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="netlab-etcd-"))
        self.timeout = timeout
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.name = name
        self.ports = ports or (_free_port(), _free_port())
        self.peers = peers
        self.endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{self.ports[0]}"

    def start(self) -> LocalEtcd:
        self.launch()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def launch(self) -> None:
        """Start the process (``start`` also waits until it is healthy)."""
        if etcd_binary() is None:
            raise FileNotFoundError(f"no etcd binary on PATH; {INSTALL_HINT}")
        client, peer = self.ports
        scheme = "https" if self.tls else "http"
        peers = ({n: f"{scheme}://127.0.0.1:{port}" for n, port in self.peers.items()}
                 if self.peers else None)
        argv = etcd_argv(self.name, self.data_dir / "member", "127.0.0.1", self.tls,
                         client_port=client, peer_port=peer, fast=True, peers=peers)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.data_dir / "etcd.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, start_new_session=True)
        self._created = psutil.Process(self.proc.pid).create_time()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timeout
        ctx = (_context(self.endpoint, str(self.tls.ca), str(self.tls.cert), str(self.tls.key))
               if self.tls else None)
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}: "
                                   + (self.data_dir / "etcd.log").read_text()[-2000:])
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(self.endpoint + "/health", timeout=1,
                                           context=ctx) as resp:
                if b'"true"' in resp.read():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd at {self.endpoint} not healthy after {self.timeout}s")
            time.sleep(0.01)  # probe interval

    def stop(self) -> None:
        """Stop the etcd this object started (by its pid, checked), remove its data."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(psutil.NoSuchProcess):
                    if psutil.Process(proc.pid).create_time() == self._created:
                        proc.terminate()
                        try:
                            proc.wait(10)
                        except subprocess.TimeoutExpired:
                            proc.kill()
                            proc.wait(10)
        finally:
            if proc is not None:
                self._log.close()
            if self._own_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalEtcd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalEtcdCluster:
    """``size`` throwaway members on 127.0.0.1 (a port pair each), for the failover
    tests and the benchmark; ``stop_member(i)`` takes one down, as a crash would."""

    def __init__(self, base: Path, size: int = 3, timeout: float = 30.0) -> None:
        ports = {f"m{i}": (_free_port(), _free_port()) for i in range(size)}
        peers = {name: pair[1] for name, pair in ports.items()}
        self.members = [LocalEtcd(base / name, timeout, name=name, ports=pair, peers=peers)
                        for name, pair in ports.items()]
        self.endpoints = [m.endpoint for m in self.members]

    def start(self) -> LocalEtcdCluster:
        try:
            for member in self.members:  # all running before any can elect a leader
                member.launch()
            for member in self.members:
                member._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop_member(self, index: int) -> None:
        self.members[index].stop()

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def __enter__(self) -> LocalEtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- probing a member (run inside its node's namespace: see netlab.lab.control) -------------


def _get(url: str, ctx: Optional[ssl.SSLContext], body: Optional[bytes] = None) -> bytes:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
        return resp.read()


def _context(endpoint: str, ca: Optional[str], cert: Optional[str],
             key: Optional[str]) -> Optional[ssl.SSLContext]:
    """TLS for an https endpoint: ``ca`` (else the system's CAs) and, if given, a client
    certificate, as etcdctl's --cacert/--cert/--key."""
    if not endpoint.startswith("https:"):
        return None
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def wait_healthy(endpoint: str, ctx: Optional[ssl.SSLContext], timeout: float) -> None:
    """Probe ``/health`` until etcd answers healthy or ``timeout`` passes (TimeoutError,
    naming the last error)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            answer = json.loads(_get(endpoint + "/health", ctx))
            if answer.get("health") == "true":
                return
            last = f"unhealthy: {answer}"
        except (OSError, ValueError) as err:
            last = str(getattr(err, "reason", err))
        if time.monotonic() > deadline:
            raise TimeoutError(f"etcd at {endpoint} not healthy after {timeout:.0f}s ({last})")
        time.sleep(0.05)  # probe interval


def member_status(endpoint: str, ctx: Optional[ssl.SSLContext]) -> dict[str, object]:
    """Health, version, leader and database size of the member at ``endpoint``. A
    member that answers but knows no leader (it lost its quorum) is not healthy:
    it serves no linearizable read and no write."""
    try:
        raw = json.loads(_get(endpoint + "/v3/maintenance/status", ctx, b"{}"))
    except (OSError, ValueError) as err:
        return {"endpoint": endpoint, "healthy": False,
                "error": str(getattr(err, "reason", err))}
    header = raw.get("header") or {}
    leader = raw.get("leader") or "0"
    out: dict[str, object] = {
        "endpoint": endpoint, "healthy": leader != "0", "version": raw.get("version"),
        "leader": leader != "0" and leader == header.get("member_id"),
        "revision": int(header.get("revision", 0)), "dbSize": int(raw.get("dbSize", 0))}
    errors = [*raw.get("errors", [])] + ([] if leader != "0" else ["no leader"])
    if errors:  # etcd's own words (an alarm, a corrupt member...)
        out["error"] = "; ".join(errors)
    return out


def main(argv: Optional[list[str]] = None) -> None:
    """``python -m netlab.master.store.etcd_server {wait,status} ENDPOINT [--ca --cert --key]``:
    the probes ``netlab up`` and ``netlab status`` run inside the member's namespace
    (or the host's, for an etcd outside the lab)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="netlab-etcd-probe")
    parser.add_argument("action", choices=["wait", "status"])
    parser.add_argument("endpoint")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        ctx = _context(args.endpoint, args.ca, args.cert, args.key)
    except (OSError, ssl.SSLError) as err:  # a certificate file that cannot be used
        sys.exit(f"etcd's TLS files: {err}")
    if args.action == "status":
        print(json.dumps(member_status(args.endpoint, ctx)))
        return
    try:
        wait_healthy(args.endpoint, ctx, args.timeout)
    except TimeoutError as err:
        sys.exit(str(err))


if __name__ == "__main__":
    main()
