"""What a CustomResourceDefinition makes of its custom resource: the served
:class:`~netlab.api.resources.Resource`, its per-version schemas, its Table printer,
its scale paths, and the version rewriting of conversion strategy ``None``.

The API server (``netlab.master.apiserver.crds``) turns every established CRD into a
Resource with :func:`resource_from_crd` and feeds them to the resource registry; the
generic handlers then serve custom objects like built-ins and ask this module for the
parts that differ (``res.custom`` is a :class:`CustomInfo`). Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from netlab.api import structural, timefmt
from netlab.api.objects import deep_copy
from netlab.api.resources import (
    STATUS_VERBS,
    Resource,
    Subresource,
)

GROUP = "apiextensions.k8s.io"
CRD_KIND = "CustomResourceDefinition"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry."""

    name: str
    type: str
    json_path: str
    format: str = ""
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class VersionInfo:
    """One served version of a custom resource."""

    name: str
    schema: Optional[dict[str, Any]]
    columns: tuple[PrinterColumn, ...] = ()
    defaults: bool = False  # the schema has defaults: reads must apply them too


@dataclass(frozen=True)
class CustomInfo:
    """The CRD-specific facts the handlers need, hung on ``Resource.custom``."""

    crd_name: str
    crd_uid: str
    storage_version: str
    versions: dict[str, VersionInfo] = field(default_factory=dict)
    status: bool = False
    # specReplicasPath, statusReplicasPath, labelSelectorPath
    scale: Optional[dict[str, Any]] = None
    list_kind: str = ""
    terminating: bool = False  # the CRD is being deleted: no new objects

    def version(self, name: str) -> Optional[VersionInfo]:
        return self.versions.get(name)


# --- version order (kube-aware: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > others) --------------

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[Any, ...]:
    m = _VERSION_RE.match(version)
    if m is None:
        return (0, 0, 0, version)  # non-kube versions last, alphabetical
    stage = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    return (1, stage, int(m.group(1)), -int(m.group(3) or 0), "")


def sort_versions(versions: list[str]) -> list[str]:
    """Highest priority first, as kube-apiserver orders a group's versions."""
    ordered = sorted(versions, key=lambda v: version_priority(v), reverse=True)
    # Among non-kube versions (priority 0) alphabetical order is wanted, not reversed.
    kube = [v for v in ordered if _VERSION_RE.match(v)]
    return kube + sorted(v for v in versions if not _VERSION_RE.match(v))


# --- CRD -> Resource -----------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _columns(raw: Any) -> tuple[PrinterColumn, ...]:
    out = []
    for c in raw if isinstance(raw, list) else []:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            continue
        priority = c.get("priority")
        out.append(PrinterColumn(c["name"], str(c.get("type") or "string"),
                                 str(c.get("jsonPath") or ""), str(c.get("format") or ""),
                                 str(c.get("description") or ""),
                                 priority if isinstance(priority, int) else 0))
    return tuple(out)


