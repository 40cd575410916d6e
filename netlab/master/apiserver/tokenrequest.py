"""``serviceaccounts/token`` (TokenRequest) and ``tokenreviews`` (TokenReview), answered on
create and never stored, as kube-apiserver's TokenREST and TokenReview REST do.

TokenRequest (``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token``, what
``kubectl create token`` and the kubelet ask): ``spec.audiences`` default to the API
server's, ``spec.expirationSeconds`` to 3600 (less than 600 is 422, with upstream's
wording), and ``spec.boundObjectRef`` may bind the token to a Pod or a Secret of the
namespace (a Pod only when it runs as that service account: 400 otherwise), or to a Node
(its uid checked when given: 409 when it differs). The answer is
the request with ``status.token`` and ``status.expirationTimestamp``, 201.

TokenReview (``POST /apis/authentication.k8s.io/v1/tokenreviews``): whether a token
authenticates, and as whom, for ``spec.audiences`` (default: the API server's);
``status.error`` says why not, in the service-account authenticator's words.
"""

from __future__ import annotations

import datetime
import time
from typing import Any, Optional

from netlab.api import errors, resources
from netlab.api.resources import CREATE_ONLY_VERBS, Resource
from netlab.api.timefmt import format_time
from netlab.api.views import dict_at, meta_of, str_at
from netlab.master.apiserver import authn, satokens
from netlab.master.apiserver.request import RequestInfo

GROUP = "authentication.k8s.io"
API_VERSION = f"{GROUP}/v1"
# What the body and the answer of ``serviceaccounts/<name>/token`` are: the handlers read,
# check and render a TokenRequest as this resource (it is served only as the subresource).
TOKEN_REQUESTS = Resource(GROUP, ("v1",), "TokenRequest", "tokenrequests", "tokenrequest",
                          namespaced=True, verbs=CREATE_ONLY_VERBS)
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 2 ** 32


def _stamp(seconds: float) -> str:
    return format_time(datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc))


def _audiences(spec: dict, field: str) -> list[str]:
    value = spec.get("audiences")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise errors.bad_request(f"{field}: expected a list of strings")
    return [a for a in value if a]


def _expiration(spec: dict) -> int:
    value = spec.get("expirationSeconds")
    if value is None:
        return DEFAULT_EXPIRATION_SECONDS
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.bad_request("spec.expirationSeconds: expected an integer")
    problems = []
    if value < MIN_EXPIRATION_SECONDS:
        problems.append(errors.invalid("spec.expirationSeconds", value,
                                       "may not specify a duration less than 10 minutes"))
    if value > MAX_EXPIRATION_SECONDS:
        problems.append(errors.invalid("spec.expirationSeconds", value,
                                       "may not specify a duration larger than 2^32 seconds"))
    if problems:
        raise errors.invalid_object("TokenRequest", "", problems, group=GROUP)
    return value


async def _bound_object(ctx: Any, namespace: str, account: str,
                        ref: Any) -> Optional[satokens.BoundObject]:
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise errors.bad_request("spec.boundObjectRef: expected an object")
    kind, api_version = str_at(ref, "kind"), str_at(ref, "apiVersion")
    group, _, version = api_version.rpartition("/")
    if group or kind not in ("Pod", "Secret", "Node"):
        raise errors.bad_request(f'cannot bind token for serviceaccount "{account}" to object '
                                 f"of type {group}/{version}, Kind={kind}")
    name = str_at(ref, "name")
    res = resources.get_resource("", "v1", {"Pod": "pods", "Secret": "secrets",
                                            "Node": "nodes"}[kind])
    assert res is not None
    obj = await ctx.registry.get(res, namespace if kind != "Node" else None, name)
    if kind == "Pod" and dict_at(obj, "spec").get("serviceAccountName") != account:
        raise errors.bad_request(f'cannot bind token for serviceaccount "{account}" to pod '
                                 "running with different serviceaccount name.")
    uid = str(meta_of(obj).get("uid", ""))
    wanted = str_at(ref, "uid")
    if wanted and wanted != uid:
        raise errors.conflict(kind, name, f"the UID in the bound object reference ({wanted}) "
                              "does not match the UID in record. The object might have been "
                              "deleted and then recreated")
    node = None
    node_name = str(dict_at(obj, "spec").get("nodeName") or "") if kind == "Pod" else ""
    if node_name:
        nodes = resources.get_resource("", "v1", "nodes")
        assert nodes is not None
        try:
            found = await ctx.registry.get(nodes, None, node_name)
        except errors.APIError:
            found = None  # as upstream: the node's info is left out, the token is issued
        if found is not None:
            node = (node_name, str(meta_of(found).get("uid", "")))
    return satokens.BoundObject(kind, name, uid, node)


