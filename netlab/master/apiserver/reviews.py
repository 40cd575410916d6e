"""The access reviews of authorization.k8s.io/v1 (and authentication.k8s.io's
SelfSubjectReview, ``kubectl auth whoami``): answered on create, never stored.

``SelfSubjectAccessReview`` ("may I ...?", what ``kubectl auth can-i`` asks),
``SelfSubjectRulesReview`` (what ``kubectl auth can-i --list`` asks), and
``SubjectAccessReview``/``LocalSubjectAccessReview`` (may this user ...?). The answer comes
from :mod:`netlab.api.rbac` over the RBAC objects in the store, as kube-apiserver's
authorizer chain answers: members of ``system:masters`` may do everything, everyone else
gets what RoleBindings and ClusterRoleBindings grant.

Who the caller is: netlab authenticates a request by its transport (the unix socket) or the
lab's single bearer token, and both mean the lab administrator, reported here as
:data:`LAB_ADMIN` (in ``system:masters``, like kubeadm's admin), or whom it impersonates.
RBAC is evaluated for reviews only; requests themselves are not authorized per identity yet
(see the README).
"""

from __future__ import annotations

from aiohttp import web

from netlab.api import errors, rbac, resources
from netlab.api.objects import loads
from netlab.api.validation_rbac import validate_access_review
from netlab.api.views import dict_at, name_of, str_at
from netlab.master.store import Store

REVIEW_KINDS = ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview",
                "LocalSubjectAccessReview", "SelfSubjectReview")
LAB_ADMIN = rbac.UserInfo("netlab-admin", (rbac.MASTERS_GROUP, rbac.AUTHENTICATED_GROUP))


def request_user(request: web.Request) -> rbac.UserInfo:
    """The caller a review answers for. Every request that gets past authentication is the
    lab administrator's (unix socket or the lab token); the administrator may impersonate,
    so ``Impersonate-User``/``Impersonate-Group`` (``kubectl --as/--as-group``) name the user
    instead, with ``system:authenticated`` added as kube-apiserver's impersonation does."""
    user = request.headers.get("Impersonate-User", "").strip()
    if not user:
        return LAB_ADMIN
    groups = [g.strip() for g in request.headers.getall("Impersonate-Group", []) if g.strip()]
    if user != "system:anonymous" and rbac.AUTHENTICATED_GROUP not in groups:
        groups.append(rbac.AUTHENTICATED_GROUP)
    return rbac.UserInfo(user, tuple(groups), request.headers.get("Impersonate-Uid", ""))


async def _objects(store: Store, namespace: str) -> rbac.RBACObjects:
    async def items(plural: str, ns: str | None = None) -> list[dict]:
        listed = await store.alist(resources.store_prefix(plural, ns))
        return [o for o in (loads(kv.value) for kv in listed.items) if isinstance(o, dict)]

    out = rbac.RBACObjects(
        cluster_roles={name_of(r): r for r in await items("clusterroles")},
        cluster_role_bindings=await items("clusterrolebindings"))
    if namespace:
        out.roles = {(namespace, name_of(r)): r for r in await items("roles", namespace)}
        out.role_bindings = await items("rolebindings", namespace)
    return out


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
        obj["status"] = rbac.rules_review(await _objects(store, ns), caller, ns)
        return obj
    user = caller if kind == "SelfSubjectAccessReview" else _user_from_spec(spec)
    attrs = rbac.attributes_from_spec(spec, namespace if kind == "LocalSubjectAccessReview"
                                      else None)
    allowed, reason, error = rbac.authorize(await _objects(store, attrs.namespace), user, attrs)
    status: dict = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    if error:
        status["evaluationError"] = error
    obj["status"] = status
    return obj
