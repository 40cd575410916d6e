"""The verbs of the resource API: get, list, watch, create, update, patch, delete,
deletecollection, and the subresources, on top of ``storage`` and ``deletion``.

A handler reads the request (body, query, Accept), converts between the served
version and the storage version, calls the storage or deletion layer, and
renders the result in the negotiated form. Kubernetes' request-level checks
live here: the body's apiVersion/kind must fit the URL, the name and namespace
in the body must match the URL (400), ``dryRun`` must be ``All``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from aiohttp import web

from netlab.api import errors
from netlab.api.objects import deep_copy, dumps, meta
from netlab.api.patch import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    PatchError,
    apply_patch,
)
from netlab.api.views import meta_of, name_of
from netlab.master.apiserver import (
    apply,
    authn,
    conversion,
    eviction,
    fieldmanager,
    fieldvalidation,
    portforward,
    render,
    reviews,
    strategy,
    streaming,
    subresources,
    tokenrequest,
)
from netlab.master.apiserver.config import Config
from netlab.master.apiserver.deletion import Background, DeleteOptions, Deleter
from netlab.master.apiserver.listing import Filter, list_objects
from netlab.master.apiserver.request import (
    Output,
    RequestInfo,
    check_identity,
    check_json_value,
    content_type,
    decode_body,
    dry_run,
    negotiate,
    query_bool,
    query_int,
)
from netlab.master.apiserver.storage import Registry, gather_limited
from netlab.master.apiserver.watch import WatchHub, serve_watch
from netlab.master.store import Store


@dataclass
class Context:
    """Everything a request handler needs; one per app."""

    store: Store
    config: Config
    registry: Registry
    deleter: Deleter
    background: Background
    watches: WatchHub = field(default_factory=WatchHub)
    crds: Any = None  # the CRDManager (crds.py), which serves custom resources
    signer: Any = None  # the service-account TokenSigner (satokens.py)


# --- bodies ------------------------------------------------------------------------------------


async def read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise errors.request_entity_too_large(limit)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.request_entity_too_large(limit) from None
    if len(body) > limit:
        raise errors.request_entity_too_large(limit)
    return body


async def read_object(request: web.Request, ctx: Context, info: RequestInfo,
                      kind: Optional[str] = None) -> tuple[dict, list[str]]:
    """The request body as an object of ``kind`` (default: the resource's), checked per
    ``fieldValidation``; returns (object, warnings)."""
    body = await read_body(request, ctx.config.max_body)
    how = fieldvalidation.mode(request.query)
    api_version = "v1" if kind == "Binding" else info.resource.api_version(info.version)
    return fieldvalidation.decode(body, content_type(request.headers.get("Content-Type")),
                                  kind or info.resource.kind, api_version, how)


def check_type(info: RequestInfo, obj: dict, expected_kind: Optional[str] = None) -> None:
    """The body's apiVersion and kind, when given, must be those the URL serves."""
    res = info.resource
    want_version = res.api_version(info.version)
    want_kind = expected_kind or res.kind
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if api_version not in (None, "") and api_version != want_version:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match "
                                 f"the expected API version ({want_version})")
    if kind not in (None, "") and kind != want_kind:
        raise errors.bad_request(f'the kind in the data ("{kind}") does not match the '
                                 f'expected kind ("{want_kind}")')
    obj["apiVersion"], obj["kind"] = want_version, want_kind
    m = obj.get("metadata")
    if m is None:
        obj["metadata"] = {}
    elif not isinstance(m, dict):
        raise errors.bad_request("metadata must be an object")


def tracker(request: web.Request, info: RequestInfo, options_kind: str,
            subresource: Optional[str] = None) -> fieldmanager.Tracker:
    """The managedFields hook of a non-apply write: the manager is ``fieldManager`` or the
    User-Agent's prefix, at the request's apiVersion (the parent's for ``/scale``)."""
    name = fieldmanager.manager_name(request.query, request.headers.get("User-Agent"),
                                     options_kind)
    sub = info.subresource if subresource is None else subresource
    manager = fieldmanager.Manager(name, info.resource.api_version(info.version), sub or "")
    return fieldmanager.update_tracker(info.resource, manager)


