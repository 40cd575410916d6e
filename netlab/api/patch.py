"""The PATCH bodies kubectl sends, applied to stored objects the way the apiserver applies them.

``kubectl patch``, ``kubectl apply``, ``kubectl label``, ``kubectl scale`` and controllers all
PATCH, each with one of three content types:

* ``application/merge-patch+json``: RFC 7386 JSON merge patch (:func:`apply_merge_patch`);
* ``application/json-patch+json``: RFC 6902 JSON patch (:func:`apply_json_patch`);
* ``application/strategic-merge-patch+json``: Kubernetes' strategic merge patch, which merges
  lists such as containers by a key (:mod:`netlab.api.strategic_merge`).

:func:`apply_patch` is what the apiserver calls: it picks the patch type from the Content-Type
header and raises :class:`UnsupportedPatchType` (HTTP 415) for anything else, such as the
``application/apply-patch+yaml`` of server-side apply, which netlab does not implement.

Every error is a :class:`PatchError` whose ``code`` is the HTTP status the apiserver should
answer with. Pure: no I/O, stdlib only. Inputs are never modified.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Optional

from netlab.api.patch_base import (
    JSON_PATCH,
    MERGE_PATCH,
    PATCH_TYPES,
    STRATEGIC_MERGE_PATCH,
    PatchError,
    UnsupportedPatchType,
    json_equal,
)
from netlab.api.strategic_merge import apply_strategic_merge_patch as _apply_smp

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "PATCH_TYPES",
    "STRATEGIC_MERGE_PATCH",
    "PatchError",
    "UnsupportedPatchType",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_patch",
    "apply_strategic_merge_patch",
    "json_equal",
]


# ---------------------------------------------------------------------------------------------
# RFC 7386 JSON merge patch.

def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes a member, anything else replaces.

    Lists are replaced whole. A non-object patch replaces the whole target.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------------------------------------
# RFC 6902 JSON patch.

def _parse_pointer(pointer: Any, what: str) -> list[str]:
    """RFC 6901 pointer to reference tokens; "" is the whole document."""
    if not isinstance(pointer, str):
        raise PatchError(f'invalid JSON patch: "{what}" must be a string', code=400)
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{pointer}": must be empty or start with "/"',
                         code=400)
    tokens = []
    for raw in pointer[1:].split("/"):
        rest = raw.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise PatchError(f'invalid JSON pointer "{pointer}": "~" must be followed by 0 or 1',
                             code=400)
        # ~1 first, then ~0, so that "~01" means "~1" and not "/" (RFC 6901 section 4).
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _array_index(token: str, size: int, pointer: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return size
    # RFC 6901: "0" or digits without a leading zero.
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f'invalid array index "{token}" in "{pointer}"')
    index = int(token)
    if index > size or (index == size and not allow_end):
        raise PatchError(f'array index {index} out of bounds in "{pointer}"')
    return index


def _resolve(doc: Any, tokens: list[str], pointer: str, op: str) -> Any:
    for token in tokens:
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_array_index(token, len(doc), pointer, allow_end=False)]
        else:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{pointer}"')
    return doc


def _add(doc: Any, tokens: list[str], value: Any, pointer: str, op: str = "add") -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), pointer, allow_end=True), value)
    else:
        raise PatchError(f'{op} operation does not apply: doc is missing path: "{pointer}"')
    return doc


def _remove(doc: Any, tokens: list[str], pointer: str, op: str = "remove") -> Any:
    """Detach and return the value at ``tokens``."""
    if not tokens:
        raise PatchError(f"{op} operation does not apply: cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1], pointer, op)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_array_index(last, len(parent), pointer, allow_end=False))
    raise PatchError(f'{op} operation does not apply: doc is missing path: "{pointer}"')


def _operation_member(op: dict[str, Any], name: str) -> Any:
    if name not in op:
        raise PatchError(f'invalid JSON patch: operation "{op.get("op")}" is missing "{name}"',
                         code=400)
    return op[name]


_OPERATIONS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def apply_json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902: apply ``ops`` in order; all of them or none (the target is not modified).

    Raises PatchError with code 400 for a malformed patch document and 422 for an operation
    that does not apply (missing path, failed ``test``).
    """
    if not isinstance(ops, list):
        raise PatchError("invalid JSON patch: the body must be a JSON array of operations",
                         code=400)
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict):
            raise PatchError("invalid JSON patch: each operation must be a JSON object", code=400)
        name = op.get("op")
        if name not in _OPERATIONS:
            raise PatchError(f"invalid JSON patch: unexpected operation {json.dumps(name)}",
                             code=400)
        pointer = _operation_member(op, "path")
        path = _parse_pointer(pointer, "path")
        value = None
        if name in ("add", "replace", "test"):
            value = copy.deepcopy(_operation_member(op, "value"))
        if name == "add":
            doc = _add(doc, path, value, pointer)
        elif name == "remove":
            _remove(doc, path, pointer)
        elif name == "replace":
            if path:
                _remove(doc, path, pointer, "replace")
            doc = _add(doc, path, value, pointer, "replace")
        elif name in ("move", "copy"):
            source = _operation_member(op, "from")
            from_path = _parse_pointer(source, "from")
            if name == "move":
                if path[:len(from_path)] == from_path and len(path) > len(from_path):
                    raise PatchError(f'move operation does not apply: "{source}" is a proper '
                                     f'prefix of "{pointer}"')
                moved = _remove(doc, from_path, source, "move") if from_path else doc
            else:
                moved = copy.deepcopy(_resolve(doc, from_path, source, "copy"))
            doc = _add(doc, path, moved, pointer, name)
        elif not json_equal(_resolve(doc, path, pointer, "test"), value):  # "test"
            raise PatchError(f"testing value {pointer} failed: test failed")
    return doc


# ---------------------------------------------------------------------------------------------
# Strategic merge patch and dispatch.

def apply_strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any],
                                schema: Any = None) -> dict[str, Any]:
    """Kubernetes strategic merge patch; see :mod:`netlab.api.strategic_merge`."""
    return _apply_smp(target, patch, schema)


def apply_patch(content_type: str, target: dict[str, Any], body_bytes: bytes,
                kind: Optional[str] = None) -> dict[str, Any]:
    """Apply a PATCH request body to ``target`` as the apiserver would.

    ``content_type`` is the request's Content-Type (parameters such as ``; charset=utf-8``
    are ignored); ``kind`` picks the strategic-merge schema. Returns the new object.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in PATCH_TYPES:
        raise UnsupportedPatchType(content_type)
    try:
        body = json.loads(body_bytes)
    except (ValueError, UnicodeDecodeError) as e:
        raise PatchError(f"invalid JSON in the patch body: {e}", code=400) from None
    if media_type == JSON_PATCH:
        result = apply_json_patch(target, body)
    elif not isinstance(body, dict):
        # Kubernetes answers "Invalid JSON Patch" / "invalid JSON document" here.
        raise PatchError("invalid patch: the body must be a JSON object", code=400)
    elif media_type == MERGE_PATCH:
        result = apply_merge_patch(target, body)
    else:
        result = apply_strategic_merge_patch(target, body, kind)
    if not isinstance(result, dict):
        raise PatchError("the patched object is not a JSON object")
    return result
