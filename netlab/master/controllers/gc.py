"""The garbage collector: dependents follow their owners through ``ownerReferences``.

Kubernetes deletes what an object owns in one of three ways, chosen by the
DELETE's ``propagationPolicy``; the API server only records the choice (a
finalizer, or nothing) and this controller carries it out:

* **Background** (the default): the owner goes at once; its dependents, now
  pointing at an absent owner, are deleted next — and theirs after them;
* **Foreground**: the owner stays, with ``deletionTimestamp`` and the
  ``foregroundDeletion`` finalizer, while its dependents are deleted (in the
  foreground too); once no dependent with ``blockOwnerDeletion`` is left,
  the finalizer is removed and the owner goes;
* **Orphan**: the owner stays with the ``orphan`` finalizer until every
  dependent's reference to it is removed; then the finalizer goes.

As in ``garbagecollector.go``, the collector watches every resource (events
excepted), keeps an index from owner uid to dependents, and reconciles one
object at a time ("attempt to delete"): an object is deleted only after a
live read confirmed that all its owners are absent, so informer lag (a pod
seen before its new ReplicaSet) never deletes anything. References to owners
that are gone are removed from objects that still have a live owner.
Everything is level-based, so after a restart the first list re-discovers
all unfinished work.
"""

from __future__ import annotations

from typing import Any, Optional

from netlab.api import resources
from netlab.api.views import (
    OwnerReference,
    finalizers_of,
    is_terminating,
    meta_of,
    owner_references,
    uid_of,
)
from netlab.client import APIError
from netlab.client.informer import Informer, object_key
from netlab.master.controllers.base import (
    Context,
    Controller,
    EventHandler,
    delete,
    resource_for,
    set_owner_refs,
    split_key,
)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
# Events are never owners and, in numbers, not worth watching for the rare dependent.
UNWATCHED = frozenset({"events", "namespaces"})
ABSENT_CACHE_LIMIT = 1000


def monitored() -> list[resources.Resource]:
    # Resources that cannot be watched (the create-only access reviews) own nothing.
    return [r for r in resources.all_resources()
            if r.plural not in UNWATCHED and "watch" in r.verbs]


def _deleting(obj: Optional[dict[str, Any]]) -> bool:
    return obj is not None and is_terminating(obj)


def _waits_for_dependents(obj: Optional[dict[str, Any]]) -> bool:
    return _deleting(obj) and FOREGROUND in finalizers_of(obj or {})