def _wants_pretty(request: web.Request) -> bool:
    return query_bool(request.query, "pretty")


def object_response(request: web.Request, info: RequestInfo, output: Output, obj: dict,
                    status: int = 200, warnings: Optional[list[str]] = None) -> web.Response:
    include = request.query.get("includeObject", "")
    body = render.object_body(info.resource, info.version, output, obj, include)
    resp = render.respond(body, output, status, _wants_pretty(request))
    for name, value in fieldvalidation.warning_headers(warnings or []):
        resp.headers.add(name, value)
    return resp


# --- verbs -------------------------------------------------------------------------------------


async def handle(request: web.Request, ctx: Context, info: RequestInfo) -> web.StreamResponse:
    output = negotiate(request.headers.get("Accept"))
    verb = info.verb
    if info.subresource == "log":
        return await subresources.log(request, ctx.registry, ctx.config, info)
    if info.subresource in ("exec", "attach") and info.resource.kind == "Pod":
        return await streaming.remote_command(request, ctx.registry, ctx.config, info)
    if info.subresource == "portforward" and info.resource.kind == "Pod":
        return await portforward.port_forward(request, ctx.registry, ctx.config, info)
    if info.subresource == "scale":
        return await _scale(request, ctx, info, output)
    if verb == "get":
        obj = await ctx.registry.get(info.resource, info.namespace, info.name or "")
        return object_response(request, info, output, obj)
    if verb == "list":
        return await _list(request, ctx, info, output)
    if verb == "watch":
        return await serve_watch(request, ctx.store, ctx.config, ctx.watches, info, output)
    if verb == "create":
        if info.subresource == "eviction":
            return await eviction.evict(request, ctx, info)
        if info.subresource == "token":
            return await _token_request(request, ctx, info, output)
        if info.resource.kind == "TokenReview":
            review, warnings = await read_object(request, ctx, info)
            check_type(info, review)
            answered = await tokenrequest.review_token(ctx, review)
            return object_response(request, info, output, answered, 201, warnings)
        if info.subresource == "binding":
            binding, _ = await read_object(request, ctx, info, kind="Binding")
            check_type(info, binding, expected_kind="Binding")
            status = await subresources.bind(ctx.registry, info, binding,
                                             dry_run(request.query, "CreateOptions"))
            return render.status_response(status)
        if info.resource.kind in reviews.REVIEW_KINDS:
            return await _review(request, ctx, info, output)
        return await _create(request, ctx, info, output)
    if verb == "update":
        return await _update(request, ctx, info, output)
    if verb == "patch":
        return await _patch(request, ctx, info, output)
    if verb == "delete":
        return await _delete(request, ctx, info, output)
    if verb == "deletecollection":
        return await _delete_collection(request, ctx, info, output)
    raise errors.method_not_allowed()


async def _list(request: web.Request, ctx: Context, info: RequestInfo,
                output: Output) -> web.Response:
    query = request.query
    flt = Filter(info.resource, info.version, query.get("labelSelector", ""),
                 query.get("fieldSelector", ""))
    result = await list_objects(ctx.store, info.resource, info.namespace, query, flt)
    body = render.list_body(info.resource, info.version, output, result.items, result.revision,
                            result.continue_token, query.get("includeObject", ""))
    return render.respond(body, output, 200, _wants_pretty(request))


async def _create(request: web.Request, ctx: Context, info: RequestInfo,
                  output: Output) -> web.Response:
    is_dry_run = dry_run(request.query, "CreateOptions")
    if info.resource.custom is not None and info.resource.custom.terminating:
        raise errors.APIError(405, "MethodNotAllowed", "create not allowed while custom "
                              "resource definition is terminating",
                              {"group": info.resource.group, "kind": info.resource.plural})
    track = tracker(request, info, "CreateOptions")
    obj, warnings = await read_object(request, ctx, info)
    check_type(info, obj)
    check_identity(info, obj)
    res = info.resource
    stored = conversion.to_storage(res, info.version, obj)
    created = await ctx.registry.create(res, info.namespace, stored, dry_run=is_dry_run,
                                        track=track)
    return object_response(request, info, output, created, 201, warnings)


