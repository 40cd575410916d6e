"""A lab whose API server keeps its store in etcd (``cluster.store: etcd``), seen
through the user's tools: kubectl, ``netlab etcdctl``, ``netlab status`` and
``netlab fault kill etcd``. One lab per store size (1 member, then 3: the same
tests over ``store: {etcd: {members: 3}}`` with three control-plane nodes, a member
on each); each size's last test takes its lab down and checks that etcd and its
data went with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from labkit import (
    KUBECTL,
    NEEDS_ETCD,
    kubectl,
    netlab_cli,
    topology,
    unique_lab,
    wait_for,
    write_kubeconfig,
    write_topology,
)

from netlab.lab import lifecycle
from netlab.lab.state import components_path, data_dir, read_json
from netlab.topology import load_topology, plan_lab

pytestmark = [*NEEDS_ETCD,
              pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")]


@dataclass
class EtcdLab:
    name: str
    kubeconfig: Path
    etcd_ip: str  # the control-plane node's underlay address
    members: int


@pytest.fixture(scope="module", params=[1, 3], ids=["1-member", "3-members"])
def lab(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdLab]:
    members = request.param
    directory = tmp_path_factory.mktemp("etcdlab")
    data = topology(unique_lab(), workers=1, external=False)
    data["cluster"]["store"] = "etcd" if members == 1 else {"etcd": {"members": members}}
    # kubeadm's stacked etcd: a member on each control-plane node (test_etcd_quorum runs
    # the other layout, members on the first workers).
    data["nodes"][1:1] = [{"name": f"control-plane-{i}", "role": "control-plane"}
                          for i in range(2, members + 1)]
    path = write_topology(directory, data)
    try:
        lifecycle.up(path, ready_timeout=120)
        ip = str(plan_lab(load_topology(path)).node("control-plane").underlay.ip)
        yield EtcdLab(data["name"], write_kubeconfig(data["name"], directory), ip, members)
    finally:
        lifecycle.down(data["name"])


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return result.stdout


def etcd_pid(lab: EtcdLab) -> int | None:
    return (read_json(components_path(lab.name)) or {}).get("etcd-control-plane",
                                                              {}).get("pid")


def resource_version(lab: EtcdLab, *what: str) -> int:
    return int(ok(kubectl(lab.kubeconfig, "get", *what, "-o",
                          "jsonpath={.metadata.resourceVersion}")))


def test_deployment_runs_and_etcdctl_shows_it_as_json(lab: EtcdLab) -> None:
    ok(kubectl(lab.kubeconfig, "create", "deployment", "web", "--image=netlab/echo",
               "--replicas=2"))

    def running() -> bool:
        pods = json.loads(ok(kubectl(lab.kubeconfig, "get", "pods", "-l", "app=web",
                                     "-o", "json")))["items"]
        return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

    wait_for(running, 120, interval=0.5, what="the deployment's 2 pods to run")
    out = ok(netlab_cli("etcdctl", "--lab", lab.name, "--", "get",
                        "/registry/deployments/default/web", "--print-value-only"))
    obj = json.loads(out)
    assert (obj["kind"], obj["metadata"]["name"]) == ("Deployment", "web")
    raw = json.loads(ok(netlab_cli("etcdctl", "--lab", lab.name, "--", "get",
                                   "/registry/deployments/default/web", "-w", "json")))
    rv = resource_version(lab, "deployment", "web")
    assert raw["kvs"][0]["mod_revision"] == rv + 1  # one write, one etcd revision
    keys = ok(netlab_cli("etcdctl", "--lab", lab.name, "--", "get", "/registry/pods/default/",
                         "--prefix", "--keys-only")).split()
    assert len([k for k in keys if k.startswith("/registry/pods/default/web-")]) == 2


def test_status_shows_the_etcd_members(lab: EtcdLab) -> None:
    info = json.loads(ok(netlab_cli("status", lab.name, "-o", "json")))
    members = info["store"]["members"]
    assert info["store"]["backend"] == "etcd"
    assert [m["name"] for m in members] == [
        "control-plane", *(f"control-plane-{i}" for i in range(2, lab.members + 1))]
    assert len(members) == lab.members and all(m["healthy"] for m in members), members
    assert sum(bool(m["leader"]) for m in members) == 1
    plural = "member" if lab.members == 1 else "members"
    assert f"store: etcd, {lab.members} {plural}: member control-plane https://" in ok(
        netlab_cli("status", lab.name))


def test_every_control_plane_node_registers_tainted(lab: EtcdLab) -> None:
    nodes = json.loads(ok(kubectl(lab.kubeconfig, "get", "nodes", "-o", "json")))["items"]
    controls = sorted(n["metadata"]["name"] for n in nodes
                      if "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"])
    assert controls == ["control-plane", *(f"control-plane-{i}"
                                           for i in range(2, lab.members + 1))]
    for node in nodes:  # the deployment's pods went to the worker
        taints = {t["key"] for t in node["spec"].get("taints") or []}
        control = node["metadata"]["name"] in controls
        assert ("node-role.kubernetes.io/control-plane" in taints) == control, node["spec"]


def test_capture_sees_the_api_server_talking_to_etcd(lab: EtcdLab) -> None:
    out = ok(netlab_cli("capture", "--lab", lab.name, "control-plane", "--", "-c", "3",
                        "tcp", "port", "2379", timeout=60))
    assert f"{lab.etcd_ip}.2379" in out  # the member, on its node's underlay address


def test_killed_etcd_is_restarted_and_writes_continue(lab: EtcdLab) -> None:
    ok(kubectl(lab.kubeconfig, "create", "configmap", "before"))
    before = resource_version(lab, "configmap", "before")
    old = etcd_pid(lab)
    out = ok(netlab_cli("fault", "kill", "--lab", lab.name, "etcd", "control-plane"))
    assert f"sent SIGKILL to pid {old}" in out
    wait_for(lambda: etcd_pid(lab) not in (None, old), 30, what="the supervisor to restart etcd")

    def created() -> bool:  # the API server's requests fail until etcd is back
        return kubectl(lab.kubeconfig, "create", "configmap", "after").returncode == 0

    wait_for(created, 60, interval=0.2, what="a write after etcd's restart")
    after = resource_version(lab, "configmap", "after")
    assert after > before
    ok(kubectl(lab.kubeconfig, "scale", "deployment", "web", "--replicas=1"))
    assert resource_version(lab, "deployment", "web") > after
    # Watches resumed: the controllers still act on what is written.
    wait_for(lambda: len(json.loads(ok(kubectl(lab.kubeconfig, "get", "pods", "-l", "app=web",
                                               "-o", "json")))["items"]) == 1,
             60, interval=0.5, what="the scaled-down deployment to have 1 pod")


def test_down_removes_etcd_and_its_data(lab: EtcdLab) -> None:
    pid = etcd_pid(lab)
    assert pid and (data_dir(lab.name) / "etcd" / "control-plane" / "member").is_dir()
    lifecycle.down(lab.name)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (data_dir(lab.name) / "etcd").exists()
