"""Validation of batch/v1 CronJob and policy/v1 PodDisruptionBudget, as upstream validates.

Follows pkg/apis/batch/validation (``ValidateCronJobCreate``: the schedule parsed as
robfig/cron parses it, ``timeZone`` as an IANA name, the 52-character name limit that
leaves room for the Job suffix, the job template) and pkg/apis/policy/validation
(``ValidatePodDisruptionBudgetSpec``). :mod:`netlab.api.validation` adds these validators to
its tables. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from netlab.api import cron, selectors
from netlab.api.errors import invalid, not_supported, required
from netlab.api.validation_base import _V, _int_or_percent
from netlab.api.validation_pod import _check_containers_present, validate_pod_spec
from netlab.api.views import dict_at, meta_of, spec_of

CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
UNHEALTHY_POD_EVICTION_POLICIES = ("IfHealthyBudget", "AlwaysAllow")
# A CronJob's Jobs are named "<name>-<minutes since epoch>": 11 more characters, and the
# result must still be a DNS-1035 label (63).
MAX_CRONJOB_NAME = 52
TZ_REFUSED = "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
TZ_AND_TIME_ZONE = "cannot use both timeZone field and TZ or CRON_TZ in schedule"


def validate_schedule(v: _V, schedule: Any, path: str = "spec.schedule") -> None:
    """``validateScheduleFormat`` on create: robfig's parse error, and no TZ prefix (the
    update rule, for objects that already had one, is :func:`validate_cronjob_update`)."""
    if schedule is None or schedule == "":
        v.add(required(path))
        return
    if not isinstance(schedule, str):
        v.add(invalid(path, schedule, "must be a string"))
        return
    try:
        cron.parse(schedule)
    except cron.CronError as err:
        v.add(invalid(path, schedule, str(err)))
    if "TZ" in schedule:
        v.add(invalid(path, schedule, TZ_REFUSED))


def validate_time_zone(v: _V, time_zone: Any, path: str = "spec.timeZone") -> None:
    if time_zone is None:
        return
    if not isinstance(time_zone, str):
        v.add(invalid(path, time_zone, "must be a string"))
        return
    if time_zone == "":
        v.add(invalid(path, time_zone, "timeZone must be nil or non-empty string"))
        return
    if time_zone.lower() == "local":
        v.add(invalid(path, time_zone, "timeZone must be an explicit time zone as defined in "
                                       "https://www.iana.org/time-zones"))
        return
    try:
        cron.load_zone(time_zone)
    except cron.CronError as err:
        v.add(invalid(path, time_zone, str(err)))


def _job_template(v: _V, spec: dict[str, Any], path: str) -> None:
    """``ValidateJobTemplateSpec``: the Job spec, whose selector the Job will generate."""
    template = spec.get("jobTemplate")
    if template is None:
        v.add(required(path))
        return
    if not isinstance(template, dict):
        v.add(invalid(path, template, "must be an object"))
        return
    v.obj(template, "metadata", f"{path}.metadata")
    jspec = v.obj(template, "spec", f"{path}.spec")
    jpath = f"{path}.spec"
    for key in ("parallelism", "completions", "backoffLimit"):
        v.non_negative(jspec, key, f"{jpath}.{key}")
    deadline = v.integer(jspec, "activeDeadlineSeconds", f"{jpath}.activeDeadlineSeconds")
    if deadline is not None and deadline <= 0:
        v.add(invalid(f"{jpath}.activeDeadlineSeconds", deadline, "must be greater than 0"))
    if jspec.get("selector") is not None:
        v.add(invalid(f"{jpath}.selector", jspec["selector"],
                      "`selector` will be auto-generated"))
    if jspec.get("manualSelector") is True:
        v.add(not_supported(f"{jpath}.manualSelector", True, ["nil", "false"]))
    pod_template = jspec.get("template")
    if not isinstance(pod_template, dict):
        v.add(required(f"{jpath}.template") if pod_template is None
              else invalid(f"{jpath}.template", pod_template, "must be an object"))
        return
    tmeta = v.obj(pod_template, "metadata", f"{jpath}.template.metadata")
    v.labels(tmeta.get("labels"), f"{jpath}.template.metadata.labels")
    validate_pod_spec(v, pod_template.get("spec"), f"{jpath}.template.spec", for_pod=False,
                      restart_policies=("OnFailure", "Never"))
    _check_containers_present(v, pod_template.get("spec"), f"{jpath}.template.spec")


def validate_cronjob(v: _V, obj: dict[str, Any]) -> None:
    name = meta_of(obj).get("name") if isinstance(obj.get("metadata"),
                                                                  dict) else None
    if isinstance(name, str) and len(name) > MAX_CRONJOB_NAME:
        v.add(invalid("metadata.name", name,
                      f"must be no more than {MAX_CRONJOB_NAME} characters"))
    spec = v.obj(obj, "spec", "spec")
    validate_schedule(v, spec.get("schedule"))
    v.non_negative(spec, "startingDeadlineSeconds", "spec.startingDeadlineSeconds")
    v.one_of(spec, "concurrencyPolicy", "spec.concurrencyPolicy", CONCURRENCY_POLICIES,
             required_=True)
    _job_template(v, spec, "spec.jobTemplate")
    v.non_negative(spec, "successfulJobsHistoryLimit", "spec.successfulJobsHistoryLimit")
    v.non_negative(spec, "failedJobsHistoryLimit", "spec.failedJobsHistoryLimit")
    validate_time_zone(v, spec.get("timeZone"))


def validate_cronjob_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    """``ValidateCronJobUpdate``: a schedule that already carried a TZ/CRON_TZ prefix may
    keep one (objects from before the rule), as long as ``timeZone`` is not also set."""
    old_schedule = spec_of(old).get("schedule") if isinstance(old.get("spec"),
                                                                          dict) else None
    if not isinstance(old_schedule, str) or "TZ" not in old_schedule:
        return
    # The create rules ran first (validate_update runs them) and refused the prefix.
    v.errs[:] = [e for e in v.errs if not (e.field == "spec.schedule"
                                           and e.detail == TZ_REFUSED)]
    spec = dict_at(new, "spec")
    schedule = spec.get("schedule")
    if isinstance(schedule, str) and "TZ" in schedule and spec.get("timeZone") is not None:
        v.add(invalid("spec.schedule", schedule, TZ_AND_TIME_ZONE))


def _percent_cap(v: _V, parent: dict[str, Any], key: str, path: str) -> None:
    value = parent.get(key)
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit() \
            and int(value[:-1]) > 100:
        v.add(invalid(path, value, "must not be greater than 100%"))


def validate_pdb(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        v.add(invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        _int_or_percent(v, spec, key, f"spec.{key}")
        _percent_cap(v, spec, key, f"spec.{key}")
    selector = spec.get("selector")
    if selector is not None:
        if not isinstance(selector, dict):
            v.add(invalid("spec.selector", selector, "must be an object"))
        else:
            try:
                selectors.label_selector_from_object(selector)
            except selectors.SelectorError as err:
                v.add(invalid("spec.selector", selector, str(err)))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        v.add(not_supported("spec.unhealthyPodEvictionPolicy", policy,
                            UNHEALTHY_POD_EVICTION_POLICIES))

