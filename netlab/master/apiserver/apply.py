"""Server-side apply: ``PATCH`` with ``Content-Type: application/apply-patch+yaml``.

The request glue around :func:`netlab.api.server_side_apply.apply`, as k8s.io/apiserver's
``applyPatcher`` and fieldmanager chain do it:

* the body is YAML (JSON is YAML), a whole object of the URL's kind and version; it is
  checked per ``fieldValidation`` like a create body; ``metadata.managedFields`` must be
  absent; ``fieldManager`` is required (422) and ``force=true`` takes conflicting fields over;
* a missing object is created (201), on the main resource only;
* conflicts are upstream's 409 (``Apply failed with 1 conflict: ...``, causes of reason
  ``FieldManagerConflict``);
* for the ``kubectl`` manager, conflicts on fields the client-side
  ``kubectl.kubernetes.io/last-applied-configuration`` still describes are forced (the
  CSA-to-SSA upgrade of lastAppliedManager), and an existing annotation is rewritten to the
  applied configuration (lastAppliedUpdater);
* ``/status`` applies own only ``status``; ``/scale`` applies a ``Scale`` whose
  ``spec.replicas`` becomes the parent's replicas field, owned with subresource ``scale``.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from aiohttp import web

from netlab.api import customresources, errors
from netlab.api import managed_fields as mf
from netlab.api import server_side_apply as ssa
from netlab.api.objects import deep_copy, meta, timestamp
from netlab.api.views import meta_of
from netlab.master.apiserver import conversion, fieldmanager, fieldvalidation, render
from netlab.master.apiserver.request import (
    YAML,
    RequestInfo,
    check_identity,
    dry_run,
    query_bool,
)

__all__ = ["APPLY_PATCH", "LAST_APPLIED", "is_apply", "serve_apply"]

APPLY_PATCH = "application/apply-patch+yaml"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CSA_MANAGER_FOR_UPGRADE = "kubectl"


def is_apply(content_type: str) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == APPLY_PATCH


def _check_config(info: RequestInfo, config: dict, kind: str, api_version: str) -> None:
    got_version, got_kind = config.get("apiVersion"), config.get("kind")
    if not isinstance(got_kind, str) or not got_kind:
        raise errors.bad_request(f"Object 'Kind' is missing in '{_short(config)}'")
    if got_version != api_version:
        raise errors.bad_request(
            "Incorrect version specified in apply patch. Specified patch version: "
            f"{got_version if isinstance(got_version, str) else ''}, expected: {api_version}")
    if got_kind != kind:
        raise errors.bad_request(f'the kind in the data ("{got_kind}") does not match the '
                                 f'expected kind ("{kind}")')
    m = config.get("metadata")
    if m is None:
        return
    if not isinstance(m, dict):
        raise errors.bad_request("metadata must be an object")
    if m.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    check_identity(info, config)


def _short(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 200 else text[:200] + "..."


def _conflict_error(err: ssa.Conflicts) -> errors.APIError:
    return errors.APIError(409, "Conflict", str(err), {"causes": err.causes()})


def _shape_error(info: RequestInfo, err: mf.ShapeError) -> errors.APIError:
    return errors.bad_request(f"failed to create typed patch object "
                              f"({info.namespace + '/' if info.namespace else ''}{info.name}; "
                              f"{info.resource.api_version(info.version)}, "
                              f"Kind={info.resource.kind}): {err}")


class _Applier:
    """One apply request: computes the merged object and its entries for a live object."""

    def __init__(self, info: RequestInfo, config: dict, manager: str, force: bool,
                 subresource: str) -> None:
        self.info = info
        self.config = config
        self.manager = manager
        self.force = force
        self.subresource = subresource
        res = info.resource
        self.api_version = res.api_version(info.version)
        self.shape = fieldmanager.shape_of(res, info.version)
        self.ignore = fieldmanager.ignore_for(res, subresource)
        self.entries: list[mf.Entry] = []

    def _run(self, live: dict, entries: list[mf.Entry], force: bool) -> dict:
        merged, self.entries = ssa.apply(
            live, self.config, entries, self.manager, self.api_version, self.shape,
            force=force, subresource=self.subresource, ignore=self.ignore, now=timestamp())
        return merged

    def merged(self, served: dict) -> dict:
        """``served`` (the live object in the request's version, or {}) with the apply."""
        entries = mf.decode_entries(meta(served).get("managedFields")) if served else []
        live = fieldmanager._without_managed(served) if served else {}
        try:
            try:
                merged = self._run(live, entries, self.force)
            except ssa.Conflicts as conflicts:
                allowed = self._allowed_conflicts(live)
                if allowed is None or any(c.path not in allowed for c in conflicts.conflicts):
                    raise _conflict_error(conflicts) from None
                merged = self._run(live, entries, True)
        except mf.ShapeError as err:
            raise _shape_error(self.info, err) from None
        if self.manager == CSA_MANAGER_FOR_UPGRADE and self.subresource == "":
            self._update_last_applied(merged)
        return merged

    def _allowed_conflicts(self, live: dict) -> Optional[set]:
        if self.manager != CSA_MANAGER_FOR_UPGRADE:
            return None
        raw = (meta(live).get("annotations") or {}).get(LAST_APPLIED) if isinstance(
            meta(live).get("annotations"), dict) else None
        if not isinstance(raw, str) or not raw:
            return None
        try:
            last = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(last, dict) or last.get("apiVersion") != self.api_version:
            return None
        return ssa.allowed_by_last_applied(last, live, self.shape)

    def _update_last_applied(self, merged: dict) -> None:
        annotations = meta(merged).get("annotations")
        if not isinstance(annotations, dict) or not annotations.get(LAST_APPLIED):
            return
        applied = deep_copy(self.config)
        config_annotations = meta_of(applied).get("annotations")
        if isinstance(config_annotations, dict):
            config_annotations.pop(LAST_APPLIED, None)
        meta(merged)["annotations"] = {**annotations, LAST_APPLIED: json.dumps(
            applied, separators=(",", ":"), sort_keys=True)}


def _scale_config(info: RequestInfo, scale: dict) -> dict:
    """A Scale apply as the partial parent object it changes."""
    res = info.resource
    spec = scale.get("spec")
    if spec is not None and not isinstance(spec, dict):
        raise errors.bad_request("spec must be an object")
    config: dict[str, Any] = {"apiVersion": res.api_version(info.version), "kind": res.kind}
    if isinstance(spec, dict) and "replicas" in spec:
        replicas = spec["replicas"]
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid_object("Scale", info.name or "", [errors.invalid(
                "spec.replicas", replicas, "must be a non-negative integer")], "autoscaling")
        path = ".spec.replicas"
        if res.custom is not None and res.custom.scale is not None:
            path = str(res.custom.scale.get("specReplicasPath") or path)
        customresources.set_path(config, path, replicas)
    return config


async def serve_apply(request: web.Request, ctx: Any, info: RequestInfo,
                      raw: bytes) -> tuple[dict, bool, list[str]]:
    """Carry out an apply PATCH (``raw`` is the body); returns the stored (or, for a dry
    run, would-be) object, whether it was created, and field-validation warnings."""
    query = request.query
    is_dry_run = dry_run(query, "PatchOptions")
    manager = fieldmanager.manager_name(query, request.headers.get("User-Agent"),
                                        "PatchOptions", required=True)
    force = query_bool(query, "force")
    res = info.resource
    subresource = info.subresource or ""
    if subresource not in ("", "status", "scale"):
        raise errors.method_not_allowed()
    if subresource == "scale":
        scale, _ = fieldvalidation.decode(raw, YAML, "Scale", "autoscaling/v1",
                                          fieldvalidation.mode(query))
        _check_config(info, scale, "Scale", "autoscaling/v1")
        config = _scale_config(info, scale)
        warnings: list[str] = []
    else:
        config, warnings = fieldvalidation.decode(raw, YAML, res.kind,
                                                  res.api_version(info.version),
                                                  fieldvalidation.mode(query))
        _check_config(info, config, res.kind, res.api_version(info.version))
    applier = _Applier(info, config, manager, force, subresource)
    name = info.name or ""

    def mutate(old: dict) -> dict:
        merged = applier.merged(render.served(res, info.version, old))
        return conversion.to_storage(res, info.version, merged, old)

    def create() -> dict:
        if res.custom is not None and res.custom.terminating:
            raise errors.APIError(405, "MethodNotAllowed", "create not allowed while custom "
                                  "resource definition is terminating",
                                  {"group": res.group, "kind": res.plural})
        merged = applier.merged({})
        m = meta(merged)
        m["name"] = name
        m.pop("resourceVersion", None)
        return conversion.to_storage(res, info.version, merged)

    def track(old: Optional[dict], new: dict, requested: Any) -> None:
        fieldmanager.set_entries(new, applier.entries)

    obj, created = await ctx.registry.update(
        res, info.namespace, name, mutate, subresource="status" if subresource == "status"
        else None, dry_run=is_dry_run, create=create if subresource == "" else None,
        track=track)
    return obj, created, warnings
