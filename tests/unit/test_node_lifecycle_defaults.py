"""The node lifecycle timings a lab runs with: the topology's, or the lab's defaults,
10 s of silence before NotReady in a small lab and upstream's 40 s in a big one."""

from __future__ import annotations

from pathlib import Path

from netlab.lab import components
from netlab.topology import load_topology, plan_lab


def _plan(tmp_path: Path, workers: int, cluster: str = ""):  # type: ignore[no-untyped-def]
    nodes = "".join(f"  - {{name: w{i}}}\n" for i in range(1, workers + 1))
    path = tmp_path / "lab.yaml"
    path.write_text(f"name: life\nnetwork: {{subnet: 192.168.0.0/23}}\n{cluster}"
                    "nodes:\n  - {name: cp, role: control-plane}\n" + nodes)
    return plan_lab(load_topology(path))


def _grace(plan) -> str:  # type: ignore[no-untyped-def]
    argv = components.node_lifecycle_argv(plan)
    return argv[argv.index("--node-monitor-grace-period") + 1]


def test_a_small_lab_notices_a_silent_node_in_10_seconds(tmp_path: Path) -> None:
    assert _grace(_plan(tmp_path, workers=19)) == "10s"  # 20 cluster nodes


def test_a_big_lab_gets_upstreams_40_seconds(tmp_path: Path) -> None:
    assert _grace(_plan(tmp_path, workers=20)) == "40s"  # 21 cluster nodes


def test_the_topology_decides_when_it_says(tmp_path: Path) -> None:
    assert _grace(_plan(tmp_path, workers=30,
                        cluster="cluster: {nodeMonitorGracePeriod: 15s}\n")) == "15s"
    assert _grace(_plan(tmp_path, workers=2,
                        cluster="cluster: {nodeMonitorGracePeriod: 1m}\n")) == "60s"


def _heartbeat(plan) -> str:  # type: ignore[no-untyped-def]
    argv = next(c for c in components.kubelets(plan) if c.name == "kubelet-w1").argv
    return argv[argv.index("--heartbeat-interval") + 1]


def test_kubelets_renew_their_lease_four_times_per_grace_period_within_5_to_10_s(
        tmp_path: Path) -> None:
    assert _heartbeat(_plan(tmp_path, workers=2)) == "5"     # 10 s grace
    assert _heartbeat(_plan(tmp_path, workers=20)) == "10"   # 40 s grace, as upstream
    assert _heartbeat(_plan(tmp_path, workers=2,
                            cluster="cluster: {nodeMonitorGracePeriod: 32s}\n")) == "8"
    assert _heartbeat(_plan(tmp_path, workers=2,
                            cluster="cluster: {nodeMonitorGracePeriod: 5m}\n")) == "10"
