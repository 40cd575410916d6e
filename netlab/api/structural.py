"""Structural OpenAPI schemas of CustomResourceDefinitions, and what the API server does
with them to custom objects: validate, prune unknown fields, apply defaults.

* :func:`structural_errors` is apiextensions' structural-schema check (a CRD whose
  schema is not structural is refused with 422): every node has a ``type`` unless
  ``x-kubernetes-int-or-string`` or ``x-kubernetes-preserve-unknown-fields`` says
  otherwise, arrays have ``items``, ``properties`` and ``additionalProperties`` are
  mutually exclusive, the root is an object, and the JSON-Schema keywords Kubernetes
  forbids (``$ref``, ``patternProperties``...) are absent;
* :func:`validate_value` checks a custom object against its schema with kube-openapi's
  messages as the API server converts them to field errors, e.g.
  ``spec.replicas: Invalid value: "string": spec.replicas in body must be of type
  integer: "string"``;
* :func:`prune` drops the fields the schema does not declare (returning their paths,
  for ``fieldValidation`` warnings) and :func:`apply_defaults` fills ``default`` values,
  as apiextensions does on create, update and read.

Pure: no I/O. Schemas are the plain JSON of ``openAPIV3Schema``.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import re
import uuid
from typing import TYPE_CHECKING, Any, Optional

from netlab.api.errors import FieldError, forbidden_field, invalid, not_supported, required
from netlab.api.objects import deep_copy
from netlab.api.views import dict_at

if TYPE_CHECKING:
    from typing import TypeGuard  # Python 3.10; only the type checker needs it

Errs = list[FieldError]

TYPES = ("array", "boolean", "integer", "number", "object", "string")
PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
EMBEDDED = "x-kubernetes-embedded-resource"
# JSON-Schema keywords apiextensions refuses outright.
_FORBIDDEN = ("$ref", "$schema", "id", "definitions", "dependencies", "additionalItems",
              "patternProperties")
_KNOWN = frozenset((
    "type", "format", "title", "description", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
    "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties",
    "required", "items", "allOf", "oneOf", "anyOf", "not", "properties",
    "additionalProperties", "nullable", "example", "externalDocs", PRESERVE, INT_OR_STRING,
    EMBEDDED, "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
    "x-kubernetes-validations", *_FORBIDDEN))
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


# --- the structural check (CRD validation) -----------------------------------------------------


def structural_errors(schema: Any, path: str) -> Errs:
    """Why ``schema`` (an ``openAPIV3Schema``) is not a structural schema; empty if it is."""
    errs: Errs = []
    if not isinstance(schema, dict):
        return [invalid(path, schema, "must be an object")]
    _check_node(schema, path, errs, level="root")
    if schema.get("type") not in (None, "", "object"):
        errs.append(invalid(f"{path}.type", schema.get("type"), "must be object at the root"))
    if "additionalProperties" in schema:
        errs.append(forbidden_field(f"{path}.additionalProperties", "must not be used at the root"))
    props = schema.get("properties")
    if isinstance(props, dict) and isinstance(props.get("metadata"), dict):
        extra = set(props["metadata"]) - {"type", "properties", "description"}
        mprops = props["metadata"].get("properties")
        if extra or (isinstance(mprops, dict) and set(mprops) - {"name", "generateName"}):
            errs.append(forbidden_field(f"{path}.properties[metadata]",
                                        "must not specify anything other than name and "
                                        "generateName, but metadata is implicitly specified"))
    return errs


_EMPTY_TYPE = {"root": "must not be empty at the root",
               "item": "must not be empty for specified array items",
               "field": "must not be empty for specified object fields"}
# Under allOf/anyOf/oneOf/not only value validations may appear (structural rule).
_JUNCTOR_FORBIDDEN = (("type", "must be empty to be structural"),
                      ("additionalProperties", "must be undefined to be structural"),
                      ("default", "must be undefined to be structural"),
                      ("title", "must be empty to be structural"),
                      ("description", "must be empty to be structural"),
                      ("nullable", "must be false to be structural"),
                      (PRESERVE, "must be false to be structural"),
                      (EMBEDDED, "must be false to be structural"),
                      (INT_OR_STRING, "must be false to be structural"),
                      ("x-kubernetes-list-map-keys", "must be empty to be structural"),
                      ("x-kubernetes-list-type", "must be undefined to be structural"))
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def _check_junctor(node: Any, path: str, errs: Errs, int_or_string_pattern: bool) -> None:
    if not isinstance(node, dict):
        errs.append(invalid(path, node, "must be an object"))
        return
    pattern = node.get("pattern")
    if pattern is not None and (not isinstance(pattern, str) or _compile(pattern) is None):
        errs.append(invalid(f"{path}.pattern", pattern, "must be a valid regular expression"))
    if not int_or_string_pattern:
        for key, detail in _JUNCTOR_FORBIDDEN:
            if node.get(key) not in (None, False, "", []):
                errs.append(forbidden_field(f"{path}.{key}", detail))
    props = node.get("properties")
    if isinstance(props, dict):
        if "metadata" in props:
            errs.append(forbidden_field(f"{path}.properties[metadata]",
                                        "must not be specified in a nested context"))
        for name, sub in props.items():
            _check_junctor(sub, f"{path}.properties[{name}]", errs, False)
    if node.get("items") is not None:
        _check_junctor(node["items"], f"{path}.items", errs, False)
    _check_junctors(node, path, errs)


def _check_junctors(node: dict[str, Any], path: str, errs: Errs) -> None:
    for junctor in ("allOf", "anyOf", "oneOf"):
        value = node.get(junctor)
        if value is None:
            continue
        if not isinstance(value, list):
            errs.append(invalid(f"{path}.{junctor}", value, "must be a list"))
            continue
        for i, sub in enumerate(value):
            # x-kubernetes-int-or-string is spelled anyOf: [{type: integer}, {type: string}].
            pattern = value == _INT_OR_STRING_ANY_OF or (
                junctor == "allOf" and i == 0 and isinstance(sub, dict) and
                sub.get("anyOf") == _INT_OR_STRING_ANY_OF)
            if junctor == "allOf" and pattern:
                continue  # allOf: [{anyOf: [integer, string]}, ...]: the int-or-string form
            _check_junctor(sub, f"{path}.{junctor}[{i}]", errs, pattern)
    if "not" in node:
        _check_junctor(node["not"], f"{path}.not", errs, False)


def _check_node(node: Any, path: str, errs: Errs, level: str = "field") -> None:
    if not isinstance(node, dict):
        errs.append(invalid(path, node, "must be an object"))
        return
    for key in node:
        if key in _FORBIDDEN:
            errs.append(forbidden_field(f"{path}.{key}", f"{key} is not supported"))
        elif key not in _KNOWN:
            errs.append(forbidden_field(f"{path}.{key}", f"unknown field {key!r}"))
    kind = node.get("type")
    int_or_string = node.get(INT_OR_STRING)
    preserve = node.get(PRESERVE)
    if preserve is not None and preserve is not True:
        errs.append(invalid(f"{path}.{PRESERVE}", preserve, "must be true or undefined"))
    if int_or_string is not None and int_or_string is not True:
        errs.append(invalid(f"{path}.{INT_OR_STRING}", int_or_string,
                            "must be true or undefined"))
    if kind is not None and kind not in TYPES:
        errs.append(not_supported(f"{path}.type", kind, TYPES))
    if int_or_string is True:
        if kind not in (None, ""):
            errs.append(invalid(f"{path}.type", kind,
                                "must be empty if x-kubernetes-int-or-string is true"))
        if preserve is True:
            errs.append(invalid(f"{path}.{PRESERVE}", True,
                                "must be false if x-kubernetes-int-or-string is true"))
    elif kind in (None, "") and not preserve:
        errs.append(required(f"{path}.type", _EMPTY_TYPE[level]))
    if node.get("uniqueItems") is True:
        errs.append(forbidden_field(f"{path}.uniqueItems", "uniqueItems cannot be set to true "
                                    "since the runtime complexity becomes quadratic"))
    props = node.get("properties")
    additional = node.get("additionalProperties")
    if props and additional is not None and additional is not True:
        errs.append(forbidden_field(f"{path}.additionalProperties",
                                    "additionalProperties and properties are mutual exclusive"))
    if props is not None:
        if not isinstance(props, dict):
            errs.append(invalid(f"{path}.properties", props, "must be an object"))
        else:
            for name, sub in props.items():
                _check_node(sub, f"{path}.properties[{name}]", errs)
    if isinstance(additional, dict):
        _check_node(additional, f"{path}.additionalProperties", errs)
    items = node.get("items")
    if kind == "array" and items is None:
        errs.append(required(f"{path}.items", "must be specified"))
    if items is not None:
        if isinstance(items, list):
            errs.append(forbidden_field(f"{path}.items", "items must be a schema object and "
                                        "not an array"))
        else:
            _check_node(items, f"{path}.items", errs, level="item")
    _check_junctors(node, path, errs)
    for key in ("required", "enum"):
        if key in node and not isinstance(node[key], list):
            errs.append(invalid(f"{path}.{key}", node[key], "must be a list"))
    for key in ("minLength", "maxLength", "minItems", "maxItems", "minProperties",
                "maxProperties"):
        value = node.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            errs.append(invalid(f"{path}.{key}", value, "must be a non-negative integer"))
    for key in ("minimum", "maximum", "multipleOf"):
        value = node.get(key)
        if value is not None and (isinstance(value, bool) or
                                  not isinstance(value, (int, float))):
            errs.append(invalid(f"{path}.{key}", value, "must be a number"))
    pattern = node.get("pattern")
    if pattern is not None and (not isinstance(pattern, str) or _compile(pattern) is None):
        errs.append(invalid(f"{path}.pattern", pattern, "must be a valid regular expression"))
    if "default" in node and level != "root":
        problems = validate_value(node, deep_copy(node["default"]), f"{path}.default")
        errs.extend(problems)


_PATTERNS: dict[str, Optional[re.Pattern[str]]] = {}


def _compile(pattern: str) -> Optional[re.Pattern[str]]:
    if pattern not in _PATTERNS:
        try:
            _PATTERNS[pattern] = re.compile(pattern)
        except (re.error, RecursionError, OverflowError):
            _PATTERNS[pattern] = None
        if len(_PATTERNS) > 4096:
            _PATTERNS.clear()
    return _PATTERNS.get(pattern)


# --- validation of custom objects -------------------------------------------------------------


def type_name(value: Any) -> str:
    """The JSON type of a decoded value, as kube-openapi names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(path: str, value: Any, want: str) -> FieldError:
    actual = type_name(value)
    return invalid(path, actual, f"{path} in body must be of type {want}: \"{actual}\"")


