"""Job accounting: how many pods run, what counts as failed, when a Job is over."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from netlab.master.controllers.job import (
    finish_reason,
    is_failed,
    restarts_exceed_limit,
    set_condition,
    want_active,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("spec,succeeded,active,expected", [
    ({"completions": 5, "parallelism": 2}, 0, 0, 2),
    ({"completions": 5, "parallelism": 2}, 4, 1, 1),   # one completion left
    ({"completions": 5, "parallelism": 2}, 5, 0, 0),
    ({"completions": 3, "parallelism": 10}, 1, 0, 2),
    ({"parallelism": 3}, 0, 0, 3),                      # work queue: until one succeeds
    ({"parallelism": 3}, 1, 2, 2),                      # then let the others finish
    ({"completions": 2}, 0, 0, 1),                      # parallelism defaults to 1
])
def test_want_active(spec, succeeded, active, expected):
    assert want_active(spec, succeeded, active) == expected


def pod(phase, deleting=False, restarts=0):
    meta = {"deletionTimestamp": "2024-05-01T12:00:00Z"} if deleting else {}
    return {"metadata": meta, "status": {"phase": phase, "containerStatuses": [
        {"restartCount": restarts}]}}


def test_what_counts_as_failed():
    assert is_failed(pod("Failed"), {})
    assert is_failed(pod("Running", deleting=True), {})  # deleted before it succeeded
    assert not is_failed(pod("Succeeded", deleting=True), {})
    assert not is_failed(pod("Running", deleting=True), {"podReplacementPolicy": "Failed"})
    assert not is_failed(pod("Running"), {})


def test_restarts_count_against_the_backoff_limit_with_on_failure():
    spec = {"backoffLimit": 3, "template": {"spec": {"restartPolicy": "OnFailure"}}}
    assert restarts_exceed_limit(spec, [pod("Running", restarts=2), pod("Pending", restarts=1)])
    assert not restarts_exceed_limit(spec, [pod("Running", restarts=2)])
    never = {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never"}}}
    assert not restarts_exceed_limit(never, [pod("Running", restarts=9)])


def test_finish_reasons_in_order():
    spec = {"completions": 5, "backoffLimit": 2}
    assert finish_reason(spec, 5, 0, [], NOW, NOW)[:2] == ("Complete", "CompletionsReached")
    assert finish_reason(spec, 4, 2, [], NOW, NOW) is None  # 2 failures allowed
    assert finish_reason(spec, 5, 3, [], NOW, NOW)[1] == "BackoffLimitExceeded"
    deadline = {**spec, "activeDeadlineSeconds": 30}
    assert finish_reason(deadline, 1, 0, [], NOW - timedelta(seconds=31), NOW)[1] == \
        "DeadlineExceeded"
    queue = {"parallelism": 2}
    assert finish_reason(queue, 1, 0, [pod("Running")], NOW, NOW) is None
    assert finish_reason(queue, 1, 0, [], NOW, NOW)[0] == "Complete"


def test_conditions_keep_their_transition_time():
    status: dict = {}
    assert set_condition(status, "Complete", "True", "CompletionsReached", "done", NOW)
    later = NOW + timedelta(seconds=5)
    assert not set_condition(status, "Complete", "True", "CompletionsReached", "done", later)
    assert status["conditions"][0]["lastTransitionTime"] == "2024-05-01T12:00:00Z"
