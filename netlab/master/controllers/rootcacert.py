"""The root CA publisher: a ConfigMap ``kube-root-ca.crt`` in every namespace.

kube-controller-manager's ``root-ca-cert-publisher`` puts the CA that signed the API
server's serving certificate (``--root-ca-file``) into every namespace, key ``ca.crt``,
so that a pod can verify ``https://kubernetes.default.svc`` (the projected service-account
volume mounts it next to the token). As upstream, it creates the ConfigMap in each
namespace, re-creates it when it is deleted, and puts the data and the description
annotation back when someone changes them; terminating namespaces are left alone. Without
a root CA (no ``--root-ca-file``) the controller does nothing.
"""

from __future__ import annotations

from typing import Any, Optional

from netlab.api.views import is_terminating, meta_of, name_of, status_of
from netlab.client import APIError
from netlab.master.controllers.base import Context, Controller

NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
               "internal endpoints such as the internal service IP or kubernetes.default.svc. "
               "No other usage is guaranteed across distributions of Kubernetes clusters.")


def root_ca_configmap(namespace: str, ca: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": namespace,
                         "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
            "data": {"ca.crt": ca}}


class RootCACertPublisher(Controller):
    name = "root-ca-cert-publisher"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.ca = ctx.options.root_ca
        self.namespaces = self.watch("namespaces", self._on_namespace)
        self.configmaps = self.watch("configmaps", self._on_configmap)

    def _on_namespace(self, kind: str, ns: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        if kind != "DELETED":
            self.enqueue(name_of(ns))

    def _on_configmap(self, kind: str, cm: dict[str, Any],
                      old: Optional[dict[str, Any]]) -> None:
        meta = meta_of(cm)
        if meta.get("name") == NAME:
            self.enqueue(meta.get("namespace") or "")

    def _current(self, cm: dict[str, Any]) -> bool:
        annotations = meta_of(cm).get("annotations") or {}
        return cm.get("data") == {"ca.crt": self.ca} and \
            bool(annotations.get(DESCRIPTION_ANNOTATION))

    async def reconcile(self, namespace: str) -> None:
        ns = self.namespaces.get(namespace)
        if not self.ca or not namespace or ns is None or is_terminating(ns) or \
                status_of(ns).get("phase") == "Terminating":
            return
        cm = self.configmaps.get(f"{namespace}/{NAME}")
        try:
            if cm is None:
                await self.client.create(root_ca_configmap(namespace, self.ca))
                self.log.info("published %s in %s", NAME, namespace)
            elif not self._current(cm):
                fixed = dict(cm)
                meta: dict[str, Any] = dict(meta_of(cm))
                annotations = dict(meta.get("annotations") or {})
                annotations[DESCRIPTION_ANNOTATION] = DESCRIPTION
                meta["annotations"] = annotations
                fixed["metadata"], fixed["data"] = meta, {"ca.crt": self.ca}
                fixed.pop("binaryData", None)
                await self.client.update(fixed)
                self.log.info("restored %s in %s", NAME, namespace)
        except APIError as err:
            # Our cache is behind (409: the informer brings the change and we go again),
            # or the namespace is gone or going (404, 403 NamespaceTerminating).
            if err.code in (403, 404, 409):
                return
            raise
