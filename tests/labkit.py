"""Helpers shared by the kernel and lab tiers: unique names, traffic, captures, and
the user's own tools run as programs (``netlab``, ``kubectl``).

Traffic is real: sockets are opened inside the lab's namespaces (see
``netlab.kernel.netns.run_in_netns``) and ``ping`` runs there through
``ip netns exec``. Nothing here sends to an address outside the lab.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from netlab.kernel.netns import run_in_netns

KUBECTL = shutil.which("kubectl")
# The marks of a lab test of the etcd store: it needs etcd and etcdctl (CI installs both).
NEEDS_ETCD = [
    pytest.mark.etcd,
    pytest.mark.skipif(shutil.which("etcd") is None or shutil.which("etcdctl") is None,
                       reason="needs etcd and etcdctl (apt-get install etcd-server etcd-client)"),
]
# The params of a module's ``lab_store`` fixture that runs its ``cluster_lab`` tests on
# SQLite and on etcd (issue 17: the same tests over both stores).
BOTH_STORES = ["sqlite", pytest.param("etcd", marks=NEEDS_ETCD)]
TEST_PREFIX = "nlt"  # every lab and namespace the suite makes starts with this
ETH_P_ALL = 0x0003


def netlab_cli(*args: str, stdin: str | None = None,
               timeout: float | None = 300) -> subprocess.CompletedProcess:
    """The user's command ``netlab ARGS``, run as a program; stdin is closed unless given."""
    feed: dict[str, Any] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([sys.executable, "-m", "netlab.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, **feed)


def write_kubeconfig(lab: str, directory: Path) -> Path:
    """``netlab kubeconfig --lab LAB`` saved as ``DIRECTORY/config``."""
    out = netlab_cli("kubeconfig", "--lab", lab)
    assert out.returncode == 0, out.stderr
    path = directory / "config"
    path.write_text(out.stdout)
    return path


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess:
    """Real kubectl against a lab; the timeout only bounds a hang."""
    return subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, input=stdin, timeout=timeout,
                          check=False)


KUBECTL_AT = "/usr/lib/google-cloud-sdk/bin/kubectl.1.{}"  # the image's kubectl 1.27 ... 1.33


def kubectl_version(kubeconfig: Path, *args: str, version: str | None = None,
                    timeout: float = 60) -> subprocess.CompletedProcess:
    """kubectl 1.<version> against a lab (the default kubectl when None); a missing
    binary skips the test, naming it."""
    if version is None:
        return kubectl(kubeconfig, *args)
    binary = KUBECTL_AT.format(version)
    if not os.path.exists(binary):
        pytest.skip(f"{binary} is missing")
    return subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@contextlib.contextmanager
def pod_visible_dir() -> Iterator[Path]:
    """A host directory for pods to mount as a hostPath volume (a privileged container
    without an image sees it directly), removed afterwards. Not under /tmp: netlab's
    own files are never a hostPath, and /tmp may hold a test's virtualenv."""
    path = Path(tempfile.mkdtemp(prefix="nlt-", dir="/run"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def unique_lab() -> str:
    return f"{TEST_PREFIX}{uuid.uuid4().hex[:7]}"


def topology(name: str, workers: int = 2, external: bool = True, overlay: str = "vxlan",
             **extra: Any) -> dict[str, Any]:
    nodes = [{"name": "control-plane", "role": "control-plane"}]
    nodes += [{"name": f"worker{i}", "role": "worker"} for i in range(1, workers + 1)]
    if external:
        nodes.append({"name": "client", "role": "external"})
    return {"name": name, "cluster": {"overlay": overlay}, "nodes": nodes, **extra}


def write_topology(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def ping(netns: str, address: str, size: int | None = None, df: bool = False,
         timeout: float = 2.0) -> bool:
    cmd = ["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", str(int(timeout)), "-n"]
    if size is not None:
        cmd += ["-s", str(size)]
    if df:
        cmd += ["-M", "do"]
    return subprocess.run([*cmd, address], capture_output=True, check=False).returncode == 0


def tcp_roundtrip(server_ns: str, server_ip: str, client_ns: str, port: int = 5555,
                  timeout: float = 3.0) -> bytes | None:
    """Connect from client_ns to a listener in server_ns; return the echoed bytes or None."""
    def listen() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((server_ip, port))
        sock.listen(1)
        return sock

    server = run_in_netns(server_ns, listen)
    client = run_in_netns(client_ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        client.settimeout(timeout)
        try:
            client.connect((server_ip, port))
        except OSError:
            return None
        server.settimeout(timeout)
        conn, _ = server.accept()
        with conn:
            client.sendall(b"hello across the lab")
            conn.sendall(conn.recv(64))
            return client.recv(64)
    finally:
        client.close()
        server.close()


class Capture:
    """An AF_PACKET socket opened inside a namespace, on one interface."""

    def __init__(self, netns: str, ifname: str):
        def open_socket() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((ifname, 0))
            return sock

        self.sock = run_in_netns(netns, open_socket)
        self.sock.setblocking(False)

    def frames(self, deadline: float):
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                yield self.sock.recv(65535)

    def close(self) -> None:
        self.sock.close()


def parse_vxlan(frame: bytes) -> dict[str, Any] | None:
    """Outer IPv4/UDP and VXLAN header fields of a VXLAN frame, else None."""
    if len(frame) < 50 or struct.unpack("!H", frame[12:14])[0] != 0x0800:
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[23] != 17:
        return None
    udp = 14 + ihl
    sport, dport = struct.unpack("!HH", frame[udp:udp + 4])
    vx = udp + 8
    flags, vni_bytes = frame[vx], frame[vx + 4:vx + 7]
    inner = vx + 8
    inner_ip = inner + 14
    return {
        "src": socket.inet_ntoa(frame[26:30]), "dst": socket.inet_ntoa(frame[30:34]),
        "sport": sport, "dport": dport, "vni_flag": bool(flags & 0x08),
        "vni": int.from_bytes(vni_bytes, "big"),
        "inner_src": socket.inet_ntoa(frame[inner_ip + 12:inner_ip + 16]),
        "inner_dst": socket.inet_ntoa(frame[inner_ip + 16:inner_ip + 20]),
        "inner_proto": frame[inner_ip + 9],
    }


def lab_namespaces(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix))
    except FileNotFoundError:
        return []


def wait_for(predicate, timeout: float, interval: float = 0.02, what: str = "condition"):
    """Probe until ``predicate()`` is truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)  # a probe interval, not a readiness guess


def settled_fds(procs: list[Any], timeout: float = 30, quiet: float = 1.0) -> list[int]:
    """The fd counts of ``procs`` (psutil processes) once they have not changed for
    ``quiet`` seconds: a baseline taken while a connection that just ended (a client
    killed -9) is still being torn down would be off. Fails at ``timeout``."""
    last: list[int] = []
    since = time.monotonic()

    def steady() -> bool:
        nonlocal last, since
        now = [p.num_fds() for p in procs]
        if now != last:
            last, since = now, time.monotonic()
        return time.monotonic() - since >= quiet

    wait_for(steady, timeout, interval=0.1, what="the fd counts to settle")
    return last


def process_gone(pid: int, timeout: float = 10) -> bool:
    """Whether process ``pid`` is gone within ``timeout``. A zombie counts as gone
    unless it is this process's own to reap (then the code under test forgot to wait
    for it); orphans are init's to reap."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE and proc.ppid() != os.getpid():
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)  # a probe interval
    return False


def containers_gone(lab: str, uids: list[str], timeout: float = 60) -> None:
    """Wait until crun keeps no container of the pods ``uids`` in ``lab``."""
    from netlab.node.runtime import oci_runtime

    wait_for(lambda: not any(cid.startswith(tuple(uids)) for cid in oci_runtime.list_ids(lab)),
             timeout, interval=0.1, what=f"the containers of pods {uids} to be gone")


@contextlib.contextmanager
def busybox_images() -> Iterator[Any]:
    """The host's image store with busybox and alpine in it for the block; the ones the
    host did not have before are removed at its end (let their containers go first)."""
    from netlab.images import busybox
    from netlab.images.store import ImageNotFoundError, ImageStore

    store = ImageStore()
    had = {name: store.lookup(name) for name in (*busybox.BUSYBOX_NAMES, *busybox.ALPINE_NAMES)}
    try:
        busybox.build(store)
        yield store
    finally:
        for name, before in had.items():
            if before is None:  # ours: the host had no such image before
                with contextlib.suppress(ImageNotFoundError):
                    store.remove(name)


def apply_ready(kubeconfig: Path, manifest: str, *pods: str, timeout: int = 120) -> None:
    """``kubectl apply`` the manifest, then wait until each of ``pods`` is Ready."""
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
    assert out.returncode == 0, out.stderr
    ready = kubectl(kubeconfig, "wait", "--for=condition=Ready", *(f"pod/{p}" for p in pods),
                    f"--timeout={timeout}s", timeout=timeout + 30)
    assert ready.returncode == 0, ready.stderr
