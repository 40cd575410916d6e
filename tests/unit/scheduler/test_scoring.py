"""Scores and spreading, over API objects: least-allocated requests blended with the
usage the kubelets measure, ties broken by owner."""

from __future__ import annotations

import time

from schedkit import node, pod

from netlab.master.scheduler.cache import SchedulerCache
from netlab.master.scheduler.filters import find_feasible
from netlab.master.scheduler.nodeinfo import node_info, pod_info, read_usage
from netlab.master.scheduler.scoring import (
    requests_score,
    score_node,
    select_node,
    usage_score,
)

NOW = time.time()


def test_least_allocated_matches_kube_scheduler_integers():
    n = node_info(node("w", cpu="4", memory="8Gi"), [pod_info(pod("a", "1", "2Gi", node_name="w"))])
    p = pod_info(pod("p", "1", "2Gi"))
    # cpu: (4000-2000)*100/4000 = 50; memory: (8-4)/8 = 50
    assert requests_score(p, n) == 50
    # A pod that requests nothing is scored as 100m / 200Mi (the non-zero defaults).
    empty = pod_info(pod("e"))
    assert requests_score(empty, node_info(node("x", cpu="1", memory="1000Mi"))) == (
        (1000 - 100) * 100 // 1000 + (1000 - 200) * 100 // 1000) // 2


def test_usage_lowers_the_score_of_a_node_busy_in_reality():
    p = pod_info(pod("p", "100m", "100Mi"))
    idle = node_info(node("idle", usage=("100m", "200Mi"), usage_at=NOW))
    busy = node_info(node("busy", usage=("1800m", "3Gi"), usage_at=NOW))
    assert requests_score(p, idle) == requests_score(p, busy)  # same requests...
    assert score_node(p, busy, NOW) < score_node(p, idle, NOW)  # ...not the same load
    choice = select_node(p, [busy, idle], NOW)
    assert choice.node.name == "idle"


def test_the_formula():
    p = pod_info(pod("p", "500m", "1Gi"))
    n = node_info(node("w", cpu="2", memory="4Gi", usage=("1", "1Gi"), usage_at=NOW))
    by_requests = ((2000 - 500) * 100 // 2000 + (4 - 1) * 100 // 4) // 2  # (75 + 75) // 2
    by_usage = 100 * (1 - (0.5 + 0.25) / 2)  # 62.5
    assert score_node(p, n, NOW, usage_weight=0.5) == round(0.5 * by_requests + 0.5 * by_usage)
    assert score_node(p, n, NOW, usage_weight=0.0) == by_requests


def test_stale_or_missing_usage_falls_back_to_requests():
    p = pod_info(pod("p"))
    stale = node_info(node("w", usage=("2", "4Gi"), usage_at=NOW - 600))
    assert usage_score(stale, NOW) is None
    assert score_node(p, stale, NOW) == requests_score(p, stale)
    assert read_usage(node("x")) is None
    garbled = node("y")
    garbled["metadata"]["annotations"] = {"metrics.netlab.io/usage": "{not json"}
    assert read_usage(garbled) is None


def test_ties_spread_replicas_of_one_owner():
    a = node_info(node("a"), [pod_info(pod("x", node_name="a", owner="rs1"))])
    b = node_info(node("b"), [pod_info(pod("y", node_name="b", owner="other"))])
    p = pod_info(pod("p", owner="rs1"))
    assert score_node(p, a, NOW) == score_node(p, b, NOW)
    choice = select_node(p, [a, b], NOW)
    assert choice.node.name == "b" and choice.candidates == 2


def test_a_higher_score_beats_spreading():
    a = node_info(node("a", cpu="8", memory="16Gi"),
                  [pod_info(pod("x", node_name="a", owner="rs1"))])
    b = node_info(node("b", cpu="1", memory="1Gi"))
    p = pod_info(pod("p", owner="rs1"))
    assert select_node(p, [a, b], NOW).node.name == "a"


def test_many_replicas_spread_evenly_over_equal_workers_and_never_on_the_control_plane():
    cache = SchedulerCache()
    cache.update_node(node("control-plane", taints=[
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]))
    for name in ("worker1", "worker2", "worker3"):
        cache.update_node(node(name))
    placed: dict[str, int] = {}
    for i in range(9):
        p = pod_info(pod(f"web-{i}", "100m", "64Mi", owner="web"))
        feasible, _ = find_feasible(p, cache.node_list())
        choice = select_node(p, feasible, NOW)
        cache.assume(p, choice.node.name)
        placed[choice.node.name] = placed.get(choice.node.name, 0) + 1
    assert placed == {"worker1": 3, "worker2": 3, "worker3": 3}


def test_no_feasible_node_no_choice():
    assert select_node(pod_info(pod("p")), [], NOW) is None
