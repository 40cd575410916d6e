"""Defaulting of Secret and ReplicationController (``SetDefaults_*`` of core/v1).

A Secret's ``type`` defaults to ``Opaque``. A ReplicationController's selector, when
empty, defaults to its template's labels, and so do its own labels; ``replicas``
defaults to 1 and the pod template gets the pod defaults. :mod:`netlab.api.defaults`
registers these functions in its table. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from netlab.api.defaults_pod import default_pod_template
from netlab.api.objects import deep_copy


def default_secret(obj: dict[str, Any]) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"


def default_replicationcontroller(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    template = spec.get("template")
    tmeta = template.get("metadata") if isinstance(template, dict) else None
    labels = tmeta.get("labels") if isinstance(tmeta, dict) else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = deep_copy(labels)
        meta = obj.get("metadata")
        if isinstance(meta, dict) and not meta.get("labels"):
            meta["labels"] = deep_copy(labels)
    spec.setdefault("replicas", 1)
    default_pod_template(template)