def _ok_type(want: str, value: Any) -> bool:
    actual = type_name(value)
    return actual == want or (want == "number" and actual == "integer")


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)



def _format_ok(fmt: str, value: Any) -> bool:
    if fmt in ("int32", "int64"):
        bits = 31 if fmt == "int32" else 63
        return not isinstance(value, int) or -(1 << bits) <= value < (1 << bits)
    if not isinstance(value, str):
        return True
    try:
        if fmt == "date-time":
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif fmt == "date":
            datetime.date.fromisoformat(value)
        elif fmt == "uuid":
            uuid.UUID(value)
        elif fmt == "ipv4":
            ipaddress.IPv4Address(value)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(value)
        elif fmt == "cidr":
            ipaddress.ip_network(value, strict=False)
        elif fmt == "byte":
            base64.b64decode(value, validate=True)
        elif fmt == "hostname":
            return bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*"
                                     r"[a-z0-9])?)*", value)) and len(value) <= 253
        elif fmt == "email":
            return bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value))
    except (ValueError, TypeError):
        return False
    return True


def validate_value(schema: Any, value: Any, path: str) -> Errs:
    """Every way ``value`` at ``path`` breaks ``schema``; empty when it conforms."""
    errs: Errs = []
    _validate(schema, value, path, errs)
    return errs


