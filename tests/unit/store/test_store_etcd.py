"""etcd-only behaviour of EtcdStore, on a throwaway etcd: what a user sees with
etcdctl, TLS with the lab's certificates, a store reopened on an etcd that
already has history, and writes made behind the store's back."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab.lab.pki import create_pki, etcd_pki_paths
from netlab.master.store import CompactedError, EventType, StoreError, etcd_server, open_store
from netlab.master.store.etcd import REV_OFFSET, WATCH_IDLE, EtcdStore
from netlab.master.store.etcd_server import EtcdTLS, LocalEtcd, LocalEtcdCluster

pytestmark = pytest.mark.etcd
KEY = "/registry/deployments/default/web"
OBJ = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[LocalEtcd]:
    server = LocalEtcd(tmp_path / "etcd")
    try:
        yield server.start()
    finally:
        server.stop()


def etcdctl(etcd: LocalEtcd, *args: str, tls: EtcdTLS | None = None) -> str:
    if shutil.which("etcdctl") is None:
        pytest.skip("needs etcdctl (Debian package etcd-client)")
    env = {**os.environ, "ETCDCTL_API": "3"}
    argv = ["etcdctl", f"--endpoints={etcd.endpoint}"]
    if tls:
        argv += [f"--cacert={tls.ca}", f"--cert={tls.cert}", f"--key={tls.key}"]
    return subprocess.run([*argv, *args], env=env, check=True, capture_output=True,
                          text=True, timeout=30).stdout


def test_objects_are_json_under_registry_keys_and_revisions_map_one_to_one(
        etcd: LocalEtcd) -> None:
    with EtcdStore(etcd.endpoint) as store:
        kv = store.create(KEY, json.dumps(OBJ).encode())
    assert json.loads(etcdctl(etcd, "get", KEY, "--print-value-only")) == OBJ
    raw = json.loads(etcdctl(etcd, "get", KEY, "-w", "json"))["kvs"][0]
    assert raw["mod_revision"] == kv.mod_revision + REV_OFFSET


def test_reopened_store_continues_revisions_and_reads_history_from_etcd(
        etcd: LocalEtcd) -> None:
    with EtcdStore(etcd.endpoint) as store:
        for i in range(6):
            store.create(f"/registry/pods/default/p{i}", b"v%d" % i)
        store.update("/registry/pods/default/p0", b"v0b")   # 7
        store.compact(3)
    with open_store(f"etcd:{etcd.endpoint}") as store:
        assert (store.current_revision(), store.compact_revision()) == (7, 3)
        with pytest.raises(CompactedError):
            store.watch("/registry/pods/", 2)
        w = store.watch("/registry/pods/", 4)
        evs = [w.get(timeout=10) for _ in range(3)]
        assert [(e.revision, e.kv.key[-2:]) for e in evs] == [(5, "p4"), (6, "p5"), (7, "p0")]
        assert evs[2].prev_kv is not None and evs[2].prev_kv.value == b"v0"
        assert store.create("/registry/pods/default/p6", b"x").mod_revision == 8


def test_writes_behind_the_stores_back_reach_its_watchers(etcd: LocalEtcd) -> None:
    with EtcdStore(etcd.endpoint) as store:
        store.create(KEY, b"{}")
        w = store.watch("/registry/")
        etcdctl(etcd, "del", KEY)
        etcdctl(etcd, "put", "/registry/configmaps/default/x", "{}")
        # A read never runs ahead of the store's watch: a watch from it is never "future".
        listed = store.list("/registry/")
        assert listed.revision == 3 <= store.current_revision()
        ev = w.get(timeout=10)
        assert ev is not None and ev.type is EventType.DELETE and ev.revision == 2
        assert ev.kv.value == b"{}"
        assert store.get(KEY) is None and store.current_revision() == 3


def test_tls_with_the_lab_certificates(tmp_path: Path) -> None:
    create_pki(tmp_path, "t", ["127.0.0.1"], etcd_addresses=[])
    pki = etcd_pki_paths(tmp_path)
    member = EtcdTLS(pki.ca_cert, pki.member_cert, pki.member_key)
    server = LocalEtcd(tmp_path / "etcd", tls=member)
    try:
        server.start()
        with EtcdStore(server.endpoint, ca=str(pki.ca_cert), cert=str(pki.client_cert),
                       key=str(pki.client_key)) as store:
            store.create(KEY, b"{}")
        client = EtcdTLS(pki.ca_cert, pki.client_cert, pki.client_key)
        assert etcdctl(server, "get", KEY, "--print-value-only", tls=client).strip() == "{}"
        # Without a client certificate etcd refuses the connection.
        with pytest.raises(StoreError):
            EtcdStore(server.endpoint, ca=str(pki.ca_cert), connect_timeout=2)
    finally:
        server.stop()


def test_unreachable_etcd_is_reported_by_endpoint() -> None:
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:9"):
        EtcdStore("http://127.0.0.1:9", connect_timeout=0.3)


def test_history_older_than_the_recent_events_is_read_from_etcd(etcd: LocalEtcd) -> None:
    with EtcdStore(etcd.endpoint, cache_events=3, history_page=2) as store:
        for i in range(10):
            store.create(f"/registry/pods/default/p{i}" if i % 2 else f"/other/{i}", b"v")
        w = store.watch("/registry/pods/", 0)  # 1..7 only in etcd, 8..10 also cached
        assert [w.get(timeout=10).revision for _ in range(5)] == [2, 4, 6, 8, 10]
        w2 = store.watch("/registry/pods/", 1)
        assert [w2.get(timeout=10).revision for _ in range(2)] == [2, 4]  # one page
        store.compact(5)
        with pytest.raises(CompactedError):  # the rest of its history is gone from etcd
            w2.get(timeout=10)


def test_a_three_member_store_fails_over_and_refuses_writes_without_quorum(
        tmp_path: Path) -> None:
    """Given every member, the store follows the cluster: a stopped member costs
    nothing (reads, writes and the watch move to another member); with 1 of 3 left a
    write fails with EtcdUnavailable within the request timeout, and once a member
    returns, writes succeed again with no help. Every acknowledged write is there."""
    cluster = LocalEtcdCluster(tmp_path / "cluster")
    with cluster:
        store = EtcdStore(cluster.endpoints, request_timeout=8.0)
        try:
            acked = [store.create("/registry/configmaps/default/a0", b"0").key]
            watch = store.watch("/registry/configmaps/", store.current_revision())
            first = store.endpoint
            cluster.stop_member(cluster.endpoints.index(first))
            acked.append(store.create("/registry/configmaps/default/a1", b"1").key)
            assert store.endpoint != first
            ev = watch.get(timeout=20)
            assert ev is not None and ev.kv.key.endswith("/a1")  # the watch moved too
            second = store.endpoint
            cluster.stop_member(cluster.endpoints.index(second))
            with pytest.raises(StoreError, match="etcd"):
                store.create("/registry/configmaps/default/lost", b"x")
            cluster.members[cluster.endpoints.index(second)].launch()  # quorum again
            acked.append(store.create("/registry/configmaps/default/a2", b"2").key)
            listed = {kv.key for kv in store.list("/registry/configmaps/").items}
            assert set(acked) <= listed
            watch.close()
        finally:
            store.close()


def test_a_write_whose_connection_times_out_moves_on_to_the_next_member(
        etcd: LocalEtcd) -> None:
    """A member cut off from the lab network (``netlab fault link-down``) does not
    answer the SYN: the connection times out before anything is sent, so even a write
    goes on to the next member instead of failing as "may have been applied". The
    cut-off member here is a listener whose accept queue is full (Linux then drops
    SYNs)."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)
        dead = f"http://127.0.0.1:{hole.getsockname()[1]}"
        fillers = [socket.socket() for _ in range(2)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(hole.getsockname())
            with EtcdStore([dead, etcd.endpoint], request_timeout=15.0) as store:
                assert store.endpoint == etcd.endpoint  # the first read moved on
                store._current = 0  # as if the member had been cut off since
                kv = store.create(KEY, json.dumps(OBJ).encode())
                assert store.endpoint == etcd.endpoint
                assert store.get(KEY) is not None and kv.mod_revision > 0
        finally:
            for filler in fillers:
                filler.close()


def _interruptions(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "watch on" in r.getMessage()]


def _start_etcd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: str) -> LocalEtcd:
    monkeypatch.setattr(etcd_server, "PROGRESS_NOTIFY", interval)
    return LocalEtcd(tmp_path / "etcd").start()


