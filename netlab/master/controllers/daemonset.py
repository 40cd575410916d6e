"""The DaemonSet controller: one pod per eligible node, rolled by revision.

For each DaemonSet, as Kubernetes' ``pkg/controller/daemon``:

1. snapshot the pod template as a ControllerRevision (:mod:`history`), renumbering
   an equal old one when ``kubectl rollout undo`` brought it back;
2. claim the pods (adopt matching orphans, release mismatches) and group them by
   target node: ``spec.nodeName``, or the node a pending pod is pinned to;
3. :func:`plan` decides, per node, from :func:`daemonset_placement.should_run`:
   create a pod where one should run and none does, delete extra or failed pods and
   pods on nodes that may no longer keep them; with ``RollingUpdate``, delete old
   revision pods within ``maxUnavailable`` (unavailable ones first, they cost no
   availability), and the next pass recreates them from the current revision; with
   ``maxSurge`` (and ``maxUnavailable`` 0), start the new pod beside the old one on up
   to ``maxSurge`` nodes and delete the old pod once the new one is available;
4. write the status ``kubectl rollout status ds/x`` reads.

Creations use generated names, so expectations (``expectations.py``) keep a burst of
events from creating a second pod for a node before the first is seen. Pods are
created unbound, pinned by node affinity; the scheduler binds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from netlab.api.objects import now
from netlab.api.views import (
    creation_timestamp_of,
    labels_of,
    meta_of,
    name_of,
    node_spec,
    node_status,
    spec_of,
    status_of,
    uid_of,
)
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers import history, podutil
from netlab.master.controllers.base import (
    Context,
    Overlay,
    OwnerController,
    delete_object,
    omit_zero,
)
from netlab.master.controllers.daemonset_placement import daemon_pod, should_run, target_node
from netlab.master.controllers.expectations import Expectations
from netlab.master.controllers.rollout import int_or_percent

RESOURCE = "daemonsets"
API_VERSION, KIND = "apps/v1", "DaemonSet"
Obj = Mapping[str, Any]


@dataclass
class Plan:
    """What one sync does: nodes to create a pod for, pods to delete, and the status."""

    create: list[str] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)


def _hash(pod: Obj) -> str:
    return labels_of(pod).get(history.HASH_LABEL, "")


def _oldest_first(pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(pods, key=lambda p: (creation_timestamp_of(p),
                                       name_of(p)))


def max_unavailable(ds: Obj, desired: int) -> int:
    """Nodes whose daemon may be down during a rolling update (rounded up, at least 1)."""
    strategy = spec_of(ds).get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    try:
        value = int_or_percent(rolling.get("maxUnavailable", 1), desired, True)
    except ValueError:
        value = 1
    return max(value, 1) if desired else 0


def max_surge(ds: Obj, desired: int) -> int:
    """Nodes that may run an old and a new pod at once; 0 unless ``maxUnavailable`` is 0."""
    rolling = (spec_of(ds).get("updateStrategy") or {}).get("rollingUpdate") or {}
    if rolling.get("maxUnavailable") not in (0, "0%"):
        return 0
    try:
        return int_or_percent(rolling.get("maxSurge", 0), desired, True)
    except ValueError:
        return 0


def plan(ds: Obj, nodes: Sequence[Obj], pods: list[dict[str, Any]], hash_value: str,
         when: datetime) -> Plan:
    """The sync of ``ds`` over ``nodes`` given its claimed ``pods`` (pure)."""
    spec = spec_of(ds)
    min_ready = int(spec.get("minReadySeconds") or 0)
    rolling = ((spec.get("updateStrategy") or {}).get("type") or "RollingUpdate") \
        == "RollingUpdate"
    by_node: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        if podutil.is_terminating(pod):
            continue
        by_node.setdefault(target_node(pod) or "", []).append(pod)
    surge = max_surge(ds, sum(1 for n in nodes if should_run(ds, n)[0]))
    out = Plan()
    desired = current = ready = updated = available = misscheduled = 0
    old_available: list[dict[str, Any]] = []
    surge_candidates: list[str] = []
    unavailable = surging = 0
    names = set()
    for node in nodes:
        name = name_of(node)
        names.add(name)
        run, keep = should_run(ds, node)
        here = by_node.get(name, [])
        if run:
            desired += 1
        if not keep:
            out.delete.extend(here)
            if here:
                misscheduled += 1
            continue
        failed = [p for p in here if podutil.phase(p) == "Failed"]
        out.delete.extend(failed)
        alive = _oldest_first(p for p in here if p not in failed)
        if not run:
            if alive:
                misscheduled += 1  # kept (tolerated), but not one the set wants here
            continue
        if not alive:
            if not failed:
                out.create.append(name)
            unavailable += 1
            continue
        current += 1
        newest = [p for p in alive if _hash(p) == hash_value]
        olds = [p for p in alive if _hash(p) != hash_value]
        if surge and rolling and newest and olds:
            # Surging: the new pod runs beside the old one until it is available.
            new_pod, old_pod = newest[0], olds[0]
            out.delete.extend(newest[1:] + olds[1:])
            counted = old_pod  # as upstream, the status counts the oldest pod of a node
            if podutil.is_available(new_pod, min_ready, when):
                out.delete.append(old_pod)
            else:
                surging += 1
        else:
            # One pod per node: the newest-revision one if any, else the oldest.
            counted = newest[0] if newest else alive[0]
            out.delete.extend(p for p in alive if p is not counted)
        is_available = podutil.is_available(counted, min_ready, when)
        ready += podutil.is_ready(counted)
        available += is_available
        if _hash(counted) == hash_value:
            updated += 1
            if not is_available:
                unavailable += 1
        elif rolling and surge:
            if newest:
                continue  # surging already
            if is_available:
                surge_candidates.append(name)
            else:
                out.create.append(name)  # an unavailable old pod is replaced at once
        elif rolling:
            if is_available:
                old_available.append(counted)
            else:
                out.delete.append(counted)  # costs no availability
                unavailable += 1
    for node_name, here in by_node.items():
        if node_name not in names:
            out.delete.extend(here)  # the node is gone (or the pod was never pinned)
    if rolling and surge:
        out.create.extend(surge_candidates[:max(surge - surging, 0)])
    elif rolling:
        budget = max_unavailable(ds, desired) - unavailable
        out.delete.extend(_oldest_first(old_available)[:max(budget, 0)])
    out.status = {
        "currentNumberScheduled": current, "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired, "numberReady": ready,
        "observedGeneration": meta_of(ds).get("generation"),
        "updatedNumberScheduled": updated, "numberAvailable": available,
        "numberUnavailable": max(desired - available, 0),
    }
    # Upstream's omitempty counters are left out at zero.
    omit_zero(out.status, "updatedNumberScheduled", "numberAvailable", "numberUnavailable")
    return out


class DaemonSetController(OwnerController):
    name = "daemonset"
    resource, api_version, kind = RESOURCE, API_VERSION, KIND

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.pods_by_ns = ctx.by_namespace("pods")
        self.revisions_by_owner = ctx.by_controller(history.RESOURCE)
        self.expectations = Expectations()
        self.events = ctx.recorder("daemonset-controller")
        self.sets = self.watch(RESOURCE, self._on_set)
        self.mine = Overlay(self.sets)
        self.pods = self.watch("pods", self._on_pod)
        self.nodes = self.watch("nodes", self._on_node)

    def _on_set(self, kind: str, ds: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        if kind == "DELETED":
            self.expectations.forget(object_key(ds))
        self.enqueue(object_key(ds))

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        owner = self.owner_key(pod)
        if owner is None:
            if kind != "DELETED" and not podutil.is_terminating(pod):
                self.enqueue_selecting(pod, self.sets.items())
            return
        if kind == "ADDED" and not podutil.is_terminating(pod):
            self.expectations.creation_observed(owner)
        elif kind == "DELETED" or podutil.is_terminating(pod):
            self.expectations.deletion_observed(owner, object_key(pod))
        self.enqueue(owner)
        self.requeue_when_ready_pod_available(owner, self.sets.get(owner), pod, old)

    def _on_node(self, kind: str, node: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        if kind == "MODIFIED" and old is not None and _node_facts(old) == _node_facts(node):
            return  # a heartbeat: nothing a DaemonSet decides on changed
        for ds in self.sets.items():
            self.enqueue(object_key(ds))

    async def reconcile(self, key: str) -> None:
        ds = self.mine.get(key)
        if ds is None:
            self.expectations.forget(key)
            return
        meta = meta_of(ds)
        if meta.get("deletionTimestamp"):
            return
        selector = self.valid_selector(key, ds)
        if selector is None:
            return
        revisions = self.revisions_by_owner.get(meta.get("uid") or "")
        collisions = status_of(ds).get("collisionCount")
        current, collisions = await history.ensure_revision(
            self.client, ds, API_VERSION, KIND, revisions, history.daemonset_hash, collisions)
        hash_value = labels_of(current).get(
            history.HASH_LABEL, "")
        pods = await self.claim(ds, selector, self.pods_by_ns.get(meta.get("namespace") or ""))
        when = now()
        nodes = sorted(self.nodes.items(), key=name_of)
        step = plan(ds, nodes, pods, hash_value, when)
        error: Optional[Exception] = None
        if self.expectations.satisfied(key):
            try:
                await self._apply(key, ds, step, hash_value)
            except APIError as err:
                error = err
        status = dict(step.status)
        if collisions is not None:
            status["collisionCount"] = collisions
        status = {k: v for k, v in status.items() if v is not None}
        old_status = status_of(ds)
        if status != {k: v for k, v in old_status.items() if k != "conditions"}:
            if old_status.get("conditions"):
                status["conditions"] = old_status["conditions"]
            await self.mine.update_status(self.client, ds, status)
        await self._trim(ds, current, pods)
        self.requeue_until_available(key, ds, pods, when)
        if error is not None:
            raise error

    async def _apply(self, key: str, ds: dict[str, Any], step: Plan, hash_value: str) -> None:
        meta = meta_of(ds)
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        owner_ref = podutil.owner_reference(ds, API_VERSION, KIND)
        if step.create:
            self.expectations.expect_creations(key, len(step.create))
        elif step.delete:
            self.expectations.expect_deletions(key, [object_key(p) for p in step.delete])

        async def create_one(node: str) -> None:
            template = daemon_pod(ds, node, hash_value)
            pod = podutil.pod_from_template(template, namespace,
                                            podutil.generate_name_prefix(name), owner_ref)
            try:
                created = await self.client.create(pod)
            except Exception:
                self.expectations.creation_observed(key)
                raise
            self.events.normal(ds, "SuccessfulCreate",
                               f"Created pod: {meta_of(created).get('name')}")

        async def delete_one(pod: dict[str, Any]) -> None:
            try:
                await delete_object(self.client, "pods", pod)
            except Exception:
                self.expectations.deletion_observed(key, object_key(pod))
                raise
            self.events.normal(ds, "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")

        jobs = [create_one(n) for n in step.create]
        if not step.create:
            jobs += [delete_one(p) for p in step.delete]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]
        if step.create and step.delete:
            self.enqueue(key)  # the deletions come next, once the creations are seen

    async def _trim(self, ds: dict[str, Any], current: dict[str, Any],
                    pods: list[dict[str, Any]]) -> None:
        keep = {name_of(current)}
        name = name_of(ds)
        keep.update(history.revision_name(name, h) for h in (_hash(p) for p in pods) if h)
        await history.trim(self.client, ds, self.revisions_by_owner.get(uid_of(ds)), keep)


def _node_facts(node: Obj) -> tuple:
    meta, spec = meta_of(node), node_spec(node)
    ready = next((c.get("status") for c in node_status(node).get("conditions") or []
                  if isinstance(c, dict) and c.get("type") == "Ready"), None)
    return (meta.get("labels"), spec.get("taints"), spec.get("unschedulable"), ready)