def resource_from_crd(crd: dict[str, Any],
                      names: Optional[dict[str, Any]] = None) -> Optional[Resource]:
    """The Resource a (valid, accepted) CRD serves, or None when it serves nothing.
    ``names`` are the accepted names (default: the status's, else the spec's)."""
    spec, status = _dict(crd.get("spec")), _dict(crd.get("status"))
    names = names or _dict(status.get("acceptedNames")) or _dict(spec.get("names"))
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not (isinstance(group, str) and group and isinstance(plural, str) and plural
            and isinstance(kind, str) and kind):
        return None
    infos: dict[str, VersionInfo] = {}
    storage = ""
    has_status = False
    scale: Optional[dict[str, Any]] = None
    for v in spec.get("versions") or []:
        if not isinstance(v, dict) or not isinstance(v.get("name"), str):
            continue
        if v.get("storage") is True:
            storage = v["name"]
        if v.get("served") is not True:
            continue
        schema = _dict(v.get("schema")).get("openAPIV3Schema")
        schema = schema if isinstance(schema, dict) else None
        infos[v["name"]] = VersionInfo(v["name"], schema,
                                       _columns(v.get("additionalPrinterColumns")),
                                       structural.has_defaults(schema))
        subs = _dict(v.get("subresources"))
        if "status" in subs:
            has_status = True
        if isinstance(subs.get("scale"), dict):
            scale = subs["scale"]
    if not infos or not storage:
        return None
    subresources = []
    if scale is not None:
        subresources.append(Subresource("scale", "Scale", ("get", "patch", "update"),
                                        group="autoscaling", version="v1"))
    if has_status:
        subresources.append(Subresource("status", kind, STATUS_VERBS))
    singular = names.get("singular") or kind.lower()
    info = CustomInfo(crd_name=str(_dict(crd.get("metadata")).get("name") or ""),
                      crd_uid=str(_dict(crd.get("metadata")).get("uid") or ""),
                      storage_version=storage, versions=infos, status=has_status, scale=scale,
                      list_kind=str(names.get("listKind") or kind + "List"),
                      terminating=bool(_dict(crd.get("metadata")).get("deletionTimestamp")))
    return Resource(group, tuple(sort_versions(list(infos))), kind, plural, str(singular),
                    namespaced=spec.get("scope") != "Cluster",
                    short_names=_strings(names.get("shortNames")),
                    categories=_strings(names.get("categories")),
                    subresources=tuple(subresources), custom=info)


# --- objects -------------------------------------------------------------------------------------


def _schema(res: Resource, version: str) -> Optional[dict[str, Any]]:
    v = res.custom.version(version) if res.custom is not None else None
    return v.schema if v is not None else None


