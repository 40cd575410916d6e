"""Who a request is from: authentication, then impersonation, as kube-apiserver's filters.

* over the unix socket (mode 0600, root only): the lab administrator, :data:`LAB_ADMIN`
  (in ``system:masters``, like kubeadm's admin.conf);
* a bearer token equal to the lab's admin token: the same administrator. The controllers,
  the scheduler, the node agents and kubectl's kubeconfig use it;
* a bearer token that is a service-account JWT of this API server (``satokens.py``): that
  ServiceAccount, ``system:serviceaccount:<ns>:<name>`` in ``system:serviceaccounts``,
  ``system:serviceaccounts:<ns>`` and ``system:authenticated``, once the signature, the
  time window, the audience, the ServiceAccount's uid and the bound Pod's or Secret's uid
  check out against the store;
* no token: anonymous, which may read only the public health and version endpoints;
  anything else, and any token that does not check out, is 401 Unauthorized.

Then ``Impersonate-User``/``-Group``/``-Uid`` (``kubectl --as``): the caller must be allowed
the ``impersonate`` verb on users, groups, serviceaccounts or uids (masters always are), and
the request continues as that user; a service-account user impersonated without groups gets
its service-account groups, and ``system:authenticated`` is added, as upstream's filter does.
"""

from __future__ import annotations

import hmac
import logging
import socket
from typing import Any, Optional

from aiohttp import web

from netlab.api import errors, rbac, resources
from netlab.api.objects import loads
from netlab.master.apiserver import authz, discovery, satokens
from netlab.master.store import Store

log = logging.getLogger(__name__)

LAB_ADMIN = rbac.UserInfo("netlab-admin", (rbac.MASTERS_GROUP, rbac.AUTHENTICATED_GROUP))
ANONYMOUS = rbac.UserInfo("system:anonymous", ("system:unauthenticated",))
# The request's key for the user it acts as (after impersonation); a typed RequestKey
# where aiohttp has them (3.12 and later), a plain string before.
_REQUEST_KEY: Any = getattr(web, "RequestKey", None)
USER_KEY: Any = _REQUEST_KEY("netlab.user", rbac.UserInfo) if _REQUEST_KEY else "netlab.user"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
_BOUND_KINDS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


def over_unix_socket(request: web.Request) -> bool:
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is not None and getattr(sock, "family", None) == socket.AF_UNIX


def bearer_token(request: web.Request) -> Optional[str]:
    """The bearer token of the Authorization header; None without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def is_admin_token(token: str, tokens: set[str]) -> bool:
    # Compare with every token, in constant time per comparison.
    return any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens)


async def _get(store: Store, plural: str, namespace: Optional[str],
               name: str) -> Optional[dict]:
    if not name:
        return None
    kv = await store.aget(f"{resources.store_prefix(plural, namespace)}{name}")
    obj = loads(kv.value) if kv is not None else None
    return obj if isinstance(obj, dict) else None


async def service_account_user(store: Store, signer: satokens.TokenSigner, token: str,
                               audiences: Optional[tuple[str, ...]] = None,
                               ) -> Optional[tuple[rbac.UserInfo, tuple[str, ...]]]:
    """The ServiceAccount user a token authenticates and the audiences it matched; None if
    it is no token of ours; TokenInvalid if it is one that does not check out."""
    claims = signer.verify(token, audiences)
    if claims is None:
        return None
    account = await _get(store, "serviceaccounts", claims.namespace, claims.name)
    bound = None
    if claims.bound is not None:
        plural, namespace = _BOUND_KINDS[claims.bound.kind], claims.namespace
        bound = await _get(store, plural, namespace if plural != "nodes" else None,
                           claims.bound.name)
    satokens.check_bound_objects(claims, account, bound)
    extra: dict[str, Any] = {}
    if claims.bound is not None and claims.bound.kind == "Pod":
        extra[EXTRA_POD_NAME] = [claims.bound.name]
        extra[EXTRA_POD_UID] = [claims.bound.uid]
    if claims.bound is not None and claims.bound.kind in ("Pod", "Node"):
        node = claims.bound.node if claims.bound.kind == "Pod" else \
            (claims.bound.name, claims.bound.uid)
        if node is not None:
            extra[EXTRA_NODE_NAME] = [node[0]]
            extra[EXTRA_NODE_UID] = [node[1]]
    if claims.jti:
        extra[EXTRA_CREDENTIAL_ID] = [f"JTI={claims.jti}"]
    user = rbac.UserInfo(claims.username,
                         (*satokens.service_account_groups(claims.namespace),
                          rbac.AUTHENTICATED_GROUP), claims.uid, extra)
    return user, claims.audiences


async def authenticate(request: web.Request, store: Store, tokens: set[str],
                       signer: Optional[satokens.TokenSigner]) -> rbac.UserInfo:
    """The authenticated user of ``request``, or a 401 APIError."""
    if over_unix_socket(request):
        return LAB_ADMIN
    token = bearer_token(request)
    if token is None:
        if discovery.is_public(request.path):
            return ANONYMOUS
        raise errors.unauthorized()
    if is_admin_token(token, tokens):
        return LAB_ADMIN
    if signer is not None:
        try:
            found = await service_account_user(store, signer, token)
        except satokens.TokenInvalid as err:
            log.info("%s %s: %s", request.method, request.path, err)
            raise errors.unauthorized() from None
        if found is not None:
            return found[0]
    raise errors.unauthorized()


async def impersonate(request: web.Request, store: Store, user: rbac.UserInfo,
                      ) -> rbac.UserInfo:
    """The user ``request`` acts as: ``user``, or whom it may impersonate (else 403)."""
    name = request.headers.get("Impersonate-User", "").strip()
    groups = [g.strip() for g in request.headers.getall("Impersonate-Group", []) if g.strip()]
    uid = request.headers.get("Impersonate-Uid", "").strip()
    if not name:
        if groups or uid:
            raise errors.APIError(403, "Forbidden", "forbidden: requested impersonation of "
                                  "groups or a uid without impersonating a user", {})
        return user
    account = satokens.split_username(name)
    checks = [rbac.Attributes(verb="impersonate", namespace=account[0],
                              resource="serviceaccounts", name=account[1])
              if account else rbac.Attributes(verb="impersonate", resource="users", name=name)]
    checks += [rbac.Attributes(verb="impersonate", resource="groups", name=g) for g in groups]
    if uid:
        checks.append(rbac.Attributes(verb="impersonate", group="authentication.k8s.io",
                                      resource="uids", name=uid))
    for attrs in checks:
        await authz.authorize(store, user, attrs)
    if account and not groups:
        groups = list(satokens.service_account_groups(account[0]))
    if name != ANONYMOUS.name and rbac.AUTHENTICATED_GROUP not in groups:
        groups.append(rbac.AUTHENTICATED_GROUP)
    return rbac.UserInfo(name, tuple(groups), uid)


def request_user(request: web.Request) -> rbac.UserInfo:
    """The user the request acts as, recorded by the API server's auth middleware (the lab
    administrator for a request that never went through it, as in a bare handler test)."""
    user = request.get(USER_KEY)
    return user if isinstance(user, rbac.UserInfo) else LAB_ADMIN
