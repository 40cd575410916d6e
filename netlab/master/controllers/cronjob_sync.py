"""What the CronJob controller decides for one CronJob at one instant: a pure plan.

This is the logic of upstream's ``syncCronJob`` and ``cleanupFinishedJobs``
(pkg/controller/cronjob/cronjob_controllerv2.go and utils.go), separated from the I/O so
that unit tests drive it with any clock:

* the active list is reconciled with the Jobs the CronJob owns (finished ones leave it and
  advance ``lastSuccessfulTime``; vanished ones are dropped);
* the most recent unmet schedule time since ``lastScheduleTime`` (or creation, or
  ``now - startingDeadlineSeconds``) is found; more than 100 missed gives the
  ``TooManyMissedTimes`` warning, and a start later than the deadline a ``MissSchedule``;
* ``concurrencyPolicy`` Forbid skips a run while one is active, Replace deletes the active
  ones first; the Job is named ``<cronjob>-<scheduled minutes since epoch>``;
* finished Jobs beyond the history limits are deleted, oldest start first;
* the controller is woken again just after the next scheduled time, never by polling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Optional

from netlab.api import cron
from netlab.api.objects import deep_copy
from netlab.api.timefmt import format_time, parse_time
from netlab.api.views import meta_of, name_of, spec_of, status_of

Obj = Mapping[str, Any]
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
TOO_MANY_MISSED = 100
# Upstream wakes 100 ms after the scheduled time so that "now" is surely past it.
NEXT_SCHEDULE_DELTA = 0.1
NORMAL, WARNING = "Normal", "Warning"


@dataclass
class Plan:
    """What to do now. Deletions come first (Replace), then the create, then the status."""

    status: dict[str, Any]
    status_changed: bool = False
    create: Optional[dict[str, Any]] = None
    delete: list[dict[str, Any]] = field(default_factory=list)  # active Jobs to replace
    trim: list[Obj] = field(default_factory=list)  # finished Jobs past the limits
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: Optional[float] = None


# --- schedule arithmetic --------------------------------------------------------------------------


def zone_of(cj: Obj) -> tzinfo:
    """The zone the schedule is read in: ``spec.timeZone``, else the controller's (UTC)."""
    name = spec_of(cj).get("timeZone")
    return cron.load_zone(name) if isinstance(name, str) else timezone.utc


def _earliest(cj: Obj, now: datetime, with_deadline: bool) -> datetime:
    meta, spec, status = meta_of(cj), spec_of(cj), status_of(cj)
    earliest = parse_time(status.get("lastScheduleTime")) or \
        parse_time(meta.get("creationTimestamp")) or now
    deadline = spec.get("startingDeadlineSeconds")
    if with_deadline and isinstance(deadline, int) and not isinstance(deadline, bool):
        earliest = max(earliest, now - timedelta(seconds=deadline))
    return earliest


def most_recent_schedule_time(cj: Obj, now: datetime, schedule: cron.Schedule, zone: tzinfo,
                              with_deadline: bool = True
                              ) -> tuple[datetime, Optional[datetime], int]:
    """``mostRecentScheduleTime``: (earliest time considered, the latest schedule time in
    (earliest, now] or None, how many were missed). The count stops at 101."""
    earliest = _earliest(cj, now, with_deadline)
    t = schedule.next(earliest, zone)
    if t > now:
        return earliest, None, 0
    missed, latest = 0, t
    while t <= now and missed <= TOO_MANY_MISSED:
        latest, missed = t, missed + 1
        t = schedule.next(t, zone)
    if t <= now:
        # Beyond the cap only the most recent time matters; jump straight to it.
        latest = schedule.latest(now, earliest, zone)
    return earliest, latest, missed


def next_schedule_delay(cj: Obj, now: datetime, schedule: cron.Schedule, zone: tzinfo) -> float:
    """``nextScheduleTimeDuration``: seconds until just after the next activation."""
    earliest, recent, _ = most_recent_schedule_time(cj, now, schedule, zone, with_deadline=False)
    nxt = schedule.next(recent or earliest, zone)
    return max((nxt - now).total_seconds(), 0.0) + NEXT_SCHEDULE_DELTA


def job_name(cj: Obj, scheduled: datetime) -> str:
    """``getJobName``: the CronJob's name and the scheduled time in minutes since the epoch."""
    return f"{meta_of(cj).get('name')}-{int(scheduled.timestamp()) // 60}"


def rfc3339_in(when: datetime, zone: tzinfo) -> str:
    """Go's ``t.In(zone).Format(time.RFC3339)``: ``Z`` for UTC, else the offset."""
    local = when.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    if offset == timedelta(0) and zone in (timezone.utc,):
        return local.strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.isoformat(timespec="seconds")


def job_from_template(cj: Obj, scheduled: datetime, zone: tzinfo) -> dict[str, Any]:
    """``getJobFromTemplate2``: the Job for one scheduled time, owned by the CronJob."""
    meta, spec = meta_of(cj), spec_of(cj)
    template = spec.get("jobTemplate") or {}
    tmeta = meta_of(template)
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = rfc3339_in(scheduled, zone)
    job_meta: dict[str, Any] = {
        "name": job_name(cj, scheduled), "namespace": meta.get("namespace"),
        "annotations": annotations,
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                             "name": meta.get("name"), "uid": meta.get("uid"),
                             "controller": True, "blockOwnerDeletion": True}]}
    if tmeta.get("labels"):
        job_meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
            "spec": deep_copy(spec_of(template))}


# --- jobs ----------------------------------------------------------------------------------------


