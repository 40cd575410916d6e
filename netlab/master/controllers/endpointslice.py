"""The EndpointSlice controller: Services with selectors mirrored into discovery.k8s.io slices.

For each Service with a selector (not ExternalName), the slices labelled
``kubernetes.io/service-name: <svc>`` and ``endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io`` list the selected pods; what goes in them and
how existing slices are reused is computed in :mod:`endpointslice_compute`. This
module watches Services, pods and slices, and writes the plan: creates (named by
the server from ``<svc>-``), updates (only of slices whose content changed) and
deletes (with a uid precondition). When a Service goes, its slices go too (the
garbage collector would also remove them through their owner reference).

As upstream's ``endpointSliceTracker``, the controller remembers the generation
of every slice it wrote (and the slices it deleted) until the informer shows
them: reconciling against a cache that has not seen our last writes would create
duplicate slices, so such a reconcile waits for the cache instead. The older
Endpoints controller runs alongside for clients that read Endpoints.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

from netlab.api.selectors import selector_from_set
from netlab.api.views import labels_of, meta_of, name_of
from netlab.client import APIError, Client
from netlab.client.informer import object_key
from netlab.master.controllers.base import Context, Controller, delete_object, split_key
from netlab.master.controllers.endpoints import selector_of, services_to_resync
from netlab.master.controllers.endpointslice_compute import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    Plan,
    plan_slices,
)

Obj = Mapping[str, Any]
STALE_RETRY = 0.2  # seconds before looking again at a cache that lags our writes
# A write the informer never shows (the slice was deleted and the watch relisted
# past both events) must not block its Service for ever.
STALE_TIMEOUT = 30.0
_DELETED = -1


def managed_service_key(slice_: Obj, manager: str = CONTROLLER_NAME) -> Optional[str]:
    """``ns/svc`` of a slice ``manager`` manages; None for anyone else's slice."""
    meta = meta_of(slice_)
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != manager or not labels.get(SERVICE_NAME_LABEL):
        return None
    return f"{meta.get('namespace') or ''}/{labels[SERVICE_NAME_LABEL]}"


class SliceTracker:
    """The generations this controller wrote, per slice, until the informer has them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        # service key -> slice name -> (generation or _DELETED, when written)
        self._expected: dict[str, dict[str, tuple[int, float]]] = {}
        self._clock = clock

    def written(self, service: str, slice_: Obj) -> None:
        meta = meta_of(slice_)
        self._expected.setdefault(service, {})[meta.get("name", "")] = \
            (int(meta.get("generation") or 0), self._clock())

    def deleted(self, service: str, name: str) -> None:
        self._expected.setdefault(service, {})[name] = (_DELETED, self._clock())

    def forget(self, service: str) -> None:
        self._expected.pop(service, None)

    def stale(self, service: str, cached: Sequence[Obj]) -> bool:
        """Whether the cached slices lack one of our writes; caught-up entries are dropped."""
        expected = self._expected.get(service)
        if not expected:
            return False
        by_name = {name_of(s): s for s in cached}
        lagging = False
        now = self._clock()
        for name, (generation, when) in list(expected.items()):
            slice_ = by_name.get(name)
            if now - when > STALE_TIMEOUT:
                caught_up = True  # give up waiting: act on what the cache says
            elif generation == _DELETED:
                caught_up = slice_ is None
            else:
                caught_up = slice_ is not None and \
                    int(meta_of(slice_).get("generation") or 0) >= generation
            if caught_up:
                del expected[name]
            else:
                lagging = True
        if not expected:
            del self._expected[service]
        return lagging


class EndpointSliceController(Controller):
    name = "endpointslice"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.services_by_ns = ctx.by_namespace("services")
        self.pods_by_ns = ctx.by_namespace("pods")
        self.slices_by_service = ctx.index(
            "endpointslices", "managed-service",
            lambda s: [k] if (k := managed_service_key(s)) else [])
        self.tracker = SliceTracker()
        self.services = self.watch("services")
        self.slices = self.watch("endpointslices", self._on_slice)
        self.watch("pods", self._on_pod)

    def _on_slice(self, kind: str, slice_: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        # Ours changed (by us: the tracker catches up; by someone else: put it back).
        key = managed_service_key(slice_)
        if key is not None:
            self.enqueue(key)
        old_key = managed_service_key(old) if old is not None else None
        if old_key is not None and old_key != key:
            self.enqueue(old_key)

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        for svc in services_to_resync(self.services_by_ns, kind, pod, old):
            self.enqueue(object_key(svc))

    async def reconcile(self, key: str) -> None:
        namespace, _ = split_key(key)
        svc = self.services.get(key)
        cached = self.slices_by_service.get(key)
        if svc is None:
            for slice_ in cached:
                await delete_object(self.client, "endpointslices", slice_)
            if cached:
                self.log.info("%s: service gone, deleted its %d slices", key, len(cached))
            self.tracker.forget(key)
            return
        selector = selector_of(svc)
        if selector is None:
            return  # no selector: its slices, if any, are the user's
        if self.tracker.stale(key, cached):
            self.enqueue_after(key, STALE_RETRY)
            return
        matcher = selector_from_set(selector)
        pods = [p for p in self.pods_by_ns.get(namespace or "")
                if matcher.matches(labels_of(p))]
        plan = plan_slices(svc, pods, cached)
        if not plan:
            return
        try:
            await write_plan(self.client, self.tracker, key, plan)
        finally:
            self.log.info("%s: %d slices created, %d updated, %d deleted", key,
                          len(plan.create), len(plan.update), len(plan.delete))


async def write_plan(client: Client, tracker: SliceTracker, key: str, plan: Plan) -> None:
    """Make the plan's writes, recording each in the tracker. Creates and updates go
    before deletes, so the API never lists fewer endpoints mid-change than before or
    after it."""
    for body in plan.create:
        tracker.written(key, await client.create(body))
    for body in plan.update:
        try:
            tracker.written(key, await client.update(body))
        except APIError as err:
            if err.not_found:
                continue  # deleted meanwhile: its slice event requeues the owner
            raise
    for slice_ in plan.delete:
        await delete_object(client, "endpointslices", slice_)
        tracker.deleted(key, name_of(slice_))
