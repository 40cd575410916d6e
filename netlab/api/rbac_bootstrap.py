"""The ClusterRoles and ClusterRoleBindings every cluster starts with, after kube-apiserver's
bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).

``cluster-admin`` (everything; bound to ``system:masters``), the user-facing ``admin``,
``edit`` and ``view`` roles, and the ``system:basic-user``, ``system:discovery`` and
``system:public-info-viewer`` roles every authenticated user holds. Upstream fills admin, edit
and view by aggregation; netlab has no aggregation controller, so they are written out here
with the rules aggregation would give them for the kinds Kubernetes ships. The API server
creates missing ones at startup (``netlab/master/apiserver/bootstrap.py``). Pure data.
"""

from __future__ import annotations

from typing import Any

GROUP = "rbac.authorization.k8s.io"
_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _rule(verbs: list[str], group: str, *resources: str) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": [group], "resources": list(resources)}


def _urls(verbs: list[str], *urls: str) -> dict[str, Any]:
    return {"verbs": verbs, "nonResourceURLs": list(urls)}


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "labels": dict(_LABELS), "annotations": dict(_ANNOTATIONS)}


_VIEW_RULES = [
    _rule(_READ, "", "configmaps", "endpoints", "persistentvolumeclaims",
          "persistentvolumeclaims/status", "pods", "replicationcontrollers",
          "replicationcontrollers/scale", "serviceaccounts", "services", "services/status"),
    _rule(_READ, "", "bindings", "events", "limitranges", "namespaces/status", "pods/log",
          "pods/status", "replicationcontrollers/status", "resourcequotas",
          "resourcequotas/status"),
    _rule(_READ, "", "namespaces"),
    _rule(_READ, "discovery.k8s.io", "endpointslices"),
    _rule(_READ, "apps", "controllerrevisions", "daemonsets", "daemonsets/status",
          "deployments", "deployments/scale", "deployments/status", "replicasets",
          "replicasets/scale", "replicasets/status", "statefulsets", "statefulsets/scale",
          "statefulsets/status"),
    _rule(_READ, "autoscaling", "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
    _rule(_READ, "batch", "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
    _rule(_READ, "networking.k8s.io", "ingresses", "ingresses/status", "networkpolicies"),
    _rule(_READ, "policy", "poddisruptionbudgets", "poddisruptionbudgets/status"),
]

_EDIT_RULES = [
    _rule(["create"], "", "pods/eviction"),
    _rule(["impersonate"], "", "serviceaccounts"),
    _rule(_WRITE, "", "pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"),
    _rule(["create"], "", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"),
    _rule(_READ, "", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
          "services/proxy"),
    _rule(_WRITE, "", "configmaps", "events", "persistentvolumeclaims",
          "replicationcontrollers", "replicationcontrollers/scale", "secrets",
          "serviceaccounts", "services", "services/proxy"),
    _rule(["create"], "", "serviceaccounts/token"),
    _rule(_WRITE, "apps", "daemonsets", "deployments", "deployments/rollback",
          "deployments/scale", "replicasets", "replicasets/scale", "statefulsets",
          "statefulsets/scale"),
    _rule(_WRITE, "autoscaling", "horizontalpodautoscalers"),
    _rule(_WRITE, "batch", "cronjobs", "jobs"),
    _rule(_WRITE, "networking.k8s.io", "ingresses", "networkpolicies"),
    _rule(_WRITE, "policy", "poddisruptionbudgets"),
    _rule(_WRITE, "discovery.k8s.io", "endpointslices"),
    *_VIEW_RULES,
]

_ADMIN_RULES = [
    _rule(["create"], "authorization.k8s.io", "localsubjectaccessreviews"),
    _rule(_WRITE + _READ, GROUP, "rolebindings", "roles"),
    *_EDIT_RULES,
]

CLUSTER_ROLES: tuple[dict[str, Any], ...] = (
    {"metadata": _meta("cluster-admin"),
     "rules": [_rule(["*"], "*", "*"), _urls(["*"], "*")]},
    {"metadata": _meta("admin"), "rules": _ADMIN_RULES},
    {"metadata": _meta("edit"), "rules": _EDIT_RULES},
    {"metadata": _meta("view"), "rules": _VIEW_RULES},
    {"metadata": _meta("system:basic-user"), "rules": [
        _rule(["create"], "authentication.k8s.io", "selfsubjectreviews"),
        _rule(["create"], "authorization.k8s.io", "selfsubjectaccessreviews",
              "selfsubjectrulesreviews")]},
    {"metadata": _meta("system:discovery"), "rules": [
        _urls(["get"], "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
              "/openapi/*", "/readyz", "/version", "/version/")]},
    {"metadata": _meta("system:public-info-viewer"), "rules": [
        _urls(["get"], "/healthz", "/livez", "/readyz", "/version", "/version/")]},
)


def _binding(name: str, *groups: str) -> dict[str, Any]:
    return {"metadata": _meta(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups]}


CLUSTER_ROLE_BINDINGS: tuple[dict[str, Any], ...] = (
    _binding("cluster-admin", "system:masters"),
    _binding("system:basic-user", "system:authenticated"),
    _binding("system:discovery", "system:authenticated"),
    _binding("system:public-info-viewer", "system:authenticated", "system:unauthenticated"),
)
