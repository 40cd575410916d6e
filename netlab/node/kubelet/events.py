"""Events: what happened to a pod or the node, and why, as core/v1 Event objects.

The kubelet records through the shared recorder of ``netlab.client.events``
(never blocking a pod worker; repeats aggregated, so a crash loop or a failing
probe does not flood the API). This module adds the kubelet's references: a
pod, one of its containers (``fieldPath``), or the node.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

from netlab.api.views import meta_of
from netlab.client import Client
from netlab.client.events import NORMAL, WARNING
from netlab.client.events import EventRecorder as SharedRecorder

__all__ = ["NORMAL", "WARNING", "EventRecorder", "ObjectRef", "node_ref", "pod_ref"]

log = logging.getLogger("netlab.kubelet.events")


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    name: str
    namespace: str
    uid: str
    api_version: str = "v1"
    field_path: str = ""

    def to_api(self) -> dict[str, Any]:
        ref = {"kind": self.kind, "name": self.name, "namespace": self.namespace,
               "uid": self.uid, "apiVersion": self.api_version}
        if self.field_path:
            ref["fieldPath"] = self.field_path
        return ref


def pod_ref(pod: dict[str, Any], container: Optional[str] = None,
            init: bool = False) -> ObjectRef:
    meta = meta_of(pod)
    path = ""
    if container:
        path = f"spec.{'initContainers' if init else 'containers'}{{{container}}}"
    return ObjectRef("Pod", meta.get("name", ""), meta.get("namespace") or "default",
                     meta.get("uid", ""), field_path=path)


def node_ref(node: str) -> ObjectRef:
    # Kubernetes refers to a node in its events with the node's name as uid.
    return ObjectRef("Node", node, "default", node)


class EventRecorder(SharedRecorder):
    """The shared recorder (``netlab.client.events``), addressed with ``ObjectRef``s so an
    event can name one container (``fieldPath``), as the kubelet's events do."""

    def __init__(self, client: Client, host: str, component: str = "kubelet",
                 shards: int = 3) -> None:
        super().__init__(client, component, host=host, senders=shards)

    def record(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        self.emit(ref.to_api(), type_, reason, message)
