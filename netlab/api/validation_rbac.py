"""Validation of rbac.authorization.k8s.io/v1 objects and authorization.k8s.io/v1 reviews.

Restates pkg/apis/rbac/validation and pkg/apis/authorization/validation with their field
paths and messages: rules need verbs, and either apiGroups+resources or nonResourceURLs
(the latter only in ClusterRoles); bindings name a Role or ClusterRole of this API group,
subjects are User, Group or ServiceAccount with the apiGroup each requires, and roleRef
never changes. :mod:`netlab.api.validation` registers the object validators; the review
validators are called by the API server's review handlers, since reviews are never stored.
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from netlab.api.errors import FieldError, invalid, not_supported, required
from netlab.api.validation_base import _V, NAME_RULES, dns1123_subdomain
from netlab.api.validation_networking import label_selector

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def path_segment_name(value: str) -> list[str]:
    """``path.IsValidPathSegmentName``: RBAC names only have to fit in a URL path."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


for _kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
    NAME_RULES[_kind] = path_segment_name


def _strings(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _policy_rule(v: _V, rule: dict[str, Any], path: str, namespaced: bool) -> None:
    if not _strings(rule.get("verbs")):
        v.add(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = _strings(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            v.add(invalid(f"{path}.nonResourceURLs", urls,
                          "namespaced rules cannot apply to non-resource URLs"))
        if any(_strings(rule.get(k)) for k in ("apiGroups", "resources", "resourceNames")):
            v.add(invalid(f"{path}.nonResourceURLs", urls,
                          "rules cannot apply to both regular resources and non-resource URLs"))
        return
    if not _strings(rule.get("apiGroups")):
        v.add(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not _strings(rule.get("resources")):
        v.add(required(f"{path}.resources", "resource rules must supply at least one resource"))


def validate_role(v: _V, obj: dict[str, Any]) -> None:
    for path, rule in v.objs(obj, "rules", "rules"):
        _policy_rule(v, rule, path, namespaced=True)


def validate_cluster_role(v: _V, obj: dict[str, Any]) -> None:
    for path, rule in v.objs(obj, "rules", "rules"):
        _policy_rule(v, rule, path, namespaced=False)
    if obj.get("aggregationRule") is None:
        return
    agg = v.obj(obj, "aggregationRule", "aggregationRule")
    path = "aggregationRule.clusterRoleSelectors"
    if not agg.get("clusterRoleSelectors"):
        v.add(required(path, "at least one clusterRoleSelector required if aggregationRule "
                             "is non-nil"))
    for spath, selector in v.objs(agg, "clusterRoleSelectors", path):
        label_selector(v, selector, spath)


def _subject(v: _V, subject: dict[str, Any], path: str, namespaced: bool) -> None:
    name = v.string(subject, "name", f"{path}.name")
    kind = v.string(subject, "kind", f"{path}.kind")
    group = v.string(subject, "apiGroup", f"{path}.apiGroup")
    if not name:
        v.add(required(f"{path}.name"))
    if kind == "ServiceAccount":
        for msg in dns1123_subdomain(name) if name else ():
            v.add(invalid(f"{path}.name", name, msg))
        if group:
            v.add(not_supported(f"{path}.apiGroup", group, ("",)))
        if not namespaced and not subject.get("namespace"):
            v.add(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            v.add(not_supported(f"{path}.apiGroup", group, (GROUP,)))
    else:
        v.add(not_supported(f"{path}.kind", kind, SUBJECT_KINDS))


def _binding(v: _V, obj: dict[str, Any], role_kinds: tuple[str, ...], namespaced: bool) -> None:
    ref = v.obj(obj, "roleRef", "roleRef")
    group = v.string(ref, "apiGroup", "roleRef.apiGroup")
    if group != GROUP:
        v.add(not_supported("roleRef.apiGroup", group, (GROUP,)))
    kind = v.string(ref, "kind", "roleRef.kind")
    if kind not in role_kinds:
        v.add(not_supported("roleRef.kind", kind, role_kinds))
    name = v.string(ref, "name", "roleRef.name")
    if not name:
        v.add(required("roleRef.name"))
    for msg in path_segment_name(name):
        v.add(invalid("roleRef.name", name, msg))
    for path, subject in v.objs(obj, "subjects", "subjects"):
        _subject(v, subject, path, namespaced)


def validate_role_binding(v: _V, obj: dict[str, Any]) -> None:
    _binding(v, obj, ("Role", "ClusterRole"), namespaced=True)


def validate_cluster_role_binding(v: _V, obj: dict[str, Any]) -> None:
    _binding(v, obj, ("ClusterRole",), namespaced=False)


def validate_binding_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A binding's roleRef is immutable: delete and recreate to point elsewhere."""
    if new.get("roleRef") != old.get("roleRef"):
        v.add(invalid("roleRef", new.get("roleRef"), "cannot change roleRef"))


# --- access reviews ---------------------------------------------------------------------------


def _access_spec(v: _V, spec: dict[str, Any]) -> None:
    has_resource = spec.get("resourceAttributes") is not None
    has_non_resource = spec.get("nonResourceAttributes") is not None
    if has_resource and has_non_resource:
        v.add(invalid("spec.nonResourceAttributes", spec["nonResourceAttributes"],
                      "cannot be specified in combination with resourceAttributes"))
    if not has_resource and not has_non_resource:
        v.add(invalid("spec.resourceAttributes", None,
                      "exactly one of nonResourceAttributes or resourceAttributes must be "
                      "specified"))
    for key in ("resourceAttributes", "nonResourceAttributes"):
        v.obj(spec, key, f"spec.{key}")


def _empty_meta(v: _V, obj: dict[str, Any], allowed: tuple[str, ...] = ()) -> None:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and any(val not in (None, "", {}, [])
                                      for k, val in meta.items() if k not in allowed):
        v.add(invalid("metadata", meta, "must be empty"))


def validate_access_review(kind: str, obj: dict[str, Any],
                           namespace: str | None) -> list[FieldError]:
    """The errors of a new SelfSubjectAccessReview, SubjectAccessReview or
    LocalSubjectAccessReview (SelfSubjectRulesReviews have nothing to check)."""
    v = _V()
    spec = v.obj(obj, "spec", "spec")
    if kind == "SelfSubjectRulesReview":
        return v.errs
    _access_spec(v, spec)
    if kind in ("SubjectAccessReview", "LocalSubjectAccessReview") and \
            not spec.get("user") and not spec.get("groups"):
        v.add(invalid("spec.user", spec.get("user", ""),
                      "at least one of user or group must be specified"))
    if kind == "LocalSubjectAccessReview":
        _empty_meta(v, obj, ("namespace",))
        attrs = spec.get("resourceAttributes")
        if isinstance(attrs, dict) and attrs.get("namespace", "") != namespace:
            v.add(invalid("spec.resourceAttributes.namespace", attrs.get("namespace", ""),
                          "must match metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            v.add(invalid("spec.nonResourceAttributes", spec["nonResourceAttributes"],
                          "disallowed on this kind of request"))
    else:
        _empty_meta(v, obj)
    return v.errs