async def _token_request(request: web.Request, ctx: Context, info: RequestInfo,
                         output: Output) -> web.Response:
    """``serviceaccounts/<name>/token``: the body is read, checked and answered as a
    TokenRequest (authentication.k8s.io/v1), never stored (201, as Kubernetes)."""
    as_token = replace(info, resource=tokenrequest.TOKEN_REQUESTS, version="v1")
    req, warnings = await read_object(request, ctx, as_token)
    check_type(as_token, req)
    answered = await tokenrequest.create_token(ctx, info, req)
    return object_response(request, as_token, output, answered, 201, warnings)


async def _review(request: web.Request, ctx: Context, info: RequestInfo,
                  output: Output) -> web.Response:
    """An access review: answered for the caller, never stored (201, as Kubernetes)."""
    dry_run(request.query, "CreateOptions")
    obj, warnings = await read_object(request, ctx, info)
    check_type(info, obj)
    check_identity(info, obj)
    answered = await reviews.answer(ctx.store, info.resource.kind, obj, info.namespace,
                                    authn.request_user(request))
    return object_response(request, info, output, answered, 201, warnings)


async def _update(request: web.Request, ctx: Context, info: RequestInfo,
                  output: Output) -> web.Response:
    is_dry_run = dry_run(request.query, "UpdateOptions")
    track = tracker(request, info, "UpdateOptions")
    body, warnings = await read_object(request, ctx, info)
    check_type(info, body)
    check_identity(info, body)
    res, name = info.resource, info.name or ""

    def mutate(old: dict) -> dict:
        new = conversion.to_storage(res, info.version, deep_copy(body), old)
        meta(new)["name"] = name
        return new

    create = None
    if info.subresource is None and strategy.policy(res).allow_create_on_update:
        def create() -> dict:
            new = conversion.to_storage(res, info.version, deep_copy(body))
            meta(new)["name"] = name
            meta(new).pop("resourceVersion", None)
            return new

    obj, created = await ctx.registry.update(res, info.namespace, name, mutate,
                                             subresource=info.subresource, dry_run=is_dry_run,
                                             create=create, track=track)
    return object_response(request, info, output, obj, 201 if created else 200, warnings)


def _patch_mutation(info: RequestInfo, ctype: str, raw: bytes, how: str,
                    warnings: list[str]) -> Any:
    res, name = info.resource, info.name or ""
    api_version = res.api_version(info.version)

    def mutate(old: dict) -> dict:
        served = render.served(res, info.version, old)
        try:
            patched = apply_patch(ctype, served, raw, res.kind)
        except PatchError as err:
            raise subresources.patch_error(err) from None
        check_json_value(patched)
        patched, found = fieldvalidation.check_patched(raw, ctype, patched, res.kind,
                                                       api_version, how)
        warnings[:] = found
        patched_name = meta_of(patched).get("name") if isinstance(
            patched.get("metadata"), dict) else None
        if patched_name not in (None, "", name):
            raise errors.bad_request(f"the name of the object ({patched_name}) does not match "
                                     f"the name on the URL ({name})")
        check_type(info, patched)
        return conversion.to_storage(res, info.version, patched, old)

    return mutate


async def _patch(request: web.Request, ctx: Context, info: RequestInfo,
                 output: Output) -> web.Response:
    is_dry_run = dry_run(request.query, "PatchOptions")
    how = fieldvalidation.mode(request.query)
    raw = await read_body(request, ctx.config.max_body)
    ctype = request.headers.get("Content-Type", "")
    if apply.is_apply(ctype):
        obj, created, warnings = await apply.serve_apply(request, ctx, info, raw)
        return object_response(request, info, output, obj, 201 if created else 200, warnings)
    _forbid_force(request)
    track = tracker(request, info, "PatchOptions")
    if info.resource.custom is not None and \
            ctype.split(";", 1)[0].strip().lower() == STRATEGIC_MERGE_PATCH:
        # Custom resources have no patch strategies to merge by (as in apiextensions).
        raise errors.unsupported_media_type(ctype, (JSON_PATCH, MERGE_PATCH))
    warnings = []
    mutate = _patch_mutation(info, ctype, raw, how, warnings)
    obj, _ = await ctx.registry.update(info.resource, info.namespace, info.name or "", mutate,
                                       subresource=info.subresource, dry_run=is_dry_run,
                                       track=track)
    return object_response(request, info, output, obj, warnings=warnings)


