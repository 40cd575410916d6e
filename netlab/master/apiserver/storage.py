"""The generic registry: create, update and delete of any kind against the store.

This is the API server's equivalent of Kubernetes' ``genericregistry.Store``:
one pipeline for every kind, with the per-kind parts in ``strategy.py``.

* create: server fields, defaults, ``generateName`` (retried on a name clash),
  validation, the namespace admission check (404 if missing, 403 if
  Terminating), the admission plugins that read other objects (a pod's
  ServiceAccount token mount; Priority, over the PriorityClasses kept in
  ``priorityclasses.py``, for pods and PriorityClasses; DefaultStorageClass, which gives
  a claim naming no class the default one), Service IP/port
  allocation, then one ``acreate``;
* update: the store's optimistic concurrency as Kubernetes'
  ``GuaranteedUpdate``: read, apply the caller's change, check the client's
  resourceVersion precondition, validate, write with ``expected_revision``;
  a lost race re-reads and re-applies the change (a stale client
  resourceVersion then fails with 409). An update that changes nothing does
  not write, so a repeated ``kubectl apply`` keeps the resourceVersion;
* remove: the final store delete and its side effects (freeing allocations,
  telling the deletion layer so it can cascade).

Handlers work in the storage version (conversion is theirs). Every method is
a coroutine and never blocks the loop: reads and writes use the store's
async forms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Callable, Optional

from netlab.api import (
    errors,
    objects,
    persistentvolumes,
    priority_admission,
    resources,
    serviceaccount_admission,
    views,
)
from netlab.api.objects import decode_stored, deep_copy, encode_for_storage, meta
from netlab.api.resources import Resource
from netlab.api.views import status_of
from netlab.master.apiserver import strategy
from netlab.master.apiserver.allocators import ServiceAllocator
from netlab.master.apiserver.fieldmanager import ABSENT, Tracker
from netlab.master.apiserver.priorityclasses import PriorityClassCache
from netlab.master.store import (
    KV,
    ConflictError,
    KeyExistsError,
    NotFoundError,
    Store,
    StoreError,
)

MAX_UPDATE_ATTEMPTS = 20
GENERATE_NAME_ATTEMPTS = 8
NAMESPACES = resources.builtin("Namespace")
STORAGE_CLASSES = resources.builtin("StorageClass")

Mutation = Callable[[dict], dict]


def _noop() -> None:
    pass


def _is_priority_class(res: Resource) -> bool:
    return res.kind == "PriorityClass" and res.custom is None  # (a CRD may reuse the kind)


class NamespaceCache:
    """The phase of each namespace, as last written by this API server.

    Every write goes through this process, so updating the cache after each
    namespace write keeps it exact; a miss falls back to the store (and caches).
    Entries carry the revision so a late completion cannot undo a newer one.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._phases: dict[str, tuple[int, Optional[str]]] = {}

    def observe(self, ns: dict, revision: int) -> None:
        name = views.name_of(ns)
        seen = self._phases.get(name)
        if seen is None or seen[0] <= revision:
            phase = status_of(ns).get("phase") if isinstance(
                ns.get("status"), dict) else None
            self._phases[name] = (revision, phase or "Active")

    def forget(self, name: str, revision: int) -> None:
        seen = self._phases.get(name)
        if seen is None or seen[0] <= revision:
            self._phases[name] = (revision, None)

    async def phase(self, name: str) -> Optional[str]:
        """``Active``, ``Terminating``, or None when the namespace does not exist."""
        seen = self._phases.get(name)
        if seen is not None:
            return seen[1]
        kv = await self._store.aget(resources.store_key(NAMESPACES, None, name))
        if kv is None:
            return None
        self.observe(objects.loads(kv.value), kv.mod_revision)
        return self._phases[name][1]