def convert(res: Resource, version: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Conversion strategy ``None``: only ``apiVersion`` changes. Reads also get the
    target version's defaults (apiextensions defaults on read)."""
    out = dict(obj)
    out["apiVersion"] = f"{res.group}/{version}"
    v = res.custom.version(version)
    if v is not None and v.defaults:
        out = deep_copy(out)
        structural.apply_defaults(v.schema, out)
    return out


def prepare(res: Resource, obj: dict[str, Any], version: Optional[str] = None) -> list[str]:
    """Prune unknown fields and apply defaults of ``version`` (default: the storage
    version) to an object about to be stored; returns the pruned paths."""
    schema = _schema(res, version or res.custom.storage_version)
    if schema is None:
        return []
    dropped = structural.prune(schema, obj)
    structural.apply_defaults(schema, obj)
    return dropped


def validate(res: Resource, obj: dict[str, Any]) -> list[Any]:
    """Schema errors of a custom object in its storage version."""
    return structural.validate_object(_schema(res, res.custom.storage_version), obj)


# ObjectMeta's fields: anything else under a custom object's metadata is pruned, as the
# typed decoding of metadata drops it upstream.
OBJECT_META_FIELDS = frozenset((
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields"))


def unknown_fields(res: Resource, version: str,
                   obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A pruned copy of a client's object and the fields pruning dropped."""
    pruned = deep_copy(obj)
    schema = _schema(res, version)
    dropped = structural.prune(schema, pruned) if schema is not None else []
    m = pruned.get("metadata")
    if isinstance(m, dict):
        for key in [k for k in m if k not in OBJECT_META_FIELDS]:
            dropped.append(f"metadata.{key}")
            del m[key]
    return pruned, dropped


# --- scale ---------------------------------------------------------------------------------------


def _path_parts(path: str) -> list[str]:
    return [p for p in path.lstrip(".").split(".") if p]


def get_path(obj: Any, path: str) -> Any:
    for key in _path_parts(path):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = _path_parts(path)
    for key in parts[:-1]:
        nxt = obj.get(key)
        if not isinstance(nxt, dict):
            nxt = obj[key] = {}
        obj = nxt
    if parts:
        obj[parts[-1]] = value


# --- printing ------------------------------------------------------------------------------------

_SEGMENT_RE = re.compile(r"\.([A-Za-z0-9_\-/]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*"
                         r"==\s*[\"']([^\"']*)[\"']\)\]|\['([^']+)'\]")


def json_path(obj: Any, path: str) -> list[Any]:
    """The values a kubectl-style JSONPath (``.status.conditions[?(@.type=="Ready")].status``,
    ``.spec.items[0]``, ``.spec.items[*].name``) selects; empty when nothing matches."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    current = [obj]
    pos = 0
    while pos < len(path):
        m = _SEGMENT_RE.match(path, pos)
        if m is None:
            return []
        pos = m.end()
        key, index, fkey, fvalue, quoted = m.groups()
        nxt: list[Any] = []
        for value in current:
            if key is not None or quoted is not None:
                if isinstance(value, dict) and (key or quoted) in value:
                    nxt.append(value[key or quoted])
            elif index is not None:
                if isinstance(value, list):
                    if index == "*":
                        nxt.extend(value)
                    elif int(index) < len(value):
                        nxt.append(value[int(index)])
            elif isinstance(value, list):
                nxt.extend(v for v in value if isinstance(v, dict) and
                           str(get_path(v, fkey)) == fvalue)
        current = nxt
    return current


def _cell(column: PrinterColumn, values: list[Any], now: datetime) -> Any:
    if not values:
        return None
    value = values[0] if len(values) == 1 else values
    if column.type == "date":
        if not isinstance(value, str):
            return None
        when = timefmt.parse_time(value)
        return "<invalid>" if when is None else timefmt.translate_timestamp_since(value, now)
    if column.type == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if column.type == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if column.type == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


AGE_COLUMN = PrinterColumn("Age", "date", ".metadata.creationTimestamp")


def printer_columns(res: Resource, version: str) -> tuple[PrinterColumn, ...]:
    """The version's columns; just Age when it declares none (as apiextensions does)."""
    v = res.custom.version(version) or res.custom.version(res.preferred_version)
    return v.columns if v is not None and v.columns else (AGE_COLUMN,)


def column_definitions(columns: tuple[PrinterColumn, ...]) -> list[dict[str, Any]]:
    name = {"name": "Name", "type": "string", "format": "name",
            "description": "Name must be unique within a namespace. Is required when "
            "creating resources, although some resources may allow a client to request the "
            "generation of an appropriate name automatically. Name is primarily intended for "
            "creation idempotence and configuration definition. Cannot be updated. More "
            "info: https://kubernetes.io/docs/concepts/overview/working-with-objects/"
            "names#names", "priority": 0}
    return [name] + [{"name": c.name, "type": c.type, "format": c.format,
                      "description": c.description, "priority": c.priority} for c in columns]


def row_cells(columns: tuple[PrinterColumn, ...], obj: dict[str, Any], now: datetime) -> list[Any]:
    name = _dict(obj.get("metadata")).get("name", "")
    return [name] + [_cell(c, json_path(obj, c.json_path), now) for c in columns]


def stored_versions(crd: dict[str, Any], current: list[Any]) -> list[Any]:
    """``status.storedVersions``: every version ever marked storage, the current one
    included (the CRD strategy appends it on create and update)."""
    out = [v for v in current if isinstance(v, str)]
    for ver in _dict(crd.get("spec")).get("versions") or []:
        if isinstance(ver, dict) and ver.get("storage") is True and \
                isinstance(ver.get("name"), str) and ver["name"] not in out:
            out.append(ver["name"])
    return out


# --- names (apiextensions' naming controller) --------------------------------------------------


@dataclass(frozen=True)
class NamesVerdict:
    """Whether a CRD's names are accepted, and if not, the condition's reason/message."""

    accepted: bool
    names: dict[str, Any]
    reason: str = "NoConflicts"
    message: str = "no conflicts found"


def _requested_names(crd: dict[str, Any]) -> dict[str, Any]:
    names = dict(_dict(_dict(crd.get("spec")).get("names")))
    raw_kind = names.get("kind")
    kind = raw_kind if isinstance(raw_kind, str) else ""
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", kind + "List")
    return names


def accept_names(crds: list[dict[str, Any]]) -> dict[str, NamesVerdict]:
    """The naming verdict of every CRD, by CRD name.

    CRDs whose names were accepted before come first, then the oldest; a CRD whose
    plural, singular, short names, kind or list kind is already taken by an accepted
    CRD of the same group gets
    ``NamesAccepted=False`` with the reason the upstream naming controller gives.
    """
    def order(crd: dict[str, Any]) -> tuple[Any, ...]:
        # Names once accepted stay with their CRD (upstream checks new names against
        # the accepted names of the others); then the oldest CRD wins.
        m = _dict(crd.get("metadata"))
        accepted = any(isinstance(c, dict) and c.get("type") == "NamesAccepted" and
                       c.get("status") == "True"
                       for c in _dict(crd.get("status")).get("conditions") or [])
        return (not accepted, str(m.get("creationTimestamp") or ""), str(m.get("name") or ""))

    taken: dict[str, dict[str, set[str]]] = {}
    out: dict[str, NamesVerdict] = {}
    for crd in sorted(crds, key=order):
        name = str(_dict(crd.get("metadata")).get("name") or "")
        group = str(_dict(crd.get("spec")).get("group") or "")
        names = _requested_names(crd)
        used = taken.setdefault(group, {"resource": set(), "kind": set()})
        resource_names = [("PluralConflict", names.get("plural")),
                          ("SingularConflict", names.get("singular"))] + [
            ("ShortNamesConflict", s) for s in names.get("shortNames") or []]
        kind_names = [("KindConflict", names.get("kind")),
                      ("ListKindConflict", names.get("listKind"))]
        conflict = next(((r, v) for r, v in resource_names if v in used["resource"]), None) \
            or next(((r, v) for r, v in kind_names if v in used["kind"]), None)
        if conflict is not None:
            out[name] = NamesVerdict(False, names, conflict[0],
                                     f'"{conflict[1]}" is already in use')
            continue
        used["resource"].update(str(v) for _, v in resource_names if v)
        used["kind"].update(str(v) for _, v in kind_names if v)
        out[name] = NamesVerdict(True, names)
    return out


def _condition(ctype: str, status: str, reason: str, message: str,
               old: list[Any]) -> dict[str, Any]:
    prior = next((c for c in old if isinstance(c, dict) and c.get("type") == ctype), None)
    when = prior.get("lastTransitionTime") if prior and prior.get("status") == status else None
    return {"type": ctype, "status": status, "lastTransitionTime": when or timefmt.format_time(
        datetime.now(tz=timezone.utc)), "reason": reason, "message": message}


def desired_status(crd: dict[str, Any], verdict: NamesVerdict, terminating: bool) -> dict[str, Any]:
    """The CRD status the controllers would write: acceptedNames, NamesAccepted,
    Established, and Terminating during the cleanup of its objects."""
    status: dict[str, Any] = deep_copy(_dict(crd.get("status")))
    old = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    if verdict.accepted:
        status["acceptedNames"] = {k: v for k, v in verdict.names.items()
                                   if k in ("plural", "singular", "shortNames", "kind",
                                            "listKind", "categories")}
        conditions = [_condition("NamesAccepted", "True", verdict.reason, verdict.message, old),
                      _condition("Established", "True", "InitialNamesAccepted",
                                 "the initial names have been accepted", old)]
    else:
        status.setdefault("acceptedNames", {"kind": "", "plural": ""})
        conditions = [_condition("NamesAccepted", "False", verdict.reason, verdict.message, old),
                      _condition("Established", "False", "NotAccepted",
                                 "not all names are accepted", old)]
    if terminating:
        conditions.append(_condition("Terminating", "True", "InstanceDeletionInProgress",
                                     "CustomResource deletion is in progress", old))
    status["conditions"] = conditions
    status["storedVersions"] = stored_versions(crd, status.get("storedVersions") or [])
    return status
