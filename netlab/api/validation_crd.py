"""Validation and defaulting of apiextensions.k8s.io/v1 CustomResourceDefinitions.

Restates apiextensions-apiserver's pkg/apis/apiextensions/validation for what netlab
serves: the name must be ``<plural>.<group>``; the group a domain with a dot; names
(plural, singular, kind, listKind, shortNames, categories) well formed; scope
``Namespaced`` or ``Cluster``; versions unique, at least one served, exactly one
stored, each with a structural ``openAPIV3Schema`` (:mod:`netlab.api.structural`);
printer columns and the scale subresource's paths well formed; ``group`` and
``scope`` immutable. Registered in :mod:`netlab.api.validation`'s tables.
"""

from __future__ import annotations

from typing import Any

from netlab.api import structural
from netlab.api.errors import invalid, not_supported, required
from netlab.api.validation_base import _V, dns1035_label, dns1123_subdomain
from netlab.api.views import meta_of, spec_of, str_at

SCOPES = ("Cluster", "Namespaced")
COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
CONVERSION_STRATEGIES = ("None", "Webhook")


def _label(v: _V, value: Any, path: str) -> None:
    if not isinstance(value, str) or not value:
        v.add(required(path))
        return
    for msg in dns1035_label(value):
        v.add(invalid(path, value, msg))


def _names(v: _V, names: dict[str, Any], path: str) -> None:
    _label(v, names.get("plural"), f"{path}.plural")
    if names.get("singular"):
        _label(v, names.get("singular"), f"{path}.singular")
    kind, list_kind = names.get("kind"), names.get("listKind")
    for key, value in (("kind", kind), ("listKind", list_kind)):
        if value in (None, ""):
            if key == "kind":
                v.add(required(f"{path}.kind"))
            continue
        if not isinstance(value, str) or dns1035_label(value.lower()):
            v.add(invalid(f"{path}.{key}", value, "may have mixed case, but should otherwise "
                          "match: " + (dns1035_label(str(value).lower()) or ["a string"])[0]))
    if kind and kind == list_kind:
        v.add(invalid(f"{path}.listKind", list_kind, "kind and listKind may not be the same"))
    for key in ("shortNames", "categories"):
        for ipath, item in v.items(names, key, f"{path}.{key}"):
            _label(v, item, ipath)


def _columns(v: _V, version: dict[str, Any], path: str) -> None:
    for cpath, col in v.objs(version, "additionalPrinterColumns", path):
        if not col.get("name"):
            v.add(required(f"{cpath}.name"))
        if not col.get("type"):
            v.add(required(f"{cpath}.type"))
        elif col["type"] not in COLUMN_TYPES:
            v.add(not_supported(f"{cpath}.type", col["type"], COLUMN_TYPES))
        if col.get("format") and col["format"] not in COLUMN_FORMATS:
            v.add(not_supported(f"{cpath}.format", col["format"], COLUMN_FORMATS))
        priority = col.get("priority")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                     or priority < 0):
            v.add(invalid(f"{cpath}.priority", priority, "must be a non-negative integer"))
        if not col.get("jsonPath"):
            v.add(required(f"{cpath}.jsonPath"))
        elif not isinstance(col["jsonPath"], str):
            v.add(invalid(f"{cpath}.jsonPath", col["jsonPath"], "must be a string"))


def _subresources(v: _V, subs: Any, path: str) -> None:
    if subs is None:
        return
    if not isinstance(subs, dict):
        v.add(invalid(path, subs, "must be an object"))
        return
    scale = subs.get("scale")
    if scale is None:
        return
    if not isinstance(scale, dict):
        v.add(invalid(f"{path}.scale", scale, "must be an object"))
        return
    for key, root in (("specReplicasPath", ".spec."), ("statusReplicasPath", ".status."),
                      ("labelSelectorPath", None)):
        value = scale.get(key)
        if value in (None, ""):
            if key != "labelSelectorPath":
                v.add(required(f"{path}.scale.{key}"))
            continue
        if not isinstance(value, str) or not value.startswith(root or "."):
            allowed = ".spec or .status" if root is None else root.rstrip(".")
            v.add(invalid(f"{path}.scale.{key}", value, f"should be a json path under {allowed}"))


