"""Server-side field validation (``?fieldValidation=Strict|Warn|Ignore``) for netlab's kinds.

kubectl 1.27+ does no client-side schema validation against a server whose OpenAPI v3
advertises ``fieldValidation`` (netlab's does; see :mod:`netlab.api.openapi`), and always
sends ``fieldValidation=Strict``: rejecting misspelled and repeated fields is the API
server's job, and it does it with these helpers, against the schemas of
:mod:`netlab.api.openapi_schemas`.

Behaviour and wording follow kube-apiserver (test/integration/apiserver/
field_validation_test.go): problems are reported in document order, each as
``unknown field "spec.containers[0].imagee"`` or ``duplicate field "spec.replicas"``; a field
both unknown and repeated is reported once, as unknown; the Go types keep the last of
repeated keys and cannot hold unknown fields, so the decoded object drops them. Free-form
schemas (``x-kubernetes-preserve-unknown-fields``, or an object with neither properties nor
additionalProperties) accept anything. Pure; stdlib only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, Optional, Union

from netlab.api import openapi_schemas as S
from netlab.api.resources import RESOURCES

__all__ = [
    "duplicate_fields",
    "known_fields",
    "patch_problems",
    "prune_unknown_fields",
    "strict_decode",
    "strict_error_message",
    "unknown_fields",
]

_REF = "#/components/schemas/"
# sigs.k8s.io/json keeps at most this many strict errors, each distinct message once.
_MAX_PROBLEMS = 100


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as decoded by :func:`strict_decode`: its (key, value) pairs in order,
    duplicates kept."""


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while True:
        if len(schema.get("allOf", ())) == 1:
            schema = schema["allOf"][0]
        elif isinstance(schema.get("$ref"), str):
            schema = S.SCHEMAS[schema["$ref"][len(_REF):]]
        else:
            return schema


