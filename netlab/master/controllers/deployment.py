"""The Deployment controller: ReplicaSets per template, rolled over step by step.

A Deployment owns one ReplicaSet per pod template it ever ran, named
``<deployment>-<pod-template-hash>`` with that hash in its selector and pod
labels, and its revision in ``deployment.kubernetes.io/revision``. Each
reconcile, as ``sync.go`` / ``rolling.go`` / ``recreate.go`` do:

1. claim the namespace's ReplicaSets (adopt orphans matching the selector,
   release those that stopped matching);
2. find the ReplicaSet whose template equals the Deployment's (ignoring the
   hash label), creating it if needed, and give it the next revision — which
   is also how ``kubectl rollout undo`` works: it copies an old ReplicaSet's
   template back, that set becomes the new one, and its revision moves up;
3. if only the replica count changed (or the Deployment is paused), resize
   the ReplicaSets proportionally; otherwise take one rollout step: grow the
   new set within ``maxSurge``, shrink old ones within ``maxUnavailable``
   (all the math is in ``rollout.py``), or for ``Recreate`` stop every old
   pod before starting new ones;
4. write the status and the Available/Progressing conditions that ``kubectl
   rollout status`` waits on, and prune ReplicaSets beyond
   ``revisionHistoryLimit`` once the rollout is complete.

The next step is taken when the ReplicaSets' status changes, which the
ReplicaSet controller writes as pods become available: the controller only
reacts to events, it never polls.
"""

from __future__ import annotations

from typing import Any, Optional

from netlab.api.objects import deep_copy, now
from netlab.api.views import (
    controller_ref,
    is_terminating,
    meta_of,
    name_of,
    namespace_of,
    spec_of,
    status_of,
    uid_of,
)
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers import podutil, rollout
from netlab.master.controllers.base import (
    Context,
    Overlay,
    OwnerController,
    delete_object,
    update_status,
)
from netlab.master.controllers.rollout import replicas

RESOURCE = "deployments"
API_VERSION, KIND = "apps/v1", "Deployment"


