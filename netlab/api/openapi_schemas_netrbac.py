"""OpenAPI v3 schemas of networking.k8s.io/v1, rbac.authorization.k8s.io/v1,
authorization.k8s.io/v1, authentication.k8s.io/v1 (SelfSubjectReview, TokenReview,
TokenRequest) and
apiregistration.k8s.io/v1, restated from k8s.io/api and kube-aggregator.

Data only, in the shapes and with the builders of :mod:`netlab.api.openapi_schemas_base`;
:mod:`netlab.api.openapi_schemas` imports this module at its end so that these
``_def``/``_kind`` calls land in the tables it serves.
The same two consumers depend on completeness here: kubectl's apply patch computation and
``fieldValidation=Strict``. The access reviews have no List kind (they are never stored),
so their generated List schemas are dropped, as ``Scale``'s are.
"""

from __future__ import annotations

from typing import Any

from netlab.api.openapi_schemas_base import (
    _PREFIXES,
    AS,
    I32,
    I64,
    IOS,
    MAP,
    OBJ,
    SCHEMAS,
    SELECTOR,
    TIME,
    A,
    B,
    M,
    R,
    S,
    _def,
    _kind,
    full_name,
    obj,
)

_PREFIXES.update({
    "net": "io.k8s.api.networking.v1.",
    "rbac": "io.k8s.api.rbac.v1.",
    "authz": "io.k8s.api.authorization.v1.",
    "authn": "io.k8s.api.authentication.v1.",
    "apireg": "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.",
})

# --- networking.k8s.io/v1 ---------------------------------------------------------------------

_EXCEPT: dict[str, Any] = {"except": AS()}  # a Python keyword, so not a keyword argument
_def("net.IPBlock", obj(("cidr",), cidr=S, **_EXCEPT))
_def("net.NetworkPolicyPort", obj(endPort=I32, port=IOS, protocol=S))
_def("net.NetworkPolicyPeer", obj(ipBlock=R("net.IPBlock"), namespaceSelector=SELECTOR,
                                  podSelector=SELECTOR))
_def("net.NetworkPolicyIngressRule", OBJ({"from": A("net.NetworkPolicyPeer", ltype="atomic"),
                                          "ports": A("net.NetworkPolicyPort", ltype="atomic")}))
_def("net.NetworkPolicyEgressRule", obj(ports=A("net.NetworkPolicyPort", ltype="atomic"),
                                        to=A("net.NetworkPolicyPeer", ltype="atomic")))
_def("net.NetworkPolicySpec", obj(
    egress=A("net.NetworkPolicyEgressRule", ltype="atomic"),
    ingress=A("net.NetworkPolicyIngressRule", ltype="atomic"),
    podSelector=SELECTOR, policyTypes=AS()))
_kind("net.NetworkPolicy", "networking.k8s.io", "v1", {"spec": R("net.NetworkPolicySpec")})

_def("net.ServiceBackendPort", obj(name=S, number=I32, mtype="atomic"))
_def("net.IngressServiceBackend", obj(("name",), name=S, port=R("net.ServiceBackendPort")))
_def("net.IngressBackend", obj(resource=R("core.TypedLocalObjectReference"),
                               service=R("net.IngressServiceBackend")))
_def("net.HTTPIngressPath", obj(("pathType", "backend"), backend=R("net.IngressBackend"),
                                path=S, pathType=S))
_def("net.HTTPIngressRuleValue", obj(("paths",), paths=A("net.HTTPIngressPath",
                                                         ltype="atomic")))
_def("net.IngressRule", obj(host=S, http=R("net.HTTPIngressRuleValue")))
_def("net.IngressTLS", obj(hosts=AS(), secretName=S))
_def("net.IngressSpec", obj(
    defaultBackend=R("net.IngressBackend"), ingressClassName=S,
    rules=A("net.IngressRule", ltype="atomic"), tls=A("net.IngressTLS", ltype="atomic")))
