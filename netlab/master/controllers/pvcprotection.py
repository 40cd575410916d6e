"""The PVC protection controller: a claim in use is not deleted until no pod uses it.

Upstream's StorageObjectInUseProtection: every new claim carries the finalizer
``kubernetes.io/pvc-protection`` (added by the API server, ``strategy.py``), so ``kubectl
delete pvc`` only marks a claim a pod still uses (``Terminating``); this controller
removes the finalizer once no scheduled pod that has not finished names the claim, and
the claim goes. Without it, a claim deleted under a running pod would have its
local-path directory removed under that pod. While a claim is being deleted no new pod
starts on it (the scheduler and the kubelet refuse), so the wait ends.

A pod that is not scheduled does not count, as upstream: no kubelet has it, and none will
start it on a claim being deleted.
"""

from __future__ import annotations

from typing import Any, Optional

from netlab.api.persistentvolumes import pod_claim_volumes
from netlab.api.views import finalizers_of, meta_of, name_of, namespace_of, pod_spec, pod_status
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers.base import Context, Controller

PVC_PROTECTION = "kubernetes.io/pvc-protection"


def claims_used_by(pod: dict[str, Any]) -> list[str]:
    """The claims a pod names, as ``ns/name`` keys."""
    namespace = namespace_of(pod)
    return [f"{namespace}/{claim}" for _, claim in pod_claim_volumes(pod)]


def uses(pod: dict[str, Any], key: str) -> bool:
    """``podUsesPVC``: a scheduled pod, not finished, naming the claim."""
    if not pod_spec(pod).get("nodeName"):
        return False
    if pod_status(pod).get("phase") in ("Succeeded", "Failed"):
        return False
    return key in claims_used_by(pod)


class PVCProtectionController(Controller):
    name = "pvc-protection"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.claims = self.watch("persistentvolumeclaims")
        self.pods_by_ns = ctx.by_namespace("pods")
        self.watch("pods", self._on_pod)

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        for key in claims_used_by(pod):  # a pod gone or finished may free its claims
            claim = self.claims.get(key)
            if claim is not None and meta_of(claim).get("deletionTimestamp"):
                self.enqueue(key)

    async def reconcile(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None or not meta_of(claim).get("deletionTimestamp") or \
                PVC_PROTECTION not in finalizers_of(claim):
            return
        if any(uses(p, key) for p in self.pods_by_ns.get(namespace_of(claim))):
            return  # a pod event brings it back
        try:
            await self.client.patch("persistentvolumeclaims", name_of(claim), {"metadata": {
                "finalizers": [f for f in finalizers_of(claim) if f != PVC_PROTECTION] or None,
                "resourceVersion": meta_of(claim).get("resourceVersion")}},
                namespace_of(claim))
        except APIError as err:
            if not err.not_found:
                raise
        self.log.info("%s: no pod uses it: finalizer removed", object_key(claim))
