"""The disruption controller: keeps each PodDisruptionBudget's status true to its pods.

As pkg/controller/disruption does, for every PDB it finds the pods its (non-empty)
selector covers and computes:

* ``expectedPods``: the pods there should be. For an integer ``minAvailable`` that is
  simply the pods found; for ``maxUnavailable`` or a percentage it is the scale of the
  pods' controllers (a Deployment through its ReplicaSet, a ReplicaSet, or any workload
  with ``spec.replicas`` such as a StatefulSet), each counted once;
* ``desiredHealthy``: ``minAvailable`` (a percentage rounded up), or expected minus
  ``maxUnavailable`` (rounded up);
* ``currentHealthy``: Ready pods not being deleted and not recently evicted;
* ``disruptionsAllowed`` = current - desired (0 when negative or nothing is expected),
  with the ``DisruptionAllowed`` condition, and ``observedGeneration``.

Evictions (``pods/eviction`` in the API server) record the pods they delete in
``status.disruptedPods``; those pods stay out of the healthy count until their deletion
shows up, or for two minutes at most. A pod without a controller where a scale is needed
makes the status fail safe: no disruptions allowed, condition reason ``SyncFailed``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Optional

from netlab.api import disruption
from netlab.api.objects import deep_copy, now
from netlab.api.timefmt import parse_time
from netlab.api.views import (
    controller_ref,
    dict_at,
    is_terminating,
    meta_of,
    namespace_of,
    spec_of,
    status_of,
)
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers.base import (
    Context,
    Controller,
    Overlay,
    resource_for,
)

Obj = Mapping[str, Any]
RESOURCE = "poddisruptionbudgets"


class ScaleError(Exception):
    """The expected pod count cannot be computed (a pod without a usable controller)."""


def scaled(value: Any, total: int) -> int:
    """``GetScaledValueFromIntOrPercent`` rounding up: ``"50%"`` of 3 is 2."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def desired_and_expected(spec: Obj, pod_count: int, scale: Optional[int]) -> tuple[int, int]:
    """(desiredHealthy, expectedPods); ``scale`` is the controllers' total, when needed."""
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None:
        expected = scale or 0
        return max(expected - scaled(max_unavailable, expected), 0), expected
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return min_available, pod_count
    if min_available is not None:
        expected = scale or 0
        return scaled(min_available, expected), expected
    return 0, 0


def needs_scale(spec: Obj) -> bool:
    return spec.get("maxUnavailable") is not None or isinstance(spec.get("minAvailable"), str)


def disrupted_pods(status: Obj, pods: Sequence[Obj], when: datetime
                   ) -> tuple[dict[str, str], Optional[datetime], list[str]]:
    """``buildDisruptedPodMap``: the entries still pending, the earliest time one expires,
    and the names of pods that outlived their expected deletion."""
    recorded = dict_at(status, "disruptedPods")
    kept: dict[str, str] = {}
    recheck: Optional[datetime] = None
    overdue: list[str] = []
    for pod in pods:
        meta = meta_of(pod)
        name = meta.get("name") or ""
        stamp = recorded.get(name)
        evicted = parse_time(stamp)
        if stamp is None or evicted is None or meta.get("deletionTimestamp"):
            continue
        expires = evicted + timedelta(seconds=disruption.DELETION_TIMEOUT_SECONDS)
        if expires < when:
            overdue.append(name)
            continue
        kept[name] = stamp
        recheck = expires if recheck is None else min(recheck, expires)
    return kept, recheck, overdue


def healthy_count(pods: Sequence[Obj], disrupted: Mapping[str, str]) -> int:
    return sum(1 for p in pods
               if not is_terminating(p)
               and meta_of(p).get("name") not in disrupted
               and disruption.pod_ready(p))