def _validate(schema: Any, value: Any, path: str, errs: Errs) -> None:
    if not isinstance(schema, dict):
        return
    if value is None:
        if not schema.get("nullable") and (schema.get("type") or schema.get(INT_OR_STRING)):
            want = "integer,string" if schema.get(INT_OR_STRING) else schema.get("type")
            errs.append(_type_error(path, value, str(want)))
        return
    if schema.get(INT_OR_STRING) and type_name(value) not in ("integer", "string"):
        errs.append(_type_error(path, value, "integer,string"))
        return
    want = schema.get("type")
    if want in TYPES and not _ok_type(want, value):
        errs.append(_type_error(path, value, want))
        return
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        errs.append(not_supported(path, value, [_enum_text(e) for e in enum]))
    if isinstance(value, str):
        _validate_string(schema, value, path, errs)
    elif _number(value):
        _validate_number(schema, value, path, errs)
    elif isinstance(value, list):
        _validate_array(schema, value, path, errs)
    elif isinstance(value, dict):
        _validate_object(schema, value, path, errs)
    fmt = schema.get("format")
    if isinstance(fmt, str) and not _format_ok(fmt, value):
        errs.append(invalid(path, value, f"{path} in body must be of type {fmt}: "
                            f"\"{value}\""))
    for key in ("allOf", "anyOf", "oneOf"):
        subs = schema.get(key)
        if not isinstance(subs, list):
            continue
        results = [validate_value(s, value, path) for s in subs]
        if key == "allOf":
            for r in results:
                errs.extend(r)
        elif key == "anyOf" and results and all(results):
            errs.extend(results[0])
        elif key == "oneOf" and sum(1 for r in results if not r) != 1 and results:
            errs.append(invalid(path, value, f"{path} in body must validate one and only one "
                                "schema (oneOf)"))
    if isinstance(schema.get("not"), dict) and not validate_value(schema["not"], value, path):
        errs.append(invalid(path, value, f"{path} in body must not validate the schema (not)"))


