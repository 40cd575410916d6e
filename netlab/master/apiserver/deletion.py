"""Deletion: graceful deletion, finalizers, cascading, and namespace termination.

A DELETE in Kubernetes is not always an immediate removal:

* a pod bound to a node is marked (``deletionTimestamp`` = now + grace period,
  ``deletionGracePeriodSeconds``) and the kubelet removes it once its
  containers stopped (it deletes again with grace 0); unbound or finished pods,
  and a grace period of 0, go at once;
* an object with finalizers is marked and stays until the last finalizer is
  removed (the update path then removes it, see ``storage.py``);
* ``propagationPolicy`` decides the fate of dependents (objects whose
  ``ownerReferences`` name the deleted one): ``Background`` deletes them after
  the owner, ``Foreground`` first (the owner waits with the
  ``foregroundDeletion`` finalizer), ``Orphan`` keeps them and removes the
  owner reference (the owner waits with the ``orphan`` finalizer);
* a namespace becomes ``Terminating``; its content is deleted, then itself;
* the built-in namespaces and PriorityClasses are never deleted (403).

The finalizers are always recorded, as Kubernetes does. The work that the
garbage collector and the namespace controller do in Kubernetes is done here
by background tasks until netlab's controller manager takes it over
(``Config.builtin_gc`` / ``builtin_namespace_deleter``). Those tasks are
resumed at startup from what the store holds, since they are level-based.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Optional

from netlab.api import errors, objects, priority_admission, resources, views
from netlab.api.objects import decode_stored, meta
from netlab.api.resources import Resource
from netlab.api.views import dict_at, spec_of
from netlab.master.apiserver import strategy
from netlab.master.apiserver.request import dry_run
from netlab.master.apiserver.storage import MAX_UPDATE_ATTEMPTS, Registry
from netlab.master.store import StoreClosedError

log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
NAMESPACE_FINALIZER = "kubernetes"
PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
# Kinds whose objects own others in practice, and the resources their dependents are in.
OWNER_KINDS = frozenset({"Deployment", "ReplicaSet", "Job", "Node", "Service", "Endpoints",
                         "ReplicationController", "DaemonSet", "StatefulSet"})
DEPENDENT_RESOURCES = ("replicasets", "pods", "jobs", "leases", "endpoints", "services",
                       "endpointslices", "controllerrevisions")
_MAX_BACKOFF = 2.0


@dataclass
class DeleteOptions:
    """``metav1.DeleteOptions``, merged from the request body and query."""

    grace_period_seconds: Optional[int] = None
    propagation_policy: Optional[str] = None
    preconditions: dict = field(default_factory=dict)
    dry_run: bool = False

    def merge_body(self, body: Mapping[str, Any], *, orphan_dependents: bool = False) -> None:
        """Take the options a DeleteOptions body sets (400 for a field of the wrong type);
        with ``orphan_dependents``, the deprecated ``orphanDependents`` too, when it gives
        no ``propagationPolicy``."""
        grace = body.get("gracePeriodSeconds")
        if grace is not None:
            if isinstance(grace, bool) or not isinstance(grace, int):
                raise errors.bad_request("gracePeriodSeconds must be an integer")
            self.grace_period_seconds = grace
        policy = body.get("propagationPolicy")
        if policy is not None:
            if not isinstance(policy, str):
                raise errors.bad_request("propagationPolicy must be a string")
            self.propagation_policy = policy
        elif orphan_dependents and isinstance(body.get("orphanDependents"), bool):
            self.propagation_policy = "Orphan" if body["orphanDependents"] else "Background"
        if isinstance(body.get("preconditions"), dict):
            self.preconditions = body["preconditions"]
        dry = body.get("dryRun")
        if isinstance(dry, list) and dry:
            self.dry_run = dry_run({"dryRun": dry[0]}, "DeleteOptions")


class Background:
    """Named background tasks; one per key, cancelled at shutdown."""

    def __init__(self) -> None:
        self._tasks: dict[Any, asyncio.Task] = {}
        self.closed = False

    def spawn(self, key: Any, factory: Callable[[], Awaitable[None]]) -> None:
        if self.closed:
            return
        task = self._tasks.get(key)
        if task is not None and not task.done():
            return
        task = asyncio.ensure_future(self._run(key, factory))
        self._tasks[key] = task

    async def _run(self, key: Any, factory: Callable[[], Awaitable[None]]) -> None:
        try:
            await factory()
        except (asyncio.CancelledError, StoreClosedError):
            pass
        except Exception:
            log.exception("background task %r failed", key)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    def pending(self) -> int:
        return sum(1 for t in self._tasks.values() if not t.done())

    async def close(self) -> None:
        self.closed = True
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t


def _resource(plural: str) -> Resource:
    for res in resources.all_resources():
        if res.plural == plural:
            return res
    raise KeyError(plural)


class Deleter:
    """DELETE semantics over a :class:`Registry`, and the background work they start."""

    def __init__(self, registry: Registry, background: Background, *,
                 builtin_gc: bool = True, builtin_namespace_deleter: bool = True) -> None:
        self.registry = registry
        self.background = background
        self.builtin_gc = builtin_gc
        self.builtin_namespace_deleter = builtin_namespace_deleter
        registry.on_removed = self._on_removed

    # --- DELETE ----------------------------------------------------------------------------

    async def delete(self, res: Resource, namespace: Optional[str], name: str,
                     opts: DeleteOptions) -> tuple[dict, bool]:
        """Delete one object; returns ``(object, removed)``: the removed object, or the
        object as now marked for deletion."""
        if opts.propagation_policy is not None and \
                opts.propagation_policy not in PROPAGATION_POLICIES:
            raise errors.invalid_object("DeleteOptions", "", [errors.not_supported(
                "propagationPolicy", opts.propagation_policy, PROPAGATION_POLICIES)])
        if res.kind == "Namespace":
            return await self._delete_namespace(name, opts)
        if res.kind == "PriorityClass" and res.custom is None:
            priority_admission.check_delete(name)
        kind_policy = strategy.policy(res)
        for _ in range(MAX_UPDATE_ATTEMPTS):
            kv = await self.registry.get_kv(res, namespace, name)
            obj = decode_stored(kv.value, kv.mod_revision)
            self._check_preconditions(res, name, obj, opts)
            m = meta(obj)
            propagation = opts.propagation_policy or kind_policy.default_propagation
            grace = (strategy.pod_grace_period(obj, opts.grace_period_seconds)
                     if kind_policy.graceful else 0)
            finalizers = views.finalizers_of(obj)
            wanted = {"Orphan": ORPHAN, "Foreground": FOREGROUND}.get(propagation)
            if wanted and wanted not in finalizers:
                finalizers.append(wanted)
            extra = kind_policy.delete_finalizer
            if extra and extra not in finalizers and not m.get("deletionTimestamp"):
                finalizers.append(extra)
            if not finalizers and grace == 0:
                if opts.dry_run:
                    return obj, True
                removed = await self.registry.remove(res, namespace, name,
                                                     expected_revision=kv.mod_revision)
                if removed is None:
                    continue
                return removed, True
            current = m.get("deletionGracePeriodSeconds")
            if m.get("deletionTimestamp"):
                shorter = kind_policy.graceful and isinstance(current, int) and grace < current
                if not shorter and finalizers == views.finalizers_of(obj):
                    return obj, False  # already being deleted; nothing new to record
                if not shorter:
                    grace = current if isinstance(current, int) else 0
            m["deletionTimestamp"] = objects.timestamp(objects.now() + timedelta(seconds=grace))
            m["deletionGracePeriodSeconds"] = grace
            m["finalizers"] = finalizers
            if opts.dry_run:
                return obj, False
            marked = await self.registry.replace(res, namespace, name, obj, kv.mod_revision)
            if marked is None:
                continue
            self._start_finalizers(res, marked)
            return marked, False
        raise errors.conflict(res.plural, name, group=res.group)

    @staticmethod
    def _check_preconditions(res: Resource, name: str, obj: dict, opts: DeleteOptions) -> None:
        m = meta(obj)
        uid = opts.preconditions.get("uid")
        if uid and uid != m.get("uid"):
            raise errors.conflict(res.plural, name, f"Precondition failed: UID in "
                                  f"precondition: {uid}, UID in object meta: {m.get('uid')}",
                                  res.group)
        rv = opts.preconditions.get("resourceVersion")
        if rv and str(rv) != m.get("resourceVersion"):
            raise errors.conflict(res.plural, name, f"Precondition failed: ResourceVersion in "
                                  f"precondition: {rv}, ResourceVersion in meta: "
                                  f"{m.get('resourceVersion')}", res.group)

    # --- namespaces -------------------------------------------------------------------------

    async def _delete_namespace(self, name: str, opts: DeleteOptions) -> tuple[dict, bool]:
        res = _resource("namespaces")
        if name in IMMORTAL_NAMESPACES:
            raise errors.forbidden("namespaces", name, "this namespace may not be deleted")
        for _ in range(MAX_UPDATE_ATTEMPTS):
            kv = await self.registry.get_kv(res, None, name)
            obj = decode_stored(kv.value, kv.mod_revision)
            self._check_preconditions(res, name, obj, opts)
            m = meta(obj)
            if m.get("deletionTimestamp"):
                return obj, False
            m["deletionTimestamp"] = objects.timestamp()
            m["deletionGracePeriodSeconds"] = 0
            status = dict_at(obj, "status")
            status["phase"] = "Terminating"
            obj["status"] = status
            if opts.dry_run:
                return obj, False
            marked = await self.registry.replace(res, None, name, obj, kv.mod_revision)
            if marked is None:
                continue
            self._start_namespace_cleanup(name)
            return marked, False
        raise errors.conflict("namespaces", name)

    def _start_namespace_cleanup(self, name: str) -> None:
        if self.builtin_namespace_deleter:
            self.background.spawn(("namespace", name), lambda: self._empty_namespace(name))

    async def _empty_namespace(self, name: str) -> None:
        """Delete everything in a Terminating namespace, then the namespace itself."""
        ns_res = _resource("namespaces")
        delay = 0.05
        while True:
            try:
                ns = await self.registry.get(ns_res, None, name)
            except errors.APIError:
                return  # already gone
            remaining = 0
            for res in resources.all_resources():
                if not res.namespaced:
                    continue
                page = await self.registry.store.alist(resources.store_prefix(res, name))
                remaining += len(page.items)
                for kv in page.items:
                    obj = objects.loads(kv.value)
                    if views.is_terminating(obj):
                        continue
                    with contextlib.suppress(errors.APIError):
                        await self.delete(res, name, views.name_of(obj), DeleteOptions())
            if remaining == 0:
                if NAMESPACE_FINALIZER in (spec_of(ns).get("finalizers") or []):
                    await self._finalize_namespace(name)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    async def _finalize_namespace(self, name: str) -> None:
        def drop(ns: dict) -> dict:
            spec = dict_at(ns, "spec")
            spec["finalizers"] = [f for f in spec.get("finalizers") or []
                                  if f != NAMESPACE_FINALIZER]
            ns["spec"] = spec
            return ns

        with contextlib.suppress(errors.APIError):
            await self.registry.update(_resource("namespaces"), None, name, drop,
                                       subresource="finalize")

    # --- garbage collection -------------------------------------------------------------------

    async def dependents(self, owner: dict, owner_namespaced: bool) -> list[tuple[Resource, dict]]:
        uid = views.uid_of(owner)
        namespace = views.namespace_of(owner) if owner_namespaced else None
        found = []
        for plural in DEPENDENT_RESOURCES:
            res = _resource(plural)
            page = await self.registry.store.alist(resources.store_prefix(res, namespace))
            for kv in page.items:
                if uid.encode() not in kv.value:
                    continue  # cheap pre-filter before decoding
                obj = decode_stored(kv.value, kv.mod_revision)
                if views.is_owned_by(obj, uid):
                    found.append((res, obj))
        return found

    def _on_removed(self, res: Resource, obj: dict) -> None:
        if self.builtin_gc and res.kind in OWNER_KINDS:
            uid = views.uid_of(obj)
            self.background.spawn(("cascade", uid),
                                  lambda: self._cascade(obj, res.namespaced, "Background"))

    async def _cascade(self, owner: dict, namespaced: bool, propagation: str) -> None:
        for res, dep in await self.dependents(owner, namespaced):
            if views.is_terminating(dep) and propagation == "Background":
                continue
            with contextlib.suppress(errors.APIError):
                await self.delete(res, views.namespace_of(dep) or None, views.name_of(dep),
                                  DeleteOptions(propagation_policy=propagation))

    def _start_finalizers(self, res: Resource, obj: dict) -> None:
        if not self.builtin_gc:
            return
        fins = views.finalizers_of(obj)
        uid = views.uid_of(obj)
        if ORPHAN in fins:
            self.background.spawn(("orphan", uid), lambda: self._orphan(res, obj))
        elif FOREGROUND in fins:
            self.background.spawn(("foreground", uid), lambda: self._foreground(res, obj))

    async def _orphan(self, res: Resource, owner: dict) -> None:
        uid = views.uid_of(owner)

        def unlink(dep: dict) -> dict:
            m = meta(dep)
            refs = [r for r in views.owner_references(dep) if r.get("uid") != uid]
            if refs:
                m["ownerReferences"] = refs
            else:
                m.pop("ownerReferences", None)
            return dep

        for dep_res, dep in await self.dependents(owner, res.namespaced):
            with contextlib.suppress(errors.APIError):
                await self.registry.update(dep_res, views.namespace_of(dep) or None,
                                           views.name_of(dep), unlink)
        await self._drop_finalizer(res, owner, ORPHAN)

    async def _foreground(self, res: Resource, owner: dict) -> None:
        delay = 0.05
        while True:
            deps = await self.dependents(owner, res.namespaced)
            if not deps:
                await self._drop_finalizer(res, owner, FOREGROUND)
                return
            for dep_res, dep in deps:
                if FOREGROUND in views.finalizers_of(dep) or (
                        views.is_terminating(dep) and not views.finalizers_of(dep)):
                    continue
                with contextlib.suppress(errors.APIError):
                    await self.delete(dep_res, views.namespace_of(dep) or None,
                                      views.name_of(dep),
                                      DeleteOptions(propagation_policy="Foreground"))
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    async def _drop_finalizer(self, res: Resource, obj: dict, finalizer: str) -> None:
        uid = views.uid_of(obj)

        def drop(current: dict) -> dict:
            if views.uid_of(current) != uid:
                raise errors.conflict(res.plural, views.name_of(current), group=res.group)
            fins = [f for f in views.finalizers_of(current) if f != finalizer]
            meta(current)["finalizers"] = fins
            if not fins:
                meta(current).pop("finalizers")
            return current

        with contextlib.suppress(errors.APIError):
            await self.registry.update(res, views.namespace_of(obj) or None,
                                       views.name_of(obj), drop)

    # --- startup ---------------------------------------------------------------------------

    async def resume(self) -> None:
        """Restart the level-based work a previous run left unfinished: terminating
        namespaces, pending GC finalizers, and dependents whose owners are all gone."""
        uids: set[str] = set()
        owned: list[tuple[Resource, dict]] = []
        for res in resources.all_resources():
            page = await self.registry.store.alist(resources.store_prefix(res))
            for kv in page.items:
                obj = decode_stored(kv.value, kv.mod_revision)
                uids.add(views.uid_of(obj))
                if views.is_terminating(obj):
                    if res.kind == "Namespace":
                        self._start_namespace_cleanup(views.name_of(obj))
                    else:
                        self._start_finalizers(res, obj)
                if views.owner_references(obj):
                    owned.append((res, obj))
        if not self.builtin_gc:
            return
        for res, obj in owned:
            refs = views.owner_references(obj)
            if all(r.get("uid") not in uids for r in refs) and not views.is_terminating(obj):
                with contextlib.suppress(errors.APIError):
                    await self.delete(res, views.namespace_of(obj) or None,
                                      views.name_of(obj),
                                      DeleteOptions(propagation_policy="Background"))
