"""RBAC evaluation, pure: which rules bind a user, and whether a rule allows a request.

Restates the RBAC authorizer of Kubernetes (plugin/pkg/auth/authorizer/rbac and
pkg/registry/rbac/validation's ``DefaultRuleResolver``): a ClusterRoleBinding grants its
ClusterRole's rules everywhere; a RoleBinding grants its Role's (or ClusterRole's) rules in
its namespace; a subject is a User, a Group, or a ServiceAccount (the user
``system:serviceaccount:<namespace>:<name>``). The API server's review handlers
(``netlab/master/apiserver/reviews.py``) read the RBAC objects from the store and ask this
module. Members of ``system:masters`` are allowed everything before RBAC is consulted, as
kube-apiserver's privileged-group authorizer does. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from netlab.api.views import dict_at

MASTERS_GROUP = "system:masters"
AUTHENTICATED_GROUP = "system:authenticated"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    """Who a request is from, as an authenticator reports it."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Attributes:
    """What a request does: a resource request (``resource`` set) or a non-resource one
    (``path`` set); ``verb`` is the Kubernetes verb (get, list, create ...)."""

    verb: str
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass
class RBACObjects:
    """A snapshot of the RBAC objects the evaluation reads."""

    cluster_roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    cluster_role_bindings: list[dict[str, Any]] = field(default_factory=list)
    roles: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (namespace, name)
    role_bindings: list[dict[str, Any]] = field(default_factory=list)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _meta(obj: dict[str, Any], key: str) -> str:
    meta = obj.get("metadata")
    value = meta.get(key) if isinstance(meta, dict) else None
    return value if isinstance(value, str) else ""


def applies_to(subject: Any, user: UserInfo, binding_namespace: str) -> bool:
    """``appliesToUser``: whether one binding subject names this user."""
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user.name == f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"
    return False


def _binds(binding: dict[str, Any], user: UserInfo) -> bool:
    namespace = _meta(binding, "namespace")
    return any(applies_to(s, user, namespace) for s in _list(binding.get("subjects")))


def _describe(binding: dict[str, Any], role_kind: str, role_name: str, user: UserInfo) -> str:
    namespace = _meta(binding, "namespace")
    where = f"RoleBinding \"{_meta(binding, 'name')}/{namespace}\"" if namespace else \
        f"ClusterRoleBinding \"{_meta(binding, 'name')}\""
    subject = next(s for s in _list(binding.get("subjects")) if applies_to(s, user, namespace))
    shown = subject.get("name")
    if subject.get("kind") == "ServiceAccount":
        shown = f"{shown}/{subject.get('namespace') or namespace}"
    return f"{where} of {role_kind} \"{role_name}\" to {subject.get('kind')} \"{shown}\""


def _role_ref(binding: dict[str, Any]) -> tuple[str, str]:
    ref = dict_at(binding, "roleRef")
    kind, name = ref.get("kind"), ref.get("name")
    return (kind if isinstance(kind, str) else "", name if isinstance(name, str) else "")


def visit_rules(objects: RBACObjects, user: UserInfo, namespace: str,
                ) -> tuple[list[tuple[dict[str, Any], str]], list[str]]:
    """Every rule that applies to ``user`` in ``namespace`` ("" for cluster scope), each with
    the sentence naming its source, and the evaluation errors (missing roles)."""
    rules: list[tuple[dict[str, Any], str]] = []
    errors: list[str] = []
    for binding in objects.cluster_role_bindings:
        if not _binds(binding, user):
            continue
        _, name = _role_ref(binding)
        role = objects.cluster_roles.get(name)
        if role is None:
            errors.append(f'clusterrole.rbac.authorization.k8s.io "{name}" not found')
            continue
        source = _describe(binding, "ClusterRole", name, user)
        rules.extend((r, source) for r in _list(role.get("rules")) if isinstance(r, dict))
    if not namespace:
        return rules, errors
    for binding in objects.role_bindings:
        if _meta(binding, "namespace") != namespace or not _binds(binding, user):
            continue
        kind, name = _role_ref(binding)
        role = objects.roles.get((namespace, name)) if kind == "Role" else \
            objects.cluster_roles.get(name)
        if role is None:
            what = "role" if kind == "Role" else "clusterrole"
            errors.append(f'{what}.rbac.authorization.k8s.io "{name}" not found')
            continue
        source = _describe(binding, kind, name, user)
        rules.extend((r, source) for r in _list(role.get("rules")) if isinstance(r, dict))
    return rules, errors


