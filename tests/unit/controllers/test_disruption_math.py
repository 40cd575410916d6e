"""The disruption controller's arithmetic: desired and expected pods, healthy counts, and the
expiry of recorded evictions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from netlab.api.disruption import selects
from netlab.master.controllers.disruption import (
    desired_and_expected,
    disrupted_pods,
    healthy_count,
    scaled,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def _pod(name: str, ready: bool = True, deleting: bool = False,
         labels: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "ns", "labels": labels or {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"metadata": meta, "status": {"conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


@pytest.mark.parametrize(("value", "total", "expected"), [
    (2, 10, 2), ("50%", 3, 2), ("34%", 3, 2), ("0%", 5, 0), ("100%", 4, 4), ("10%", 1, 1)])
def test_percentages_round_up(value, total, expected):
    assert scaled(value, total) == expected


@pytest.mark.parametrize(("spec", "pods", "scale", "expected"), [
    ({"minAvailable": 2}, 3, None, (2, 3)),
    ({"minAvailable": "50%"}, 2, 5, (3, 5)),  # the workloads' scale, not the pods found
    ({"maxUnavailable": 1}, 3, 3, (2, 3)),
    ({"maxUnavailable": "100%"}, 3, 3, (0, 3)),
    ({"maxUnavailable": 5}, 3, 3, (0, 3)),
    ({}, 3, None, (0, 0)),
])
def test_desired_and_expected(spec, pods, scale, expected):
    assert desired_and_expected(spec, pods, scale) == expected


def test_recent_evictions_stay_out_of_the_healthy_count_for_two_minutes():
    pods = [_pod("a"), _pod("b"), _pod("c", ready=False), _pod("d", deleting=True)]
    status = {"disruptedPods": {"a": "2024-05-01T12:00:00Z", "b": "2024-05-01T11:00:00Z",
                                "d": "2024-05-01T12:00:00Z", "gone": "2024-05-01T12:00:00Z"}}
    kept, recheck, overdue = disrupted_pods(status, pods, T0 + timedelta(seconds=30))
    # "b" outlived its expected deletion; "d" is deleting; "gone" no longer exists.
    assert kept == {"a": "2024-05-01T12:00:00Z"} and overdue == ["b"]
    assert recheck == T0 + timedelta(minutes=2)
    assert healthy_count(pods, kept) == 1  # only "b": "a" is evicted, "c" unready, "d" going


def test_an_empty_selector_covers_nothing():
    pdb = {"metadata": {"namespace": "ns"}, "spec": {"selector": {}}}
    assert not selects(pdb, _pod("a"))
    pdb["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    assert selects(pdb, _pod("a")) and not selects(pdb, _pod("x", labels={"app": "db"}))
    assert not selects({**pdb, "metadata": {"namespace": "other"}}, _pod("a"))
