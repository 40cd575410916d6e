"""A lab whose store is an etcd of the user's own, outside the lab
(``cluster.store: {etcd: {endpoints: [...], caFile, certFile, keyFile}}``, kubeadm's
``etcd.external``), seen through the user's tools.

The etcd is a ``LocalEtcd`` on 127.0.0.1 in the host's namespace, with TLS and client
certificates from a CA of the test's own: the API server, inside the control-plane
node's namespace, dials it from the host's. One lab: kubectl writes, ``netlab
etcdctl`` and a plain etcdctl read the same key, ``netlab status`` probes the etcd,
and ``down`` leaves the user's etcd and its data alone. An unreachable etcd fails
``up`` within its bound, named, with nothing created."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labkit import (
    KUBECTL,
    NEEDS_ETCD,
    kubectl,
    lab_namespaces,
    netlab_cli,
    topology,
    unique_lab,
    write_kubeconfig,
    write_topology,
)

from netlab.lab import lifecycle
from netlab.lab.pki import create_pki, etcd_pki_paths
from netlab.lab.state import lab_dir, load_state
from netlab.master.store.etcd_server import EtcdTLS, LocalEtcd

pytestmark = [*NEEDS_ETCD,
              pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")]


@dataclass
class ExternalLab:
    name: str
    kubeconfig: Path
    etcd: LocalEtcd
    client: EtcdTLS  # the certificate the lab's API server presents


def external_store(endpoint: str, client: EtcdTLS) -> dict:
    return {"etcd": {"endpoints": [endpoint], "caFile": str(client.ca),
                     "certFile": str(client.cert), "keyFile": str(client.key)}}


@pytest.fixture(scope="module")
def users_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalEtcd, EtcdTLS]]:
    pki_dir = tmp_path_factory.mktemp("users-pki")
    create_pki(pki_dir, "users-etcd", ["127.0.0.1"], etcd_addresses=[])
    pki = etcd_pki_paths(pki_dir)
    server = LocalEtcd(tmp_path_factory.mktemp("users-etcd"),
                       tls=EtcdTLS(pki.ca_cert, pki.member_cert, pki.member_key))
    try:
        server.start()
        yield server, EtcdTLS(pki.ca_cert, pki.client_cert, pki.client_key)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def lab(users_etcd: tuple[LocalEtcd, EtcdTLS],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalLab]:
    server, client = users_etcd
    directory = tmp_path_factory.mktemp("extlab")
    data = topology(unique_lab(), workers=1, external=False)
    data["cluster"]["store"] = external_store(server.endpoint, client)
    path = write_topology(directory, data)
    try:
        lifecycle.up(path, ready_timeout=120)
        yield ExternalLab(data["name"], write_kubeconfig(data["name"], directory), server, client)
    finally:
        lifecycle.down(data["name"])


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def users_etcdctl(lab: ExternalLab, *args: str) -> str:
    """etcdctl as the etcd's owner runs it on the host, outside netlab."""
    env = {**os.environ, "ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": lab.etcd.endpoint,
           "ETCDCTL_CACERT": str(lab.client.ca), "ETCDCTL_CERT": str(lab.client.cert),
           "ETCDCTL_KEY": str(lab.client.key)}
    return ok(subprocess.run(["etcdctl", *args], capture_output=True, text=True, env=env,
                             timeout=30, check=False))


def test_objects_land_in_the_users_etcd(lab: ExternalLab) -> None:
    ok(kubectl(lab.kubeconfig, "create", "configmap", "settings", "--from-literal=mode=fast"))
    key = "/registry/configmaps/default/settings"
    obj = json.loads(ok(netlab_cli("etcdctl", "--lab", lab.name, "--", "get", key,
                                   "--print-value-only")))
    assert (obj["kind"], obj["data"]) == ("ConfigMap", {"mode": "fast"})
    # The same key, read by its owner with nothing of netlab's.
    assert json.loads(users_etcdctl(lab, "get", key, "--print-value-only")) == obj
    # The lab's nodes registered through it too.
    nodes = users_etcdctl(lab, "get", "/registry/nodes/", "--prefix", "--keys-only").split()
    assert sorted(nodes) == ["/registry/nodes/control-plane", "/registry/nodes/worker1"]


def test_status_probes_the_users_etcd(lab: ExternalLab) -> None:
    info = json.loads(ok(netlab_cli("status", lab.name, "-o", "json")))
    store = info["store"]
    assert store["backend"] == "etcd" and store["external"] is True
    [member] = store["members"]
    assert member["endpoint"] == lab.etcd.endpoint
    assert member["healthy"] and member["leader"], member
    assert (f"store: etcd outside the lab, 1 endpoint: {lab.etcd.endpoint} (healthy, leader"
            in ok(netlab_cli("status", lab.name)))


def test_down_leaves_the_users_etcd_and_its_data(lab: ExternalLab) -> None:
    ok(kubectl(lab.kubeconfig, "create", "configmap", "kept"))
    lifecycle.down(lab.name)
    assert load_state(lab.name) is None and not lab_namespaces(lab.name)
    assert lab.etcd.proc is not None and lab.etcd.proc.poll() is None
    assert users_etcdctl(lab, "get", "/registry/configmaps/default/kept", "--keys-only").split() \
        == ["/registry/configmaps/default/kept"]


def test_an_unreachable_etcd_fails_up_in_bounded_time_and_creates_nothing(
        users_etcd: tuple[LocalEtcd, EtcdTLS], tmp_path: Path) -> None:
    _, client = users_etcd
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"https://127.0.0.1:{probe.getsockname()[1]}"
    data = topology(unique_lab(), workers=1, external=False)
    data["cluster"]["store"] = external_store(endpoint, client)
    path = write_topology(tmp_path, data)
    started = time.monotonic()
    result = netlab_cli("up", str(path), timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert f"the etcd at {endpoint} (cluster.store.etcd.endpoints) did not answer" \
        in result.stderr, result.stderr
    assert "refused" in result.stderr.lower(), result.stderr
    assert elapsed < 60, f"up took {elapsed:.0f}s to give up"  # its bound is 10 s
    assert load_state(data["name"]) is None and not lab_dir(data["name"]).exists()
    assert not lab_namespaces(data["name"])
