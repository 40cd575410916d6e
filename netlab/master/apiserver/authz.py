"""Authorization of requests by RBAC: what a request does, and whether its user may.

kube-apiserver authorizes every request after authentication: its RequestInfoFactory turns
the method and path into attributes (verb, namespace, API group, resource, subresource,
name, or a non-resource path), and the authorizer chain (here: ``system:masters`` first,
then RBAC) decides. A denial is a 403 Status whose message names the user and the
attributes, as ``responsewriters.Forbidden`` words it::

    pods is forbidden: User "system:serviceaccount:default:default" cannot list resource
    "pods" in API group "" in the namespace "default"

The evaluation is :func:`netlab.api.rbac.authorize`, the same one the access reviews
(``reviews.py``, ``kubectl auth can-i``) answer from, over the same snapshot of RBAC
objects (:func:`rbac_objects`), so a review and the request it asks about always agree.
"""

from __future__ import annotations

from collections.abc import Mapping

from netlab.api import errors, rbac, resources
from netlab.api.objects import loads
from netlab.api.views import name_of
from netlab.master.store import Store

# A namespace's own subresources: /api/v1/namespaces/<ns>/status is the Namespace's
# status, not a resource named "status" in <ns> (RequestInfoFactory's namespaceSubresources).
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> rbac.Attributes:
    """RequestInfoFactory.NewRequestInfo for the paths netlab serves: resource requests under
    ``/api/<version>`` and ``/apis/<group>/<version>``, anything else non-resource (whose
    verb is the lowercased method)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return rbac.Attributes(verb=method.lower(), path=path, resource_request=False)
    verb = _VERBS.get(method, method.lower())
    if rest[0] == "watch":  # the deprecated /watch/ prefix
        verb, rest = "watch", rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if not rest:
        return rbac.Attributes(verb=method.lower(), path=path, resource_request=False)
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "false").lower() not in ("0", "false") \
            else "list"
        name = _exact_name(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    if verb == "get" and resource == "pods" and subresource in ("exec", "attach", "portforward"):
        # Upstream since 1.32 (AuthorizePodWebsocketUpgradeCreatePermission): a WebSocket
        # GET runs a command as POST does, so it needs create.
        verb = "create"
    return rbac.Attributes(verb=verb, namespace=namespace, group=group, resource=resource,
                           subresource=subresource, name=name)


def _exact_name(selector: str) -> str:
    """The name a ``fieldSelector=metadata.name=x`` pins a list or watch to."""
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        if sep and key.strip() == "metadata.name":
            value = value.lstrip("=").strip()
            if value and "/" not in value and value not in (".", ".."):
                return value
    return ""


async def rbac_objects(store: Store, namespace: str) -> rbac.RBACObjects:
    """The RBAC objects an evaluation in ``namespace`` reads ("" for cluster scope)."""
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


def forbidden_message(user: rbac.UserInfo, attrs: rbac.Attributes) -> str:
    """``forbiddenMessage`` of k8s.io/apiserver's responsewriters."""
    if not attrs.resource_request:
        return f'User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else \
        attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else \
        "at the cluster scope"
    return (f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.group}" {where}')


def forbidden(user: rbac.UserInfo, attrs: rbac.Attributes, reason: str = "") -> errors.APIError:
    """The 403 Status of a denied request (``apierrors.NewForbidden`` of the attributes)."""
    detail = forbidden_message(user, attrs)
    if reason:
        detail = f"{detail}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return errors.APIError(403, "Forbidden", f"forbidden: {detail}", {})
    return errors.forbidden(attrs.resource, attrs.name, detail, attrs.group)


async def authorize(store: Store, user: rbac.UserInfo, attrs: rbac.Attributes) -> None:
    """Raise the 403 unless ``user`` may do ``attrs`` (masters may do everything)."""
    if rbac.MASTERS_GROUP in user.groups:
        return
    allowed, _, _ = rbac.authorize(await rbac_objects(store, attrs.namespace), user, attrs)
    if not allowed:
        raise forbidden(user, attrs)
