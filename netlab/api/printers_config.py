"""Row cells of ConfigMap, Secret, ServiceAccount and ReplicationController tables.

The cell functions behind the columns that :mod:`netlab.api.tables` declares for these
kinds, computed as Kubernetes' ``pkg/printers/internalversion`` does: DATA counts a
ConfigMap's ``data`` plus ``binaryData`` keys, SECRETS counts a ServiceAccount's
``secrets``, an RC's SELECTOR is its plain label map. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from netlab.api.printers import _age, _containers, _get, _int, _name, format_labels
from netlab.api.views import status_of

Obj = dict[str, Any]


def _count(value: Any) -> int:
    return len(value) if isinstance(value, (dict, list)) else 0


def configmap_cells(cm: Obj, now: datetime) -> list[Any]:
    return [_name(cm), _count(cm.get("data")) + _count(cm.get("binaryData")), _age(cm, now)]


def secret_cells(secret: Obj, now: datetime) -> list[Any]:
    return [_name(secret), secret.get("type") or "", _count(secret.get("data")),
            _age(secret, now)]


def serviceaccount_cells(sa: Obj, now: datetime) -> list[Any]:
    return [_name(sa), _count(sa.get("secrets")), _age(sa, now)]


def replicationcontroller_cells(rc: Obj, now: datetime) -> list[Any]:
    status = status_of(rc)
    names, images = _containers(_get(rc, "spec", "template", "spec"))
    selector = _get(rc, "spec", "selector")
    return [_name(rc), _int(_get(rc, "spec", "replicas"), 1), _int(status.get("replicas")),
            _int(status.get("readyReplicas")), _age(rc, now), names, images,
            format_labels(selector if isinstance(selector, dict) else None)]
