"""Defaulting of apps/v1 DaemonSets and StatefulSets (``SetDefaults_DaemonSet``,
``SetDefaults_StatefulSet`` in k8s.io/kubernetes/pkg/apis/apps/v1/defaults.go).

Registered in :data:`netlab.api.defaults._DEFAULTERS`; like every defaulter there,
a field is set only when absent (idempotent, so ``kubectl apply`` twice is a no-op)
and values of the wrong type are left for validation to report. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from netlab.api.defaults_pod import _dict, default_pod_template

DEFAULT_REVISION_HISTORY_LIMIT = 10


def _template(spec: dict[str, Any]) -> None:
    default_pod_template(spec.get("template"))


def default_daemonset(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    strategy = _dict(spec, "updateStrategy")
    if strategy is not None:
        strategy.setdefault("type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _dict(strategy, "rollingUpdate")
            if rolling is not None:
                rolling.setdefault("maxUnavailable", 1)
                rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    _template(spec)


def default_statefulset(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _dict(spec, "updateStrategy")
    if strategy is not None:
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            strategy.setdefault("rollingUpdate", {})
        rolling = strategy.get("rollingUpdate")
        if strategy.get("type") == "RollingUpdate" and isinstance(rolling, dict):
            rolling.setdefault("partition", 0)
    policy = _dict(spec, "persistentVolumeClaimRetentionPolicy")
    if policy is not None:
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    _template(spec)
