"""The ReplicationController manager: ReplicaSets' logic for core/v1 ReplicationControllers.

As in Kubernetes (``pkg/controller/replication``, which wraps the ReplicaSet controller
in an adapter), an RC is managed exactly like a ReplicaSet: the same claim, expectations,
slow-start creates, deletion ranking and status. What differs is the resource, the kind
in pods' ownerReferences and events, and the selector: a plain label map, read here as
``matchLabels`` (an empty one selects nothing rather than everything).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netlab.api.selectors import LabelSelector, SelectorError, label_selector_from_object
from netlab.api.views import spec_of
from netlab.master.controllers.replicaset import ReplicaSetController


class ReplicationManager(ReplicaSetController):
    name = "replicationcontroller"
    resource, api_version, kind = "replicationcontrollers", "v1", "ReplicationController"
    component = "replication-controller"

    def selector_of(self, obj: Mapping[str, Any]) -> LabelSelector:
        selector = spec_of(obj).get("selector")
        if not isinstance(selector, dict) or not selector:
            raise SelectorError("an empty selector selects nothing")
        return label_selector_from_object({"matchLabels": selector})
