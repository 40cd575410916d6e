"""The Job controller: run pods until ``completions`` succeed, or give up.

A Job keeps ``min(parallelism, completions - succeeded)`` pods active (with no
``completions``, ``parallelism`` until one succeeds), recreates failed ones
after a back-off, and finishes with a ``Complete`` condition once enough pods
succeeded, or ``Failed`` when failures exceed ``backoffLimit`` or it ran
longer than ``activeDeadlineSeconds``. ``suspend`` stops its pods.

Counting is exact across restarts and pod deletions, the way Kubernetes has
done it since 1.26 ("job tracking with finalizers"): every pod is created with
the ``batch.kubernetes.io/job-tracking`` finalizer, so it cannot vanish
before it is counted. A finished pod's uid is first written into
``status.uncountedTerminatedPods``; then its finalizer is removed; then the
uid moves into ``succeeded`` or ``failed``. A controller killed between any
two steps resumes from what the API holds and counts each pod exactly once.
(``Indexed`` completion mode is not implemented: such Jobs run as
``NonIndexed``.)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Optional

from netlab.api.objects import deep_copy, now
from netlab.api.timefmt import format_time, parse_time
from netlab.api.views import (
    meta_of,
    name_of,
    pod_spec,
    pod_status,
    spec_of,
    status_of,
    uid_of,
)
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers import podutil
from netlab.master.controllers.base import (
    Context,
    Overlay,
    OwnerController,
    delete_object,
    omit_zero,
)
from netlab.master.controllers.expectations import Expectations
from netlab.master.controllers.replicaset import BURST_REPLICAS, slow_start_batch

Obj = Mapping[str, Any]
RESOURCE = "jobs"
API_VERSION, KIND = "batch/v1", "Job"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
# Re-creating pods after failures waits 1 s, 2 s, 4 s ... up to a minute (Kubernetes:
# 10 s up to 6 min, which would make a lab's failing Job look stuck).
BACKOFF_BASE, BACKOFF_MAX = 1.0, 60.0


# --- accounting (pure) --------------------------------------------------------------------------


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def want_active(spec: Obj, succeeded: int, active: int) -> int:
    """How many pods should run now (``manageJob``'s ``wantActive``)."""
    parallelism = _int(spec.get("parallelism"), 1)
    completions = spec.get("completions")
    if completions is None:  # a work queue: run until one succeeds, then let the rest finish
        return active if succeeded > 0 else parallelism
    return max(0, min(parallelism, _int(completions) - succeeded))


def is_failed(pod: Obj, spec: Obj) -> bool:
    """A pod that counts as failed: Failed, or deleted before it succeeded (unless the Job
    replaces only Failed pods)."""
    if podutil.phase(pod) == "Failed":
        return True
    if spec.get("podReplacementPolicy") == "Failed":
        return False
    return podutil.is_terminating(pod) and podutil.phase(pod) != "Succeeded"


def restarts_exceed_limit(spec: Obj, pods: Sequence[Obj]) -> bool:
    """``pastBackoffLimitOnFailure``: with OnFailure, container restarts count as failures."""
    template = pod_spec(spec.get("template") or {})
    if template.get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in pods:
        if podutil.phase(pod) in ("Running", "Pending"):
            status = pod_status(pod)
            for statuses in (status.get("initContainerStatuses"), status.get("containerStatuses")):
                restarts += sum(_int(s.get("restartCount")) for s in statuses or [])
    limit = _int(spec.get("backoffLimit"), 6)
    return restarts > 0 if limit == 0 else restarts >= limit


def finish_reason(spec: Obj, succeeded: int, failed: int, active_pods: Sequence[Obj],
                  start: Optional[datetime], when: datetime) -> Optional[tuple[str, str, str]]:
    """(condition type, reason, message) once the Job is over; None while it runs."""
    if failed > _int(spec.get("backoffLimit"), 6) or restarts_exceed_limit(spec, active_pods):
        return "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and start is not None and \
            (when - start).total_seconds() >= deadline:
        return "Failed", "DeadlineExceeded", "Job was active longer than specified deadline"
    completions = spec.get("completions")
    if completions is None:
        if succeeded > 0 and not active_pods:
            return "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
    elif succeeded >= _int(completions):
        return "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
    return None


def is_finished(job: Obj) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in status_of(job).get("conditions") or [])


