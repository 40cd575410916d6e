"""Table rows of DaemonSets, StatefulSets and ControllerRevisions, as kubectl prints them.

The cells of Kubernetes' ``printDaemonSet``, ``printStatefulSet`` and
``printControllerRevision`` (pkg/printers/internalversion/printers.go); the column
definitions are in :data:`netlab.api.tables.PRINTERS`. Pure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from netlab.api.printers import (
    Obj,
    _age,
    _containers,
    _get,
    _int,
    _name,
    _replicas,
    format_label_selector,
    format_labels,
)
from netlab.api.views import status_of


def daemonset_cells(ds: Obj, now: datetime) -> list[Any]:
    status = status_of(ds)
    pod_spec = _get(ds, "spec", "template", "spec")
    names, images = _containers(pod_spec)
    return [_name(ds), _int(status.get("desiredNumberScheduled")),
            _int(status.get("currentNumberScheduled")), _int(status.get("numberReady")),
            _int(status.get("updatedNumberScheduled")), _int(status.get("numberAvailable")),
            format_labels((pod_spec or {}).get("nodeSelector")), _age(ds, now), names, images,
            format_label_selector(_get(ds, "spec", "selector"))]


def statefulset_cells(sts: Obj, now: datetime) -> list[Any]:
    status = status_of(sts)
    names, images = _containers(_get(sts, "spec", "template", "spec"))
    return [_name(sts), f"{_int(status.get('readyReplicas'))}/{_replicas(sts)}",
            _age(sts, now), names, images]


def controller_name(obj: Obj) -> str:
    """``daemonset.apps/web`` for the controlling owner, ``<none>`` without one."""
    for ref in _get(obj, "metadata", "ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            group = str(ref.get("apiVersion") or "").rpartition("/")[0]
            kind = str(ref.get("kind") or "")
            qualified = f"{kind}.{group}" if group else kind
            return f"{qualified.lower()}/{ref.get('name', '')}"
    return "<none>"


def controllerrevision_cells(cr: Obj, now: datetime) -> list[Any]:
    return [_name(cr), controller_name(cr), _int(cr.get("revision")), _age(cr, now)]