class DisruptionController(Controller):
    name = "disruption"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.pods_by_ns = ctx.by_namespace("pods")
        self.pdbs_by_ns = ctx.by_namespace(RESOURCE)
        self.events = ctx.recorder("controllermanager")
        self.pdbs = self.watch(RESOURCE)
        self.mine = Overlay(self.pdbs)
        self.watch("pods", self._on_pod)
        # A workload's scale decides expectedPods for percentage and maxUnavailable budgets.
        self.deployments = self.watch("deployments", self._on_workload)
        self.replicasets = self.watch("replicasets", self._on_workload)

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        for candidate in (pod, old):
            if candidate is None:
                continue
            ns = namespace_of(candidate)
            for pdb in self.pdbs_by_ns.get(ns):
                if disruption.selects(pdb, candidate):
                    self.enqueue(object_key(pdb))

    def _on_workload(self, kind: str, obj: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        if old is not None and spec_of(old).get("replicas") == \
                spec_of(obj).get("replicas"):
            return
        for pdb in self.pdbs_by_ns.get(namespace_of(obj)):
            self.enqueue(object_key(pdb))

    # --- expected scale ------------------------------------------------------------------------

    async def _controller_scale(self, namespace: str, ref: Obj) -> Optional[tuple[str, int]]:
        """(uid, replicas) of the workload behind a pod's controller reference."""
        kind, name = ref.get("kind"), ref.get("name") or ""
        if kind == "ReplicaSet":
            rs = self.replicasets.get(f"{namespace}/{name}")
            if rs is None or meta_of(rs).get("uid") != ref.get("uid"):
                return None
            owner = controller_ref(rs)
            if owner is not None and owner.get("kind") == "Deployment":
                dep = self.deployments.get(f"{namespace}/{owner.get('name')}")
                if dep is not None and meta_of(dep).get("uid") == owner.get("uid"):
                    return owner["uid"], _replicas(dep)
            return str(ref.get("uid")), _replicas(rs)
        res = resource_for(str(ref.get("apiVersion") or ""), str(kind or ""))
        if res is None or not res.namespaced:
            return None
        try:
            workload = await self.client.get(res.plural, name, namespace)
        except APIError as err:
            if err.not_found:
                return None
            raise
        if meta_of(workload).get("uid") != ref.get("uid") or \
                "replicas" not in spec_of(workload):
            return None
        return str(ref.get("uid")), _replicas(workload)

    async def _expected_scale(self, namespace: str, pods: Sequence[Obj]) -> int:
        """``getExpectedScale``: the summed replicas of the pods' workloads, each once."""
        resolved: set[str] = set()  # controller uids already looked up
        workloads: dict[str, int] = {}  # workload uid (a Deployment's, not its RS's) -> scale
        for pod in pods:
            name = meta_of(pod).get("name")
            ref = controller_ref(pod)
            if ref is None:
                raise ScaleError(f'found no controller ref for pod "{name}"')
            if ref.get("uid") in resolved:
                continue
            found = await self._controller_scale(namespace, ref)
            if found is None:
                raise ScaleError(f'found no controllers for pod "{name}"')
            resolved.add(str(ref.get("uid")))
            workloads[found[0]] = found[1]
        return sum(workloads.values())

    # --- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, key: Any) -> None:
        cached = self.mine.get(key)
        if cached is None:
            return
        pdb = deep_copy(cached)
        meta, spec = meta_of(pdb), spec_of(pdb)
        namespace = meta.get("namespace") or ""
        pods = [p for p in self.pods_by_ns.get(namespace) if disruption.selects(pdb, p)]
        status = deep_copy(status_of(pdb))
        when = now()
        if not pods:
            self.events.normal(pdb, "NoPods", "No matching pods found")
        try:
            scale = await self._expected_scale(namespace, pods) if needs_scale(spec) else None
        except ScaleError as err:
            self.events.warning(pdb, "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {err}")
            status["disruptionsAllowed"] = 0
            disruption.set_allowed_condition(status, when, disruption.SYNC_FAILED, str(err))
            await self._write(pdb, status)
            return
        desired, expected = desired_and_expected(spec, len(pods), scale)
        disrupted, recheck, overdue = disrupted_pods(status, pods, when)
        for name in overdue:
            self.events.warning(pdb, "NotDeleted", f"Pod {namespace}/{name} was expected to "
                                "be deleted but it wasn't")
        current = healthy_count(pods, disrupted)
        allowed = current - desired
        status.update(currentHealthy=current, desiredHealthy=desired, expectedPods=expected,
                      disruptionsAllowed=allowed if expected > 0 and allowed > 0 else 0,
                      observedGeneration=meta.get("generation") or 0)
        if disrupted:
            status["disruptedPods"] = disrupted
        else:
            status.pop("disruptedPods", None)
        disruption.set_allowed_condition(status, when)
        await self._write(pdb, status)
        if recheck is not None:
            self.enqueue_after(key, max((recheck - when).total_seconds(), 0) + 0.1)

    async def _write(self, pdb: dict[str, Any], status: dict[str, Any]) -> None:
        old = status_of(pdb)
        # A condition's transition time alone is no reason to write.
        if _without_times(status) == _without_times(old):
            return
        await self.mine.update_status(self.client, pdb, status)


def _replicas(obj: Obj) -> int:
    value = spec_of(obj).get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _without_times(status: Obj) -> Any:
    copy = deep_copy(dict(status))
    for cond in copy.get("conditions") or []:
        if isinstance(cond, dict):
            cond.pop("lastTransitionTime", None)
    return copy
