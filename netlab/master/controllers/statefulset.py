"""The StatefulSet controller: named, ordered pods with stable identities.

Each reconcile of a StatefulSet (Kubernetes' ``StatefulSetControl.UpdateStatefulSet``):

1. the update revision: the ControllerRevision of the current template
   (:func:`history.ensure_revision`); the current revision is the one recorded in
   ``status.currentRevision`` while it exists, else the update revision;
2. claim the pods (adopt matching orphans, release mismatches);
3. :func:`statefulset_plan.next_step` says what to create or delete now; a new
   pod is made from the current revision below ``partition`` and from the update
   revision otherwise;
4. write the status, then trim revisions beyond ``revisionHistoryLimit`` that no
   pod uses.

Pod names are fixed, so a create racing a stale cache fails with AlreadyExists
(which only means "wait for the watch") instead of making a second pod: no
expectations are needed, as upstream has none for StatefulSets.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from netlab.api.objects import now
from netlab.api.selectors import SelectorError, label_selector_from_object
from netlab.api.views import controller_ref, labels_of, meta_of, name_of, spec_of, status_of
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers import history, podutil
from netlab.master.controllers import statefulset_plan as sp
from netlab.master.controllers.base import (
    Context,
    Controller,
    Overlay,
    claim,
    delete,
    fresh_owner_check,
    update_status,
)

RESOURCE = "statefulsets"
API_VERSION, KIND = "apps/v1", "StatefulSet"


def _sts_hash(sts: dict[str, Any], collisions: Optional[int]) -> str:
    return history.hash_revision_data(history.revision_data(sts), collisions)


class StatefulSetController(Controller):
    name = "statefulset"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.sets = ctx.informer(RESOURCE)
        self.pods = ctx.informer("pods")
        self.revisions = ctx.informer(history.RESOURCE)
        self.pods_by_ns = ctx.by_namespace("pods")
        self.revisions_by_owner = ctx.by_controller(history.RESOURCE)
        self.mine = Overlay(self.sets)
        self.events = ctx.recorder("statefulset-controller")
        self.sets.add_handler(lambda kind, sts, old: self.enqueue(object_key(sts)))
        self.pods.add_handler(self._on_pod)

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        ref = controller_ref(pod)
        namespace = meta_of(pod).get("namespace")
        if ref is not None and ref.get("kind") == KIND:
            self.enqueue(f"{namespace}/{ref.get('name')}")
            return
        if kind == "DELETED" or podutil.is_terminating(pod):
            return
        labels = labels_of(pod)
        for sts in self.sets.items():
            if meta_of(sts).get("namespace") != namespace:
                continue
            try:
                if label_selector_from_object(spec_of(sts).get("selector")).matches(
                        labels):
                    self.enqueue(object_key(sts))
            except SelectorError:
                continue

    async def reconcile(self, key: str) -> None:
        sts = self.mine.get(key)
        if sts is None:
            return
        meta = meta_of(sts)
        if meta.get("deletionTimestamp"):
            return
        try:
            selector = label_selector_from_object(spec_of(sts).get("selector"))
        except SelectorError as err:
            self.log.warning("%s: invalid selector: %s", key, err)
            return
        revisions = self.revisions_by_owner.get(meta.get("uid") or "")
        status = status_of(sts)
        update, collisions = await history.ensure_revision(
            self.client, sts, API_VERSION, KIND, revisions, _sts_hash,
            status.get("collisionCount"))
        update_name = name_of(update)
        by_name = {meta_of(r).get("name"): r for r in revisions}
        by_name[update_name] = update
        current_name = status.get("currentRevision") or ""
        if current_name not in by_name:
            current_name = update_name
        owner_ref = podutil.owner_reference(sts, API_VERSION, KIND)
        candidates = self.pods_by_ns.get(meta.get("namespace") or "")
        pods = await claim(self.client, sts, owner_ref, selector, candidates, "pods",
                           fresh_owner_check(self.client, RESOURCE, sts))
        name = meta.get("name", "")
        pods = [p for p in pods if sp.ordinal_of(name, p) is not None]
        step = sp.next_step(sts, pods, update_name)
        if step.waiting:
            self.log.debug("%s: %s", key, step.waiting)
        error: Optional[Exception] = None
        try:
            await self._apply(sts, step, by_name[current_name], update)
        except APIError as err:
            error = err
        new_status = sp.calculate_status(sts, pods, current_name, update_name, now(), collisions)
        if status.get("conditions"):
            new_status["conditions"] = status["conditions"]
        if new_status != status:
            written = await update_status(self.client, sts, new_status, RESOURCE)
            if written is not None:
                self.mine.record(written)
        await self._trim(sts, revisions, {current_name, update_name} | {
            sp.revision_of(p) for p in pods})
        min_ready = int(spec_of(sts).get("minReadySeconds") or 0)
        when = now()
        waits = [w for p in pods
                 if (w := podutil.seconds_until_available(p, min_ready, when)) is not None]
        if waits:
            self.enqueue_after(key, min(waits) + 0.1)
        if error is not None:
            raise error

    async def _apply(self, sts: dict[str, Any], step: sp.Step, current: dict[str, Any],
                     update: dict[str, Any]) -> None:
        name = name_of(sts)

        async def create_one(ordinal: int) -> None:
            revision = current if sp.uses_current_revision(sts, ordinal) else update
            template = history.template_of(revision)
            pod = sp.pod_for(sts, template, ordinal,
                             name_of(revision))
            try:
                await self.client.create(pod)
            except APIError as err:
                if err.code == 409:
                    return  # our cache is behind: the pod exists, the watch will show it
                self.events.warning(sts, "FailedCreate", f"create Pod {name}-{ordinal} in "
                                    f"StatefulSet {name} failed error: {err}")
                raise
            self.events.normal(sts, "SuccessfulCreate",
                               f"create Pod {name}-{ordinal} in StatefulSet {name} successful")

        async def delete_one(pod: dict[str, Any]) -> None:
            pmeta = meta_of(pod)
            if await delete(self.client, "pods", pmeta.get("namespace"), pmeta.get("name", ""),
                            uid=pmeta.get("uid")):
                self.events.normal(sts, "SuccessfulDelete", f"delete Pod {pmeta.get('name')} "
                                   f"in StatefulSet {name} successful")

        results = await asyncio.gather(*(create_one(o) for o in step.create),
                                       *(delete_one(p) for p in step.delete),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]

    async def _trim(self, sts: dict[str, Any], revisions: list[dict[str, Any]],
                    keep: set[str]) -> None:
        limit = spec_of(sts).get("revisionHistoryLimit")
        limit = limit if isinstance(limit, int) else 10
        for revision in history.to_trim(revisions, limit, keep):
            rmeta = meta_of(revision)
            await delete(self.client, history.RESOURCE, rmeta.get("namespace"),
                         rmeta.get("name", ""), uid=rmeta.get("uid"))
