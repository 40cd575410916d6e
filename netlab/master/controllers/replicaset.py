"""The ReplicaSet controller: exactly ``spec.replicas`` pods, no more, no fewer.

For each ReplicaSet it claims the active pods of its namespace (adopting
orphans its selector matches, releasing pods that stopped matching, see
``base.claim``), compares their number with ``spec.replicas``, and creates or
deletes the difference. Then it writes ``status`` (replicas, fullyLabeled,
ready, available, observedGeneration and the ReplicaFailure condition), which
the Deployment controller reads to drive a rollout.

Two things make it exact, as in Kubernetes' ``replica_set.go``:

* expectations (``expectations.py``): after asking for N pods it does not
  manage replicas again until the N creations have been observed through the
  informer, so a burst of events never makes it overshoot;
* creations go in slow-start batches (1, 2, 4, ...), so a failing create
  (quota, a terminating namespace) costs one request, not hundreds.

Restart safety follows from the informers: a restarted controller manager
waits for its first list, which holds every pod ever acknowledged, before
reconciling, so ``kill -9`` in the middle of a scale-up ends at exactly
``spec.replicas``. Pods to delete are ranked by ``podutil.pods_to_delete``:
unscheduled, pending and not-ready pods first, then pods on nodes crowded
with their siblings, then the youngest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any, Callable, Optional

from netlab.api.objects import now
from netlab.api.timefmt import format_time
from netlab.api.views import (
    controller_ref,
    labels_of,
    meta_of,
    name_of,
    namespace_of,
    spec_of,
    status_of,
    template_of,
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

RESOURCE = "replicasets"
API_VERSION, KIND = "apps/v1", "ReplicaSet"
BURST_REPLICAS = 500  # at most this many creates or deletes per reconcile (Kubernetes' burst)
SLOW_START_INITIAL = 1


def replicas_of(obj: dict[str, Any]) -> int:
    value = spec_of(obj).get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def calculate_status(rs: dict[str, Any], pods: list[dict[str, Any]], when: datetime,
                     manage_error: Optional[str] = None,
                     diff: int = 0) -> dict[str, Any]:
    """``calculateStatus``: the status for ``rs`` owning the active ``pods``."""
    spec = spec_of(rs)
    template_labels = labels_of(template_of(rs))
    min_ready = int(spec.get("minReadySeconds") or 0)
    old = status_of(rs)
    status: dict[str, Any] = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(
            1 for p in pods
            if template_labels.items() <= labels_of(p).items()),
        "readyReplicas": sum(1 for p in pods if podutil.is_ready(p)),
        "availableReplicas": sum(1 for p in pods if podutil.is_available(p, min_ready, when)),
        "observedGeneration": meta_of(rs).get("generation"),
    }
    conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    if manage_error:
        reason = "FailedCreate" if diff < 0 else "FailedDelete"
        previous = next((c for c in old.get("conditions") or []
                         if c.get("type") == "ReplicaFailure"), None)
        conditions.append({"type": "ReplicaFailure", "status": "True", "reason": reason,
                           "message": manage_error,
                           "lastTransitionTime": (previous or {}).get("lastTransitionTime")
                           or format_time(when)})
    if conditions:
        status["conditions"] = conditions
    return omit_zero(status, "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
                     "observedGeneration")


async def slow_start_batch(count: int, initial: int,
                           create: Callable[[], Awaitable[None]]
                           ) -> tuple[int, int, Optional[Exception]]:
    """Run ``create()`` ``count`` times in batches of 1, 2, 4, ...; stop after the first
    batch with a failure. Returns (successes, attempts, first error)."""
    done = attempted = 0
    batch = min(count, initial)
    while batch > 0:
        attempted += batch
        results = await asyncio.gather(*(create() for _ in range(batch)),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result  # cancellation
        errors = [r for r in results if isinstance(r, Exception)]
        done += batch - len(errors)
        if errors:
            return done, attempted, errors[0]
        count -= batch
        batch = min(2 * batch, count)
    return done, attempted, None


class ReplicaSetController(OwnerController):
    """Also the ReplicationController manager (``replication.py``), which differs only in
    the class attributes below and in how its selector is read (:meth:`selector_of`)."""

    name = "replicaset"
    resource, api_version, kind = RESOURCE, API_VERSION, KIND
    component = "replicaset-controller"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.pods_by_ns = ctx.by_namespace("pods")
        self.pods_by_owner = ctx.by_controller("pods")
        self.sets_by_ns = ctx.by_namespace(self.resource)
        self.sets_by_owner = ctx.by_controller(self.resource)
        self.expectations = Expectations()
        self.events = ctx.recorder(self.component)
        self.sets = self.watch(self.resource, self._on_set)
        self.mine = Overlay(self.sets)  # our status writes, until the watch shows them
        self.pods = self.watch("pods", self._on_pod)

    # --- events -------------------------------------------------------------------------------

    def _on_set(self, kind: str, rs: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        key = object_key(rs)
        if kind == "DELETED":
            self.expectations.forget(key)
        self.enqueue(key)

    def _enqueue_matching(self, pod: dict[str, Any]) -> None:
        """An orphan: wake every ReplicaSet that might adopt it."""
        self.enqueue_selecting(pod, self.sets_by_ns.get(namespace_of(pod)))

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        pod_key = object_key(pod)
        owner = self.owner_key(pod, self.sets)
        if kind == "ADDED":
            if owner is not None:
                if podutil.is_terminating(pod):
                    self.expectations.deletion_observed(owner, pod_key)
                else:
                    self.expectations.creation_observed(owner)
                self.enqueue(owner)
            elif not podutil.is_terminating(pod):
                self._enqueue_matching(pod)
            return
        if kind == "DELETED":
            if owner is not None:
                self.expectations.deletion_observed(owner, pod_key)
                self.enqueue(owner)
            return
        # MODIFIED: a pod that starts terminating counts as deleted for expectations.
        if owner is not None and podutil.is_terminating(pod):
            self.expectations.deletion_observed(owner, pod_key)
        self.enqueue_former_owner(owner, old, self.sets)
        if owner is not None:
            self.enqueue(owner)
            self.requeue_when_ready_pod_available(owner, self.sets.get(owner), pod, old)
        elif not podutil.is_terminating(pod):
            labels_changed = old is None or meta_of(old).get("labels") != \
                meta_of(pod).get("labels")
            if labels_changed or controller_ref(old or {}) is not None:
                self._enqueue_matching(pod)

    # --- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        rs = self.mine.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        meta = meta_of(rs)
        namespace = meta.get("namespace") or ""
        selector = self.valid_selector(key, rs)
        if selector is None:
            return
        needs_sync = self.expectations.satisfied(key)
        candidates = [p for p in self.pods_by_ns.get(namespace) if podutil.is_active(p)]
        pods = await self.claim(rs, selector, candidates,
                                recorder=lambda what, pod: self.log.info(
                                    "%s: %s pod %s", key, what, object_key(pod)))
        manage_error, diff = None, len(pods) - replicas_of(rs)
        if needs_sync and not meta.get("deletionTimestamp") and diff != 0:
            try:
                await self._manage(key, rs, pods, diff)
            except APIError as err:
                manage_error = str(err)
        when = now()
        status = calculate_status(rs, pods, when, manage_error, diff)
        if status != status_of(rs):
            await self.mine.update_status(self.client, rs, status)
        self.requeue_until_available(key, rs, pods, when)
        if manage_error:
            raise APIError(500, {"message": manage_error})  # retried with backoff

    async def _manage(self, key: str, rs: dict[str, Any], pods: list[dict[str, Any]],
                      diff: int) -> None:
        if diff < 0:
            await self._create(key, rs, min(-diff, BURST_REPLICAS), len(pods))
        else:
            await self._delete(key, rs, pods, min(diff, BURST_REPLICAS))

    async def _create(self, key: str, rs: dict[str, Any], count: int, have: int) -> None:
        meta = meta_of(rs)
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        template = spec_of(rs).get("template") or {}
        owner_ref = podutil.owner_reference(rs, self.api_version, self.kind)
        self.expectations.expect_creations(key, count)
        self.log.info("%s: creating %d pods (have %d, want %d)", key, count, have,
                      replicas_of(rs))
        names: list[str] = []

        async def create_one() -> None:
            pod = podutil.pod_from_template(template, namespace,
                                            podutil.generate_name_prefix(name), owner_ref)
            try:
                created = await self.client.create(pod)
            except Exception:
                self.expectations.creation_observed(key)  # it will never be observed
                raise
            names.append(name_of(created))

        done, attempted, error = await slow_start_batch(count, SLOW_START_INITIAL, create_one)
        if names:
            self.events.normal(rs, "SuccessfulCreate", f"Created pod: {names[0]}"
                               if len(names) == 1 else
                               f"Created {len(names)} pods: {', '.join(sorted(names))}")
        if error is not None:
            # Creates never attempted will never be observed either.
            self.expectations.creation_observed(key, count - attempted)
            self.log.warning("%s: created %d of %d pods: %s", key, done, count, error)
            self.events.warning(rs, "FailedCreate", f"Error creating: {error}")
            raise error

    async def _delete(self, key: str, rs: dict[str, Any], pods: list[dict[str, Any]],
                      count: int) -> None:
        related = self._related_pods(rs) or pods
        victims = podutil.pods_to_delete(pods, count, related)
        victim_keys = [object_key(p) for p in victims]
        self.expectations.expect_deletions(key, victim_keys)
        self.log.info("%s: deleting %d pods (have %d, want %d): %s", key, count, len(pods),
                      replicas_of(rs), ", ".join(victim_keys))

        async def delete_one(pod: Mapping[str, Any]) -> None:
            try:
                await delete_object(self.client, "pods", pod)
            except Exception:
                self.expectations.deletion_observed(key, object_key(pod))
                raise

        results = await asyncio.gather(*(delete_one(p) for p in victims), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        deleted = [n for n, r in zip(victim_keys, results) if not isinstance(r, Exception)]
        if deleted:
            names = [k.split("/", 1)[1] for k in deleted]
            self.events.normal(rs, "SuccessfulDelete", f"Deleted pod: {names[0]}"
                               if len(names) == 1 else
                               f"Deleted {len(names)} pods: {', '.join(sorted(names))}")
        if errors:
            raise errors[0]

    def _related_pods(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        """The active pods of this ReplicaSet and of its siblings (same Deployment): the
        ones whose placement makes a node 'crowded' (``getIndirectlyRelatedPods``)."""
        ref = controller_ref(rs)
        sets = self.sets_by_owner.get(ref["uid"]) if ref and ref.get("uid") else [rs]
        related: list[dict[str, Any]] = []
        for sibling in sets or [rs]:
            uid = uid_of(sibling)
            related.extend(p for p in self.pods_by_owner.get(uid) if podutil.is_active(p))
        return related
