"""CustomResourceDefinitions at work in the API server: serving their resources
without a restart, their status conditions, and the cleanup when one is deleted.

The API server owns a :class:`CRDManager`. It keeps the current CRDs in memory (every
write goes through this process, so the registry's write and removal hooks keep it
exact; startup loads them from the store), and after each change

* rebuilds the set of custom resources (:func:`netlab.api.resources.set_custom_resources`):
  routing, discovery, tables and OpenAPI then serve them at once;
* writes each CRD's status as apiextensions' naming and establishing controllers
  do: ``acceptedNames``, ``NamesAccepted`` (False on a name conflict), ``Established``;
* for a CRD marked for deletion (DELETE adds the ``customresourcecleanup`` finalizer,
  see ``strategy.py``), sets ``Terminating``, deletes every custom object, waits
  until none is left and removes the finalizer; once the CRD leaves the store its
  resource is no longer served and open watches on it end;
* keeps one automanaged Local APIService per group/version the CRDs serve, as
  kube-apiserver's CRD registration controller does (``v1.example.com``, group
  priority 1000), and deletes it when no CRD serves that group/version any more.

Custom objects are stored under ``/registry/<plural>.<group>/[<namespace>/]<name>``
(``Resource.store_segment``): the store's flat one-segment layout, kept unique per group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Optional

from netlab.api import customresources, errors, objects, resources, views
from netlab.api.objects import decode_stored, meta
from netlab.api.resources import Resource
from netlab.master.apiserver import apiservices
from netlab.master.apiserver.deletion import Background, DeleteOptions, Deleter
from netlab.master.apiserver.storage import Registry
from netlab.master.apiserver.watch import WatchHub

log = logging.getLogger(__name__)

CRDS = resources.builtin(customresources.CRD_KIND, customresources.GROUP)
APISERVICES = resources.builtin("APIService", "apiregistration.k8s.io")
assert CRDS is not None and APISERVICES is not None
CLEANUP_POLL = 0.1


def _is_crd(res: Resource) -> bool:
    return res.custom is None and res.kind == customresources.CRD_KIND and \
        res.group == customresources.GROUP


class CRDManager:
    """The API server's CustomResourceDefinitions; see the module docstring."""

    def __init__(self, registry: Registry, deleter: Deleter, background: Background,
                 watches: WatchHub) -> None:
        self.registry = registry
        self.deleter = deleter
        self.background = background
        self.watches = watches
        self._crds: dict[str, dict] = {}
        self._dirty: set[str] = set()
        self._served: dict[str, Resource] = {}
        registry.on_written.append(self._written)
        previous = registry.on_removed

        def removed(res: Resource, obj: dict) -> None:
            previous(res, obj)
            self._removed(res, obj)

        registry.on_removed = removed

    # --- state ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read every CRD from the store and serve their resources (startup)."""
        page = await self.registry.store.alist(resources.store_prefix(CRDS))
        self._crds = {views.name_of(o): o for o in
                      (decode_stored(kv.value, kv.mod_revision) for kv in page.items)}
        self._rebuild()
        self._dirty.update(self._crds)
        self._kick()

    def _written(self, res: Resource, obj: dict) -> None:
        if not _is_crd(res):
            return
        name = views.name_of(obj)
        self._crds[name] = objects.deep_copy(obj)
        self._rebuild()
        self._dirty.add(name)
        self._kick()

    def _removed(self, res: Resource, obj: dict) -> None:
        if not _is_crd(res):
            return
        name = views.name_of(obj)
        self._crds.pop(name, None)
        gone = self._served.get(name)
        self._rebuild()
        if gone is not None:
            self.watches.stop_resource(gone.group, gone.plural)
        self._dirty.update(self._crds)  # a freed name may now be accepted elsewhere
        self._kick()

    def _rebuild(self) -> None:
        verdicts = customresources.accept_names(list(self._crds.values()))
        served: dict[str, Resource] = {}
        for name, crd in self._crds.items():
            verdict = verdicts.get(name)
            if verdict is None or not verdict.accepted:
                continue
            res = customresources.resource_from_crd(crd, verdict.names)
            if res is not None:
                served[name] = res
        self._served = served
        resources.set_custom_resources(served[n] for n in sorted(served))

    def close(self) -> None:
        """Stop serving custom resources (the app shut down; the process may host another)."""
        self._served = {}
        resources.set_custom_resources(())

    def served(self, crd_name: str) -> Optional[Resource]:
        return self._served.get(crd_name)

    # --- status and cleanup -----------------------------------------------------------------

    def _kick(self) -> None:
        self.background.spawn(("crds", id(self)), self._drain)

    async def _drain(self) -> None:
        # A CRD written while this task awaits the APIServices finds the task still
        # running (spawn does nothing then), so the loop looks for new work before it
        # ends; there is no await between that look and the return.
        while self._dirty:
            while self._dirty:
                name = self._dirty.pop()
                try:
                    await self._reconcile(name)
                except errors.APIError as err:
                    if err.code != 404:
                        log.warning("CRD %s: %s", name, err)
            try:
                await self._sync_apiservices()
            except errors.APIError as err:
                log.warning("APIServices of custom resources: %s", err)

    async def _sync_apiservices(self) -> None:
        wanted = {apiservices.name_of(r.group, v): (r.group, v)
                  for r in self._served.values() for v in r.versions}
        page = await self.registry.store.alist(resources.store_prefix(APISERVICES))
        existing = {views.name_of(o): o for o in
                    (decode_stored(kv.value, kv.mod_revision) for kv in page.items)}
        for name, (group, version) in sorted(wanted.items()):
            if name not in existing:
                try:
                    await self.registry.create(APISERVICES, None,
                                               apiservices.crd_apiservice(group, version))
                except errors.APIError as err:
                    if err.reason != "AlreadyExists":
                        raise
        for name, obj in existing.items():
            labels = meta(obj).get("labels") or {}
            if name not in wanted and \
                    labels.get(apiservices.AUTOMANAGED_LABEL) == apiservices.CRD_AUTOMANAGED:
                with contextlib.suppress(errors.APIError):
                    await self.deleter.delete(APISERVICES, None, name, DeleteOptions())

    async def _reconcile(self, name: str) -> None:
        crd = self._crds.get(name)
        if crd is None:
            return
        verdicts = customresources.accept_names(list(self._crds.values()))
        verdict = verdicts.get(name)
        if verdict is None:
            return
        terminating = views.is_terminating(crd) and \
            customresources.CLEANUP_FINALIZER in views.finalizers_of(crd)
        status = customresources.desired_status(crd, verdict, terminating)
        if status != crd.get("status"):
            def set_status(old: dict) -> dict:
                old["status"] = customresources.desired_status(old, verdict, terminating)
                return old

            await self.registry.update(CRDS, None, name, set_status, subresource="status")
        if terminating:
            self.background.spawn(("crd-cleanup", name), lambda: self._cleanup(name))

    async def _cleanup(self, name: str) -> None:
        """Delete every object of a terminating CRD, then release the CRD."""
        res = self._served.get(name)
        while res is not None:
            page = await self.registry.store.alist(resources.store_prefix(res))
            if not page.items:
                break
            for kv in page.items:
                obj = decode_stored(kv.value, kv.mod_revision)
                if views.is_terminating(obj):
                    continue
                with contextlib.suppress(errors.APIError):
                    await self.deleter.delete(res, views.namespace_of(obj) or None,
                                              views.name_of(obj), DeleteOptions())
            await asyncio.sleep(CLEANUP_POLL)  # objects with finalizers leave in their time
            res = self._served.get(name)

        def release(old: dict) -> dict:
            meta(old)["finalizers"] = [f for f in views.finalizers_of(old)
                                       if f != customresources.CLEANUP_FINALIZER]
            return old

        with contextlib.suppress(errors.APIError):
            await self.registry.update(CRDS, None, name, release)
