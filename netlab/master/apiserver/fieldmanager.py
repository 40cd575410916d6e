"""``metadata.managedFields`` on every write: who the field manager is, and the hook the
registry calls to record what a write changed.

The API server's equivalent of k8s.io/apiserver's ``fieldmanager.FieldManager`` glue; the
field-set algebra is in :mod:`netlab.api.managed_fields` and :mod:`netlab.api.server_side_apply`.

* :func:`manager_name`: the ``fieldManager`` query parameter, or the User-Agent up to its
  first ``/`` (``kubectl``, ``kube-controller-manager``), validated as upstream's
  ``ValidateFieldManager``;
* :func:`shape_of`: the schema shape of a resource (built-in OpenAPI or CRD schema);
* :func:`ignore_for`: what no manager owns on a given endpoint: system metadata, the
  ``status`` of a kind with a status subresource written through the main resource, and
  everything but ``status`` written through ``/status``;
* :func:`update_tracker`: the ``track(old, new, requested)`` callable the registry runs after
  the strategy prepared a create or update, turning the change into managedFields entries.
  The request's own ``managedFields`` replace the stored ones when they decode to a
  non-empty list (``[]`` or ``[{}]`` clear them), as upstream's decodeLiveOrNew, except on
  subresources where they are ignored.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional

from netlab.api import errors
from netlab.api import managed_fields as mf
from netlab.api import server_side_apply as ssa
from netlab.api.objects import meta, timestamp
from netlab.api.resources import Resource

__all__ = [
    "ABSENT",
    "Manager",
    "Tracker",
    "ignore_for",
    "manager_name",
    "request_entries",
    "shape_of",
    "update_tracker",
]

MAX_MANAGER_LENGTH = 128
ABSENT: Any = object()  # the request carried no managedFields

# track(old or None for a create, new, the request's managedFields or ABSENT)
Tracker = Callable[[Optional[dict], dict, Any], None]


@dataclass(frozen=True)
class Manager:
    """The manager of one write, and where it writes."""

    name: str
    api_version: str
    subresource: str = ""


def manager_name(query: Any, user_agent: Optional[str], options_kind: str,
                 required: bool = False) -> str:
    """The write's manager: ``fieldManager``, else the User-Agent's first ``/`` segment.

    ``required`` (apply): a missing ``fieldManager`` is upstream's 422."""
    name = query.get("fieldManager")
    errs = []
    if not name:
        if required:
            errs.append(errors.required("fieldManager", "is required for apply patch"))
        name = (user_agent or "").split("/", 1)[0][:MAX_MANAGER_LENGTH] or "unknown"
    elif len(name.encode()) > MAX_MANAGER_LENGTH:
        errs.append(errors.too_long("fieldManager", MAX_MANAGER_LENGTH))
    elif not name.isprintable():
        errs.append(errors.invalid("fieldManager", name,
                                   "must only contain printable characters"))
    if errs:
        raise errors.invalid_object(options_kind, "", errs, group="meta.k8s.io")
    return name


@functools.lru_cache(maxsize=256)
def _builtin_shape(kind: str, api_version: str) -> mf.Shape:
    return mf.shape_for_kind(kind, api_version)


def shape_of(res: Resource, version: Optional[str] = None) -> mf.Shape:
    """The schema shape of ``res`` objects in ``version`` (default: the storage version)."""
    if res.custom is not None:
        info = res.custom.version(version or res.custom.storage_version)
        return mf.shape_for_schema(info.schema if info is not None else None)
    return _builtin_shape(res.kind, res.api_version(version))


def _has_status_subresource(res: Resource) -> bool:
    return res.subresource("status") is not None


def ignore_for(res: Resource, subresource: str = "") -> ssa.Ignore:
    """The paths no manager owns for writes to ``res`` through ``subresource``."""
    if subresource == "status":
        return lambda p: ssa.strip_meta(p) or not p or p[0] != "f:status"
    if subresource == "" and _has_status_subresource(res):
        return lambda p: ssa.strip_meta(p) or (bool(p) and p[0] == "f:status")
    return ssa.strip_meta


def request_entries(requested: Any, live: Optional[dict]) -> list[mf.Entry]:
    """The entries a write starts from: the request's managedFields when they are a
    usable non-empty list (``[]``/``[{}]`` reset to none), else the live object's."""
    live_entries = mf.decode_entries(meta(live).get("managedFields")) if live else []
    if requested is ABSENT or requested is None or not isinstance(requested, list):
        return live_entries
    if requested == [] or requested == [{}]:
        return []
    decoded = mf.decode_entries(requested)
    if len(decoded) != len(requested) or not decoded:
        return live_entries
    return decoded


def set_entries(obj: dict, entries: list[mf.Entry]) -> None:
    encoded = mf.encode_entries(entries)
    if encoded:
        meta(obj)["managedFields"] = encoded
    else:
        meta(obj).pop("managedFields", None)


def update_tracker(res: Resource, manager: Manager) -> Tracker:
    """The registry hook for a non-apply write by ``manager`` (create, update, patch,
    a subresource write)."""
    shape = shape_of(res)
    ignore = ignore_for(res, manager.subresource)
    storage_version = res.api_version()

    def track(old: Optional[dict], new: dict, requested: Any) -> None:
        if manager.subresource:
            requested = ABSENT  # subresources never set managedFields
        base = request_entries(requested, old)
        live = {} if old is None else _without_managed(old)
        entries = ssa.track_update(live, _without_managed(new), base, manager.name,
                                   manager.api_version or storage_version, shape,
                                   subresource=manager.subresource, ignore=ignore,
                                   now=timestamp())
        if entries is base and old is not None and requested is ABSENT:
            return  # nothing changed: the stored entries stay as they are
        set_entries(new, entries)

    return track


def fixed_entries(entries: list[mf.Entry]) -> Tracker:
    """The registry hook for an apply, whose entries were computed with the merge."""

    def track(old: Optional[dict], new: dict, requested: Any) -> None:
        set_entries(new, entries)

    return track


def _without_managed(obj: dict) -> dict:
    m = obj.get("metadata")
    if isinstance(m, dict) and "managedFields" in m:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in m.items() if k != "managedFields"}
    return obj
