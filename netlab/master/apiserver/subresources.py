"""Subresources with their own shapes: ``scale``, ``pods/binding`` and ``pods/log``.

(``status`` needs nothing special: it is the object, written through the
generic update with ``subresource="status"``, see ``strategy.py``.)

* ``deployments|replicasets/scale`` speaks ``autoscaling/v1 Scale``: what
  ``kubectl scale`` and the HPA controller read and write. Writing it sets
  ``spec.replicas`` of the object, as a normal spec update (validation,
  generation).
* ``pods/binding`` is how the scheduler assigns a pod: ``spec.nodeName`` is set
  once (409 if already bound or being deleted) and the PodScheduled
  condition becomes True.
* ``pods/log`` resolves the pod, container and node, then streams what the
  configured log fetcher (the kubelet client) returns; see ``config.py``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional

from aiohttp import web

from netlab.api import customresources, errors, objects, printers, resources, views
from netlab.api.objects import meta
from netlab.api.patch import PatchError, apply_patch
from netlab.api.views import dict_at, meta_of, pod_spec
from netlab.master.apiserver.config import Config, LogRequest, LogUnavailable
from netlab.master.apiserver.request import RequestInfo, query_bool, query_int
from netlab.master.apiserver.storage import Registry

NODES = resources.builtin("Node")


def patch_error(err: PatchError) -> errors.APIError:
    reason = {400: "BadRequest", 415: "UnsupportedMediaType", 409: "Conflict"}.get(
        err.code, "Invalid")
    return errors.APIError(err.code, reason, str(err))


# --- scale -----------------------------------------------------------------------------------


def _custom_scale(res: Any, obj: dict) -> dict:
    """A custom object's Scale, through its CRD's specReplicasPath/statusReplicasPath/
    labelSelectorPath (apiextensions' scale subresource)."""
    paths = res.custom.scale
    m = meta(obj)
    spec_r = customresources.get_path(obj, str(paths.get("specReplicasPath") or ""))
    status_r = customresources.get_path(obj, str(paths.get("statusReplicasPath") or ""))
    status: dict[str, Any] = {"replicas": status_r if isinstance(status_r, int) else 0}
    if paths.get("labelSelectorPath"):
        selector = customresources.get_path(obj, str(paths["labelSelectorPath"]))
        if isinstance(selector, str) and selector:
            status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                           "creationTimestamp") if k in m},
            "spec": {"replicas": spec_r if isinstance(spec_r, int) else 0}, "status": status}


def to_scale(obj: dict, res: Any = None) -> dict:
    if res is not None and res.custom is not None and res.custom.scale is not None:
        return _custom_scale(res, obj)
    m = meta(obj)
    spec = dict_at(obj, "spec")
    status = dict_at(obj, "status")
    scale_meta = {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                    "creationTimestamp") if k in m}
    scale_status: dict[str, Any] = {"replicas": status.get("replicas", 0)}
    selector = spec.get("selector")
    if obj.get("kind") == "ReplicationController" and isinstance(selector, dict):
        selector = {"matchLabels": selector}  # an RC's selector is a plain label map
    selector = printers.selector_string(selector)
    if selector:
        scale_status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": spec.get("replicas", 0)}, "status": scale_status}


