"""Validation of apps/v1 DaemonSets, StatefulSets and ControllerRevisions.

The rules, field paths and messages of k8s.io/kubernetes/pkg/apis/apps/validation
(``ValidateDaemonSetSpec``, ``ValidateStatefulSetSpec``, ``ValidateControllerRevision``
and their update checks), registered into :mod:`netlab.api.validation`'s tables.
A StatefulSet's ``volumeClaimTemplates`` are checked as claims' specs
(``validation_storage``), and its containers may mount them by name, as the pods the
controller makes get one volume per template.

The selector/template rules shared with Deployments live in ``validation_pod``. Pure.
"""

from __future__ import annotations

from typing import Any

from netlab.api import validation_base as base
from netlab.api.errors import forbidden_field, invalid, required
from netlab.api.validation_base import _V, _immutable, dns1123_label
from netlab.api.validation_pod import _selector_and_template
from netlab.api.validation_storage import validate_claim_spec

STS_UPDATE_MSG = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                  "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                  "'minReadySeconds' are forbidden")
_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def _selector_shape(v: _V, spec: dict[str, Any]) -> bool:
    """Whether the selector has the types the selector parser needs (reported if not)."""
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return True  # missing or not an object: the shared rules report it
    fine = True
    for key, kind, name in (("matchLabels", dict, "an object"),
                            ("matchExpressions", list, "a list")):
        value = selector.get(key)
        if value is not None and not isinstance(value, kind):
            v.add(invalid(f"spec.selector.{key}", value, f"must be {name}"))
            fine = False
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        if not isinstance(expr, dict) or not isinstance(expr.get("values") or [], list):
            v.add(invalid(f"spec.selector.matchExpressions[{i}]", expr, "must be an object "
                          "with a list of values"))
            fine = False
    return fine


def _template_rules(v: _V, spec: dict[str, Any], what: str, kind: str,
                    claim_volumes: frozenset[str] = frozenset()) -> None:
    if not _selector_shape(v, spec):
        return
    _selector_and_template(v, spec, what, f"empty selector is invalid for {what}",
                           ("Always",), claim_volumes)
    tspec = (spec.get("template") or {}).get("spec") if isinstance(
        spec.get("template"), dict) else None
    if isinstance(tspec, dict) and tspec.get("activeDeadlineSeconds") is not None:
        v.add(forbidden_field("spec.template.spec.activeDeadlineSeconds",
                              f"activeDeadlineSeconds in {kind} is not Supported"))


def _int_or_percent(v: _V, parent: dict[str, Any], key: str, path: str) -> float | None:
    value = base._int_or_percent(v, parent, key, path)
    if isinstance(parent.get(key), str) and value is not None and value > 100:
        v.add(invalid(path, parent[key], "must not be greater than 100%"))
    return value


def validate_daemonset(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    _template_rules(v, spec, "daemonset", "DaemonSet")
    v.non_negative(spec, "minReadySeconds", "spec.minReadySeconds")
    v.non_negative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    strategy = v.obj(spec, "updateStrategy", "spec.updateStrategy")
    stype = v.one_of(strategy, "type", "spec.updateStrategy.type",
                     ("OnDelete", "RollingUpdate"), required_=True)
    rolling = strategy.get("rollingUpdate")
    if stype == "RollingUpdate" and rolling is None:
        v.add(required("spec.updateStrategy.rollingUpdate"))
    if stype == "RollingUpdate" and isinstance(rolling, dict):
        path = "spec.updateStrategy.rollingUpdate"
        unavailable = _int_or_percent(v, rolling, "maxUnavailable", f"{path}.maxUnavailable")
        surge = _int_or_percent(v, rolling, "maxSurge", f"{path}.maxSurge")
        if unavailable and surge:
            v.add(invalid(f"{path}.maxSurge", rolling.get("maxSurge"),
                          "may not be set when maxUnavailable is non-zero"))
        elif not unavailable and not surge:
            v.add(required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))


def validate_daemonset_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    _immutable(v, new, old, "spec", "selector")


def validate_statefulset(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    v.one_of(spec, "podManagementPolicy", "spec.podManagementPolicy",
             ("OrderedReady", "Parallel"), required_=True)
    strategy = v.obj(spec, "updateStrategy", "spec.updateStrategy")
    stype = v.one_of(strategy, "type", "spec.updateStrategy.type",
                     ("OnDelete", "RollingUpdate"), required_=True)
    rolling = strategy.get("rollingUpdate")
    if stype == "OnDelete" and rolling is not None:
        v.add(invalid("spec.updateStrategy.rollingUpdate", rolling,
                      "only allowed for updateStrategy 'RollingUpdate'"))
    elif isinstance(rolling, dict):
        v.non_negative(rolling, "partition", "spec.updateStrategy.rollingUpdate.partition")
        if rolling.get("maxUnavailable") is not None:
            value = _int_or_percent(v, rolling, "maxUnavailable",
                                    "spec.updateStrategy.rollingUpdate.maxUnavailable")
            if value == 0:
                v.add(invalid("spec.updateStrategy.rollingUpdate.maxUnavailable",
                              rolling["maxUnavailable"], "must be greater than 0"))
    policy = v.obj(spec, "persistentVolumeClaimRetentionPolicy",
                   "spec.persistentVolumeClaimRetentionPolicy")
    for key in ("whenDeleted", "whenScaled"):
        v.one_of(policy, key, f"spec.persistentVolumeClaimRetentionPolicy.{key}",
                 ("Retain", "Delete"))
    v.non_negative(spec, "replicas", "spec.replicas")
    v.non_negative(spec, "minReadySeconds", "spec.minReadySeconds")
    v.non_negative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    ordinals = v.obj(spec, "ordinals", "spec.ordinals")
    v.non_negative(ordinals, "start", "spec.ordinals.start")
    service = v.string(spec, "serviceName", "spec.serviceName")
    if service:
        for msg in dns1123_label(service):
            v.add(invalid("spec.serviceName", service, msg))
    claim_names: set[str] = set()
    for cpath, claim in v.objs(spec, "volumeClaimTemplates", "spec.volumeClaimTemplates"):
        cname = v.string(v.obj(claim, "metadata", f"{cpath}.metadata"), "name",
                         f"{cpath}.metadata.name")
        if not cname:
            v.add(required(f"{cpath}.metadata.name", "name or generateName is required"))
        else:
            for msg in dns1123_label(cname):
                v.add(invalid(f"{cpath}.metadata.name", cname, msg))
            claim_names.add(cname)
        validate_claim_spec(v, claim.get("spec"), f"{cpath}.spec")
    _template_rules(v, spec, "statefulset", "StatefulSet", frozenset(claim_names))


def _fixed_fields(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: val for k, val in spec.items() if k not in _STS_MUTABLE}


def validate_statefulset_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    new_spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return
    if _fixed_fields(new_spec) != _fixed_fields(old_spec):
        v.add(forbidden_field("spec", STS_UPDATE_MSG))


def validate_controllerrevision(v: _V, obj: dict[str, Any]) -> None:
    if obj.get("data") is None:
        v.add(required("data"))
    revision = v.integer(obj, "revision", "revision")
    if revision is not None and revision < 0:
        v.add(invalid("revision", revision, "must be greater than or equal to 0"))


def validate_controllerrevision_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    if new.get("data") != old.get("data"):
        v.add(invalid("data", "", "field is immutable"))

