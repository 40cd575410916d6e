"""Defaulting of networking.k8s.io, rbac.authorization.k8s.io and apiregistration.k8s.io
objects, as the SetDefaults_* functions of their v1 packages do it:

* NetworkPolicy: every port's protocol is TCP unless given; a policy without
  ``policyTypes`` gets ``[Ingress]``, plus ``Egress`` when it has egress rules (a
  policy that names its types keeps them as written);
* IngressClass: ``parameters.scope`` is ``Cluster`` unless given;
* RoleBinding/ClusterRoleBinding: ``roleRef.apiGroup`` is the RBAC group, and a
  User or Group subject's ``apiGroup`` too (a ServiceAccount's stays empty);
* APIService: a service reference's port is 443.

:mod:`netlab.api.defaults` registers these in its table. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

RBAC_GROUP = "rbac.authorization.k8s.io"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def default_network_policy(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def default_ingress_class(obj: dict[str, Any]) -> None:
    params = _dict(_dict(obj.get("spec")).get("parameters"))
    if params:
        params.setdefault("scope", "Cluster")


def default_binding(obj: dict[str, Any]) -> None:
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    for subject in _dicts(obj.get("subjects")):
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def default_apiservice(obj: dict[str, Any]) -> None:
    service = _dict(obj.get("spec")).get("service")
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = 443
