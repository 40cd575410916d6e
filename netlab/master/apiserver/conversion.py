"""Conversion between the served versions of a resource and its stored version.

Only one resource is served in two versions: HorizontalPodAutoscaler, stored
as ``autoscaling/v2`` and also served as ``autoscaling/v1`` (which is what
``kubectl autoscale`` wrote for years). v1 knows a single CPU utilization
target; Kubernetes converts it to and from a v2 ``Resource`` metric, which is
what this module does. The v2-only parts of an object (other metrics,
``behavior``) survive a v1 update because :func:`to_storage` merges with the
stored object, as Kubernetes' annotations-based round trip achieves.

Custom resources use conversion strategy ``None``: only ``apiVersion`` changes
(:mod:`netlab.api.customresources`), and reads apply the schema's defaults.

Every other resource is served in its storage version and passes through.
"""

from __future__ import annotations

from typing import Any, Optional

from netlab.api import customresources
from netlab.api.objects import deep_copy
from netlab.api.resources import Resource
from netlab.api.views import dict_at


def _cpu_utilization(metrics: Any, key: str) -> Optional[int]:
    for metric in metrics if isinstance(metrics, list) else []:
        if not isinstance(metric, dict) or metric.get("type") != "Resource":
            continue
        res = metric.get("resource")
        if isinstance(res, dict) and res.get("name") == "cpu":
            target = res.get(key)
            if isinstance(target, dict) and target.get("averageUtilization") is not None:
                return target["averageUtilization"]
    return None


def hpa_v2_to_v1(obj: dict) -> dict:
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = "autoscaling/v1"
    spec = dict_at(obj, "spec")
    v1spec: dict[str, Any] = {}
    for key in ("scaleTargetRef", "minReplicas", "maxReplicas"):
        if key in spec:
            v1spec[key] = spec[key]
    cpu = _cpu_utilization(spec.get("metrics"), "target")
    if cpu is not None:
        v1spec["targetCPUUtilizationPercentage"] = cpu
    out["spec"] = v1spec
    status = obj.get("status")
    if isinstance(status, dict):
        v1status: dict[str, Any] = {}
        for key in ("observedGeneration", "lastScaleTime", "currentReplicas",
                    "desiredReplicas"):
            if key in status:
                v1status[key] = status[key]
        v1status.setdefault("currentReplicas", 0)
        v1status.setdefault("desiredReplicas", 0)
        current = _cpu_utilization(status.get("currentMetrics"), "current")
        if current is not None:
            v1status["currentCPUUtilizationPercentage"] = current
        out["status"] = v1status
    return out


def hpa_v1_to_v2(obj: dict, stored: Optional[dict] = None) -> dict:
    out = {k: v for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = "autoscaling/v2"
    spec = dict_at(obj, "spec")
    old_spec = deep_copy((stored or {}).get("spec")) if isinstance(
        (stored or {}).get("spec"), dict) else {}
    v2spec: dict[str, Any] = dict(old_spec)
    for key in ("scaleTargetRef", "minReplicas", "maxReplicas"):
        if key in spec:
            v2spec[key] = spec[key]
        else:
            v2spec.pop(key, None)
    metrics = [m for m in v2spec.get("metrics") or []
               if not (isinstance(m, dict) and m.get("type") == "Resource"
                       and (m.get("resource") or {}).get("name") == "cpu")]
    cpu = spec.get("targetCPUUtilizationPercentage")
    if cpu is not None:
        metrics.insert(0, {"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}})
    if metrics:
        v2spec["metrics"] = metrics
    else:
        v2spec.pop("metrics", None)
    out["spec"] = v2spec
    status = (stored or {}).get("status")
    if isinstance(status, dict):
        out["status"] = status
    return out


def to_served(res: Resource, version: str, obj: dict) -> dict:
    """A stored object as the client's ``version`` shows it (the input is not modified)."""
    if res.custom is not None:
        return customresources.convert(res, version, obj)
    if res.kind == "HorizontalPodAutoscaler" and version == "v1":
        return hpa_v2_to_v1(obj)
    return obj


def to_storage(res: Resource, version: str, obj: dict, stored: Optional[dict] = None) -> dict:
    """A client's object in the storage version; ``stored`` is the current object on update."""
    if res.custom is not None:
        # Conversion strategy None: the fields stay, apiVersion names the stored version.
        obj["apiVersion"] = res.api_version(res.custom.storage_version)
        return obj
    if res.kind == "HorizontalPodAutoscaler" and version == "v1":
        return hpa_v1_to_v2(obj, stored)
    return obj


def needs_conversion(res: Resource, version: str) -> bool:
    if res.custom is not None:
        info = res.custom.version(version)
        return version != res.custom.storage_version or info is None or info.defaults
    return version != res.preferred_version
