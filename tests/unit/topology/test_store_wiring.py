"""What ``cluster.store`` turns into: the components the supervisor runs, ``up``'s
steps, and ``netlab up``'s refusal when etcd is not installed (before touching
anything)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.lab import components, control, lifecycle
from netlab.lab.state import data_dir, lab_dir, load_state
from netlab.topology import load_topology, plan_lab

TOPOLOGY = """\
name: {name}
cluster: {{store: {store}}}
nodes:
  - name: cp
    role: control-plane
  - name: w1
  - name: w2
"""


def plan(tmp_path: Path, store: str, name: str = "wire"):  # type: ignore[no-untyped-def]
    path = tmp_path / "lab.yaml"
    path.write_text(TOPOLOGY.format(name=name, store=store))
    return plan_lab(load_topology(path))


def by_name(store: str, tmp_path: Path) -> dict[str, components.Component]:
    return {c.name: c for c in components.components(plan(tmp_path, store), 3, 4)}


def test_sqlite_runs_no_etcd(tmp_path: Path) -> None:
    comps = by_name("sqlite", tmp_path)
    assert not [name for name in comps if name.startswith("etcd")]
    argv = comps["apiserver"].argv
    assert argv[argv.index("--store") + 1] == f"sqlite:{data_dir('wire') / 'store.db'}"


def test_etcd_member_on_the_control_plane_underlay_with_tls(tmp_path: Path) -> None:
    p = plan(tmp_path, "etcd")
    comps = {c.name: c for c in components.components(p, 3, 4)}
    cp = p.node("cp")
    assert [name for name in comps if name.startswith("etcd")] == ["etcd-cp"]
    etcd = comps["etcd-cp"]
    assert etcd.netns == cp.netns
    flags = dict(zip(etcd.argv[1::2], etcd.argv[2::2]))
    ip = cp.underlay.ip
    assert flags["--listen-client-urls"] == f"https://{ip}:2379"
    assert flags["--listen-peer-urls"] == f"https://{ip}:2380"
    assert flags["--initial-cluster"] == f"cp=https://{ip}:2380"
    assert flags["--data-dir"] == str(data_dir("wire") / "etcd" / "cp")
    assert {"--client-cert-auth", "--peer-client-cert-auth"} <= set(etcd.argv)
    assert flags["--trusted-ca-file"] == str(lab_dir("wire") / "ca.crt")
    api = comps["apiserver"].argv
    assert api[api.index("--store") + 1] == f"etcd:https://{ip}:2379"
    assert api[api.index("--etcd-certfile") + 1] == str(lab_dir("wire") / "etcd" / "client.crt")
    assert list(comps).index("etcd-cp") < list(comps).index("apiserver")


def test_three_members_on_the_control_plane_and_the_first_workers(tmp_path: Path) -> None:
    p = plan(tmp_path, "{etcd: {members: 3}}")
    comps = {c.name: c for c in components.components(p, 3, 4)}
    members = [name for name in comps if name.startswith("etcd")]
    assert members == ["etcd-cp", "etcd-w1", "etcd-w2"]
    ips = {n: p.node(n).underlay.ip for n in ("cp", "w1", "w2")}
    initial = ",".join(f"{n}=https://{ip}:2380" for n, ip in ips.items())
    for node, ip in ips.items():
        member = comps[f"etcd-{node}"]
        assert member.netns == p.node(node).netns  # in its node, on the underlay
        flags = dict(zip(member.argv[1::2], member.argv[2::2]))
        assert flags["--name"] == node
        assert flags["--listen-peer-urls"] == f"https://{ip}:2380"
        assert flags["--initial-cluster"] == initial
        assert flags["--data-dir"] == str(data_dir("wire") / "etcd" / node)
        assert {"--client-cert-auth", "--peer-client-cert-auth"} <= set(member.argv)
    api = comps["apiserver"].argv
    assert api[api.index("--store") + 1] == "etcd:" + ",".join(
        f"https://{ip}:2379" for ip in ips.values())


def test_up_refuses_without_the_etcd_binary_and_touches_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "etcd_binary", lambda: None)
    path = tmp_path / "lab.yaml"
    path.write_text(TOPOLOGY.format(name="noetcd", store="etcd"))
    with pytest.raises(lifecycle.LabError) as exc:
        lifecycle.up(path)
    assert "apt-get install etcd-server" in str(exc.value)
    assert "Nothing was created" in str(exc.value)
    assert load_state("noetcd") is None and not lab_dir("noetcd").exists()


def test_up_waits_for_each_member_in_turn_and_stops_at_the_one_that_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = plan(tmp_path, "{etcd: {members: 3}}")
    calls: list[tuple[str, str, str]] = []

    def wait_etcd(client: components.EtcdClient, member: str, endpoint: str, netns_name: str,
                  timeout: float, state: object, component: str = "etcd",
                  check: object = None) -> None:
        calls.append((member, component, netns_name))
        if member == "w1":
            raise control.ControlPlaneError(f"etcd member {member} ({endpoint}) did not start")

    monkeypatch.setattr(control, "wait_etcd", wait_etcd)
    ctx = lifecycle.UpContext(p.topology, p, None, lambda _: None, 10.0)  # type: ignore[arg-type]
    with pytest.raises(control.ControlPlaneError, match="etcd member w1 "):
        lifecycle._etcd(ctx)
    assert calls == [("cp", "etcd-cp", p.node("cp").netns), ("w1", "etcd-w1", p.node("w1").netns)]


def test_an_external_etcd_runs_no_member_and_is_dialled_from_the_host(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        (tmp_path / name).write_text("PEM")
    p = plan(tmp_path, "{etcd: {endpoints: [https://127.0.0.1:2379, https://127.0.0.2:2379], "
                       "caFile: ca.pem, certFile: client.pem, keyFile: client-key.pem}}")
    assert p.topology.etcd_member_nodes == ()
    client = components.etcd_client(p)
    assert client is not None and client.external
    comps = {c.name: c for c in components.components(p, 3, 4, host_netns_fd=7)}
    assert not [name for name in comps if name.startswith("etcd")]
    api = comps["apiserver"]
    assert api.netns == p.node("cp").netns  # it still serves on the lab's network
    flags = dict(zip(api.argv[1::2], api.argv[2::2]))
    assert flags["--store"] == "etcd:https://127.0.0.1:2379,https://127.0.0.2:2379"
    # The user's files, resolved against the topology's directory, not the lab's PKI.
    assert flags["--etcd-cafile"] == str(tmp_path / "ca.pem")
    assert flags["--etcd-certfile"] == str(tmp_path / "client.pem")
    assert flags["--etcd-keyfile"] == str(tmp_path / "client-key.pem")
    # The supervisor's host namespace goes to the API server, and only to it.
    assert flags["--etcd-netns-fd"] == "7" and 7 in api.pass_fds
    assert all(7 not in c.pass_fds for c in comps.values() if c is not api)
    steps = [s.name for s in lifecycle.up_steps(p.topology)]
    assert steps[0] == "checking the external etcd"
    assert not any(s.startswith("waiting for etcd member") for s in steps)
    with pytest.raises(ValueError, match="host's netns fd"):
        components.components(p, 3, 4)


def test_an_external_etcd_over_http_needs_no_files(tmp_path: Path) -> None:
    p = plan(tmp_path, '{etcd: {endpoints: ["http://127.0.0.1:2379"]}}')
    comps = {c.name: c for c in components.components(p, 3, 4, host_netns_fd=7)}
    api = comps["apiserver"].argv
    assert api[api.index("--store") + 1] == "etcd:http://127.0.0.1:2379"
    assert not {"--etcd-cafile", "--etcd-certfile", "--etcd-keyfile"} & set(api)


def test_three_control_plane_nodes_each_run_a_member(tmp_path: Path) -> None:
    path = tmp_path / "ha.yaml"
    path.write_text("name: ha\ncluster: {store: {etcd: {members: 3}}}\nnodes:\n"
                    "  - {name: w1}\n  - {name: cp1, role: control-plane}\n"
                    "  - {name: cp2, role: control-plane}\n  - {name: cp3, role: control-plane}\n")
    p = plan_lab(load_topology(path))
    assert [n.name for n in p.topology.etcd_member_nodes] == ["cp1", "cp2", "cp3"]
    comps = {c.name: c for c in components.components(p, 3, 4)}
    assert [name for name in comps if name.startswith("etcd")] == ["etcd-cp1", "etcd-cp2",
                                                                     "etcd-cp3"]
    # One API server, scheduler and controller manager, on the first control-plane node.
    assert comps["apiserver"].netns == p.node("cp1").netns
    assert comps["controller-manager"].netns == p.node("cp1").netns
    kubelets = {name: c.argv for name, c in comps.items() if name.startswith("kubelet-")}
    assert set(kubelets) == {"kubelet-w1", "kubelet-cp1", "kubelet-cp2", "kubelet-cp3"}
    for node in ("cp2", "cp3"):  # registered as control-plane nodes, so tainted
        argv = kubelets[f"kubelet-{node}"]
        assert argv[argv.index("--role") + 1] == "control-plane"
