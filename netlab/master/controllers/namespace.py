"""The namespace controller: a deleted namespace is emptied, then goes.

``kubectl delete namespace x`` only marks the namespace (``deletionTimestamp``,
phase ``Terminating``; the API server refuses new content from then on). This
controller then does what Kubernetes' namespace deleter does: for every
namespaced resource it deletes the whole collection (one DELETE per resource,
background propagation, so the garbage collector and graceful pod deletion
apply as usual), and once a fresh list shows nothing left it removes the
``kubernetes`` finalizer through ``namespaces/<name>/finalize``; the API
server then removes the namespace.

Pods that terminate gracefully, or objects held by finalizers (a Job's
pods until counted, a foreground deletion), keep the namespace Terminating
until they are gone. The controller is woken by their DELETED events (it
listens on the shared informers) and, as a safety net for resources it does
not watch, looks again after a short delay.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional

from netlab.api import resources
from netlab.api.views import is_terminating, meta_of, spec_of
from netlab.client import APIError, discovery, resource_path
from netlab.master.controllers.base import Context, Controller

FINALIZER = "kubernetes"
RECHECK = 2.0  # seconds; content that leaves without an event we see (events, leases)


def namespaced_resources() -> list[resources.Resource]:
    return [r for r in resources.all_resources()
            if r.namespaced and "deletecollection" in r.verbs]


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.namespaces = self.watch("namespaces", self._on_namespace)
        # Content leaving a terminating namespace may be what it waits for.
        for plural in ("pods", "replicasets", "deployments", "jobs", "services", "endpoints"):
            self.watch(plural, self._on_content)

    def _on_namespace(self, kind: str, ns: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        if kind != "DELETED" and is_terminating(ns):
            self.enqueue(meta_of(ns).get("name"))

    def _on_content(self, kind: str, obj: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        if kind != "DELETED":
            return
        namespace = meta_of(obj).get("namespace")
        ns = self.namespaces.get(namespace) if namespace else None
        if ns is not None and is_terminating(ns):
            self.enqueue(namespace)

    async def reconcile(self, name: str) -> None:
        ns = self.namespaces.get(name)
        if ns is None or not is_terminating(ns):
            return
        if FINALIZER not in (spec_of(ns).get("finalizers") or []):
            return
        remaining: dict[str, int] = {}
        # Custom resources too, as the upstream controller finds them: through discovery.
        with contextlib.suppress(APIError):
            await discovery.learn(self.client)
        for res in namespaced_resources():
            path = resource_path(res, name)
            listing = await self.client.request("GET", path)
            items = listing.get("items") or []
            if not items:
                continue
            remaining[res.plural] = len(items)
            if any(not is_terminating(i) for i in items):
                await self.client.request("DELETE", path, body={
                    "kind": "DeleteOptions", "apiVersion": "v1",
                    "propagationPolicy": "Background"})
        if remaining:
            self.log.info("namespace %s: waiting for %s to be deleted", name, ", ".join(
                f"{count} {plural}" for plural, count in sorted(remaining.items())))
            self.enqueue_after(name, RECHECK)
            return
        spec = dict(spec_of(ns))
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        try:
            await self.client.update({**ns, "spec": spec}, subresource="finalize")
        except APIError as err:
            if not err.not_found:
                raise
        self.log.info("namespace %s: empty; finalized", name)

