"""Defaulting of apps/v1 DaemonSets and StatefulSets (``SetDefaults_DaemonSet``,
``SetDefaults_StatefulSet`` in k8s.io/kubernetes/pkg/apis/apps/v1/defaults.go), and
the RollingUpdate strategy a DaemonSet shares with a Deployment.

Registered in :data:`netlab.api.defaults._DEFAULTERS`; like every defaulter there,
a field is set only when absent (idempotent, so ``kubectl apply`` twice is a no-op)
and values of the wrong type are left for validation to report. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from netlab.api.defaults_pod import _dict, default_pod_template
from netlab.api.defaults_storage import default_claim_templates

DEFAULT_REVISION_HISTORY_LIMIT = 10


def _template(spec: dict[str, Any]) -> None:
    default_pod_template(spec.get("template"))


def default_rolling_update(spec: dict[str, Any], key: str, max_unavailable: int | str,
                           max_surge: int | str) -> None:
    """``spec[key]`` (a Deployment's ``strategy``, a DaemonSet's ``updateStrategy``): type
    RollingUpdate, and when that is the type, its two budgets."""
    strategy = _dict(spec, key)
    if strategy is not None:
        strategy.setdefault("type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _dict(strategy, "rollingUpdate")
            if rolling is not None:
                rolling.setdefault("maxUnavailable", max_unavailable)
                rolling.setdefault("maxSurge", max_surge)


def default_daemonset(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    default_rolling_update(spec, "updateStrategy", 1, 0)
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
    default_claim_templates(spec.get("volumeClaimTemplates"))
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    _template(spec)
