"""``netlab up`` as an ordered list of named steps, as kind's create actions are: the
steps a topology needs, in order, and the names a failure reports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netlab.lab.lifecycle import up_steps
from netlab.topology import parse_topology

pytestmark = pytest.mark.unit

NODES = "nodes:\n  - {name: cp, role: control-plane}\n  - {name: w1}\n"


def _names(text: str, control_plane: bool = True) -> list[str]:
    return [s.name for s in up_steps(parse_topology(text, "t.yaml", default_name="t"),
                                     control_plane)]


def test_a_cluster_starts_its_control_plane_then_waits_for_api_and_nodes():
    assert _names(NODES) == ["building the network", "starting the control plane",
                             "waiting for the API server", "waiting for the nodes to be Ready",
                             "recording the lab"]


def test_etcd_and_workloads_add_their_steps_in_place():
    text = ("cluster: {store: etcd}\n" + NODES +
            "workloads:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: x}}\n")
    assert _names(text) == ["building the network", "starting the control plane",
                            "waiting for etcd member cp", "waiting for the API server",
                            "waiting for the nodes to be Ready", "applying the workloads",
                            "recording the lab"]


def test_three_etcd_members_are_waited_for_in_one_step():
    text = "cluster: {store: {etcd: {members: 3}}}\n" + NODES + "  - {name: w2}\n"
    assert "waiting for etcd members cp, w1, w2" in _names(text)


def test_network_only_builds_and_records():
    assert _names(NODES, control_plane=False) == ["building the network", "recording the lab"]


def test_the_lab_commands_do_not_import_the_api_server() -> None:
    """``netlab status``, ``down``, ``labs`` import the lab's lifecycle (and through
    ``components`` its PKI paths); the API server's package (aiohttp's web server, the
    registry: a few hundred ms) is for the API server process, not for them."""
    code = ("import sys, netlab.lab.lifecycle, netlab.lab.components, netlab.lab.pki; "
            "print(sorted(m for m in sys.modules if m.startswith('netlab.master.apiserver')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_a_lab_too_big_for_the_memory_is_refused_before_anything_is_built(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from netlab.lab import lifecycle
    from netlab.lab.state import lab_dir, load_state

    workers = "".join(f"  - {{name: w{i}}}\n" for i in range(1, 250))
    path = tmp_path / "rack.yaml"
    path.write_text("name: rack\nnetwork: {subnet: 192.168.0.0/23}\n"
                    "nodes:\n  - {name: cp, role: control-plane}\n" + workers)
    monkeypatch.setattr(lifecycle.psutil, "virtual_memory",
                        lambda: types.SimpleNamespace(available=8 * 2**30))
    built: list[str] = []
    monkeypatch.setattr(lifecycle.network, "build_network", lambda *a: built.append("net"))
    with pytest.raises(lifecycle.LabError) as info:
        lifecycle.up(path)
    message = str(info.value)
    assert "lab rack has 250 cluster nodes and needs about" in message
    assert "this machine has 8.0 GiB available" in message
    per_node, control = lifecycle.NODE_MEMORY_MIB, lifecycle.CONTROL_PLANE_MEMORY_MIB
    assert f"use at most {(8 * 1024 - control) // per_node} cluster nodes" in message
    assert "Nothing was created" in message
    assert built == [] and load_state("rack") is None and not lab_dir("rack").exists()
