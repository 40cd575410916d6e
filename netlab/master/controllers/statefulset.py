"""The StatefulSet controller: named, ordered pods with stable identities.

Each reconcile of a StatefulSet (Kubernetes' ``StatefulSetControl.UpdateStatefulSet``):

1. the update revision: the ControllerRevision of the current template
   (:func:`history.ensure_revision`); the current revision is the one recorded in
   ``status.currentRevision`` while it exists, else the update revision;
2. claim the pods (adopt matching orphans, release mismatches);
3. :func:`statefulset_plan.next_step` says what to create or delete now; a new
   pod is made from the current revision below ``partition`` and from the update
   revision otherwise, after its claims (``volumeClaimTemplates``) exist: each one
   missing is created first (``createPersistentVolumeClaims``), and a claim being
   deleted holds the pod back until it is gone; a pod scaled away whose set says
   ``whenScaled: Delete`` first becomes its claims' owner, so they go with it;
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
from netlab.api.views import meta_of, name_of, status_of
from netlab.client import APIError
from netlab.master.controllers import history, podutil
from netlab.master.controllers import statefulset_plan as sp
from netlab.master.controllers.base import Context, Overlay, OwnerController, delete_object

RESOURCE = "statefulsets"
API_VERSION, KIND = "apps/v1", "StatefulSet"


def _sts_hash(sts: dict[str, Any], collisions: Optional[int]) -> str:
    return history.hash_revision_data(history.revision_data(sts), collisions)


class StatefulSetController(OwnerController):
    name = "statefulset"
    resource, api_version, kind = RESOURCE, API_VERSION, KIND

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.pods_by_ns = ctx.by_namespace("pods")
        self.revisions_by_owner = ctx.by_controller(history.RESOURCE)
        self.events = ctx.recorder("statefulset-controller")
        self.sets = self.watch(RESOURCE)
        self.mine = Overlay(self.sets)
        self.pods = self.watch("pods", self._on_pod)
        self.claims = ctx.informer("persistentvolumeclaims")

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        owner = self.owner_key(pod)
        if owner is not None:
            self.enqueue(owner)
        elif kind != "DELETED" and not podutil.is_terminating(pod):
            self.enqueue_selecting(pod, self.sets.items())

    async def reconcile(self, key: str) -> None:
        sts = self.mine.get(key)
        if sts is None:
            return
        meta = meta_of(sts)
        if meta.get("deletionTimestamp"):
            return
        selector = self.valid_selector(key, sts)
        if selector is None:
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
        pods = await self.claim(sts, selector, self.pods_by_ns.get(meta.get("namespace") or ""))
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
            await self.mine.update_status(self.client, sts, new_status)
        await history.trim(self.client, sts, revisions, {current_name, update_name} | {
            sp.revision_of(p) for p in pods})
        self.requeue_until_available(key, sts, pods, now())
        if error is not None:
            raise error

    async def _apply(self, sts: dict[str, Any], step: sp.Step, current: dict[str, Any],
                     update: dict[str, Any]) -> None:
        name = name_of(sts)

        async def create_one(ordinal: int) -> None:
            if not await self._ensure_claims(sts, ordinal):
                self.enqueue_after(f"{meta_of(sts).get('namespace')}/{name}", 1.0)
                return
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
            await self._hand_claims_to(sts, pod)
            if await delete_object(self.client, "pods", pod):
                self.events.normal(sts, "SuccessfulDelete", f"delete Pod {name_of(pod)} "
                                   f"in StatefulSet {name} successful")

        results = await asyncio.gather(*(create_one(o) for o in step.create),
                                       *(delete_one(p) for p in step.delete),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]

    async def _claim(self, namespace: str, name: str) -> Optional[dict[str, Any]]:
        claim = self.claims.get(f"{namespace}/{name}")
        if claim is not None:
            return claim
        try:  # the cache may lag behind a claim made a moment ago
            return await self.client.get("persistentvolumeclaims", name, namespace)
        except APIError as err:
            if err.not_found:
                return None
            raise

    async def _ensure_claims(self, sts: dict[str, Any], ordinal: int) -> bool:
        """``createPersistentVolumeClaims``: every claim of the pod at ``ordinal`` exists
        before the pod, with upstream's events; False while one is being deleted (the
        pod must not start on a claim about to go: the set looks again shortly)."""
        name, namespace = name_of(sts), meta_of(sts).get("namespace") or "default"
        pod_name = f"{name}-{ordinal}"
        for claim in sp.claims_for(sts, ordinal):
            claim_name = name_of(claim)
            existing = await self._claim(namespace, claim_name)
            if existing is not None:
                if meta_of(existing).get("deletionTimestamp"):
                    self.log.info("%s/%s: pvc %s is being deleted", namespace, name, claim_name)
                    return False
                continue
            try:
                await self.client.create(claim)
            except APIError as err:
                if err.code == 409:
                    continue  # made meanwhile (our cache is behind)
                self.events.warning(sts, "FailedCreate", f"create Claim {claim_name} for Pod "
                                    f"{pod_name} in StatefulSet {name} failed error: {err}")
                raise
            self.events.normal(sts, "SuccessfulCreate", f"create Claim {claim_name} Pod "
                               f"{pod_name} in StatefulSet {name} success")
        return True

    async def _hand_claims_to(self, sts: dict[str, Any], pod: dict[str, Any]) -> None:
        """``whenScaled: Delete``: a pod scaled away owns its claims (and, with
        ``whenDeleted: Delete``, the set no longer does), so the garbage collector removes
        them after the pod."""
        ordinal = sp.ordinal_of(name_of(sts), pod)
        if ordinal is None or sp.in_range(sts, ordinal) or sp.retention(sts)[1] != "Delete":
            return
        namespace = meta_of(sts).get("namespace") or "default"
        wanted = sp.claim_owner_refs(sts, pod, ordinal)
        owners = {meta_of(sts).get("uid"), meta_of(pod).get("uid")}
        for claim in sp.claims_for(sts, ordinal):
            existing = await self._claim(namespace, name_of(claim))
            if existing is None:
                continue
            refs = [r for r in meta_of(existing).get("ownerReferences") or []
                    if r.get("uid") not in owners] + wanted
            if refs != (meta_of(existing).get("ownerReferences") or []):
                await self.client.patch("persistentvolumeclaims", name_of(existing),
                                        {"metadata": {"ownerReferences": refs}}, namespace)