def _enum_text(value: Any) -> str:
    # As apiextensions lists allowed values: strings as they are, anything else as JSON.
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _validate_string(schema: dict[str, Any], value: str, path: str, errs: Errs) -> None:
    n = len(value)
    min_len, max_len = schema.get("minLength"), schema.get("maxLength")
    if isinstance(min_len, int) and n < min_len:
        errs.append(invalid(path, value, f"{path} in body should be at least {min_len} "
                            "chars long"))
    if isinstance(max_len, int) and n > max_len:
        errs.append(FieldError("TooLong", path, value,
                               f"may not be more than {max_len} bytes"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        compiled = _compile(pattern)
        if compiled is not None and compiled.search(value) is None:
            errs.append(invalid(path, value, f"{path} in body should match '{pattern}'"))


def _validate_number(schema: dict[str, Any], value: Any, path: str, errs: Errs) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if _number(low):
        if schema.get("exclusiveMinimum") is True and value <= low:
            errs.append(invalid(path, value, f"{path} in body should be greater than {low}"))
        elif value < low:
            errs.append(invalid(path, value, f"{path} in body should be greater than or "
                                f"equal to {low}"))
    if _number(high):
        if schema.get("exclusiveMaximum") is True and value >= high:
            errs.append(invalid(path, value, f"{path} in body should be less than {high}"))
        elif value > high:
            errs.append(invalid(path, value, f"{path} in body should be less than or "
                                f"equal to {high}"))
    multiple = schema.get("multipleOf")
    if _number(multiple) and multiple > 0:
        try:
            off = (value % multiple != 0) if isinstance(value, int) and isinstance(
                multiple, int) else (value / multiple) % 1 != 0
        except (OverflowError, ZeroDivisionError):
            off = True
        if off:
            errs.append(invalid(path, value, f"{path} in body should be a multiple of "
                                f"{multiple}"))


def _validate_array(schema: dict[str, Any], value: list[Any], path: str, errs: Errs) -> None:
    n = len(value)
    min_items, max_items = schema.get("minItems"), schema.get("maxItems")
    if isinstance(min_items, int) and n < min_items:
        errs.append(invalid(path, n, f"{path} in body should have at least {min_items} items"))
    if isinstance(max_items, int) and n > max_items:
        errs.append(FieldError("TooMany", path, n, f"must have at most {max_items} items"))
    if schema.get("uniqueItems") is True or schema.get("x-kubernetes-list-type") == "set":
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                errs.append(FieldError("Duplicate", f"{path}[{i}]", item))
            else:
                seen.append(item)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(items, item, f"{path}[{i}]", errs)


def _validate_object(schema: dict[str, Any], value: dict[str, Any], path: str, errs: Errs) -> None:
    for name in schema.get("required") or []:
        if isinstance(name, str) and name not in value:
            errs.append(required(_child(path, name)))
    low, high = schema.get("minProperties"), schema.get("maxProperties")
    if isinstance(low, int) and len(value) < low:
        errs.append(invalid(path, len(value), f"{path} in body should have at least {low} "
                            "properties"))
    if isinstance(high, int) and len(value) > high:
        errs.append(FieldError("TooMany", path, len(value), f"must have at most {high} items"))
    props = dict_at(schema, "properties")
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        sub = props.get(key)
        if sub is not None:
            _validate(sub, item, _child(path, key), errs)
        elif isinstance(additional, dict):
            _validate(additional, item, f"{path}[{key}]" if path else key, errs)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate_object(schema: Any, obj: dict[str, Any]) -> Errs:
    """A custom object against its version's schema. ``apiVersion``, ``kind`` and
    ``metadata`` are the API server's own (checked elsewhere), so not re-checked here."""
    if not isinstance(schema, dict):
        return []
    body = {k: v for k, v in obj.items() if k not in _ROOT_FIELDS}
    trimmed = dict(schema)
    if isinstance(schema.get("properties"), dict):
        trimmed["properties"] = {k: v for k, v in schema["properties"].items()
                                 if k not in _ROOT_FIELDS}
    trimmed["required"] = [r for r in schema.get("required") or [] if r not in _ROOT_FIELDS]
    errs: Errs = []
    _validate(trimmed, body, "", errs)
    return errs


# --- pruning -------------------------------------------------------------------------------------


def prune(schema: Any, obj: dict[str, Any]) -> list[str]:
    """Drop the fields of a custom object its schema does not declare, in place.

    Returns the dropped fields' paths (``spec.foo``), as ``fieldValidation`` reports
    them. ``apiVersion``, ``kind`` and ``metadata`` at the root are always kept.
    """
    if not isinstance(schema, dict):
        return []
    dropped: list[str] = []
    _prune(schema, obj, "", dropped, root=True)
    return dropped


def _prune(schema: dict[str, Any], value: Any, path: str, dropped: list[str],
           root: bool = False) -> None:
    if isinstance(value, dict):
        if schema.get(EMBEDDED):
            return
        props = dict_at(schema, "properties")
        additional = schema.get("additionalProperties")
        preserve = schema.get(PRESERVE) is True
        for key in list(value):
            if root and key in _ROOT_FIELDS:
                continue
            sub = props.get(key)
            if isinstance(sub, dict):
                _prune(sub, value[key], _child(path, key), dropped)
            elif isinstance(additional, dict):
                _prune(additional, value[key], _child(path, key), dropped)
            elif not preserve and additional is not True:
                dropped.append(_child(path, key))
                del value[key]
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(items, item, f"{path}[{i}]", dropped)


# --- defaulting ----------------------------------------------------------------------------------


def has_defaults(schema: Any) -> bool:
    """Whether any node of ``schema`` declares a default (reads then need defaulting)."""
    if not isinstance(schema, dict):
        return False
    if "default" in schema:
        return True
    props = schema.get("properties")
    if isinstance(props, dict) and any(has_defaults(s) for s in props.values()):
        return True
    return has_defaults(schema.get("items")) or has_defaults(schema.get("additionalProperties"))


def apply_defaults(schema: Any, value: Any) -> None:
    """Fill in ``default`` values in place, as apiextensions' structural defaulting does:
    a missing field, or a null one that may not be null, gets its default."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props = dict_at(schema, "properties")
        for key, sub in props.items():
            if not isinstance(sub, dict):
                continue
            if "default" in sub and (key not in value or (
                    value[key] is None and not sub.get("nullable"))):
                value[key] = deep_copy(sub["default"])
            if key in value:
                apply_defaults(sub, value[key])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in value:
                if key not in props:
                    apply_defaults(additional, value[key])
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                apply_defaults(items, item)
