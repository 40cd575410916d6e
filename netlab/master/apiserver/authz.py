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

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

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


async def _items(store: Store, plural: str, ns: str | None = None) -> list[dict]:
    listed = await store.alist(resources.store_prefix(plural, ns))
    return [o for o in (loads(kv.value) for kv in listed.items) if isinstance(o, dict)]


@dataclass
class _Snapshot:
    """The RBAC objects as of one store revision: the cluster-scoped ones, and each
    namespace's as it was first asked for."""

    revision: int
    cluster_roles: dict[str, dict]
    cluster_role_bindings: list[dict]
    namespaces: dict[str, tuple[dict[tuple[str, str], dict], list[dict]]] = field(
        default_factory=dict)


# One snapshot per store, dropped with the store.
_snapshots: weakref.WeakKeyDictionary[Store, _Snapshot] = weakref.WeakKeyDictionary()


async def rbac_objects(store: Store, namespace: str) -> rbac.RBACObjects:
    """The RBAC objects an evaluation in ``namespace`` reads ("" for cluster scope).

    Listing and decoding every Role, ClusterRole and binding on each request of a user
    who is not a master is what this saves: the objects are kept as of the store's
    revision, and reused until a write moves it (the store is in this process, so
    ``current_revision`` costs nothing). A part is kept only when no write landed while
    it was listed, so a snapshot never mixes two revisions. Evaluations only read it.
    """
    snap = _snapshots.get(store)
    if snap is None or snap.revision != store.current_revision():
        revision = store.current_revision()
        cluster_roles = {name_of(r): r for r in await _items(store, "clusterroles")}
        bindings = await _items(store, "clusterrolebindings")
        snap = _Snapshot(revision, cluster_roles, bindings)
        if store.current_revision() == revision:
            _snapshots[store] = snap
    out = rbac.RBACObjects(cluster_roles=snap.cluster_roles,
                           cluster_role_bindings=snap.cluster_role_bindings)
    if namespace:
        scoped = snap.namespaces.get(namespace)
        if scoped is None:
            scoped = ({(namespace, name_of(r)): r for r in await _items(store, "roles",
                                                                        namespace)},
                      await _items(store, "rolebindings", namespace))
            if store.current_revision() == snap.revision:
                snap.namespaces[namespace] = scoped
        out.roles, out.role_bindings = scoped
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