_def("net.IngressPortStatus", obj(("port", "protocol"), error=S, port=I32, protocol=S))
_def("net.IngressLoadBalancerIngress", obj(hostname=S, ip=S,
                                           ports=A("net.IngressPortStatus", ltype="atomic")))
_def("net.IngressLoadBalancerStatus", obj(ingress=A("net.IngressLoadBalancerIngress",
                                                    ltype="atomic")))
_def("net.IngressStatus", obj(loadBalancer=R("net.IngressLoadBalancerStatus")))
_kind("net.Ingress", "networking.k8s.io", "v1", {"spec": R("net.IngressSpec"),
                                                 "status": R("net.IngressStatus")})

_def("net.IngressClassParametersReference", obj(("kind", "name"), apiGroup=S, kind=S, name=S,
                                                namespace=S, scope=S))
_def("net.IngressClassSpec", obj(controller=S,
                                 parameters=R("net.IngressClassParametersReference")))
_kind("net.IngressClass", "networking.k8s.io", "v1", {"spec": R("net.IngressClassSpec")})

# --- rbac.authorization.k8s.io/v1 -------------------------------------------------------------

_def("rbac.PolicyRule", obj(("verbs",), apiGroups=AS(), nonResourceURLs=AS(),
                            resourceNames=AS(), resources=AS(), verbs=AS()))
_def("rbac.AggregationRule", obj(clusterRoleSelectors=A("meta.LabelSelector", ltype="atomic")))
_def("rbac.RoleRef", obj(("apiGroup", "kind", "name"), apiGroup=S, kind=S, name=S,
                         mtype="atomic"))
_def("rbac.Subject", obj(("kind", "name"), apiGroup=S, kind=S, name=S, namespace=S,
                         mtype="atomic"))
_RULES = A("rbac.PolicyRule", ltype="atomic")
_kind("rbac.Role", "rbac.authorization.k8s.io", "v1", {"rules": _RULES})
_kind("rbac.ClusterRole", "rbac.authorization.k8s.io", "v1", {
    "aggregationRule": R("rbac.AggregationRule"), "rules": _RULES})
_BINDING = {"roleRef": R("rbac.RoleRef"), "subjects": A("rbac.Subject", ltype="atomic")}
_kind("rbac.RoleBinding", "rbac.authorization.k8s.io", "v1", _BINDING, ("roleRef",))
_kind("rbac.ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", _BINDING, ("roleRef",))

# --- authorization.k8s.io/v1 ------------------------------------------------------------------

_def("authz.FieldSelectorRequirement", obj(("key", "operator"), key=S, operator=S,
                                           values=AS()))
_def("authz.FieldSelectorAttributes", obj(
    rawSelector=S, requirements=A("authz.FieldSelectorRequirement", ltype="atomic")))
_def("authz.LabelSelectorAttributes", obj(
    rawSelector=S, requirements=A("meta.LabelSelectorRequirement", ltype="atomic")))
_def("authz.ResourceAttributes", obj(
    fieldSelector=R("authz.FieldSelectorAttributes"), group=S,
    labelSelector=R("authz.LabelSelectorAttributes"), name=S, namespace=S, resource=S,
    subresource=S, verb=S, version=S))
_def("authz.NonResourceAttributes", obj(path=S, verb=S))
_def("authz.SubjectAccessReviewStatus", obj(("allowed",), allowed=B, denied=B,
                                            evaluationError=S, reason=S))
_def("authz.SelfSubjectAccessReviewSpec", obj(
    nonResourceAttributes=R("authz.NonResourceAttributes"),
    resourceAttributes=R("authz.ResourceAttributes")))
_def("authz.SubjectAccessReviewSpec", obj(
    extra=MAP(AS()), groups=AS(), nonResourceAttributes=R("authz.NonResourceAttributes"),
    resourceAttributes=R("authz.ResourceAttributes"), uid=S, user=S))
_def("authz.SelfSubjectRulesReviewSpec", obj(namespace=S))
_def("authz.ResourceRule", obj(("verbs",), apiGroups=AS(), resourceNames=AS(),
                               resources=AS(), verbs=AS()))