def _versions(v: _V, versions: Any, path: str) -> None:
    if not isinstance(versions, list) or not versions:
        v.add(required(path, "must have exactly one version marked as storage version"))
        return
    seen: set[str] = set()
    storage = served = 0
    for i, ver in enumerate(versions):
        vpath = f"{path}[{i}]"
        if not isinstance(ver, dict):
            v.add(invalid(vpath, ver, "must be an object"))
            continue
        name = ver.get("name")
        _label(v, name, f"{vpath}.name")
        if isinstance(name, str) and name in seen:
            v.add(invalid(path, [x.get("name") for x in versions if isinstance(x, dict)],
                          "must contain unique version names"))
        seen.add(str(name))
        for flag in ("served", "storage"):
            if not isinstance(ver.get(flag), bool):
                v.add(required(f"{vpath}.{flag}") if ver.get(flag) is None
                      else invalid(f"{vpath}.{flag}", ver.get(flag), "must be a boolean"))
        storage += ver.get("storage") is True
        served += ver.get("served") is True
        schema = ver.get("schema")
        if not isinstance(schema, dict) or schema.get("openAPIV3Schema") is None:
            v.add(required(f"{vpath}.schema.openAPIV3Schema", "schemas are required"))
        else:
            for err in structural.structural_errors(schema["openAPIV3Schema"],
                                                    f"{vpath}.schema.openAPIV3Schema"):
                v.add(err)
        _columns(v, ver, f"{vpath}.additionalPrinterColumns")
        _subresources(v, ver.get("subresources"), f"{vpath}.subresources")
    if storage != 1:
        v.add(invalid(path, [x.get("name") for x in versions if isinstance(x, dict)],
                      "must have exactly one version marked as storage version"))
    if not served:
        v.add(invalid(path, [x.get("name") for x in versions if isinstance(x, dict)],
                      "must have at least one version marked as served"))


def validate_crd(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    group = spec.get("group")
    if not isinstance(group, str) or not group:
        v.add(required("spec.group"))
        group = ""
    else:
        for msg in dns1123_subdomain(group):
            v.add(invalid("spec.group", group, msg))
        if "." not in group:
            v.add(invalid("spec.group", group, "should be a domain with at least one dot"))
    names = v.obj(spec, "names", "spec.names")
    _names(v, names, "spec.names")
    plural = str_at(names, "plural")
    name = meta_of(obj).get("name") if isinstance(obj.get("metadata"),
                                                                  dict) else None
    if isinstance(name, str) and name and name != f"{plural}.{group}":
        v.add(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    scope = spec.get("scope")
    if scope in (None, ""):
        v.add(required("spec.scope"))
    elif scope not in SCOPES:
        v.add(not_supported("spec.scope", scope, SCOPES))
    _versions(v, spec.get("versions"), "spec.versions")
    conversion = v.obj(spec, "conversion", "spec.conversion")
    strategy = conversion.get("strategy")
    if strategy not in (None, "") and strategy not in CONVERSION_STRATEGIES:
        v.add(not_supported("spec.conversion.strategy", strategy, CONVERSION_STRATEGIES))
    elif strategy == "Webhook":
        v.add(invalid("spec.conversion.strategy", strategy,
                      "conversion webhooks are not supported by netlab; use None"))


def validate_crd_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    for key in ("group", "scope"):
        nv, ov = spec_of(new).get(key), spec_of(old).get(key)
        if nv != ov:
            v.add(invalid(f"spec.{key}", nv, "field is immutable"))


def default_crd(obj: dict[str, Any]) -> None:
    """SetDefaults for a v1 CRD: singular and listKind from kind, conversion None."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str) and names["kind"]:
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
