"""RBAC objects and APIServices: defaulting, validation with upstream's field paths, Table
columns, and the RBAC evaluation behind the access reviews."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from netlab.api import defaults, rbac, rbac_bootstrap
from netlab.api.tables import to_table
from netlab.api.validation import validate, validate_update

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
GROUP = "rbac.authorization.k8s.io"


def _errors(kind: str, obj: dict, namespaced: bool) -> list[str]:
    defaults.apply_defaults(kind, obj)
    return [str(e) for e in validate(kind, obj, namespaced)]


def role(*rules: dict, name: str = "r") -> dict:
    return {"metadata": {"name": name, "namespace": "default"}, "rules": list(rules)}


def binding(kind: str = "Role", name: str = "r", subjects: list | None = None,
            namespace: str | None = "default") -> dict:
    meta = {"name": "b"}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "roleRef": {"kind": kind, "name": name},
            "subjects": subjects if subjects is not None else [{"kind": "User", "name": "jane"}]}


# --- roles ------------------------------------------------------------------------------------


def test_rules_need_verbs_and_groups_and_resources():
    assert _errors("Role", role({"apiGroups": [""], "resources": ["pods"],
                                 "verbs": ["get"]}), True) == []
    assert _errors("Role", role({"apiGroups": [""], "resources": ["pods"]}), True) == [
        "rules[0].verbs: Required value: verbs must contain at least one value"]
    assert _errors("Role", role({"verbs": ["get"]}), True) == [
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[0].resources: Required value: resource rules must supply at least one resource"]


def test_non_resource_urls_only_in_cluster_roles_and_never_with_resources():
    urls = {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}
    cluster_role = {"metadata": {"name": "system:probe"}, "rules": [urls]}
    assert _errors("ClusterRole", cluster_role, False) == []
    errs = _errors("Role", role(urls), True)
    assert errs == ['rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: '
                    "namespaced rules cannot apply to non-resource URLs"]
    mixed = {"metadata": {"name": "x"}, "rules": [{**urls, "resources": ["pods"]}]}
    assert _errors("ClusterRole", mixed, False) == [
        'rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: rules cannot apply to both '
        "regular resources and non-resource URLs"]


def test_rbac_names_only_have_to_fit_in_a_path():
    assert _errors("ClusterRole", {"metadata": {"name": "system:Odd Name"}}, False) == []
    assert _errors("ClusterRole", {"metadata": {"name": "a%b"}}, False) == [
        "metadata.name: Invalid value: \"a%b\": may not contain '%'"]


def test_aggregation_rule_needs_a_selector():
    obj = {"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": []}}
    assert _errors("ClusterRole", obj, False) == [
        "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector "
        "required if aggregationRule is non-nil"]


# --- bindings ---------------------------------------------------------------------------------


def test_binding_defaults_fill_the_rbac_group():
    obj = defaults.apply_defaults("RoleBinding", binding(subjects=[
        {"kind": "User", "name": "u"}, {"kind": "Group", "name": "g"},
        {"kind": "ServiceAccount", "name": "sa"}]))
    assert obj["roleRef"]["apiGroup"] == GROUP
    assert [s.get("apiGroup") for s in obj["subjects"]] == [GROUP, GROUP, None]


@pytest.mark.parametrize("obj, namespaced, message", [
    (binding(kind="Pod"), True, 'roleRef.kind: Unsupported value: "Pod": supported values: '
                                '"Role", "ClusterRole"'),
    (binding(kind="Role", namespace=None), False,
     'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"'),
    (binding(name=""), True, "roleRef.name: Required value"),
    (binding(subjects=[{"kind": "Robot", "name": "r2"}]), True,
     'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", '
     '"User", "Group"'),
    (binding(subjects=[{"kind": "User"}]), True, "subjects[0].name: Required value"),
    (binding(subjects=[{"kind": "User", "name": "u", "apiGroup": "v1"}]), True,
     'subjects[0].apiGroup: Unsupported value: "v1": supported values: '
     '"rbac.authorization.k8s.io"'),
    (binding(subjects=[{"kind": "ServiceAccount", "name": "sa", "apiGroup": GROUP}]), True,
     'subjects[0].apiGroup: Unsupported value: "rbac.authorization.k8s.io": supported '
     'values: ""'),
    (binding(kind="ClusterRole", namespace=None,
             subjects=[{"kind": "ServiceAccount", "name": "sa"}]), False,
     "subjects[0].namespace: Required value"),
])
def test_binding_errors(obj, namespaced, message):
    kind = "RoleBinding" if namespaced else "ClusterRoleBinding"
    assert message in _errors(kind, obj, namespaced)


def test_role_ref_is_immutable():
    old = defaults.apply_defaults("RoleBinding", binding())
    new = defaults.apply_defaults("RoleBinding", binding(name="other"))
    errs = [str(e) for e in validate_update("RoleBinding", new, old, True)]
    assert len(errs) == 1 and errs[0].startswith("roleRef: Invalid value: ")
    assert errs[0].endswith("cannot change roleRef")
    same = defaults.apply_defaults("RoleBinding", binding(subjects=[]))
    assert validate_update("RoleBinding", same, old, True) == []


# --- APIService -------------------------------------------------------------------------------


def apiservice(name: str = "v1beta1.metrics.example.com", **spec) -> dict:
    base = {"group": "metrics.example.com", "version": "v1beta1",
            "groupPriorityMinimum": 100, "versionPriority": 100}
    return {"metadata": {"name": name}, "spec": {**base, **spec}}


def test_apiservice_validation():
    assert _errors("APIService", apiservice(), False) == []
    svc = apiservice(service={"name": "m", "namespace": "kube-system"})
    assert _errors("APIService", svc, False) == [] and svc["spec"]["service"]["port"] == 443
    assert _errors("APIService", apiservice(name="v1.other"), False) == [
        'metadata.name: Invalid value: "v1.other": must be `spec.version+"."+spec.group`: '
        '"v1beta1.metrics.example.com"']
    assert _errors("APIService", apiservice(groupPriorityMinimum=0), False) == [
        "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000"]
    assert _errors("APIService", apiservice(caBundle="AAAA"), False) == [
        'spec.caBundle: Invalid value: "4 bytes": local APIServices may not have a caBundle']
    assert _errors("APIService", apiservice(service={"name": "m"}), False) == [
        "spec.service.namespace: Required value"]
    core = {"metadata": {"name": "v1."}, "spec": {"group": "", "version": "v1",
                                                  "groupPriorityMinimum": 18000,
                                                  "versionPriority": 1}}
    assert _errors("APIService", core, False) == []


# --- tables -----------------------------------------------------------------------------------


def _row(kind: str, obj: dict) -> list:
    obj["metadata"]["creationTimestamp"] = "2025-12-31T23:00:00Z"
    return to_table(kind, [obj], NOW)["rows"][0]["cells"]


def test_rbac_and_apiservice_columns():
    cols = [(c["name"], c["priority"]) for c in to_table("RoleBinding", [], NOW)[
        "columnDefinitions"]]
    assert cols == [("Name", 0), ("Role", 0), ("Age", 0), ("Users", 1), ("Groups", 1),
                    ("ServiceAccounts", 1)]
    subjects = [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"},
                {"kind": "Group", "name": "g"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]
    assert _row("ClusterRoleBinding", binding("ClusterRole", "view", subjects, None)) == [
        "b", "ClusterRole/view", "60m", "a, b", "g", "ns/sa"]
    assert [c["name"] for c in to_table("Role", [], NOW)["columnDefinitions"]] == [
        "Name", "Created At"]
    assert _row("ClusterRole", {"metadata": {"name": "view"}}) == ["view",
                                                                   "2025-12-31T23:00:00Z"]
    local = apiservice(name="v1.apps")
    local["status"] = {"conditions": [{"type": "Available", "status": "True"}]}
    assert _row("APIService", local) == ["v1.apps", "Local", "True", "60m"]
    remote = apiservice(service={"name": "m", "namespace": "kube-system"})
    remote["status"] = {"conditions": [{"type": "Available", "status": "False",
                                        "reason": "FailedDiscoveryCheck"}]}
    assert _row("APIService", remote)[1:3] == ["kube-system/m", "False (FailedDiscoveryCheck)"]
    assert _row("APIService", apiservice())[2] == "Unknown"


# --- evaluation -------------------------------------------------------------------------------


def objects(*extra_bindings: dict, **roles: list) -> rbac.RBACObjects:
    out = rbac.RBACObjects(
        cluster_roles={r["metadata"]["name"]: r for r in rbac_bootstrap.CLUSTER_ROLES},
        cluster_role_bindings=list(rbac_bootstrap.CLUSTER_ROLE_BINDINGS))
    for name, rules in roles.items():
        out.roles[("dev", name)] = {"metadata": {"name": name, "namespace": "dev"},
                                    "rules": rules}
    out.role_bindings = [b for b in extra_bindings if b["metadata"].get("namespace")]
    out.cluster_role_bindings += [b for b in extra_bindings
                                  if not b["metadata"].get("namespace")]
    return out


JANE = rbac.UserInfo("jane", ("devs", rbac.AUTHENTICATED_GROUP))
READER = [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
          {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"],
           "verbs": ["*"]}]


def _allowed(objs: rbac.RBACObjects, user: rbac.UserInfo, **attrs) -> bool:
    return rbac.authorize(objs, user, rbac.Attributes(**attrs))[0]


def test_masters_may_do_everything_even_without_bindings():
    admin = rbac.UserInfo("admin", (rbac.MASTERS_GROUP,))
    assert _allowed(rbac.RBACObjects(), admin, verb="delete", resource="nodes")


def test_role_binding_grants_its_rules_in_its_namespace_only():
    dev = {"metadata": {"name": "read", "namespace": "dev"},
           "roleRef": {"kind": "Role", "name": "reader"},
           "subjects": [{"kind": "Group", "name": "devs"}]}
    objs = objects(dev, reader=READER)
    assert _allowed(objs, JANE, verb="list", resource="pods", namespace="dev")
    allowed, reason, _ = rbac.authorize(objs, JANE, rbac.Attributes(
        verb="get", resource="pods", subresource="log", namespace="dev"))
    assert allowed and reason == ('RBAC: allowed by RoleBinding "read/dev" of Role "reader" '
                                  'to Group "devs"')
    assert not _allowed(objs, JANE, verb="delete", resource="pods", namespace="dev")
    assert not _allowed(objs, JANE, verb="list", resource="pods", namespace="prod")
    assert _allowed(objs, JANE, verb="patch", group="apps", resource="deployments",
                    name="web", namespace="dev")
    assert not _allowed(objs, JANE, verb="patch", group="apps", resource="deployments",
                        name="db", namespace="dev")


def test_cluster_bindings_service_accounts_and_non_resource_urls():
    view = {"metadata": {"name": "robots-view"},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "ci"}]}
    robot = rbac.UserInfo("system:serviceaccount:ci:robot", (rbac.AUTHENTICATED_GROUP,))
    objs = objects(view)
    assert _allowed(objs, robot, verb="watch", group="apps", resource="deployments",
                    namespace="x")
    assert not _allowed(objs, robot, verb="create", resource="pods", namespace="x")
    # system:discovery, bound to every authenticated user.
    assert _allowed(objs, robot, verb="get", path="/apis/apps", resource_request=False)
    assert not _allowed(objs, robot, verb="get", path="/metrics", resource_request=False)


def test_rules_review_lists_what_applies_and_reports_missing_roles():
    dangling = {"metadata": {"name": "gone", "namespace": "dev"},
                "roleRef": {"kind": "Role", "name": "missing"},
                "subjects": [{"kind": "User", "name": "jane"}]}
    status = rbac.rules_review(objects(dangling), JANE, "dev")
    assert {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]} in \
        status["resourceRules"]
    assert any("/api/*" in r["nonResourceURLs"] for r in status["nonResourceRules"])
    assert status["incomplete"] is True
    assert status["evaluationError"] == 'role.rbac.authorization.k8s.io "missing" not found'
    admin = rbac.UserInfo("admin", (rbac.MASTERS_GROUP, rbac.AUTHENTICATED_GROUP))
    status = rbac.rules_review(objects(), admin, "default")
    assert status["resourceRules"][0] == {"verbs": ["*"], "apiGroups": ["*"],
                                          "resources": ["*"]}
    assert status["nonResourceRules"][0] == {"verbs": ["*"], "nonResourceURLs": ["*"]}
    assert status["incomplete"] is False


def test_bootstrap_roles_are_valid():
    for obj in rbac_bootstrap.CLUSTER_ROLES:
        assert _errors("ClusterRole", dict(obj), False) == [], obj["metadata"]["name"]
    for obj in rbac_bootstrap.CLUSTER_ROLE_BINDINGS:
        assert _errors("ClusterRoleBinding", dict(obj), False) == []
