"""CronJob scheduling driven by an injected clock: the plan the controller would carry out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from netlab.api import cron
from netlab.master.controllers.cronjob_sync import (
    SCHEDULED_TIMESTAMP,
    job_name,
    jobs_to_trim,
    plan_sync,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def _ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def cronjob(schedule: str = "*/1 * * * *", created: datetime = T0, status: dict | None = None,
            **spec: object) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "cj", "namespace": "default", "uid": "cj-uid",
                         "creationTimestamp": _ts(created)},
            "spec": {"schedule": schedule, "concurrencyPolicy": "Allow", "suspend": False,
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"metadata": {"labels": {"app": "x"}}, "spec": {
                         "template": {"spec": {"containers": [{"name": "c",
                                                               "image": "busybox"}]}}}},
                     **spec},
            "status": status or {}}


def job(name: str, uid: str, outcome: str | None = None, start: datetime = T0,
        end: datetime | None = None) -> dict:
    status: dict = {"startTime": _ts(start)}
    if outcome:
        status["conditions"] = [{"type": outcome, "status": "True"}]
    if outcome == "Complete":
        status["completionTime"] = _ts(end or start + timedelta(seconds=5))
    return {"metadata": {"name": name, "namespace": "default", "uid": uid}, "status": status}


def test_nothing_before_the_first_minute_boundary_then_a_job_named_after_it():
    cj = cronjob(created=T0 + timedelta(seconds=10))
    plan = plan_sync(cj, [], T0 + timedelta(seconds=30))
    assert plan.create is None
    assert plan.requeue_after == pytest.approx(30.1)
    plan = plan_sync(cj, [], T0 + timedelta(seconds=61))
    first = T0 + timedelta(minutes=1)
    assert plan.create["metadata"]["name"] == f"cj-{int(first.timestamp()) // 60}"
    assert plan.create["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2024-05-01T12:01:00Z"
    assert plan.create["metadata"]["labels"] == {"app": "x"}
    assert plan.create["metadata"]["ownerReferences"][0]["uid"] == "cj-uid"
    assert plan.status["lastScheduleTime"] == "2024-05-01T12:01:00Z"
    assert plan.requeue_after == pytest.approx(59.1)


def test_missed_runs_start_only_the_most_recent_and_many_missed_warn():
    cj = cronjob(created=T0)
    plan = plan_sync(cj, [], T0 + timedelta(minutes=5, seconds=20))
    assert plan.status["lastScheduleTime"] == _ts(T0 + timedelta(minutes=5))
    assert not [e for e in plan.events if e[1] == "TooManyMissedTimes"]
    plan = plan_sync(cj, [], T0 + timedelta(hours=3))
    assert plan.status["lastScheduleTime"] == _ts(T0 + timedelta(hours=3))
    assert [e[1] for e in plan.events] == ["TooManyMissedTimes"]
    plan = plan_sync(cronjob("@every 1m"), [], T0 + timedelta(hours=3, seconds=30))
    assert plan.status["lastScheduleTime"] == _ts(T0 + timedelta(hours=3))


def test_starting_deadline_skips_a_late_start_and_bounds_the_missed_count():
    cj = cronjob("0 * * * *", created=T0, startingDeadlineSeconds=60)
    # 13:00 was due 10 minutes ago: too late to start it; wait for 14:00.
    plan = plan_sync(cj, [], T0 + timedelta(hours=1, minutes=10))
    assert plan.create is None
    assert plan.requeue_after == pytest.approx(50 * 60 + 0.1)
    # Within the deadline it still starts.
    plan = plan_sync(cj, [], T0 + timedelta(hours=1, seconds=50))
    assert plan.status["lastScheduleTime"] == _ts(T0 + timedelta(hours=1))
    # Years of missed hours: the deadline keeps them from counting as "too many".
    plan = plan_sync(cj, [], T0 + timedelta(days=400, seconds=30))
    assert plan.create is not None and not plan.events


def test_forbid_skips_while_a_run_is_active_and_replace_deletes_it():
    running = job("cj-old", "u1")
    status = {"active": [{"name": "cj-old", "uid": "u1"}],
              "lastScheduleTime": _ts(T0)}
    when = T0 + timedelta(minutes=1, seconds=1)
    plan = plan_sync(cronjob(status=status, concurrencyPolicy="Forbid"), [running], when)
    assert plan.create is None
    assert [e[1] for e in plan.events] == ["JobAlreadyActive"]
    plan = plan_sync(cronjob(status=status, concurrencyPolicy="Replace"), [running], when)
    assert [r["uid"] for r in plan.delete] == ["u1"]
    assert plan.create is not None and plan.status.get("active") is None
    plan = plan_sync(cronjob(status=status), [running], when)
    assert plan.create is not None and not plan.delete
    assert [r["uid"] for r in plan.status["active"]] == ["u1"]


def test_finished_jobs_leave_the_active_list_and_set_last_successful_time():
    status = {"active": [{"name": "a", "uid": "ua"}, {"name": "gone", "uid": "ug"}],
              "lastScheduleTime": _ts(T0)}
    done = job("a", "ua", "Complete", end=T0 + timedelta(seconds=7))
    plan = plan_sync(cronjob(status=status), [done], T0 + timedelta(seconds=30))
    assert plan.status.get("active") is None
    assert plan.status["lastSuccessfulTime"] == _ts(T0 + timedelta(seconds=7))
    assert [e[1] for e in plan.events] == ["SawCompletedJob", "MissingJob"]
    assert plan.status_changed


def test_suspend_and_deletion_create_nothing():
    when = T0 + timedelta(minutes=3)
    assert plan_sync(cronjob(suspend=True), [], when).create is None
    cj = cronjob()
    cj["metadata"]["deletionTimestamp"] = _ts(T0)
    assert plan_sync(cj, [], when).create is None


def test_a_time_zone_moves_the_schedule_and_the_annotation():
    # 09:00 in Tokyo is 00:00 UTC.
    cj = cronjob("0 9 * * *", created=T0, timeZone="Asia/Tokyo")
    plan = plan_sync(cj, [], datetime(2024, 5, 2, 0, 0, 30, tzinfo=timezone.utc))
    assert plan.status["lastScheduleTime"] == "2024-05-02T00:00:00Z"
    assert plan.create["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == \
        "2024-05-02T09:00:00+09:00"
    bad = cronjob(timeZone="Nowhere/City")
    plan = plan_sync(bad, [], T0 + timedelta(minutes=2))
    assert plan.create is None and [e[1] for e in plan.events] == ["UnknownTimeZone"]


def test_history_limits_trim_the_oldest_finished_jobs():
    cj = cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0)
    jobs = [job(f"ok{i}", f"o{i}", "Complete", start=T0 + timedelta(minutes=i))
            for i in (2, 0, 1)]
    jobs += [job("bad", "b", "Failed"), job("running", "r")]
    assert sorted(j["metadata"]["name"] for j in jobs_to_trim(cj, jobs)) == [
        "bad", "ok0", "ok1"]
    plan = plan_sync(cj, jobs, T0 + timedelta(minutes=2, seconds=30))
    assert {j["metadata"]["name"] for j in plan.trim} == {"bad", "ok0", "ok1"}


def test_the_job_name_is_minutes_since_the_epoch():
    assert job_name(cronjob(), datetime(2024, 1, 1, tzinfo=timezone.utc)) == "cj-28401120"


@pytest.mark.parametrize(("spec", "after", "expected"), [
    ("@hourly", T0 + timedelta(minutes=1), T0 + timedelta(hours=1)),
    ("@daily", T0, datetime(2024, 5, 2, tzinfo=timezone.utc)),
    ("@weekly", T0, datetime(2024, 5, 5, tzinfo=timezone.utc)),
    ("@monthly", T0, datetime(2024, 6, 1, tzinfo=timezone.utc)),
    ("@yearly", T0, datetime(2025, 1, 1, tzinfo=timezone.utc)),
    ("@every 1h30m", T0, T0 + timedelta(minutes=90)),
    ("30 8-10/2 * jan-jun mon", T0, datetime(2024, 5, 6, 8, 30, tzinfo=timezone.utc)),
    ("0 0 13 * 5", T0, datetime(2024, 5, 3, tzinfo=timezone.utc)),  # 13th OR Friday
])
def test_schedule_next(spec, after, expected):
    assert cron.parse(spec).next(after) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("@every soon", 'failed to parse duration @every soon: time: invalid duration "soon"'),
    ("@sometimes", "unrecognized descriptor: @sometimes"),
    ("CRON_TZ=Nowhere/X 0 * * * *",
     "provided bad location Nowhere/X: unknown time zone Nowhere/X"),
])
def test_schedule_errors_read_as_robfig_cron(spec, message):
    with pytest.raises(cron.CronError) as err:
        cron.parse(spec)
    assert str(err.value) == message


def test_a_schedule_that_never_fires_creates_nothing():
    # February 31st parses (as robfig/cron parses it) but never comes.
    assert cron.parse("0 0 31 2 *").next(T0) == cron.NEVER
    plan = plan_sync(cronjob("0 0 31 2 *"), [], T0 + timedelta(days=800))
    assert plan.create is None and plan.requeue_after > 10**9


def test_a_job_made_by_hand_is_not_an_active_run():
    manual = job("cj-manual", "m")
    plan = plan_sync(cronjob(concurrencyPolicy="Forbid", status={"lastScheduleTime": _ts(T0)}),
                     [manual], T0 + timedelta(minutes=1, seconds=1))
    assert [e[1] for e in plan.events] == ["UnexpectedJob"]
    assert plan.create is not None and not plan.status.get("active")
