"""What every controller of the controller manager shares.

- ``Options``: the manager's tunables (workers, HPA periods and windows);
- ``Context``: the one client, shared informers, indexes and event recorder;
- ``Controller``: a work queue of keys and ``reconcile(key)``, run by
  ``netlab.client.workqueue.run_workers`` — client-go's controller pattern;
  ``watch`` wires an informer's events to it;
- ``OwnerController``: a controller of owners (Deployments, ReplicaSets, DaemonSets,
  StatefulSets, Jobs), with what they share: the selector, the owner of an object
  (and its former one), waking owners for an orphan, claiming, requeueing for
  ``minReadySeconds``;
- ``Index``: a secondary index over an informer cache (pods by namespace, by
  controller uid), so a reconcile looks at its own objects, not at all of them;
- ``Overlay``: this process's own latest writes, until the informer catches
  up, so a controller never acts twice on a stale copy of what it just wrote;
- ``claim``: ``ControllerRefManager`` — adopt orphans that match a selector,
  release owned objects that stopped matching, ignore objects of other owners;
- small API helpers (deletes with a uid precondition, owner lookups, status writes).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

from netlab.api import resources
from netlab.api.selectors import LabelSelector, SelectorError, label_selector_from_object
from netlab.api.views import (
    controller_ref,
    is_terminating,
    meta_of,
    namespace_of,
    owner_references,
    spec_of,
)
from netlab.client import APIError, Client, resource_path
from netlab.client.informer import Informer, object_key
from netlab.client.workqueue import SharedInformers, WorkQueue, run_workers
from netlab.master.controllers import podutil
from netlab.master.controllers.events import ComponentRecorder, EventRecorder

log = logging.getLogger("netlab.controllers")

Obj = Mapping[str, Any]
EventHandler = Callable[[str, dict[str, Any], Optional[dict[str, Any]]], None]


@dataclass
class Options:
    """Tunables of the controller manager (flags of ``__main__``)."""

    workers: int = 5
    # HPA: how often each autoscaler is evaluated, and Kubernetes' knobs. The lab's
    # scale-down window is shorter than Kubernetes' 300 s so that demos and tests
    # see a scale-down within a minute; spec.behavior overrides it per HPA.
    hpa_sync_period: float = 5.0
    hpa_tolerance: float = 0.1
    hpa_downscale_stabilization: float = 30.0
    hpa_cpu_initialization_period: float = 300.0
    hpa_initial_readiness_delay: float = 30.0
    # How long a metric sample stays usable: a node that stopped publishing must not
    # drive scaling with what its pods did minutes ago.
    hpa_metrics_max_age: float = 60.0
    # The PEM the root CA publisher puts in every namespace's kube-root-ca.crt
    # (--root-ca-file); empty: nothing is published.
    root_ca: str = ""
    # Where the local-path provisioner makes its volumes (--local-path-root; the lab's
    # data directory's local-path/); empty: claims of its classes are not provisioned.
    local_path_root: str = ""


@dataclass
class Context:
    client: Client
    informers: SharedInformers
    events: EventRecorder
    options: Options = field(default_factory=Options)
    _indexes: dict[tuple[str, str], Index] = field(default_factory=dict)

    def informer(self, resource: str) -> Informer:
        return self.informers.get(resource)

    def index(self, resource: str, name: str, fn: Callable[[Obj], Iterable[str]]) -> Index:
        """The shared index ``name`` over ``resource`` (created on first use)."""
        key = (resource, name)
        if key not in self._indexes:
            self._indexes[key] = Index(self.informer(resource), fn)
        return self._indexes[key]

    def by_namespace(self, resource: str) -> Index:
        return self.index(resource, "namespace",
                          lambda o: [namespace_of(o)])

    def by_controller(self, resource: str) -> Index:
        """Objects by the uid of their controller (owner reference with controller=true)."""
        def fn(obj: Obj) -> list[str]:
            ref = controller_ref(obj)
            return [ref["uid"]] if ref and ref.get("uid") else []
        return self.index(resource, "controller", fn)

    def recorder(self, component: str) -> ComponentRecorder:
        return self.events.for_component(component)


class Index:
    """index value -> keys of the informer's objects, kept current by an event handler."""

    def __init__(self, informer: Informer, fn: Callable[[Obj], Iterable[str]]) -> None:
        self._informer = informer
        self._fn = fn
        self._values: dict[str, tuple[str, ...]] = {}
        self._keys: dict[str, set[str]] = {}
        informer.add_handler(self._on_event)

    def _on_event(self, kind: str, obj: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        key = object_key(obj)
        for value in self._values.pop(key, ()):
            keys = self._keys.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys[value]
        if kind != "DELETED":
            values = tuple(self._fn(obj))
            self._values[key] = values
            for value in values:
                self._keys.setdefault(value, set()).add(key)

    def get(self, value: str) -> list[dict[str, Any]]:
        cache = self._informer.cache
        return [cache[k] for k in sorted(self._keys.get(value, ())) if k in cache]


def rv_of(obj: Optional[Obj]) -> int:
    """An object's resourceVersion as a number: netlab's is the store revision, so
    newer writes have larger ones (Kubernetes calls them opaque; here they are not)."""
    try:
        return int(meta_of(obj or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class Overlay:
    """This process's own writes of one resource, until its informer has seen them.

    ``latest(obj)`` returns the newer of the cached object and our own write. Our
    write is forgotten as soon as the informer delivers that version or a later one.
    """

    def __init__(self, informer: Informer) -> None:
        self._informer = informer
        self._written: dict[str, dict[str, Any]] = {}
        informer.add_handler(self._on_event)

    def _on_event(self, kind: str, obj: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        key = object_key(obj)
        mine = self._written.get(key)
        if mine is not None and (kind == "DELETED" or rv_of(obj) >= rv_of(mine)):
            del self._written[key]

    def record(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = object_key(obj)
        cached = self._informer.get(key)
        if cached is None or rv_of(obj) > rv_of(cached):
            self._written[key] = obj
        return obj

    def latest(self, obj: dict[str, Any]) -> dict[str, Any]:
        mine = self._written.get(object_key(obj))
        return mine if mine is not None and rv_of(mine) > rv_of(obj) else obj

    def get(self, key: str) -> Optional[dict[str, Any]]:
        cached = self._informer.get(key)
        if cached is None:
            return None  # deleted (or never seen): a write of ours does not resurrect it
        return self.latest(cached)

    async def update_status(self, client: Client, obj: Obj,
                            status: dict[str, Any]) -> Optional[dict[str, Any]]:
        """:func:`update_status` of ``obj``, one of this overlay's resource, recording the
        write; None if the object is gone."""
        written = await update_status(client, obj, status, self._informer.resource)
        if written is not None:
            self.record(written)
        return written


class Controller:
    """A named work queue with a reconcile; subclasses register informer handlers."""

    name = "controller"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.queue = WorkQueue()
        self.workers = workers or ctx.options.workers
        self.log = logging.getLogger(f"netlab.controllers.{self.name}")

    def enqueue(self, key: Hashable) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: Hashable, delay: float) -> None:
        self.queue.add_after(key, delay)

    def enqueue_event(self, kind: str, obj: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        """The handler that reconciles the object that changed, whatever the change."""
        self.enqueue(object_key(obj))

    def watch(self, resource: str, handler: Optional[EventHandler] = None) -> Informer:
        """The shared informer of ``resource``, telling ``handler`` of every change (by
        default :meth:`enqueue_event`)."""
        informer = self.ctx.informer(resource)
        informer.add_handler(handler or self.enqueue_event)
        return informer

    async def reconcile(self, key: Any) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        await run_workers(self.name, self.queue, self.reconcile, self.workers)


class OwnerController(Controller):
    """A controller of owners: objects of ``kind`` (stored as ``resource``) that select
    others by label, adopt them and control them, as Deployments do ReplicaSets and
    ReplicaSets, DaemonSets, StatefulSets and Jobs do pods."""

    resource = ""
    api_version = ""
    kind = ""

    def selector_of(self, owner: Obj) -> LabelSelector:
        """The owner's selector; raises SelectorError when it is invalid."""
        return label_selector_from_object(spec_of(owner).get("selector"))

    def valid_selector(self, key: str, owner: Obj) -> Optional[LabelSelector]:
        """:meth:`selector_of`, or None (logged) when it is invalid: nothing to reconcile."""
        try:
            return self.selector_of(owner)
        except SelectorError as err:
            self.log.warning("%s: invalid selector: %s", key, err)
            return None

    def owner_key(self, obj: Obj, owners: Optional[Informer] = None) -> Optional[str]:
        """The key of the ``kind`` controlling ``obj``; with ``owners``, only if that
        informer holds it with the reference's uid (not a same-named successor)."""
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != self.kind:
            return None
        key = f"{meta_of(obj).get('namespace')}/{ref.get('name')}"
        if owners is not None:
            owner = owners.get(key)
            if owner is None or meta_of(owner).get("uid") != ref.get("uid"):
                return None
        return key

    def enqueue_former_owner(self, owner: Optional[str], old: Optional[Obj],
                             owners: Informer) -> None:
        """An object changed: if its previous version (``old``) had another owner among
        ``owners`` than ``owner`` now, that one lost it and must look again."""
        if old is not None:
            old_owner = self.owner_key(old, owners)
            if old_owner is not None and old_owner != owner:
                self.enqueue(old_owner)

    def enqueue_selecting(self, obj: Obj, owners: Iterable[Obj]) -> None:
        """An orphan: wake each of ``owners`` in its namespace whose selector matches its
        labels and so may adopt it. As upstream, an empty or invalid selector matches
        nothing here."""
        meta = meta_of(obj)
        labels = meta.get("labels") or {}
        for owner in owners:
            if meta_of(owner).get("namespace") != meta.get("namespace"):
                continue
            try:
                selector = self.selector_of(owner)
            except SelectorError:
                continue
            if not selector.empty and selector.matches(labels):
                self.enqueue(object_key(owner))

    async def claim(self, owner: Obj, selector: LabelSelector,
                    candidates: Iterable[dict[str, Any]], resource: str = "pods",
                    recorder: Optional[Callable[[str, dict[str, Any]], None]] = None
                    ) -> list[dict[str, Any]]:
        """:func:`claim` of ``candidates`` (of ``resource``) for ``owner``, adopting with
        this controller's owner reference after a fresh read of the owner."""
        return await claim(self.client, owner,
                           podutil.owner_reference(owner, self.api_version, self.kind),
                           selector, candidates, resource,
                           fresh_owner_check(self.client, self.resource, owner), recorder)

    def requeue_until_available(self, key: str, owner: Obj, pods: Iterable[Obj],
                                when: datetime) -> None:
        """Reconcile ``key`` again when the first of ``pods`` that is ready but younger
        than the owner's ``minReadySeconds`` becomes available."""
        min_ready = int(spec_of(owner).get("minReadySeconds") or 0)
        waits = [w for p in pods
                 if (w := podutil.seconds_until_available(p, min_ready, when)) is not None]
        if waits:
            self.enqueue_after(key, min(waits) + 0.1)

    def requeue_when_ready_pod_available(self, key: str, owner: Optional[Obj],
                                         pod: Obj, old: Optional[Obj]) -> None:
        """A pod event: a pod that just became ready is available ``minReadySeconds``
        later, when its owner ``key`` must look again."""
        min_ready = int(spec_of(owner or {}).get("minReadySeconds") or 0)
        if min_ready and podutil.is_ready(pod) and not (old and podutil.is_ready(old)):
            self.enqueue_after(key, min_ready + 0.1)


# --- API helpers --------------------------------------------------------------------------------


def split_key(key: str) -> tuple[Optional[str], str]:
    namespace, _, name = key.rpartition("/")
    return namespace or None, name


async def delete(client: Client, resource: str, namespace: Optional[str], name: str, *,
                 uid: Optional[str] = None, propagation: Optional[str] = None,
                 grace_period: Optional[int] = None) -> bool:
    """DELETE with a uid precondition (never hit a same-named successor); False if the
    object is already gone or was replaced."""
    body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if uid:
        body["preconditions"] = {"uid": uid}
    if propagation:
        body["propagationPolicy"] = propagation
    if grace_period is not None:
        body["gracePeriodSeconds"] = grace_period
    try:
        await client.request("DELETE", resource_path(resource, namespace, name), body=body)
    except APIError as err:
        if err.not_found or err.conflict:
            return False
        raise
    return True


async def delete_object(client: Client, resource: str, obj: Obj, *,
                        propagation: Optional[str] = None) -> bool:
    """:func:`delete` of ``obj`` itself: its namespace and name, its uid as precondition."""
    meta = meta_of(obj)
    return await delete(client, resource, meta.get("namespace"), meta.get("name", ""),
                        uid=meta.get("uid"), propagation=propagation)


def resource_for(api_version: str, kind: str) -> Optional[resources.Resource]:
    return resources.by_api_version_kind(api_version, kind)


# --- ControllerRefManager -----------------------------------------------------------------------


async def claim(client: Client, owner: Obj, owner_ref: dict[str, Any], selector: LabelSelector,
                candidates: Iterable[dict[str, Any]], resource: str,
                can_adopt: Callable[[], Awaitable[bool]],
                recorder: Optional[Callable[[str, dict[str, Any]], None]] = None
                ) -> list[dict[str, Any]]:
    """The objects ``owner`` controls after adopting and releasing (``ClaimObjects``).

    An object controlled by ``owner`` is kept while the selector matches and released
    (its owner reference removed) when it stops matching. An orphan that matches is
    adopted, after ``can_adopt`` (a fresh read of the owner) confirms that the owner
    still exists and is not being deleted. Objects of other controllers are left alone.
    Every change is a merge patch carrying the object's uid and resourceVersion, so it
    applies to exactly the version that was looked at (or fails and is retried).
    """
    owner_uid = meta_of(owner).get("uid")
    owner_deleting = is_terminating(owner)
    adopt_ok: Optional[bool] = None
    claimed = []
    for obj in candidates:
        meta = meta_of(obj)
        labels = meta.get("labels") or {}
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if selector.matches(labels):
                claimed.append(obj)
            elif not owner_deleting:
                await set_owner_refs(client, resource, obj,
                                      [r for r in owner_references(obj)
                                       if r.get("uid") != owner_uid])
                if recorder:
                    recorder("released", obj)
            continue
        if owner_deleting or meta.get("deletionTimestamp") or not selector.matches(labels):
            continue
        if adopt_ok is None:
            adopt_ok = await can_adopt()
        if not adopt_ok:
            continue
        adopted = await set_owner_refs(client, resource, obj,
                                        [*owner_references(obj), owner_ref])
        if adopted is not None:
            claimed.append(adopted)
            if recorder:
                recorder("adopted", adopted)
    return claimed


async def set_owner_refs(client: Client, resource: str, obj: Obj,
                          refs: Sequence[Mapping[str, Any]]) -> Optional[dict[str, Any]]:
    meta = meta_of(obj)
    patch = {"metadata": {"ownerReferences": refs or None, "uid": meta.get("uid"),
                          "resourceVersion": meta.get("resourceVersion")}}
    try:
        return await client.patch(resource, meta.get("name", ""), patch,
                                  meta.get("namespace"))
    except APIError as err:
        if err.not_found:
            return None  # gone meanwhile: nothing to own
        raise  # a conflict: the reconcile is retried on a fresh copy


def fresh_owner_check(client: Client, resource: str, owner: Obj) -> Callable[[], Awaitable[bool]]:
    """``RecheckDeletionTimestamp``: a live read says whether adopting is still right."""
    meta = meta_of(owner)

    async def check() -> bool:
        try:
            fresh = await client.get(resource, meta.get("name", ""), meta.get("namespace"))
        except APIError as err:
            if err.not_found:
                return False
            raise
        fmeta = meta_of(fresh)
        return fmeta.get("uid") == meta.get("uid") and not fmeta.get("deletionTimestamp")

    return check


async def update_status(client: Client, obj: Obj, status: dict[str, Any],
                        resource: str) -> Optional[dict[str, Any]]:
    """Write ``status`` through the status subresource, re-reading on a conflict (the
    status is ours alone, so the latest spec and metadata are simply carried along).
    None if the object is gone."""
    body = {**obj, "status": status}
    for _ in range(5):
        try:
            return await client.update(body, subresource="status")
        except APIError as err:
            if err.not_found:
                return None
            if not err.conflict:
                raise
        meta = meta_of(obj)
        try:
            fresh = await client.get(resource, meta.get("name", ""), meta.get("namespace"))
        except APIError as err:
            if err.not_found:
                return None
            raise
        if meta_of(fresh).get("uid") != meta.get("uid"):
            return None
        body = {**fresh, "status": status}
    raise APIError(409, {"message": f"status of {object_key(obj)} kept conflicting"})


def omit_zero(status: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Drop counters that are 0, as Kubernetes' ``omitempty`` fields are."""
    for key in keys:
        if not status.get(key):
            status.pop(key, None)
    return status