def test_a_quiet_watch_on_an_etcd_without_progress_notifications_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """An etcd not started by netlab sends a progress notification every 10 minutes
    (etcd's default): a watch silent for WATCH_IDLE is then an idle cluster, not a dead
    connection, and is not torn down and moved every WATCH_IDLE seconds."""
    etcd = _start_etcd(tmp_path, monkeypatch, "10m")
    try:
        with EtcdStore(etcd.endpoint) as store:
            store.create(KEY, b"1")
            deadline = time.monotonic() + WATCH_IDLE + 2.5
            while time.monotonic() < deadline and not _interruptions(caplog):
                time.sleep(0.1)  # poll the log for a reconnect, up to the deadline
            assert _interruptions(caplog) == []
            store.update(KEY, b"2")  # the watch still feeds the store
    finally:
        etcd.stop()


def test_a_silent_member_that_sends_progress_notifications_is_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A member that sends progress notifications (netlab's, every second) and then
    falls silent (here stopped with SIGSTOP; in a lab, cut off by link-down) is taken
    for a dead connection after WATCH_IDLE: the watch reconnects."""
    etcd = _start_etcd(tmp_path, monkeypatch, "1s")
    try:
        with EtcdStore(etcd.endpoint, request_timeout=20.0) as store:
            store.create(KEY, b"1")
            deadline = time.monotonic() + 10
            while store._progress_notifications == 0:  # the member sends them
                assert time.monotonic() < deadline, "no progress notification in 10 s"
                time.sleep(0.1)
            assert etcd.proc is not None
            os.kill(etcd.proc.pid, signal.SIGSTOP)
            try:
                deadline = time.monotonic() + WATCH_IDLE + 5
                while time.monotonic() < deadline and not _interruptions(caplog):
                    time.sleep(0.1)
                assert _interruptions(caplog), "the silent watch was not left"
            finally:
                os.kill(etcd.proc.pid, signal.SIGCONT)
            store.update(KEY, b"2")
    finally:
        etcd.stop()


class WatchFreezingRelay:
    """A TCP relay in front of etcd that, once ``frozen`` is set, stops passing on what
    etcd sends over its watch connections (as a member cut off mid-stream: the
    connection stays open and says nothing), and relays every other request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.frozen = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = [self._server]
        self.endpoint = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            self._sockets += [client, upstream]
            watch = threading.Event()  # this connection carries a watch
            threading.Thread(target=self._relay, args=(client, upstream, watch, True),
                             daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, client, watch, False),
                             daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket, watch: threading.Event,
               request: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if request and b"POST /v3/watch" in data:
                    watch.set()
                if not (watch.is_set() and not request and self.frozen.is_set()):
                    dst.sendall(data)

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_a_silent_watch_is_left_while_a_write_waits_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A write's answer waits for the watch to deliver its revision. If the watch falls
    silent while etcd has committed that revision, the watch is dead even on an etcd
    that sends no progress notifications (or a stream that started under a steady
    write load, which carries events and none): it is left for the next member after
    WATCH_IDLE, and the write succeeds, instead of failing at the request timeout."""
    etcd = _start_etcd(tmp_path, monkeypatch, "10m")
    relay = WatchFreezingRelay(int(etcd.endpoint.rsplit(":", 1)[1]))
    try:
        with EtcdStore([relay.endpoint, etcd.endpoint], request_timeout=20.0) as store:
            store.create(KEY, b"1")  # delivered by the watch through the relay
            relay.frozen.set()
            kv = store.update(KEY, b"2")  # failed with EtcdUnavailable after 20 s before
            assert store.get(KEY) == kv
            assert any(f"watch on {relay.endpoint}" in m and "silent" in m
                       for m in _interruptions(caplog)), _interruptions(caplog)
    finally:
        relay.close()
        etcd.stop()