def _forbid_force(request: web.Request) -> None:
    if "force" in request.query:
        raise errors.invalid_object("PatchOptions", "", [errors.forbidden_field(
            "force", "may not be specified for non-apply patch")], group="meta.k8s.io")


async def _scale(request: web.Request, ctx: Context, info: RequestInfo,
                 output: Output) -> web.Response:
    if info.verb == "get":
        scale = await subresources.scale(ctx.registry, info)
    elif info.verb == "update":
        is_dry_run = dry_run(request.query, "UpdateOptions")
        track = tracker(request, info, "UpdateOptions")
        body, _ = await read_object(request, ctx, info, kind="Scale")
        scale = await subresources.scale(ctx.registry, info, body=body, dry_run=is_dry_run,
                                         track=track)
    else:
        is_dry_run = dry_run(request.query, "PatchOptions")
        raw = await read_body(request, ctx.config.max_body)
        ctype = request.headers.get("Content-Type", "")
        if apply.is_apply(ctype):
            obj, _, _ = await apply.serve_apply(request, ctx, info, raw)
            scale = subresources.to_scale(obj, info.resource)
        else:
            _forbid_force(request)
            track = tracker(request, info, "PatchOptions")
            scale = await subresources.scale(ctx.registry, info, patch=(ctype, raw),
                                             dry_run=is_dry_run, track=track)
    return render.respond(dumps(scale), output if output.form == "yaml" else None)


# --- delete ------------------------------------------------------------------------------------


async def delete_options(request: web.Request, ctx: Context) -> DeleteOptions:
    query = request.query
    opts = DeleteOptions(dry_run=dry_run(query, "DeleteOptions"))
    opts.grace_period_seconds = query_int(query, "gracePeriodSeconds")
    opts.propagation_policy = query.get("propagationPolicy") or None
    if "orphanDependents" in query and opts.propagation_policy is None:
        opts.propagation_policy = "Orphan" if query_bool(query, "orphanDependents") \
            else "Background"
    raw = await read_body(request, ctx.config.max_body)
    if raw.strip():
        body = decode_body(raw, content_type(request.headers.get("Content-Type")))
        opts.merge_body(body, orphan_dependents=True)
    return opts


def deleted_response(request: web.Request, info: RequestInfo, output: Output, obj: dict,
                     removed: bool) -> web.Response:
    res = info.resource
    if removed and not strategy.policy(res).return_deleted_object:
        details = {"name": info.name or meta(obj).get("name", "")}
        if res.group:
            details["group"] = res.group
        details["kind"] = res.plural
        if meta(obj).get("uid"):
            details["uid"] = meta(obj)["uid"]
        return render.status_response(errors.success_status(details), output)
    return object_response(request, info, output, obj)


async def _delete(request: web.Request, ctx: Context, info: RequestInfo,
                  output: Output) -> web.Response:
    opts = await delete_options(request, ctx)
    obj, removed = await ctx.deleter.delete(info.resource, info.namespace, info.name or "", opts)
    return deleted_response(request, info, output, obj, removed)


async def _delete_collection(request: web.Request, ctx: Context, info: RequestInfo,
                             output: Output) -> web.Response:
    opts = await delete_options(request, ctx)
    query = request.query
    flt = Filter(info.resource, info.version, query.get("labelSelector", ""),
                 query.get("fieldSelector", ""))
    listed = await list_objects(ctx.store, info.resource, info.namespace, {}, flt)
    names = [(meta(o).get("namespace"), name_of(o))
             for o in (render.as_dict(kv) for kv in listed.items)]
    results = await gather_limited([
        ctx.deleter.delete(info.resource, ns, name, opts) for ns, name in names])
    deleted = []
    for result in results:
        if isinstance(result, errors.APIError):
            if result.code == 404:
                continue
            raise result
        if isinstance(result, BaseException):
            raise result
        deleted.append(result[0])
    body = render.list_body(info.resource, info.version, output, deleted, listed.revision)
    return render.respond(body, output, 200, _wants_pretty(request))