async def get_kv(store: Store, res: Resource, namespace: Optional[str], name: str) -> KV:
    """The stored ``res`` named ``name``, or upstream's 404 NotFound naming it.

    A name that cannot be a key (empty, ``a/b``, ``..``, control characters) names
    nothing that can be stored, so it is the same 404, as kube-apiserver answers
    (never the 500 a ValueError from :func:`resources.store_key` would become).
    """
    try:
        key = resources.store_key(res, namespace if res.namespaced else None, name)
    except ValueError:
        raise errors.not_found(res.plural, name, res.group) from None
    kv = await store.aget(key)
    if kv is None:
        raise errors.not_found(res.plural, name, res.group)
    return kv


class Registry:
    """Create/update/remove for every resource, over one store."""

    def __init__(self, store: Store, allocator: ServiceAllocator) -> None:
        self.store = store
        self.allocator = allocator
        self.namespaces = NamespaceCache(store)
        self.priority_classes = PriorityClassCache(store)
        # Set by the deletion layer: called after an object left the store.
        self.on_removed: Callable[[Resource, dict], None] = lambda res, obj: None
        # Watchers of this server's own writes (the CRD manager); called after each write.
        self.on_written: list[Callable[[Resource, dict], None]] = []

    # --- reads ---------------------------------------------------------------------------

    @staticmethod
    def key(res: Resource, namespace: Optional[str], name: str) -> str:
        return resources.store_key(res, namespace if res.namespaced else None, name)

    async def get_kv(self, res: Resource, namespace: Optional[str], name: str) -> KV:
        return await get_kv(self.store, res, namespace, name)

    async def get(self, res: Resource, namespace: Optional[str], name: str) -> dict:
        kv = await self.get_kv(res, namespace, name)
        return decode_stored(kv.value, kv.mod_revision)

    # --- create --------------------------------------------------------------------------

    async def check_namespace(self, res: Resource, namespace: str, name: str) -> None:
        """NamespaceLifecycle admission: the namespace must exist and not be terminating."""
        phase = await self.namespaces.phase(namespace)
        if phase is None:
            raise errors.not_found("namespaces", namespace)
        if phase == "Terminating":
            raise errors.forbidden(
                res.plural, name,
                f"unable to create new content in namespace {namespace} because it is "
                f"being terminated", res.group,
                causes=[{"reason": "NamespaceTerminating",
                         "message": f"namespace {namespace} is being terminated",
                         "field": "metadata.namespace"}])

    async def create(self, res: Resource, namespace: Optional[str], obj: dict, *,
                     dry_run: bool = False, track: Optional[Tracker] = None) -> dict:
        """Create ``obj`` (storage version; consumed). Returns the stored object with its
        resourceVersion (without one for a dry run). ``track`` records the write in
        ``managedFields`` (see fieldmanager.py)."""
        m = meta(obj)
        requested = m.get("managedFields", ABSENT)
        if m.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        if res.namespaced:
            m["namespace"] = namespace
        else:
            m.pop("namespace", None)
        base = m.get("generateName")
        generated = not m.get("name") and isinstance(base, str) and bool(base)
        attempts = GENERATE_NAME_ATTEMPTS if generated else 1
        name = ""
        for _ in range(attempts):
            candidate = deep_copy(obj) if generated else obj
            if generated and isinstance(base, str):  # (generated says it is)
                meta(candidate)["name"] = objects.generate_name(base)
            name = views.name_of(candidate) if isinstance(meta(candidate).get("name"),
                                                            str) else ""
            if res.namespaced and namespace and name:
                await self.check_namespace(res, namespace, name)
            strategy.prepare_for_create(res, candidate)
            if res.kind == "Pod" and res.custom is None and namespace:
                await self._admit_service_account(namespace, candidate)
                priority_admission.admit_pod(candidate, await self.priority_classes.classes())
            elif res.kind == "PersistentVolumeClaim" and res.custom is None:
                await self._admit_default_storage_class(candidate)
            errs = strategy.validate(res, candidate)
            if errs:
                raise errors.invalid_object(res.kind, name, errs, res.group)
            if _is_priority_class(res):  # the plugin's validating half, after validation
                priority_admission.admit_class(candidate, await self.priority_classes.classes(),
                                               creating=True)
            if track is not None:
                track(None, candidate, requested)
            rollback = _noop
            if res.kind == "Service":
                rollback = self.allocator.allocate_create(candidate)
            if dry_run:
                rollback()
                return candidate
            try:
                kv = await self.store.acreate(self.key(res, namespace, name),
                                              encode_for_storage(candidate))
            except KeyExistsError:
                rollback()
                continue
            except StoreError:
                rollback()
                raise
            objects.set_resource_version(candidate, kv.mod_revision)
            self._after_write(res, candidate, kv.mod_revision)
            return candidate
        raise errors.already_exists(res.plural, name, res.group)

    async def _admit_service_account(self, namespace: str, pod: dict) -> None:
        """ServiceAccount admission's token mount (netlab.api.serviceaccount_admission),
        which reads the pod's account for its ``automountServiceAccountToken``."""
        account_name = (pod.get("spec") or {}).get("serviceAccountName")
        account = None
        if isinstance(account_name, str) and account_name and "/" not in account_name:
            # (A malformed name is left to validation, which names the field.)
            kv = await self.store.aget(resources.store_key("serviceaccounts", namespace,
                                                           account_name))
            account = decode_stored(kv.value, kv.mod_revision) if kv is not None else None
        serviceaccount_admission.mount_token(pod, account)

    async def _admit_default_storage_class(self, claim: dict) -> None:
        """DefaultStorageClass admission: a new claim that names no class (the field
        absent, not ``""``, which asks for no class) gets the default class's name.
        Claims are made rarely, so the classes are listed from the store each time."""
        spec = claim.get("spec")
        if not isinstance(spec, dict) or spec.get("storageClassName") is not None or \
                persistentvolumes.BETA_CLASS_ANNOTATION in views.annotations_of(claim):
            return
        listed = await self.store.alist(resources.store_prefix(STORAGE_CLASSES))
        default = persistentvolumes.default_class_name(
            decode_stored(kv.value, kv.mod_revision) for kv in listed.items)
        if default is not None:
            spec["storageClassName"] = default

    # --- update --------------------------------------------------------------------------

    async def update(self, res: Resource, namespace: Optional[str], name: str,
                     mutate: Mutation, *, subresource: Optional[str] = None,
                     dry_run: bool = False,
                     create: Optional[Callable[[], dict]] = None,
                     track: Optional[Tracker] = None,
                     create_track: Optional[Tracker] = None) -> tuple[dict, bool]:
        """Apply ``mutate`` (old object copy -> new object) until it commits.

        Returns ``(object, created)``. ``create`` builds the object to create when
        the target is missing and the kind allows create-on-update; otherwise a
        missing object is 404. An object that must leave the store after the update
        (deleted, last finalizer gone) is removed and returned without a new
        resourceVersion. ``track`` (``create_track`` for the create) records the write
        in ``managedFields``; it runs after the strategy, on the object to store.
        """
        key = self.key(res, namespace, name)
        for _ in range(MAX_UPDATE_ATTEMPTS):
            kv = await self.store.aget(key)
            if kv is None:
                if create is None:
                    raise errors.not_found(res.plural, name, res.group)
                try:
                    return await self.create(res, namespace, create(), dry_run=dry_run,
                                             track=create_track or track), True
                except errors.APIError as err:
                    if err.reason == "AlreadyExists":
                        continue  # lost a race with another create: update it instead
                    raise
            old = decode_stored(kv.value, kv.mod_revision)
            new = mutate(deep_copy(old))
            requested = meta(new).get("managedFields", ABSENT) if isinstance(
                new.get("metadata"), dict) else ABSENT
            self._check_preconditions(res, name, new, old)
            new = strategy.prepare_for_update(res, new, old, subresource)
            errs = strategy.validate_update(res, new, old, subresource)
            if errs:
                raise errors.invalid_object(res.kind, name, errs, res.group)
            if _is_priority_class(res) and subresource is None:
                priority_admission.admit_class(new, await self.priority_classes.classes(),
                                               creating=False)
            if track is not None:
                track(old, new, requested)
            objects.set_resource_version(new, kv.mod_revision)
            if new == old:
                return old, False  # nothing changed: no write, same resourceVersion
            rollback, release = _noop, _noop
            if res.kind == "Service" and subresource is None:
                rollback, release = self.allocator.allocate_update(new, old)
            if dry_run:
                rollback()
                return new, False
            try:
                written = await self.store.aupdate(key, encode_for_storage(new),
                                                   expected_revision=kv.mod_revision)
            except (ConflictError, NotFoundError):
                rollback()
                continue
            except StoreError:
                rollback()
                raise
            release()
            objects.set_resource_version(new, written.mod_revision)
            self._after_write(res, new, written.mod_revision)
            if strategy.should_delete_after_update(res, new):
                await self.remove(res, namespace, name, expected_revision=written.mod_revision,
                                  obj=new)
            return new, False
        raise errors.conflict(res.plural, name, group=res.group)

    @staticmethod
    def _check_preconditions(res: Resource, name: str, new: dict, old: dict) -> None:
        new_m, old_m = meta(new), meta(old)
        rv = new_m.get("resourceVersion")
        if rv not in (None, "") and str(rv) != old_m.get("resourceVersion"):
            raise errors.conflict(res.plural, name, group=res.group)
        uid = new_m.get("uid")
        if uid and uid != old_m.get("uid"):
            raise errors.conflict(
                res.plural, name, f"Precondition failed: UID in precondition: {uid}, "
                f"UID in object meta: {old_m.get('uid')}", res.group)

    async def replace(self, res: Resource, namespace: Optional[str], name: str, obj: dict,
                      expected_revision: int) -> Optional[dict]:
        """Write ``obj`` as is (no strategy, no validation) if the stored object is still
        at ``expected_revision``; None if it changed. For the server's own metadata
        changes, such as marking an object for deletion."""
        try:
            written = await self.store.aupdate(self.key(res, namespace, name),
                                               encode_for_storage(obj),
                                               expected_revision=expected_revision)
        except (ConflictError, NotFoundError):
            return None
        objects.set_resource_version(obj, written.mod_revision)
        self._after_write(res, obj, written.mod_revision)
        return obj

    # --- remove --------------------------------------------------------------------------

    async def remove(self, res: Resource, namespace: Optional[str], name: str, *,
                     expected_revision: int, obj: Optional[dict] = None) -> Optional[dict]:
        """Delete the stored object if it is still at ``expected_revision``; returns the
        deleted object (with the delete's revision), or None if it changed meanwhile."""
        key = self.key(res, namespace, name)
        try:
            tomb = await self.store.adelete(key, expected_revision=expected_revision)
        except (ConflictError, NotFoundError):
            return None
        deleted = decode_stored(tomb.value, tomb.mod_revision) if obj is None else obj
        objects.set_resource_version(deleted, tomb.mod_revision)
        if res.kind == "Service":
            self.allocator.release(deleted)
        elif res.kind == "Namespace":
            self.namespaces.forget(name, tomb.mod_revision)
        elif _is_priority_class(res):
            self.priority_classes.forget(name, tomb.mod_revision)
        self.on_removed(res, deleted)
        return deleted

    # --- hooks ---------------------------------------------------------------------------

    def _after_write(self, res: Resource, obj: dict, revision: int) -> None:
        if res.kind == "Namespace":
            self.namespaces.observe(obj, revision)
        elif _is_priority_class(res):
            self.priority_classes.observe(obj, revision)
        for hook in self.on_written:
            hook(res, obj)


async def gather_limited(coros: list[Awaitable[Any]], limit: int = 16) -> list[Any]:
    """Run coroutines with at most ``limit`` at a time; results (or exceptions) in order."""
    sem = asyncio.Semaphore(limit)

    async def run(c: Awaitable[Any]) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(run(c) for c in coros), return_exceptions=True)