class DeploymentController(OwnerController):
    name = "deployment"
    resource, api_version, kind = RESOURCE, API_VERSION, KIND

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.deployments_by_ns = ctx.by_namespace(RESOURCE)
        self.sets_by_ns = ctx.by_namespace("replicasets")
        self.pods_by_owner = ctx.by_controller("pods")
        self.events = ctx.recorder("deployment-controller")
        self.deployments = self.watch(RESOURCE)
        self.mine = Overlay(self.deployments)
        self.sets = self.watch("replicasets", self._on_set)
        self.my_sets = Overlay(self.sets)
        self.watch("pods", self._on_pod)

    # --- events -------------------------------------------------------------------------------

    def _on_set(self, kind: str, rs: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        owner = self.owner_key(rs, self.deployments)
        self.enqueue_former_owner(owner, old, self.deployments)
        if owner is not None:
            self.enqueue(owner)
        elif kind != "DELETED" and not is_terminating(rs):
            self.enqueue_selecting(rs, self.deployments_by_ns.get(namespace_of(rs)))

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        # Only Recreate waits for pods: new pods start once every old one is gone.
        if kind != "DELETED":
            return
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.sets.get(f"{meta_of(pod).get('namespace')}/{ref.get('name')}")
        owner = self.owner_key(rs, self.deployments) if rs is not None else None
        d = self.deployments.get(owner) if owner else None
        if d is not None and (spec_of(d).get("strategy") or {}).get("type") == \
                "Recreate":
            self.enqueue(owner)

    # --- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        cached = self.mine.get(key)
        if cached is None:
            return
        d = deep_copy(cached)  # a working copy: status conditions are edited in place
        d.setdefault("status", {})
        original_status = deep_copy(status_of(cached))
        meta = meta_of(d)
        selector = self.valid_selector(key, d)
        if selector is None:
            return
        if selector.empty:
            self.events.warning(d, "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector "
                                "is required.")
            return
        candidates = [self.my_sets.latest(rs) for rs in self.sets_by_ns.get(
            meta.get("namespace") or "")]
        sets = await self.claim(d, selector, candidates, "replicasets",
                                lambda what, rs: self.log.info("%s: %s replicaset %s", key,
                                                               what, object_key(rs)))
        if meta.get("deletionTimestamp"):
            new, olds = await self._new_and_old(d, sets, create=False)
            await self._write_status(d, original_status, rollout.calculate_status(
                d, [*olds, *([new] if new else [])], new, now()))
            return
        self._paused_condition(d)
        spec = spec_of(d)
        if spec.get("paused") or rollout.is_scaling_event(d, sets):
            await self._sync(d, sets, original_status)
        elif (spec.get("strategy") or {}).get("type") == "Recreate":
            await self._recreate(d, sets, original_status)
        else:
            await self._rolling(d, sets, original_status)

    async def _rolling(self, d: dict[str, Any], sets: list[dict[str, Any]],
                       original_status: dict[str, Any]) -> None:
        new, olds = await self._new_and_old(d, sets, create=True)
        assert new is not None
        all_sets = [*olds, new]
        if replicas(new) != replicas(d):  # reconcileNewReplicaSet
            target = replicas(d) if replicas(new) > replicas(d) else \
                rollout.new_rs_replicas(d, all_sets, new)
            if target != replicas(new):
                new = await self._scale(d, new, target)
                await self._rollout_status(d, original_status, [*olds, new], new)
                return
        plan = rollout.old_scale_down(d, rollout.active(olds), new)
        if plan:  # reconcileOldReplicaSets
            olds = [await self._scale(d, rs, plan[name_of(rs)])
                    if name_of(rs) in plan else rs for rs in olds]
            await self._rollout_status(d, original_status, [*olds, new], new)
            return
        if rollout.is_complete(d, d["status"]):
            await self._cleanup(d, olds)
        await self._rollout_status(d, original_status, all_sets, new)

    async def _recreate(self, d: dict[str, Any], sets: list[dict[str, Any]],
                        original_status: dict[str, Any]) -> None:
        new, olds = await self._new_and_old(d, sets, create=False)
        live = rollout.active(olds)
        if live:  # scaleDownOldReplicaSetsForRecreate
            olds = [await self._scale(d, rs, 0) if rs in live else rs for rs in olds]
            await self._rollout_status(d, original_status, [*olds, *([new] if new else [])], new)
            return
        if self._old_pods_running(olds):
            await self._rollout_status(d, original_status, [*olds, *([new] if new else [])], new)
            return
        if new is None:
            new, olds = await self._new_and_old(d, sets, create=True)
            assert new is not None
        if replicas(new) != replicas(d):
            new = await self._scale(d, new, replicas(d))
        if rollout.is_complete(d, d["status"]):
            await self._cleanup(d, olds)
        await self._rollout_status(d, original_status, [*olds, new], new)

    def _old_pods_running(self, olds: list[dict[str, Any]]) -> bool:
        for rs in olds:
            if (status_of(rs).get("replicas") or 0) > 0:
                return True
            uid = uid_of(rs)
            if any(not podutil.is_finished(p) for p in self.pods_by_owner.get(uid)):
                return True
        return False

    async def _sync(self, d: dict[str, Any], sets: list[dict[str, Any]],
                    original_status: dict[str, Any]) -> None:
        """A scaling event or a paused deployment: resize, no rollout step."""
        new, olds = await self._new_and_old(d, sets, create=False)
        plan = rollout.proportional_scale(d, new, olds)
        every = [*olds, *([new] if new else [])]
        # Every active set is re-annotated with the new size, so the event ends here.
        resized = {name_of(rs): await self._scale(d, rs, plan.get(name_of(rs),
                                                                       replicas(rs)))
                   for rs in every if name_of(rs) in plan or replicas(rs) > 0}
        every = [resized.get(name_of(rs), rs) for rs in every]
        new = resized.get(name_of(new), new) if new else None
        if spec_of(d).get("paused"):
            await self._cleanup(d, [rs for rs in every if rs is not new])
        await self._write_status(d, original_status,
                                 rollout.calculate_status(d, every, new, now()))

    # --- ReplicaSets --------------------------------------------------------------------------

    async def _new_and_old(self, d: dict[str, Any], sets: list[dict[str, Any]], *,
                           create: bool) -> tuple[Optional[dict[str, Any]], list[dict[str, Any]]]:
        """``getAllReplicaSetsAndSyncRevision``: the new set (created if asked) and the
        old ones; the new set's revision annotations and the deployment's follow."""
        new = rollout.find_new(d, sets)
        olds = [rs for rs in sets if rs is not new]
        next_revision = rollout.max_revision(olds) + 1
        min_ready = spec_of(d).get("minReadySeconds") or 0
        if new is not None:
            copy = deep_copy(new)
            changed = rollout.set_new_rs_annotations(d, copy, next_revision, exists=True)
            if changed or spec_of(copy).get("minReadySeconds", 0) != min_ready:
                copy["spec"]["minReadySeconds"] = min_ready
                new = await self._patch_set(copy, {
                    "metadata": {"annotations": copy["metadata"].get("annotations")},
                    "spec": {"minReadySeconds": min_ready}})
            await self._set_revision(d, rollout.revision(new))
            if rollout.deadline(d) is not None and \
                    rollout.condition(d["status"], "Progressing") is None:
                rollout.set_condition(d["status"], "Progressing", "True", rollout.FOUND_NEW_RS,
                                      f'Found new replica set "{name_of(new)}"', now())
            return new, olds
        if not create:
            return None, olds
        collisions = int(d["status"].get("collisionCount") or 0)
        spec = spec_of(d)
        rs = rollout.new_replica_set(d, rollout.template_hash(spec.get("template") or {},
                                                              collisions),
                                     0, next_revision,
                                     podutil.owner_reference(d, API_VERSION, KIND))
        rs["spec"]["replicas"] = rollout.new_rs_replicas(d, [*olds, rs], rs)
        namespace = meta_of(d).get("namespace")
        try:
            created = await self.client.create(rs)
            existed = False
        except APIError as err:
            if err.reason != "AlreadyExists":
                raise
            created = await self.client.get("replicasets", name_of(rs), namespace)
            ref = controller_ref(created)
            if not (ref and ref.get("uid") == meta_of(d).get("uid") and
                    rollout.equal_ignore_hash(spec.get("template"),
                                              spec_of(created).get("template"))):
                # A different set holds the name: hash again with the next collision count.
                d["status"]["collisionCount"] = collisions + 1
                await update_status(self.client, d, d["status"], RESOURCE)
                raise APIError(409, {"message": f"replica set name {name_of(rs)} is "
                                     "taken; retrying with a new hash"}) from err
            existed = True
        self.my_sets.record(created)
        size = replicas(created)
        if not existed:
            self.log.info("%s: created replica set %s (revision %d, %d replicas)",
                          object_key(d), name_of(created), next_revision, size)
            if size > 0:
                self.events.normal(d, "ScalingReplicaSet", f"Scaled up replica set "
                                   f"{name_of(created)} from 0 to {size}")
            if rollout.deadline(d) is not None:
                rollout.set_condition(d["status"], "Progressing", "True", rollout.NEW_RS_CREATED,
                                      f'Created new replica set "{name_of(created)}"',
                                      now())
        await self._set_revision(d, rollout.revision(created))
        return created, olds

    async def _scale(self, d: dict[str, Any], rs: dict[str, Any], size: int) -> dict[str, Any]:
        """``scaleReplicaSetAndRecordEvent``: the size and the replica annotations."""
        desired = replicas(d)
        maximum = desired + rollout.max_surge(d)
        before = replicas(rs)
        if before == size and not rollout.replicas_annotations_need_update(rs, desired, maximum):
            return rs
        copy = deep_copy(rs)
        copy.setdefault("spec", {})["replicas"] = size
        rollout.set_replicas_annotations(copy, desired, maximum)
        updated = await self._patch_set(copy, {
            "metadata": {"annotations": {rollout.DESIRED_REPLICAS: str(desired),
                                         rollout.MAX_REPLICAS: str(maximum)}},
            "spec": {"replicas": size}})
        if before != size:
            direction = "up" if size > before else "down"
            self.log.info("%s: scaled %s replica set %s from %d to %d", object_key(d),
                          direction, name_of(rs), before, size)
            self.events.normal(d, "ScalingReplicaSet", f"Scaled {direction} replica set "
                               f"{name_of(rs)} from {before} to {size}")
        return updated

    async def _patch_set(self, rs: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        """A merge patch pinned to the set's uid. No resourceVersion: the ReplicaSet
        controller writes the status all the time, and the spec is ours alone."""
        meta = meta_of(rs)
        patch.setdefault("metadata", {})["uid"] = meta.get("uid")
        updated = await self.client.patch("replicasets", meta.get("name", ""), patch,
                                          meta.get("namespace"))
        return self.my_sets.record(updated)

    async def _set_revision(self, d: dict[str, Any], revision: int) -> None:
        """The deployment carries its new set's revision (``SetDeploymentRevision``)."""
        value = str(revision)
        meta = d["metadata"]
        if (meta.get("annotations") or {}).get(rollout.REVISION) == value:
            return
        updated = await self.client.patch(RESOURCE, meta.get("name", ""), {"metadata": {
            "uid": meta.get("uid"), "annotations": {rollout.REVISION: value}}},
            meta.get("namespace"))
        self.mine.record(updated)
        d["metadata"] = updated["metadata"]

    async def _cleanup(self, d: dict[str, Any], olds: list[dict[str, Any]]) -> None:
        for rs in rollout.cleanup_candidates(d, olds):
            self.log.info("%s: deleting old replica set %s (revision %d, beyond the history "
                          "limit)", object_key(d), meta_of(rs).get("name"), rollout.revision(rs))
            await delete_object(self.client, "replicasets", rs)

    # --- status -------------------------------------------------------------------------------

    def _paused_condition(self, d: dict[str, Any]) -> None:
        """``checkPausedConditions``: Progressing=Unknown while paused (not over a timeout)."""
        if rollout.deadline(d) is None:
            return
        cond = rollout.condition(d["status"], "Progressing")
        if cond is not None and cond.get("reason") == rollout.TIMED_OUT:
            return
        paused = bool(spec_of(d).get("paused"))
        shown = cond is not None and cond.get("reason") == rollout.PAUSED
        if paused and not shown:
            rollout.set_condition(d["status"], "Progressing", "Unknown", rollout.PAUSED,
                                  "Deployment is paused", now())
        elif not paused and shown:
            rollout.set_condition(d["status"], "Progressing", "Unknown", rollout.RESUMED,
                                  "Deployment is resumed", now())

    async def _rollout_status(self, d: dict[str, Any], original_status: dict[str, Any],
                              all_sets: list[dict[str, Any]],
                              new: Optional[dict[str, Any]]) -> None:
        when = now()
        status = rollout.rollout_status(d, all_sets, new, when)
        _replica_failures(status, all_sets, when)
        await self._write_status(d, original_status, status)
        wait = rollout.seconds_to_deadline(d, status, when)
        if wait is not None:
            self.enqueue_after(object_key(d), wait)

    async def _write_status(self, d: dict[str, Any], original: dict[str, Any],
                            status: dict[str, Any]) -> None:
        if status == original:
            return
        await self.mine.update_status(self.client, d, status)


def _replica_failures(status: dict[str, Any], sets: list[dict[str, Any]], when: Any) -> None:
    """A ReplicaSet's ReplicaFailure (say, pods it cannot create) shows on the Deployment."""
    failure = next((c for rs in sets for c in status_of(rs).get("conditions") or []
                    if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
    if failure is not None:
        rollout.set_condition(status, "ReplicaFailure", "True", failure.get("reason", ""),
                              failure.get("message", ""), when)
    elif rollout.condition(status, "ReplicaFailure") is not None:
        status["conditions"] = [c for c in status["conditions"]
                                if c.get("type") != "ReplicaFailure"]
        if not status["conditions"]:
            del status["conditions"]