def set_condition(status: dict[str, Any], ctype: str, value: str, reason: str, message: str,
                  when: datetime) -> bool:
    stamp = format_time(when)
    conds = status.setdefault("conditions", [])
    for cond in conds:
        if cond.get("type") == ctype:
            if cond.get("status") == value and cond.get("reason") == reason:
                return False
            if cond.get("status") != value:
                cond["lastTransitionTime"] = stamp
            cond.update(status=value, reason=reason, message=message, lastProbeTime=stamp)
            return True
    conds.append({"type": ctype, "status": value, "lastProbeTime": stamp,
                  "lastTransitionTime": stamp, "reason": reason, "message": message})
    return True


def has_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (meta_of(pod).get("finalizers") or [])


# --- the controller -----------------------------------------------------------------------------


class JobController(OwnerController):
    name = "job"
    resource, api_version, kind = RESOURCE, API_VERSION, KIND

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.pods_by_ns = ctx.by_namespace("pods")
        self.expectations = Expectations()
        # Per job: uids whose finalizer we removed but whose update the cache lacks yet.
        self.removing: dict[str, set[str]] = {}
        # Per job: (failures since the last success, monotonic time of the last one).
        self.backoff: dict[str, tuple[int, float]] = {}
        self.events = ctx.recorder("job-controller")
        self.jobs = self.watch(RESOURCE, self._on_job)
        self.mine = Overlay(self.jobs)
        self.pods = self.watch("pods", self._on_pod)

    def _on_job(self, kind: str, job: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        key = object_key(job)
        if kind == "DELETED":
            self.expectations.forget(key)
            self.backoff.pop(key, None)
        self.enqueue(key)

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        owner = self.owner_key(pod, self.jobs)
        uid = meta_of(pod).get("uid")
        if owner is not None and (kind == "DELETED" or not has_finalizer(pod)):
            self.removing.get(owner, set()).discard(uid)
        if owner is None:
            if kind != "DELETED" and has_finalizer(pod):
                self.enqueue(("orphan", object_key(pod)))  # its Job is gone: let it go
            elif kind == "ADDED" and not podutil.is_terminating(pod):
                self.enqueue_selecting(pod, self.jobs.items())
            return
        if kind == "ADDED":
            self.expectations.creation_observed(owner)
        self.enqueue(owner)

    # --- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, key: Any) -> None:
        if isinstance(key, tuple):
            await self._release_orphan(key[1])
            return
        cached = self.mine.get(key)
        if cached is None:
            self.expectations.forget(key)
            self.removing.pop(key, None)
            return
        job = deep_copy(cached)
        meta, spec = meta_of(job), spec_of(job)
        selector = self.valid_selector(key, job)
        if selector is None:
            return
        pods = await self.claim(job, selector, self.pods_by_ns.get(meta.get("namespace") or ""))
        if is_finished(job):
            await self._remove_finalizers(key, [p for p in pods if has_finalizer(p)])
            return
        when = now()
        status = deep_copy(status_of(job))
        uncounted = status.get("uncountedTerminatedPods") or {}
        pending_succeeded = list(uncounted.get("succeeded") or [])
        pending_failed = list(uncounted.get("failed") or [])
        known = set(pending_succeeded) | set(pending_failed) | self.removing.get(key, set())
        new_succeeded, new_failed = [], []
        for pod in pods:
            uid = meta_of(pod).get("uid")
            if not has_finalizer(pod) or uid in known:
                continue
            if podutil.phase(pod) == "Succeeded":
                new_succeeded.append(uid)
            elif is_failed(pod, spec):
                new_failed.append(uid)
        self._note_backoff(key, len(new_succeeded), len(new_failed))
        succeeded = _int(status.get("succeeded")) + len(pending_succeeded) + len(new_succeeded)
        failed = _int(status.get("failed")) + len(pending_failed) + len(new_failed)
        active = [p for p in pods if podutil.is_active(p)]
        suspended = bool(spec.get("suspend"))
        if not status.get("startTime") and not suspended:
            status["startTime"] = format_time(when)
        finish = finish_reason(spec, succeeded, failed, active, parse_time(status.get(
            "startTime")), when)
        if meta.get("deletionTimestamp"):
            pass  # the garbage collector removes the pods; they are still counted below
        elif suspended:
            if active:  # stopped by suspension: not failures, so released uncounted
                await self._delete_pods(key, job, active, len(active))
                await self._remove_finalizers(key, [p for p in active if has_finalizer(p)])
                active = []
        elif finish is not None:
            if active:  # a Failed job stops its pods, and they count as failed now
                await self._delete_pods(key, job, active, len(active))
                new_failed += [p["metadata"]["uid"] for p in active if has_finalizer(p)
                               and p["metadata"]["uid"] not in known]
                active = []
        elif self.expectations.satisfied(key):
            active = await self._manage(key, job, active, succeeded)
        self._suspension(status, suspended, when)
        # Step 1: record the newly finished pods as uncounted, with the active count.
        status["uncountedTerminatedPods"] = {
            k: v for k, v in (("succeeded", pending_succeeded + new_succeeded),
                              ("failed", pending_failed + new_failed)) if v}
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if podutil.is_ready(p))
        job = await self._write(job, status)
        # Step 2: let those pods go; step 3: count them.
        uids = set(status["uncountedTerminatedPods"].get("succeeded", [])) | \
            set(status["uncountedTerminatedPods"].get("failed", []))
        holding = [p for p in pods if has_finalizer(p) and p["metadata"].get("uid") in uids]
        released = await self._remove_finalizers(key, holding)
        still = {p["metadata"].get("uid") for p in holding} - released
        for outcome in ("succeeded", "failed"):
            listed = status["uncountedTerminatedPods"].get(outcome, [])
            done = [u for u in listed if u not in still]
            status[outcome] = _int(status.get(outcome)) + len(done)
            remaining = [u for u in listed if u in still]
            if remaining:
                status["uncountedTerminatedPods"][outcome] = remaining
            else:
                status["uncountedTerminatedPods"].pop(outcome, None)
        if finish is not None and not status["uncountedTerminatedPods"] and not active:
            self._finish(job, status, finish, when)
        await self._write(job, status)
        self._requeue_for_deadline(key, spec, status, when)

    async def _manage(self, key: str, job: dict[str, Any], active: list[dict[str, Any]],
                      succeeded: int) -> list[dict[str, Any]]:
        spec = spec_of(job)
        want = want_active(spec, succeeded, len(active))
        if len(active) > want:
            victims = podutil.pods_to_delete(active, len(active) - want)
            await self._delete_pods(key, job, victims, len(active) - want)
            return [p for p in active if p not in victims]
        if len(active) < want:
            wait = self._backoff_left(key)
            if wait > 0:
                self.enqueue_after(key, wait)
                return active
            await self._create_pods(key, job, min(want - len(active), BURST_REPLICAS))
        return active

    async def _create_pods(self, key: str, job: dict[str, Any], count: int) -> None:
        meta, spec = meta_of(job), spec_of(job)
        owner_ref = podutil.owner_reference(job, API_VERSION, KIND)
        self.expectations.expect_creations(key, count)
        self.log.info("%s: creating %d pods", key, count)
        names: list[str] = []

        async def create_one() -> None:
            pod = podutil.pod_from_template(spec.get("template") or {}, meta.get("namespace"),
                                            podutil.generate_name_prefix(meta.get("name", "")),
                                            owner_ref, [TRACKING_FINALIZER])
            try:
                created = await self.client.create(pod)
            except Exception:
                self.expectations.creation_observed(key)
                raise
            names.append(created["metadata"]["name"])

        _, attempted, error = await slow_start_batch(count, 1, create_one)
        for name in names:
            self.events.normal(job, "SuccessfulCreate", f"Created pod: {name}")
        if error is not None:
            self.expectations.creation_observed(key, count - attempted)
            self.events.warning(job, "FailedCreate", f"Error creating: {error}")
            raise error

    async def _delete_pods(self, key: str, job: dict[str, Any], victims: Sequence[Obj],
                           count: int) -> None:
        self.log.info("%s: deleting %d active pods", key, count)
        for pod in victims:
            if await delete_object(self.client, "pods", pod):
                self.events.normal(job, "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")

    async def _remove_finalizers(self, key: Optional[str],
                                 pods: list[dict[str, Any]]) -> set[str]:
        """Drop the tracking finalizer; the uids whose finalizer is now gone. Until the
        cache shows it gone, ``key``'s job does not count those pods again."""
        released = set()
        for pod in pods:
            meta = meta_of(pod)
            try:
                await self.client.patch("pods", meta.get("name", ""), {"metadata": {
                    "uid": meta.get("uid"),
                    "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}},
                    meta.get("namespace"), patch_type="strategic")
            except APIError as err:
                if not (err.not_found or err.conflict):
                    raise
            released.add(uid_of(pod))
            if key is not None:
                self.removing.setdefault(key, set()).add(uid_of(pod))
        return released

    async def _release_orphan(self, pod_key: str) -> None:
        pod = self.pods.get(pod_key)
        if pod is None or not has_finalizer(pod) or self.owner_key(pod, self.jobs) is not None:
            return
        self.log.info("%s: its job is gone; removing the tracking finalizer", pod_key)
        await self._remove_finalizers(None, [pod])

    async def _write(self, job: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        if not status.get("uncountedTerminatedPods"):
            status["uncountedTerminatedPods"] = {}
        omit_zero(status, "active", "succeeded", "failed")
        if status == status_of(job):
            return job
        written = await self.mine.update_status(self.client, job, status)
        return job if written is None else written

    # --- details ------------------------------------------------------------------------------

    def _finish(self, job: dict[str, Any], status: dict[str, Any],
                finish: tuple[str, str, str], when: datetime) -> None:
        ctype, reason, message = finish
        if ctype == "Failed":
            set_condition(status, "FailureTarget", "True", reason, message, when)
        set_condition(status, ctype, "True", reason, message, when)
        if ctype == "Complete":
            status["completionTime"] = format_time(when)
            self.events.normal(job, "Completed", "Job completed")
        else:
            self.events.warning(job, reason, message)
        self.log.info("%s: %s (%s): %d succeeded, %d failed", object_key(job), ctype, reason,
                      _int(status.get("succeeded")), _int(status.get("failed")))

    @staticmethod
    def _suspension(status: dict[str, Any], suspended: bool, when: datetime) -> None:
        current = next((c for c in status.get("conditions") or []
                        if c.get("type") == "Suspended"), None)
        if suspended:
            set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", when)
        elif current is not None and current.get("status") == "True":
            set_condition(status, "Suspended", "False", "JobResumed", "Job resumed", when)

    def _note_backoff(self, key: str, succeeded: int, failed: int) -> None:
        if succeeded:
            self.backoff.pop(key, None)
        elif failed:
            count, _ = self.backoff.get(key, (0, 0.0))
            self.backoff[key] = (count + failed, time.monotonic())

    def _backoff_left(self, key: str) -> float:
        count, last = self.backoff.get(key, (0, 0.0))
        if count == 0:
            return 0.0
        delay = min(BACKOFF_BASE * 2 ** (count - 1), BACKOFF_MAX)
        return delay - (time.monotonic() - last)

    def _requeue_for_deadline(self, key: str, spec: Obj, status: Obj, when: datetime) -> None:
        deadline = spec.get("activeDeadlineSeconds")
        start = parse_time(status.get("startTime"))
        if isinstance(deadline, int) and start is not None and not is_finished(
                {"status": status}):
            self.enqueue_after(key, max(deadline - (when - start).total_seconds(), 0) + 0.5)