def _has(values: Any, wanted: str) -> bool:
    values = _list(values)
    return "*" in values or wanted in values


def _resource_matches(rule: dict[str, Any], attrs: Attributes) -> bool:
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    for res in _list(rule.get("resources")):
        if res in ("*", combined):
            return True
        if attrs.subresource and res == f"*/{attrs.subresource}":
            return True
    return False


def _url_matches(rule: dict[str, Any], path: str) -> bool:
    for url in _list(rule.get("nonResourceURLs")):
        if not isinstance(url, str):
            continue
        if url in ("*", path) or (url.endswith("*") and path.startswith(url.rstrip("*"))):
            return True
    return False


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    """``RuleAllows``: verbs, then groups/resources/names or the non-resource URL."""
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    names = _list(rule.get("resourceNames"))
    return _has(rule.get("apiGroups"), attrs.group) and _resource_matches(rule, attrs) and \
        (not names or attrs.name in names)


def authorize(objects: RBACObjects, user: UserInfo, attrs: Attributes,
              ) -> tuple[bool, str, str]:
    """(allowed, reason, evaluation error) for one request by ``user``."""
    if MASTERS_GROUP in user.groups:
        return True, "", ""
    rules, errors = visit_rules(objects, user, attrs.namespace)
    for rule, source in rules:
        if rule_allows(rule, attrs):
            return True, f"RBAC: allowed by {source}", ""
    return False, "", "; ".join(errors)


def rules_review(objects: RBACObjects, user: UserInfo, namespace: str) -> dict[str, Any]:
    """The status of a SelfSubjectRulesReview: every rule that applies, as the RBAC rule
    resolver lists them (duplicates kept, in binding order)."""
    rules, errors = visit_rules(objects, user, namespace)
    resource_rules, non_resource_rules = [], []
    for rule, _ in rules:
        if _list(rule.get("nonResourceURLs")):
            non_resource_rules.append({"verbs": _list(rule.get("verbs")),
                                       "nonResourceURLs": _list(rule["nonResourceURLs"])})
            continue
        entry: dict[str, Any] = {"verbs": _list(rule.get("verbs"))}
        for key in ("apiGroups", "resources", "resourceNames"):
            if _list(rule.get(key)):
                entry[key] = _list(rule[key])
        resource_rules.append(entry)
    status: dict[str, Any] = {"resourceRules": resource_rules,
                              "nonResourceRules": non_resource_rules, "incomplete": bool(errors)}
    if errors:
        status["evaluationError"] = "; ".join(errors)
    return status


def attributes_from_spec(spec: dict[str, Any], namespace: Optional[str] = None) -> Attributes:
    """The Attributes an access review's spec asks about."""
    res = spec.get("resourceAttributes")
    if isinstance(res, dict):
        def text(key: str) -> str:
            value = res.get(key)
            return value if isinstance(value, str) else ""
        return Attributes(verb=text("verb"), namespace=namespace or text("namespace"),
                          group=text("group"), resource=text("resource"),
                          subresource=text("subresource"), name=text("name"))
    non = spec.get("nonResourceAttributes")
    non = non if isinstance(non, dict) else {}
    return Attributes(verb=str(non.get("verb") or ""), path=str(non.get("path") or ""),
                      resource_request=False)