async def create_token(ctx: Any, info: RequestInfo, req: dict) -> dict:
    """``POST serviceaccounts/<name>/token``: the TokenRequest ``req`` (read and checked
    by the handlers, as :data:`TOKEN_REQUESTS`), answered with a token."""
    signer: satokens.TokenSigner = ctx.signer
    namespace, name = info.namespace or "", info.name or ""
    meta = dict_at(req, "metadata")
    problems = []
    if meta.get("name") not in (None, "", name):
        problems.append(errors.invalid("metadata.name", meta.get("name"),
                                       "must match the service account name if specified"))
    if meta.get("namespace") not in (None, "", namespace):
        problems.append(errors.invalid("metadata.namespace", meta.get("namespace"),
                                       "must match the service account namespace if "
                                       "specified"))
    if problems:
        raise errors.invalid_object("TokenRequest", name, problems, group=GROUP)
    spec = dict_at(req, "spec")
    expiration = _expiration(spec)
    account = await ctx.registry.get(info.resource, namespace, name)
    bound = await _bound_object(ctx, namespace, name, spec.get("boundObjectRef"))
    audiences = _audiences(spec, "spec.audiences") or list(signer.audiences)
    now = time.time()
    token, _ = signer.issue(namespace, name, str(meta_of(account).get("uid", "")),
                            tuple(audiences), expiration, bound, now=now)
    req["metadata"] = {**meta, "name": name, "namespace": namespace,
                       "creationTimestamp": _stamp(now)}
    spec["audiences"], spec["expirationSeconds"] = audiences, expiration
    spec.setdefault("boundObjectRef", None)
    req["spec"] = spec
    req["status"] = {"token": token,
                     "expirationTimestamp": _stamp(now + expiration)}
    return req


async def review_token(ctx: Any, review: dict) -> dict:
    """``POST tokenreviews``: does ``spec.token`` of ``review`` (read and checked by the
    handlers) authenticate, and as whom?"""
    spec = dict_at(review, "spec")
    token = str_at(spec, "token")
    if not token:
        raise errors.invalid_object("TokenReview", "", [errors.required("spec.token")],
                                    group=GROUP)
    wanted = _audiences(spec, "spec.audiences")
    status: dict[str, Any] = {"user": {}}
    try:
        found = await authn.service_account_user(ctx.store, ctx.signer, token,
                                                 tuple(wanted) or None)
    except satokens.TokenInvalid as err:
        found, status["error"] = None, str(err)
    if found is not None:
        user, matched = found
        info: dict[str, Any] = {"username": user.name, "uid": user.uid,
                                "groups": list(user.groups)}
        if user.extra:
            info["extra"] = user.extra
        status = {"authenticated": True, "user": info, "audiences": list(matched)}
    elif "error" not in status and authn.is_admin_token(token, ctx.config.tokens):
        status = {"authenticated": True, "user": {
            "username": authn.LAB_ADMIN.name, "groups": list(authn.LAB_ADMIN.groups)},
            "audiences": wanted or list(ctx.signer.audiences)}
    elif "error" not in status:
        status["error"] = "invalid bearer token"
    meta = dict_at(review, "metadata")
    meta["creationTimestamp"] = None
    review["metadata"] = meta
    review["status"] = status
    return review