def _apply_scale(obj: dict, scale: Any, name: str, res: Any = None) -> dict:
    if not isinstance(scale, dict):
        raise errors.bad_request("the body must be a Scale object")
    spec = dict_at(scale, "spec")
    replicas = spec.get("replicas", 0)
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise errors.invalid_object("Scale", name, [errors.invalid(
            "spec.replicas", replicas, "must be an integer")], "autoscaling")
    if replicas < 0:
        raise errors.invalid_object("Scale", name, [errors.invalid(
            "spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")
    rv = meta_of(scale).get("resourceVersion") if isinstance(
        scale.get("metadata"), dict) else None
    if rv:
        meta(obj)["resourceVersion"] = rv  # the client's precondition
    if res is not None and res.custom is not None and res.custom.scale is not None:
        customresources.set_path(obj, str(res.custom.scale.get("specReplicasPath")), replicas)
        return obj
    if not isinstance(obj.get("spec"), dict):
        obj["spec"] = {}
    obj["spec"]["replicas"] = replicas
    return obj


async def scale(registry: Registry, info: RequestInfo, *, body: Optional[dict] = None,
                patch: Optional[tuple[str, bytes]] = None, dry_run: bool = False,
                track: Any = None) -> dict:
    """GET (no body, no patch), PUT (``body``) or PATCH (``patch``) of ``/scale``."""
    res, ns, name = info.resource, info.namespace, info.name or ""
    if body is None and patch is None:
        return to_scale(await registry.get(res, ns, name), res)
    if body is not None:
        body_name = meta_of(body).get("name") if isinstance(
            body.get("metadata"), dict) else None
        if body_name and body_name != name:
            raise errors.bad_request(f"the name of the object ({body_name}) does not match "
                                     f"the name on the URL ({name})")

    def mutate(old: dict) -> dict:
        if body is not None:
            return _apply_scale(old, body, name, res)
        assert patch is not None
        try:
            patched = apply_patch(patch[0], to_scale(old, res), patch[1], "Scale")
        except PatchError as err:
            raise patch_error(err) from None
        return _apply_scale(old, patched, name, res)

    obj, _ = await registry.update(res, ns, name, mutate, dry_run=dry_run, track=track)
    return to_scale(obj, res)


# --- binding ---------------------------------------------------------------------------------


def _set_scheduled(pod: dict) -> None:
    status = dict_at(pod, "status")
    conditions = [c for c in status.get("conditions") or []
                  if isinstance(c, dict) and c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True",
                       "lastProbeTime": None, "lastTransitionTime": objects.timestamp()})
    status["conditions"] = conditions
    pod["status"] = status


async def bind(registry: Registry, info: RequestInfo, binding: dict,
               dry_run: bool = False) -> dict:
    name = info.name or ""
    bmeta = dict_at(binding, "metadata")
    if bmeta.get("name") and bmeta["name"] != name:
        raise errors.bad_request("name in URL does not match name in Binding object")
    target = dict_at(binding, "target")
    node = target.get("name")
    errs = []
    if not isinstance(node, str) or not node:
        errs.append(errors.required("target.name"))
    if target.get("kind") not in (None, "", "Node"):
        errs.append(errors.not_supported("target.kind", target.get("kind"), ["Node"]))
    if errs:
        raise errors.invalid_object("Binding", name, errs)
    annotations = dict_at(bmeta, "annotations")

    def mutate(pod: dict) -> dict:
        m = meta(pod)
        spec = dict_at(pod, "spec")
        if m.get("deletionTimestamp"):
            raise errors.conflict("pods/binding", name,
                                  f"pod {name} is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.conflict("pods/binding", name, f"pod {name} is already assigned to "
                                  f'node "{spec["nodeName"]}"')
        spec["nodeName"] = node
        pod["spec"] = spec
        if annotations:
            m["annotations"] = {**(m.get("annotations") or {}), **annotations}
        _set_scheduled(pod)
        return pod

    await registry.update(info.resource, info.namespace, name, mutate, subresource="binding",
                          dry_run=dry_run)
    return errors.success_status(code=201)


# --- log -------------------------------------------------------------------------------------


def _container_names(spec: dict, key: str) -> list[str]:
    return [c.get("name", "") for c in spec.get(key) or [] if isinstance(c, dict)]


def pick_container(pod: dict, wanted: str) -> str:
    """The container a log request is for, with Kubernetes' errors when ambiguous."""
    name = views.name_of(pod)
    spec = dict_at(pod, "spec")
    containers = _container_names(spec, "containers")
    init = _container_names(spec, "initContainers")
    ephemeral = _container_names(spec, "ephemeralContainers")
    if wanted:
        if wanted not in containers and wanted not in init and wanted not in ephemeral:
            raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
        return wanted
    if len(containers) == 1:
        return containers[0]
    message = (f"a container name must be specified for pod {name}, choose one of: "
               f"[{' '.join(containers)}]")
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    if ephemeral:
        message += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
    raise errors.bad_request(message)


async def log(request: web.Request, registry: Registry, config: Config,
              info: RequestInfo) -> web.StreamResponse:
    query = request.query
    pod = await registry.get(info.resource, info.namespace, info.name or "")
    container = pick_container(pod, query.get("container", ""))
    tail = query_int(query, "tailLines")
    limit = query_int(query, "limitBytes")
    since = query_int(query, "sinceSeconds")
    since_time = query.get("sinceTime") or None
    errs = []
    if tail is not None and tail < 0:
        errs.append(errors.invalid("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        errs.append(errors.invalid("limitBytes", limit, "must be greater than 0"))
    if since is not None and since < 1:
        errs.append(errors.invalid("sinceSeconds", since, "must be greater than 0"))
    if since is not None and since_time:
        errs.append(errors.forbidden_field("", "at most one of `sinceTime` or `sinceSeconds` "
                                               "may be specified"))
    if errs:
        raise errors.invalid_object("PodLogOptions", "", errs)
    node_name = pod_spec(pod).get("nodeName") if isinstance(pod.get("spec"),
                                                                       dict) else None
    pod_name = views.name_of(pod)
    if not node_name:
        raise errors.bad_request(f'container "{container}" in pod "{pod_name}" is waiting to '
                                 f"start: the pod is not scheduled to a node yet")
    if config.log_fetcher is None:
        raise errors.bad_request(f'cannot get logs of pod "{pod_name}": the API server has no '
                                 f'connection to the kubelet of node "{node_name}"')
    assert NODES is not None
    try:
        node: Optional[dict] = await registry.get(NODES, None, node_name)
    except errors.APIError:
        raise errors.not_found("nodes", node_name) from None
    log_request = LogRequest(pod=pod, node=node, container=container,
                             follow=query_bool(query, "follow"),
                             previous=query_bool(query, "previous"),
                             timestamps=query_bool(query, "timestamps"), tail_lines=tail,
                             since_seconds=since, since_time=since_time, limit_bytes=limit)
    try:
        chunks = await config.log_fetcher(log_request)
    except LogUnavailable as err:
        raise errors.APIError(err.code, "NotFound" if err.code == 404 else "BadRequest",
                              str(err)) from None
    except OSError as err:
        raise errors.bad_request(f'the kubelet of node "{node_name}" is not reachable: '
                                 f"{err}") from None
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client went away (kubectl logs -f interrupted)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    return resp