def _free_form(schema: Mapping[str, Any]) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields")) or (
        "properties" not in schema and "additionalProperties" not in schema)


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_FREE: Mapping[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


class _Shape:
    """What ``_check`` needs of a schema, resolved once: its properties, its
    additionalProperties, whether it is free-form, and its items' schema."""

    __slots__ = ("extra", "free", "items", "props", "schema")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema  # held, so that its id is never reused while cached
        resolved = _resolve(schema)
        self.props: Optional[Mapping[str, Any]] = resolved.get("properties")
        self.extra = resolved.get("additionalProperties")
        self.free = _free_form(resolved)
        self.items: Mapping[str, Any] = resolved.get("items") or _FREE


# The schemas are the module's constants (``openapi_schemas``): resolving each once
# instead of at every node of every request halved the cost of a status patch's check.
_SHAPES: dict[int, _Shape] = {}


def _shape(schema: Mapping[str, Any]) -> _Shape:
    shape = _SHAPES.get(id(schema))
    if shape is None:
        shape = _SHAPES[id(schema)] = _Shape(schema)
    return shape


def _check(value: Any, schema: Mapping[str, Any], path: str, out: list[str],
           prune: bool) -> Any:
    """Walk ``value`` (dicts or :class:`_Pairs`) against ``schema``; append problems to
    ``out`` in document order; return the decoded value (last duplicate wins), without
    unknown fields when ``prune``."""
    if isinstance(value, (_Pairs, dict)):
        shape = _shape(schema)
        pairs = value if isinstance(value, _Pairs) else value.items()
        props, extra, free = shape.props, shape.extra, shape.free
        result: dict[str, Any] = {}
        seen: set[str] = set()
        unknown: set[str] = set()
        for key, item in pairs:
            sub_path = _child(path, key)
            if free:
                sub: Optional[Mapping[str, Any]] = _FREE
            elif props is not None and key in props:
                sub = props[key]
            elif isinstance(extra, dict):
                sub = extra
            else:
                sub = None
            if sub is None:
                # Go's decoder reports a field that is both unknown and repeated once,
                # as unknown (field_validation_test.go).
                if key not in unknown:
                    out.append(f'unknown field "{sub_path}"')
                    unknown.add(key)
                if not prune:
                    result[key] = _plain(item)
                continue
            if key in seen:
                out.append(f'duplicate field "{sub_path}"')
            seen.add(key)
            result[key] = _check(item, sub, sub_path, out, prune)
        return result
    if isinstance(value, list):
        items = _shape(schema).items
        return [_check(v, items, f"{path}[{i}]", out, prune) for i, v in enumerate(value)]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@functools.cache
def known_fields(kind: str, api_version: Optional[str] = None) -> Optional[dict[str, Any]]:
    """The component schema for ``kind`` (e.g. ``Pod``, ``Scale``, ``PodList``) in
    ``api_version`` (``v1``, ``apps/v1``, ``autoscaling/v2``; default: the kind's preferred
    version), or None when netlab defines no such kind. Remembered: the schemas are
    constants, and finding one scans them all (every create, update and patch asks)."""
    matches = []
    for name, schema in S.SCHEMAS.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            if gvk["kind"] == kind:
                api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
                if api_version in (None, api):
                    matches.append((name, gvk))
    if not matches:
        return None
    if api_version is None and len(matches) > 1:
        # Prefer the registry's preferred version (autoscaling/v2 for HPAs).
        for res in RESOURCES:
            for name, gvk in matches:
                if res.kind == kind and (gvk["group"], gvk["version"]) == \
                        (res.group, res.preferred_version):
                    return S.SCHEMAS[name]
    return S.SCHEMAS[matches[0][0]]


def _schema_or_raise(kind: str, api_version: Optional[str]) -> dict[str, Any]:
    schema = known_fields(kind, api_version)
    if schema is None:
        raise KeyError(f"no schema for kind {kind!r} in {api_version or 'any version'}")
    return schema


def unknown_fields(kind: str, obj: Any, api_version: Optional[str] = None) -> list[str]:
    """Dotted paths of the fields of ``obj`` its kind does not declare, in document order,
    e.g. ``["spec.containers[0].imagee"]``. ``api_version`` defaults to ``obj["apiVersion"]``.
    Raises :class:`KeyError` for a kind netlab has no schema for."""
    if api_version is None and isinstance(obj, Mapping):
        api_version = obj.get("apiVersion")
    problems: list[str] = []
    _check(obj, _schema_or_raise(kind, api_version), "", problems, prune=False)
    prefix = 'unknown field "'
    return [p[len(prefix):-1] for p in problems if p.startswith(prefix)]


def prune_unknown_fields(kind: str, obj: Any, api_version: Optional[str] = None) -> Any:
    """A copy of ``obj`` without the fields its kind does not declare: what Kubernetes
    stores for ``fieldValidation=Ignore`` or ``Warn``, since its Go types cannot hold them."""
    if api_version is None and isinstance(obj, Mapping):
        api_version = obj.get("apiVersion")
    return _check(obj, _schema_or_raise(kind, api_version), "", [], prune=True)


def duplicate_fields(raw: Union[bytes, str]) -> list[str]:
    """Dotted paths of the keys repeated within one JSON object of ``raw``, in document
    order, whatever the schema (what a merge patch body is checked for)."""
    problems: list[str] = []
    _check(_loads(raw), _FREE, "", problems, prune=False)
    return [p[len('duplicate field "'):-1] for p in problems]


def _loads(raw: Union[bytes, str]) -> Any:
    return json.loads(raw, object_pairs_hook=_Pairs)


def strict_decode(raw: Union[bytes, str], kind: str,
                  api_version: Optional[str] = None) -> tuple[Any, list[str]]:
    """Decode a create/update body and check it as Kubernetes' strict decoder does.

    Returns the object (last of duplicated keys wins, unknown fields removed, as the Go
    types would hold it) and the problems in document order, each ``unknown field "path"``
    or ``duplicate field "path"``, matching kube-apiserver's wording. The API server then:
    ``Strict`` and problems -> 400 BadRequest with :func:`strict_error_message`; ``Warn``
    (also the default when the parameter is absent) -> store, one ``Warning: 299 - "<problem>"``
    header per problem; ``Ignore`` -> store silently. Raises :class:`ValueError` for
    malformed JSON and :class:`KeyError` for a kind without a schema.
    """
    value = _loads(raw)
    if api_version is None and isinstance(value, _Pairs):
        api_version = next((v for k, v in reversed(value) if k == "apiVersion"), None)
    problems: list[str] = []
    obj = _check(value, _schema_or_raise(kind, api_version if isinstance(api_version, str)
                                          else None), "", problems, prune=True)
    return obj, _distinct(problems)


def patch_problems(patch_body: Union[bytes, str], patched: Any, kind: str,
                   api_version: Optional[str] = None) -> list[str]:
    """The strict-validation problems of a merge or strategic merge PATCH, in
    kube-apiserver's order: every key repeated in the patch body (document order), then the
    unknown fields of the patched object, sorted by path."""
    duplicates = [f'duplicate field "{p}"' for p in duplicate_fields(patch_body)]
    unknown = sorted(unknown_fields(kind, patched, api_version))
    return _distinct(duplicates + [f'unknown field "{p}"' for p in unknown])


def _distinct(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))[:_MAX_PROBLEMS]


def strict_error_message(problems: list[str], kind: Optional[str] = None,
                         api_version: Optional[str] = None) -> str:
    """The Status message for a request ``fieldValidation=Strict`` refuses.

    With ``kind`` (create and update): ``Pod in version "v1" cannot be handled as a Pod:
    strict decoding error: unknown field "spec.foo"``; without (patches): just
    ``strict decoding error: ...``. kubectl prints it after ``Error from server
    (BadRequest): error when creating "pod.yaml": ``.
    """
    text = "strict decoding error: " + ", ".join(problems)
    if kind is None:
        return text
    version = (api_version or "").rpartition("/")[2]
    return f'{kind} in version "{version}" cannot be handled as a {kind}: {text}'
