"""The service account controller: every namespace has a ServiceAccount named ``default``.

Kubernetes' ``serviceaccounts-controller`` ensures the ServiceAccounts it is configured
with (only ``default``) exist in every active namespace: in the namespaces present at
start-up, in each new one, and again whenever one is deleted. Pods that name no service
account get ``default`` at admission, so this is what makes that name real. A namespace
that is terminating is left alone: the API server would refuse the create, and the
namespace controller is emptying it.
"""

from __future__ import annotations

from typing import Any, Optional

from netlab.api.views import is_terminating, meta_of, name_of, status_of
from netlab.client import APIError
from netlab.master.controllers.base import Context, Controller

DEFAULT = "default"


def default_service_account(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT, "namespace": namespace}}


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.namespaces = self.watch("namespaces", self._on_namespace)
        self.accounts = self.watch("serviceaccounts", self._on_account)

    def _on_namespace(self, kind: str, ns: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        if kind != "DELETED":
            self.enqueue(name_of(ns))

    def _on_account(self, kind: str, sa: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        meta = meta_of(sa)
        if kind == "DELETED" and meta.get("name") == DEFAULT:
            self.enqueue(meta.get("namespace") or "")

    async def reconcile(self, namespace: str) -> None:
        ns = self.namespaces.get(namespace)
        if not namespace or ns is None:
            return
        if is_terminating(ns) or \
                status_of(ns).get("phase") == "Terminating":
            return
        if self.accounts.get(f"{namespace}/{DEFAULT}") is not None:
            return
        try:
            await self.client.create(default_service_account(namespace))
            self.log.info("created serviceaccount %s/%s", namespace, DEFAULT)
        except APIError as err:
            # Already there (our cache is behind), or the namespace just started to go.
            if err.code in (403, 404, 409):
                return
            raise
