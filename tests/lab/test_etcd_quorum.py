"""A lab whose store is a 3-member etcd (``store: {etcd: {members: 3}}``): the
members on the control-plane node and the first two workers, and what a user sees
when members fail under a write load. One lab for the whole file; the last test
takes it down and checks that the members and their data went with it.

The fault sequence runs while a writer creates ConfigMaps through the API (the
official Python client) and records which creates were acknowledged and which
failed, with their status code:

- ``netlab fault kill etcd control-plane`` (kill -9 of the member the API server
  talks to first): the supervisor restarts it, and writes continue;
- ``netlab fault link-down worker1``: 2 of 3 left, writes continue;
- ``netlab fault link-down worker2``: 1 of 3 left, writes fail with a 500 Status
  naming etcd, each within a bounded time, and no daemon restarts;
- both links up again: writes succeed again with no help;

and afterwards every acknowledged ConfigMap is there, and ``netlab etcdctl`` shows
one as a readable object.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from labkit import (
    NEEDS_ETCD,
    netlab_cli,
    topology,
    unique_lab,
    wait_for,
    write_kubeconfig,
    write_topology,
)

from netlab.lab import lifecycle
from netlab.lab.state import components_path, data_dir, read_json

pytestmark = NEEDS_ETCD

MEMBERS = ("control-plane", "worker1", "worker2")
# What one create may take while etcd has no quorum: the store's request timeout
# (30 s per store call) and etcd's own, with room; the client's timeout is longer still, so a
# create that hangs past it is a failure of the bound, not a client give-up.
WRITE_BOUND = 70.0


@dataclass
class QuorumLab:
    name: str
    kubeconfig: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuorumLab]:
    directory = tmp_path_factory.mktemp("etcd3lab")
    data = topology(unique_lab(), workers=2, external=False)
    data["cluster"]["store"] = {"etcd": {"members": 3}}
    path = write_topology(directory, data)
    try:
        lifecycle.up(path, ready_timeout=120)
        yield QuorumLab(data["name"], write_kubeconfig(data["name"], directory))
    finally:
        for node in MEMBERS[1:]:  # a failed test must not leave a link down for down
            netlab_cli("fault", "link-up", "--lab", data["name"], node)
        lifecycle.down(data["name"])


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return result.stdout


def record(lab: QuorumLab, component: str) -> dict:
    return (read_json(components_path(lab.name)) or {}).get(component) or {}


def test_three_members_are_healthy_and_one_leads(lab: QuorumLab) -> None:
    info = json.loads(ok(netlab_cli("status", lab.name, "-o", "json")))
    members = info["store"]["members"]
    assert [m["name"] for m in members] == list(MEMBERS)
    assert all(m["healthy"] for m in members), members
    assert sum(bool(m["leader"]) for m in members) == 1
    assert "store: etcd, 3 members: member control-plane https://" in ok(
        netlab_cli("status", lab.name))
    # etcdctl is given every endpoint; the cluster lists the three nodes as members
    listing = json.loads(ok(netlab_cli("etcdctl", "--lab", lab.name, "--", "member", "list",
                                       "-w", "json")))
    assert sorted(m["name"] for m in listing["members"]) == sorted(MEMBERS)
    statuses = json.loads(ok(netlab_cli("etcdctl", "--lab", lab.name, "--", "endpoint",
                                        "status", "-w", "json")))
    assert len(statuses) == 3


@dataclass
class Writer:
    """Creates ConfigMaps one after another until stopped, recording each outcome."""

    kubeconfig: Path
    acked: list[str] = field(default_factory=list)
    failed: list[tuple[str, object, float, str]] = field(default_factory=list)  # name, code, s
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        from kubernetes import client as kclient
        from kubernetes import config

        api = kclient.CoreV1Api(config.new_client_from_config(str(self.kubeconfig)))
        i = 0
        while not self.stop.is_set():
            name = f"load-{i}"
            i += 1
            began = time.monotonic()
            try:
                api.create_namespaced_config_map(
                    "default", {"metadata": {"name": name}, "data": {"i": str(i)}},
                    _request_timeout=WRITE_BOUND + 30)
                self.acked.append(name)
            except kclient.ApiException as err:
                self.failed.append((name, err.status, time.monotonic() - began,
                                    str(err.body)))
            except Exception as err:  # a client timeout or a dropped connection
                self.failed.append((name, type(err).__name__, time.monotonic() - began,
                                    str(err)[:300]))
            self.stop.wait(0.02)  # pace the load: ~tens of creates per second at most


def fault(lab: QuorumLab, *args: str) -> str:
    return ok(netlab_cli("fault", *args[:1], "--lab", lab.name, *args[1:]))


def test_writes_survive_a_killed_member_and_a_lost_quorum(lab: QuorumLab) -> None:
    pytest.importorskip("kubernetes")
    apiserver = record(lab, "apiserver")
    writer = Writer(lab.kubeconfig)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        def acked_more(n: int):  # type: ignore[no-untyped-def]
            target = len(writer.acked) + n
            return lambda: len(writer.acked) >= target

        wait_for(acked_more(20), 60, interval=0.1, what="20 creates under load")
        # kill -9 of the first member, the one the API server talks to first
        old = record(lab, "etcd-control-plane").get("pid")
        assert f"sent SIGKILL to pid {old}" in fault(lab, "kill", "etcd", "control-plane")
        wait_for(lambda: record(lab, "etcd-control-plane").get("pid") not in (None, old), 30,
                 interval=0.1, what="the supervisor to restart the killed member")
        wait_for(acked_more(20), 90, interval=0.1, what="creates after the member's kill")
        # 2 of 3: the cluster keeps its quorum
        assert "link down" in fault(lab, "link-down", "worker1")
        wait_for(acked_more(20), 90, interval=0.1, what="creates with 2 of 3 members")
        # 1 of 3: no quorum, writes fail with a 5xx Status within a bounded time
        cut = len(writer.failed)
        assert "link down" in fault(lab, "link-down", "worker2")
        wait_for(lambda: len(writer.failed) >= cut + 2, 3 * WRITE_BOUND, interval=0.2,
                 what="creates to fail without a quorum")
        lost_quorum = writer.failed[cut:]
        for name, code, took, body in lost_quorum:
            assert code == 500, (name, code, body)  # a Status, not a hang or a reset
            status = json.loads(body)
            # kube-apiserver's ErrorToAPIStatus: an etcd error is no Status, so
            # reason Unknown (omitted) and the error's words ("Error from server: ...")
            assert (status["kind"], status["code"], status.get("reason")) == (
                "Status", 500, None), status
            assert "etcd" in status["message"]
            assert took < WRITE_BOUND, (name, took)
        # the quorum returns: writes succeed again, with no help
        for node in ("worker1", "worker2"):
            assert "link up" in fault(lab, "link-up", node)
        wait_for(acked_more(20), 120, interval=0.2, what="creates after the quorum returned")
    finally:
        writer.stop.set()
        thread.join(WRITE_BOUND + 40)
    assert not thread.is_alive()
    # no daemon crashed: the API server is the same process, not restarted
    now = record(lab, "apiserver")
    assert (now.get("pid"), now.get("restarts", 0)) == (apiserver.get("pid"),
                                                        apiserver.get("restarts", 0))
    # nothing acknowledged is lost
    from kubernetes import client as kclient
    from kubernetes import config

    api = kclient.CoreV1Api(config.new_client_from_config(str(lab.kubeconfig)))
    present = {cm.metadata.name for cm in api.list_namespaced_config_map("default").items}
    missing = sorted(set(writer.acked) - present)
    assert not missing, f"{len(missing)} acknowledged creates lost: {missing[:10]}"
    print(f"\n{len(writer.acked)} creates acknowledged, {len(writer.failed)} failed: "
          + ", ".join(f"{code} after {took:.1f}s" for _, code, took, _ in writer.failed)
          + f" ({len(lost_quorum)} while 1 of 3 members was reachable)")
    name = writer.acked[-1]
    obj = json.loads(ok(netlab_cli("etcdctl", "--lab", lab.name, "--", "get",
                                   f"/registry/configmaps/default/{name}",
                                   "--print-value-only")))
    assert (obj["kind"], obj["metadata"]["name"]) == ("ConfigMap", name)


def test_down_removes_the_members_and_their_data(lab: QuorumLab) -> None:
    pids = [record(lab, f"etcd-{node}").get("pid") for node in MEMBERS]
    assert all(pids)
    assert all((data_dir(lab.name) / "etcd" / node / "member").is_dir() for node in MEMBERS)
    lifecycle.down(lab.name)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (data_dir(lab.name) / "etcd").exists()
