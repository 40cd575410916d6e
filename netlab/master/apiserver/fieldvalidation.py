"""``?fieldValidation=Strict|Warn|Ignore``: unknown and duplicate fields in request bodies.

Kubernetes decodes bodies into typed structs, so a field the kind does not
have (``spec.contianers``) cannot be stored; what happens to it is the
``fieldValidation`` parameter's choice. ``Strict`` (what kubectl sends) answers
400 ``Pod in version "v1" cannot be handled as a Pod: strict decoding error:
unknown field "spec.contianers"``; ``Warn`` (the default) stores the object
without the field and returns ``Warning`` headers, which kubectl prints;
``Ignore`` drops the field silently.

The schemas and the checks are :mod:`netlab.api.openapi`'s (the documents
kubectl reads say the server validates fields, so kubectl leaves it to us).
Kinds without a schema, and a missing openapi module, skip the check.
"""

from __future__ import annotations

import json
from typing import Any

from netlab.api import customresources, errors, resources
from netlab.api.resources import Resource
from netlab.master.apiserver import protobuf
from netlab.master.apiserver.request import JSON, YAML, check_json_value, decode_body

MODES = ("Ignore", "Warn", "Strict")


def _openapi() -> Any:
    try:
        from netlab.api import openapi
    except ImportError:
        return None
    return openapi


def mode(query: Any) -> str:
    value = query.get("fieldValidation") or "Warn"
    if value not in MODES:
        raise errors.bad_request(f'fieldValidation: Unsupported value: "{value}": supported '
                                 f'values: "Ignore", "Warn", "Strict"')
    return value


def _outcome(problems: list[str], how: str, message: str) -> list[str]:
    """Warnings to return; raises 400 in Strict mode."""
    if not problems or how == "Ignore":
        return []
    if how == "Strict":
        raise errors.bad_request(message)
    return problems


def _custom(kind: str, api_version: str) -> Resource | None:
    res = resources.by_api_version_kind(api_version, kind)
    return res if res is not None and res.custom is not None else None


def _prune_custom(res: Resource, api_version: str, obj: dict, how: str,
                  kind: str | None) -> tuple[dict, list[str]]:
    """A custom object's fields its schema does not declare: pruned, and reported
    per ``fieldValidation`` as apiextensions reports them."""
    version = api_version.rpartition("/")[2]
    pruned, dropped = customresources.unknown_fields(res, version, obj)
    problems = [f'unknown field "{p}"' for p in dropped]
    text = "strict decoding error: " + ", ".join(problems)
    if kind is not None:
        text = f'{kind} in version "{version}" cannot be handled as a {kind}: {text}'
    warnings = _outcome(problems, how, text)
    return (pruned if problems else obj), warnings


def decode(raw: bytes, ctype: str, kind: str, api_version: str,
           how: str) -> tuple[dict, list[str]]:
    """A create/update body, checked and cleaned; returns (object, warnings)."""
    custom = _custom(kind, api_version)
    if custom is not None:
        obj = decode_body(raw, ctype, strict=how == "Strict")
        check_json_value(obj)
        return _prune_custom(custom, api_version, obj, how, kind)
    if ctype == protobuf.CONTENT_TYPE and protobuf.decodable(kind):
        # Protobuf has no unknown or duplicate fields to report (unknown field numbers
        # are skipped), with or without a schema (the access reviews have none).
        return protobuf.decode(raw, kind, api_version), []
    openapi = _openapi()
    schema_known = openapi is not None and openapi.known_fields(kind, api_version) is not None
    if not schema_known:
        return decode_body(raw, ctype, strict=how == "Strict"), []
    if ctype in ("", "*/*", JSON):
        try:
            obj, problems = openapi.strict_decode(raw, kind, api_version)
        except (ValueError, RecursionError) as err:
            raise errors.bad_request(
                f"couldn't get version/kind; json parse error: {err}") from None
        if not isinstance(obj, dict):
            raise errors.bad_request("couldn't get version/kind; json parse error: the body "
                                     "must be a JSON object")
        check_json_value(obj)
    elif ctype in (YAML, "application/yml", "text/yaml"):
        value = decode_body(raw, ctype)
        problems = [f'unknown field "{p}"' for p in openapi.unknown_fields(kind, value,
                                                                           api_version)]
        obj = openapi.prune_unknown_fields(kind, value, api_version) if problems else value
    else:
        return decode_body(raw, ctype), []  # raises 415
    warnings = _outcome(problems, how,
                        openapi.strict_error_message(problems, kind, api_version)
                        if problems else "")
    return obj, warnings


def check_patched(raw: bytes, patch_type: str, patched: dict, kind: str, api_version: str,
                  how: str) -> tuple[dict, list[str]]:
    """A patched object, checked as Kubernetes checks patches; returns (object, warnings)."""
    custom = _custom(kind, api_version)
    if custom is not None:
        return _prune_custom(custom, api_version, patched, how, None)
    openapi = _openapi()
    if how == "Ignore" or openapi is None or openapi.known_fields(kind, api_version) is None:
        if openapi is not None and openapi.known_fields(kind, api_version) is not None:
            return openapi.prune_unknown_fields(kind, patched, api_version), []
        return patched, []
    media = patch_type.split(";", 1)[0].strip().lower()
    if media == "application/json-patch+json":
        unknown = sorted(openapi.unknown_fields(kind, patched, api_version))
        problems = [f'unknown field "{p}"' for p in unknown]
    else:
        try:
            problems = openapi.patch_problems(raw, patched, kind, api_version)
        except (ValueError, RecursionError):
            problems = []  # the patch itself was parsed already; be lenient here
    warnings = _outcome(problems, how, openapi.strict_error_message(problems)
                        if problems else "")
    if problems:
        patched = openapi.prune_unknown_fields(kind, patched, api_version)
    return patched, warnings


def warning_headers(warnings: list[str]) -> list[tuple[str, str]]:
    """RFC 7234 ``Warning`` headers as Kubernetes sends them (code 299, agent ``-``)."""
    return [("Warning", f"299 - {json.dumps(w)}") for w in warnings]

