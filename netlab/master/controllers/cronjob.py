"""The CronJob controller: creates a CronJob's Jobs on schedule and trims their history.

Each reconcile gathers the Jobs the CronJob controls (the informer's view, plus a direct
read of any active Job the informer has not delivered yet, as upstream does), asks
:func:`netlab.master.controllers.cronjob_sync.plan_sync` what to do at ``clock()``, and
carries it out: delete the Jobs a Replace policy retires, create the scheduled Job, write
the status (``active``, ``lastScheduleTime``, ``lastSuccessfulTime``), delete finished
Jobs beyond the history limits. The key is then requeued for just after the next
scheduled time, so an idle CronJob costs nothing between its runs. ``clock`` is
injectable, for tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Optional

from netlab.api.objects import deep_copy, now
from netlab.api.views import controller_ref, meta_of, name_of, status_of
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers.base import Context, Controller, Overlay, delete, delete_object
from netlab.master.controllers.cronjob_sync import job_ref, plan_sync

RESOURCE = "cronjobs"


class CronJobController(Controller):
    name = "cronjob"

    def __init__(self, ctx: Context, workers: Optional[int] = None,
                 clock: Callable[[], datetime] = now) -> None:
        super().__init__(ctx, workers)
        self.clock = clock
        self.jobs_by_owner = ctx.by_controller("jobs")
        self.events = ctx.recorder("cronjob-controller")
        self.cronjobs = self.watch(RESOURCE)
        self.mine = Overlay(self.cronjobs)
        self.jobs = self.watch("jobs", self._on_job)

    def _on_job(self, kind: str, job: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        ref = controller_ref(job)
        if ref is None or ref.get("kind") != "CronJob":
            return
        self.enqueue(f"{meta_of(job).get('namespace')}/{ref.get('name')}")

    async def _owned_jobs(self, cj: dict[str, Any]) -> list[dict[str, Any]]:
        meta = meta_of(cj)
        jobs = list(self.jobs_by_owner.get(meta.get("uid") or ""))
        seen = {meta_of(j).get("uid") for j in jobs}
        for ref in status_of(cj).get("active") or []:
            if not isinstance(ref, dict) or ref.get("uid") in seen:
                continue
            # A Job we just created may not have reached the informer yet: ask the server
            # before declaring it missing.
            try:
                job = await self.client.get("jobs", ref.get("name") or "", meta.get("namespace"))
            except APIError as err:
                if err.not_found:
                    continue
                raise
            if meta_of(job).get("uid") == ref.get("uid"):
                jobs.append(job)
        return jobs

    async def reconcile(self, key: Any) -> None:
        cached = self.mine.get(key)
        if cached is None:
            return
        cj = deep_copy(cached)
        jobs = await self._owned_jobs(cj)
        plan = plan_sync(cj, jobs, self.clock())
        for type_, reason, message in plan.events:
            self.events.event(cj, type_, reason, message)
        status = plan.status
        for ref in plan.delete:
            if await delete(self.client, "jobs", ref.get("namespace"), ref.get("name") or "",
                            uid=ref.get("uid"), propagation="Background"):
                self.events.normal(cj, "SuccessfulDelete", f"Deleted job {ref.get('name')}")
        if plan.create is not None:
            created = await self._create(cj, plan.create)
            if created is None:
                return  # retried with backoff; the status is recomputed then
            status.setdefault("active", []).append(job_ref(created))
        if plan.status_changed or plan.create is not None:
            await self.mine.update_status(self.client, cj, status)
        for job in plan.trim:
            if await delete_object(self.client, "jobs", job, propagation="Background"):
                self.events.normal(cj, "SuccessfulDelete", f"Deleted job {name_of(job)}")
        if plan.requeue_after is not None:
            self.enqueue_after(key, plan.requeue_after)

    async def _create(self, cj: dict[str, Any], job: dict[str, Any]) -> Optional[dict[str, Any]]:
        name = job["metadata"]["name"]
        try:
            created = await self.client.create(job)
        except APIError as err:
            if err.code == 409 and err.reason == "AlreadyExists":
                # Created by an earlier pass whose status write was lost: adopt it if ours.
                existing = await self.client.get("jobs", name, job["metadata"]["namespace"])
                ref = controller_ref(existing)
                if ref is not None and ref.get("uid") == meta_of(cj).get("uid"):
                    return existing
                self.log.info("%s: job %s exists and is not ours", object_key(cj), name)
                return None
            self.events.warning(cj, "FailedCreate", f"Error creating job: {err}")
            raise
        self.events.normal(cj, "SuccessfulCreate", f"Created job {name}")
        return created