_def("authz.NonResourceRule", obj(("verbs",), nonResourceURLs=AS(), verbs=AS()))
_def("authz.SubjectRulesReviewStatus", obj(
    ("resourceRules", "nonResourceRules", "incomplete"), evaluationError=S, incomplete=B,
    nonResourceRules=A("authz.NonResourceRule", ltype="atomic"),
    resourceRules=A("authz.ResourceRule", ltype="atomic")))
_STATUS = R("authz.SubjectAccessReviewStatus")
for _name, _spec, _status in (
        ("SelfSubjectAccessReview", "authz.SelfSubjectAccessReviewSpec", _STATUS),
        ("SelfSubjectRulesReview", "authz.SelfSubjectRulesReviewSpec",
         R("authz.SubjectRulesReviewStatus")),
        ("SubjectAccessReview", "authz.SubjectAccessReviewSpec", _STATUS),
        ("LocalSubjectAccessReview", "authz.SubjectAccessReviewSpec", _STATUS)):
    _kind(f"authz.{_name}", "authorization.k8s.io", "v1",
          {"spec": R(_spec), "status": _status}, ("spec",))
    SCHEMAS.pop(full_name(f"authz.{_name}List"))  # never stored, never listed

# --- authentication.k8s.io/v1 (kubectl auth whoami) ------------------------------------------

_def("authn.UserInfo", obj(extra=MAP(AS()), groups=AS(), uid=S, username=S))
_def("authn.SelfSubjectReviewStatus", obj(userInfo=R("authn.UserInfo")))
_kind("authn.SelfSubjectReview", "authentication.k8s.io", "v1",
      {"status": R("authn.SelfSubjectReviewStatus")})
SCHEMAS.pop(full_name("authn.SelfSubjectReviewList"))
_def("authn.TokenReviewSpec", obj(audiences=AS(), token=S))
_def("authn.TokenReviewStatus", obj(audiences=AS(), authenticated=B, error=S,
                                    user=R("authn.UserInfo")))
_kind("authn.TokenReview", "authentication.k8s.io", "v1",
      {"spec": R("authn.TokenReviewSpec"), "status": R("authn.TokenReviewStatus")}, ("spec",))
SCHEMAS.pop(full_name("authn.TokenReviewList"))
# serviceaccounts/token: answered, never stored (no List, as Scale).
_def("authn.BoundObjectReference", obj(apiVersion=S, kind=S, name=S, uid=S))
_def("authn.TokenRequestSpec", obj(("audiences",), audiences=AS(),
                                   boundObjectRef=R("authn.BoundObjectReference"),
                                   expirationSeconds=I64))
_def("authn.TokenRequestStatus", obj(("token", "expirationTimestamp"),
                                     expirationTimestamp=TIME, token=S))
_kind("authn.TokenRequest", "authentication.k8s.io", "v1",
      {"spec": R("authn.TokenRequestSpec"), "status": R("authn.TokenRequestStatus")}, ("spec",))
SCHEMAS.pop(full_name("authn.TokenRequestList"))

# --- apiregistration.k8s.io/v1 ----------------------------------------------------------------

_def("apireg.ServiceReference", obj(name=S, namespace=S, port=I32))
_def("apireg.APIServiceSpec", obj(
    ("groupPriorityMinimum", "versionPriority"), caBundle={"type": "string", "format": "byte"},
    group=S, groupPriorityMinimum=I32, insecureSkipTLSVerify=B,
    service=R("apireg.ServiceReference"), version=S, versionPriority=I32))
_def("apireg.APIServiceCondition", obj(("type", "status"), lastTransitionTime=TIME,
                                       message=S, reason=S, status=S, type=S))
_def("apireg.APIServiceStatus", obj(conditions=M("apireg.APIServiceCondition", "type")))
_kind("apireg.APIService", "apiregistration.k8s.io", "v1", {
    "spec": R("apireg.APIServiceSpec"), "status": R("apireg.APIServiceStatus")})
