"""The access reviews of authorization.k8s.io/v1 (and authentication.k8s.io's
SelfSubjectReview, ``kubectl auth whoami``): answered on create, never stored.

``SelfSubjectAccessReview`` ("may I ...?", what ``kubectl auth can-i`` asks),
``SelfSubjectRulesReview`` (what ``kubectl auth can-i --list`` asks), and
``SubjectAccessReview``/``LocalSubjectAccessReview`` (may this user ...?). The answer comes
from :mod:`netlab.api.rbac` over the RBAC objects in the store, as kube-apiserver's
authorizer chain answers: members of ``system:masters`` may do everything, everyone else
gets what RoleBindings and ClusterRoleBindings grant.

Who the caller is comes from ``authn.py`` (the lab administrator, a service account, or
whom either may impersonate). Requests themselves are authorized by the same evaluation over
the same objects (``authz.py``), so ``kubectl auth can-i`` agrees with what a request gets.
"""

from __future__ import annotations

from netlab.api import errors, rbac
from netlab.api.validation_rbac import validate_access_review
from netlab.api.views import dict_at, str_at
from netlab.master.apiserver.authz import rbac_objects
from netlab.master.store import Store

REVIEW_KINDS = ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview",
                "LocalSubjectAccessReview", "SelfSubjectReview")


def _user_from_spec(spec: dict) -> rbac.UserInfo:
    groups = spec.get("groups")
    extra = spec.get("extra")
    return rbac.UserInfo(
        name=str_at(spec, "user"),
        groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list)
        else (),
        uid=str_at(spec, "uid"),
        extra=extra if isinstance(extra, dict) else {})


def _who_am_i(obj: dict, caller: rbac.UserInfo) -> dict:
    """authentication.k8s.io SelfSubjectReview (``kubectl auth whoami``): the caller."""
    info: dict = {"username": caller.name, "groups": list(caller.groups)}
    if caller.uid:
        info["uid"] = caller.uid
    if caller.extra:
        info["extra"] = caller.extra
    obj["metadata"] = {"creationTimestamp": None}
    obj["status"] = {"userInfo": info}
    return obj


async def answer(store: Store, kind: str, obj: dict, namespace: str | None,
                 caller: rbac.UserInfo) -> dict:
    """The review ``obj`` with its status filled in; 422 when its spec is invalid."""
    if kind == "SelfSubjectReview":
        return _who_am_i(obj, caller)
    errs = validate_access_review(kind, obj, namespace)
    if errs:
        raise errors.invalid_object(kind, "", errs, group="authorization.k8s.io")
    spec = dict_at(obj, "spec")
    meta = dict_at(obj, "metadata")
    meta["creationTimestamp"] = None
    obj["metadata"] = meta
    if kind == "SelfSubjectRulesReview":
        ns = str_at(spec, "namespace")
        obj["status"] = rbac.rules_review(await rbac_objects(store, ns), caller, ns)
        return obj
    user = caller if kind == "SelfSubjectAccessReview" else _user_from_spec(spec)
    attrs = rbac.attributes_from_spec(spec, namespace if kind == "LocalSubjectAccessReview"
                                      else None)
    allowed, reason, error = rbac.authorize(await rbac_objects(store, attrs.namespace), user,
                                            attrs)
    status: dict = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    if error:
        status["evaluationError"] = error
    obj["status"] = status
    return obj
