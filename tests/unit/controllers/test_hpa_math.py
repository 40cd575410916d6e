"""HPA math: Kubernetes' replica formula, tolerance, unknown pods, stabilization, policies."""

from __future__ import annotations

import pytest

from netlab.master.controllers import hpacalc
from netlab.master.controllers.hpacalc import MetricError, PodView, Sample

NOW = 1_000.0


def pods(n, request=100, **kw):
    return [PodView(f"p{i}", request=request, **kw) for i in range(n)]


def samples(*values, at=NOW - 1, window=10.0):
    return {f"p{i}": Sample(v, at, window) for i, v in enumerate(values)}


def calc(current, target, views, metrics, **kw):
    kw.setdefault("cpu_initialization_period", 0.0)
    return hpacalc.utilization_replicas(current, target, views, metrics, NOW, **kw)


def test_the_formula_rounds_up():
    # 2 pods at 90% of their request, target 50%: ceil(2 * 90/50) = 4
    assert calc(2, 50, pods(2), samples(90, 90)) == (4, 90, 90)
    # at 300%: ceil(1 * 6) = 6
    assert calc(1, 50, pods(1), samples(300))[0] == 6
    # idle: ceil(3 * 0) = 0 (minReplicas applies later)
    assert calc(3, 50, pods(3), samples(0, 0, 0))[0] == 0


def test_within_tolerance_nothing_changes():
    assert calc(4, 50, pods(4), samples(54, 54, 54, 54))[0] == 4  # ratio 1.08
    assert calc(4, 50, pods(4), samples(56, 56, 56, 56))[0] == 5  # ratio 1.12
    assert calc(4, 50, pods(4), samples(46, 46, 46, 46), tolerance=0.0)[0] == 4


def test_missing_samples_damp_a_scale_down_and_a_scale_up():
    # Scaling down (others at 10%): a silent pod is assumed at 100% of its request.
    assert calc(3, 50, pods(3), samples(10, 10)) == (3, 10, 10)
    # Scaling up (others at 200%): a silent pod is assumed idle.
    # (200 + 200 + 0) / 300 = 133%: ceil(3 * 133 / 50) = 8 (all three at 200%: 12).
    assert calc(3, 50, pods(3), samples(200, 200))[0] == 8
    # (100 + 0) / 200 = 50%: exactly on target, so no change although one pod is at 2x.
    assert calc(2, 50, pods(2), samples(100))[0] == 2


def test_unready_pods_count_as_idle_when_scaling_up():
    views = [*pods(2), PodView("p2", request=100, phase="Pending")]
    replicas, utilization, _ = calc(3, 50, views, samples(100, 100))
    assert utilization == 100
    assert replicas == 4  # (100 + 100 + 0) / 300 = 66%: ceil(3 * 66/50) = 4


def test_deleted_and_failed_pods_are_ignored():
    views = [PodView("p0", request=100), PodView("p1", request=100, deleting=True),
             PodView("p2", request=100, phase="Failed")]
    assert calc(3, 50, views, samples(100, 900, 900))[0] == 2


def test_errors_say_why():
    with pytest.raises(MetricError, match="no pods"):
        calc(1, 50, [], {})
    with pytest.raises(MetricError, match="missing request"):
        calc(1, 50, [PodView("p0", request=None)], samples(10))
    with pytest.raises(MetricError, match="did not receive metrics"):
        calc(1, 50, pods(1), {})


def test_starting_pods_count_only_after_a_full_window_of_readiness():
    start = PodView("p0", request=100, ready=True, ready_changed=NOW - 5, started=NOW - 20)
    with pytest.raises(MetricError):  # its only sample started before it was ready
        hpacalc.utilization_replicas(1, 50, [start], samples(300, window=10), NOW,
                                     cpu_initialization_period=300)
    settled = PodView("p0", request=100, ready=True, ready_changed=NOW - 30,
                      started=NOW - 40)
    assert hpacalc.utilization_replicas(1, 50, [settled], samples(300, window=10), NOW,
                                        cpu_initialization_period=300)[0] == 6


def test_average_value_target():
    assert hpacalc.average_value_replicas(2, 100, pods(2), samples(200, 200), NOW,
                                          cpu_initialization_period=0) == (4, 200)
    assert hpacalc.average_value_replicas(2, 100, pods(2), samples(105, 100), NOW,
                                          cpu_initialization_period=0) == (2, 102)


def test_scale_down_waits_for_the_stabilization_window():
    history: list = []
    rec, history = hpacalc.stabilize(history, 8, 4, 0.0, 0, 30)
    assert rec == 8  # scale up at once (no up window)
    rec, history = hpacalc.stabilize(history, 2, 8, 10.0, 0, 30)
    assert rec == 8  # the window still remembers 8
    rec, history = hpacalc.stabilize(history, 2, 8, 31.0, 0, 30)
    assert rec == 2  # 30 s later the highest recent recommendation is 2
    assert [v for _, v in history] == [2, 2]


def test_scale_up_window_takes_the_lowest():
    history = [(0.0, 3)]
    rec, _ = hpacalc.stabilize(history, 9, 2, 5.0, 60, 0)
    assert rec == 3


def test_default_policies_limit_the_rate():
    up = hpacalc.default_rules(True, 30)
    down = hpacalc.default_rules(False, 30)
    # From 1: max(1 + 4 pods, 1 * 2 percent) = 5 per 15 s.
    assert hpacalc.limit(10, 1, 1, 10, up, down, [], [], NOW) == (
        5, "ScaleUpLimit",
        "the desired replica count is increasing faster than the maximum scale rate")
    assert hpacalc.limit(10, 1, 1, 4, up, down, [], [], NOW)[:2] == (4, "TooManyReplicas")
    # A scale-up 10 s ago already used the period: the base is where it started.
    events = [(NOW - 10, 4)]
    assert hpacalc.scale_up_limit(5, events, [], up, NOW) == 5
    assert hpacalc.limit(1, 8, 2, 10, up, down, [], [], NOW)[:2] == (2, "TooFewReplicas")
    assert hpacalc.limit(5, 5, 1, 10, up, down, [], [], NOW)[1] == "DesiredWithinRange"


def test_custom_policies_and_disabled_directions():
    slow = {"selectPolicy": "Min", "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60},
                                                {"type": "Percent", "value": 50,
                                                 "periodSeconds": 60}]}
    assert hpacalc.scale_down_limit(10, [], [], slow, NOW) == 9
    off = {"selectPolicy": "Disabled", "policies": []}
    assert hpacalc.limit(1, 5, 1, 10, off, off, [], [], NOW)[0] == 5
    rules = hpacalc.rules_of({"scaleDown": {"stabilizationWindowSeconds": 5}}, False, 30)
    assert rules["stabilizationWindowSeconds"] == 5
    assert hpacalc.rules_of(None, False, 30)["stabilizationWindowSeconds"] == 30
    kept = hpacalc.record_event([(NOW - 100, 1), (NOW - 5, 2)], 3, NOW,
                                {"policies": [{"periodSeconds": 15}]})
    assert kept == [(NOW - 5, 2), (NOW, 3)]