class GarbageCollector(Controller):
    name = "garbagecollector"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers or 10)
        self.informers: dict[str, Informer] = {}
        self.objects: dict[str, tuple[str, str]] = {}  # uid -> (resource, cache key)
        self.dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids
        self.refs: dict[str, tuple[str, ...]] = {}  # dependent uid -> owner uids
        self.absent: dict[str, None] = {}  # owner uids confirmed absent (insertion-ordered)
        for res in monitored():
            self.informers[res.plural] = self.watch(res.plural, self._handler(res.plural))

    # --- the graph ----------------------------------------------------------------------------

    def _handler(self, plural: str) -> EventHandler:
        def on_event(kind: str, obj: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
            self._on_event(plural, kind, obj, old)
        return on_event

    def _get(self, uid: str) -> Optional[dict[str, Any]]:
        where = self.objects.get(uid)
        if where is None:
            return None
        obj = self.informers[where[0]].get(where[1])
        return obj if obj is not None and uid_of(obj) == uid else None

    def _on_event(self, plural: str, kind: str, obj: dict[str, Any],
                  old: Optional[dict[str, Any]]) -> None:
        uid = uid_of(obj)
        owners = tuple(r.get("uid", "") for r in owner_references(obj))
        previous = self.refs.get(uid, ())
        for owner in set(previous) - set(owners):
            self.dependents.get(owner, set()).discard(uid)
            if _waits_for_dependents(self._get(owner)):
                self.enqueue(owner)  # one fewer dependent to wait for
        if kind == "DELETED":
            self.objects.pop(uid, None)
            self.refs.pop(uid, None)
            for owner in owners:
                self.dependents.get(owner, set()).discard(uid)
                if _waits_for_dependents(self._get(owner)):
                    self.enqueue(owner)
            for dependent in self.dependents.pop(uid, set()):
                self.enqueue(dependent)  # their owner is gone: collect them
            return
        self.objects[uid] = (plural, object_key(obj))
        self.absent.pop(uid, None)
        if owners:
            self.refs[uid] = owners
        else:
            self.refs.pop(uid, None)
        for owner in owners:
            self.dependents.setdefault(owner, set()).add(uid)
            if owner not in self.objects or _waits_for_dependents(self._get(owner)):
                self.enqueue(uid)  # maybe dangling, or its owner waits for it to go
        if _deleting(obj):
            fins = finalizers_of(obj)
            if ORPHAN in fins or FOREGROUND in fins:
                self.enqueue(uid)
            if FOREGROUND in fins:
                for dependent in self.dependents.get(uid, ()):
                    self.enqueue(dependent)

    # --- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, uid: str) -> None:
        obj = self._get(uid)
        if obj is None:
            return
        plural = self.objects[uid][0]
        fins = finalizers_of(obj)
        if _deleting(obj):
            if ORPHAN in fins:
                await self._orphan_dependents(plural, obj)
            elif FOREGROUND in fins:
                await self._delete_dependents(plural, obj)
            return
        refs = owner_references(obj)
        if not refs:
            return
        solid: list[OwnerReference] = []
        dangling: list[OwnerReference] = []
        waiting: list[OwnerReference] = []
        for ref in refs:
            state = await self._owner_state(ref, obj)
            {"solid": solid, "absent": dangling, "waiting": waiting}[state].append(ref)
        if solid:
            if dangling or waiting:
                gone = {r.get("uid") for r in dangling + waiting}
                self.log.info("%s %s: removing references to owners %s", plural,
                              object_key(obj), ", ".join(sorted(g for g in gone if g)))
                await set_owner_refs(self.client, plural, obj,
                                      [r for r in refs if r.get("uid") not in gone])
            return
        if waiting and self.dependents.get(uid):
            policy = "Foreground"  # its owner waits for it, and it has dependents of its own
        elif ORPHAN in fins:
            policy = "Orphan"
        elif FOREGROUND in fins or waiting:
            policy = "Foreground"
        else:
            policy = "Background"
        namespace, name = split_key(object_key(obj))
        self.log.info("deleting %s %s: its owners are gone (%s propagation)", plural,
                      object_key(obj), policy.lower())
        await delete(self.client, plural, namespace, name, uid=uid,
                     propagation=policy)

    async def _owner_state(self, ref: OwnerReference, dependent: dict[str, Any]) -> str:
        """"solid", "absent", or "waiting" (being deleted in the foreground)."""
        owner_uid = ref.get("uid", "")
        cached = self._get(owner_uid)
        if cached is not None:
            return "waiting" if _waits_for_dependents(cached) else "solid"
        if owner_uid in self.absent:
            return "absent"
        res = resource_for(ref.get("apiVersion", ""), ref.get("kind", ""))
        if res is None:
            return "solid"  # a kind netlab does not serve: never collect on a guess
        namespace = meta_of(dependent).get("namespace") if res.namespaced \
            else None
        try:
            live = await self.client.get(res.plural, ref.get("name", ""),
                                         namespace)
        except APIError as err:
            if not err.not_found:
                raise
            live = None
        if live is None or uid_of(live) != owner_uid:
            self.absent[owner_uid] = None
            while len(self.absent) > ABSENT_CACHE_LIMIT:
                self.absent.pop(next(iter(self.absent)))
            return "absent"
        return "waiting" if _waits_for_dependents(live) else "solid"

    async def _delete_dependents(self, plural: str, owner: dict[str, Any]) -> None:
        """Foreground: delete the dependents; drop the finalizer once none blocks."""
        uid = uid_of(owner)
        blocking = []
        for dep_uid in list(self.dependents.get(uid, ())):
            dep = self._get(dep_uid)
            if dep is None:
                continue
            ref = next((r for r in owner_references(dep) if r.get("uid") == uid), None)
            if ref is not None and ref.get("blockOwnerDeletion"):
                blocking.append(dep)
        if not blocking:
            self.log.info("%s %s: no dependents left; finishing its foreground deletion",
                          plural, object_key(owner))
            await self._drop_finalizer(plural, owner, FOREGROUND)
            return
        for dep in blocking:
            if not _waits_for_dependents(dep) and not _deleting(dep):
                self.enqueue(uid_of(dep))

    async def _orphan_dependents(self, plural: str, owner: dict[str, Any]) -> None:
        """Orphan: remove the owner from every dependent, then the finalizer."""
        uid = uid_of(owner)
        for dep_uid in list(self.dependents.get(uid, ())):
            dep = self._get(dep_uid)
            if dep is None:
                continue
            refs = owner_references(dep)
            if any(r.get("uid") == uid for r in refs):
                await set_owner_refs(self.client, self.objects[dep_uid][0], dep,
                                      [r for r in refs if r.get("uid") != uid])
        self.log.info("%s %s: dependents orphaned", plural, object_key(owner))
        await self._drop_finalizer(plural, owner, ORPHAN)

    async def _drop_finalizer(self, plural: str, obj: dict[str, Any], finalizer: str) -> None:
        namespace, name = split_key(object_key(obj))
        try:
            await self.client.patch(plural, name, {"metadata": {
                "uid": uid_of(obj), "$deleteFromPrimitiveList/finalizers": [finalizer]}},
                namespace, patch_type="strategic")
        except APIError as err:
            if not (err.not_found or err.conflict):
                raise