def finished(job: Obj) -> Optional[str]:
    """``Complete`` or ``Failed`` once the Job has finished, else None."""
    for cond in status_of(job).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def job_ref(job: Obj) -> dict[str, Any]:
    meta = meta_of(job)
    return {"kind": "Job", "namespace": meta.get("namespace"), "name": meta.get("name"),
            "uid": meta.get("uid"), "apiVersion": "batch/v1",
            "resourceVersion": meta.get("resourceVersion")}


def _start_key(job: Obj) -> tuple[int, datetime, str]:
    # byJobStartTime: jobs that never started sort after those that did, then by name.
    start = parse_time(status_of(job).get("startTime"))
    name = name_of(job)
    if start is None:
        return 1, datetime.min.replace(tzinfo=timezone.utc), name
    return 0, start, name


def jobs_to_trim(cj: Obj, jobs: Sequence[Obj]) -> list[Obj]:
    """``cleanupFinishedJobs``: the oldest finished Jobs beyond each history limit."""
    spec = spec_of(cj)
    out: list[Obj] = []
    for outcome, key in (("Complete", "successfulJobsHistoryLimit"),
                         ("Failed", "failedJobsHistoryLimit")):
        limit = spec.get(key)
        if not isinstance(limit, int) or isinstance(limit, bool):
            continue
        done = sorted((j for j in jobs if finished(j) == outcome), key=_start_key)
        out.extend(done[:max(len(done) - limit, 0)])
    return out


# --- the sync -------------------------------------------------------------------------------------


def _reconcile_active(cj: Obj, jobs: Sequence[Obj], status: dict[str, Any], plan: Plan) -> None:
    active = [r for r in status.get("active") or [] if isinstance(r, dict)]
    uids = {meta_of(j).get("uid") for j in jobs}
    listed = {r.get("uid") for r in active}
    last_success = parse_time(status.get("lastSuccessfulTime"))
    for job in jobs:
        meta = meta_of(job)
        outcome = finished(job)
        if meta.get("uid") not in listed and outcome is None:
            # Made by hand (create job --from=cronjob), or created just before a crash. As
            # upstream, it is not counted as active; a lost scheduled run is picked up when
            # its re-creation finds it (AlreadyExists).
            plan.events.append((WARNING, "UnexpectedJob", "Saw a job that the controller did "
                                f"not create or forgot: {meta.get('name')}"))
        elif meta.get("uid") in listed and outcome is not None:
            active = [r for r in active if r.get("uid") != meta.get("uid")]
            plan.events.append((NORMAL, "SawCompletedJob", f"Saw completed job: "
                                f"{meta.get('name')}, condition: {outcome}"))
        if outcome == "Complete":
            done = parse_time(status_of(job).get("completionTime"))
            if done is not None and (last_success is None or done > last_success):
                last_success = done
    for ref in list(active):
        if ref.get("uid") not in uids:
            plan.events.append((NORMAL, "MissingJob", f"Active job went missing: "
                                f"{ref.get('name')}"))
            active.remove(ref)
    status["active"] = active
    if last_success is not None:
        status["lastSuccessfulTime"] = format_time(last_success)


def plan_sync(cj: Obj, jobs: Sequence[Obj], now: datetime) -> Plan:
    """The plan for ``cj`` at ``now``, given every Job it controls (informer view plus any
    active Job fetched directly)."""
    status = deep_copy(status_of(cj))
    plan = Plan(status=status)
    _reconcile_active(cj, jobs, status, plan)
    meta, spec = meta_of(cj), spec_of(cj)
    plan.trim = jobs_to_trim(cj, jobs)
    try:
        _schedule(cj, spec, meta, now, status, plan)
    finally:
        _finish(cj, status, plan)
    return plan


def _finish(cj: Obj, status: dict[str, Any], plan: Plan) -> None:
    trimmed = {meta_of(j).get("uid") for j in plan.trim}
    status["active"] = [r for r in status.get("active") or [] if r.get("uid") not in trimmed]
    if not status["active"]:
        status.pop("active")
    plan.status_changed = status != status_of(cj)


def _schedule(cj: Obj, spec: Obj, meta: Obj, now: datetime, status: dict[str, Any],
              plan: Plan) -> None:
    if meta.get("deletionTimestamp"):
        return
    name = spec.get("timeZone")
    try:
        zone = zone_of(cj)
    except cron.CronError as err:
        plan.events.append((WARNING, "UnknownTimeZone", f'invalid timeZone: "{name}": {err}'))
        return
    try:
        schedule = cron.parse(spec.get("schedule") or "")
    except cron.CronError as err:
        plan.events.append((WARNING, "UnparseableSchedule",
                            f'unparseable schedule: "{spec.get("schedule")}" : {err}'))
        return
    if spec.get("suspend") is True:
        return
    view = {**cj, "status": status}
    _, scheduled, missed = most_recent_schedule_time(view, now, schedule, zone)
    plan.requeue_after = next_schedule_delay(view, now, schedule, zone)
    if missed > TOO_MANY_MISSED:
        plan.events.append((WARNING, "TooManyMissedTimes", "too many missed start times. Set "
                            "or decrease .spec.startingDeadlineSeconds or check clock skew"))
    if scheduled is None:
        return
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, int) and scheduled + timedelta(seconds=deadline) < now:
        plan.events.append((WARNING, "MissSchedule", "Missed scheduled time to start a job: "
                            + scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000")))
        return
    wanted = job_name(cj, scheduled)
    active = status.get("active") or []
    if any(r.get("name") == wanted for r in active) or \
            parse_time(status.get("lastScheduleTime")) == scheduled:
        return
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        plan.events.append((NORMAL, "JobAlreadyActive", "Not starting job because prior "
                            "execution is running and concurrency policy is Forbid"))
        return
    if policy == "Replace":
        plan.delete = list(active)
        status["active"] = []
    plan.create = job_from_template(cj, scheduled, zone)
    status["lastScheduleTime"] = format_time(scheduled)
