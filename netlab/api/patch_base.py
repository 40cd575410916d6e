"""What every patch type shares: the Content-Types, ``PatchError`` and JSON equality.

``netlab.api.patch`` (merge and JSON patch, and the dispatch on Content-Type)
and ``netlab.api.strategic_merge`` both build on this; ``patch`` re-exports
every name here, which is where callers import them from. Pure: stdlib only.
"""

from __future__ import annotations

from typing import Any

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)


class PatchError(ValueError):
    """A patch that cannot be applied. ``code`` is the HTTP status to answer with:
    400 for a malformed patch, 422 for a well-formed one that does not apply."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


class UnsupportedPatchType(PatchError):
    """A Content-Type that is not one of the three patch types (HTTP 415)."""

    def __init__(self, content_type: str) -> None:
        # The apiserver's negotiation.NewUnsupportedMediaTypeError wording.
        super().__init__("the body of the request was in an unknown format - accepted media "
                         "types include: " + ", ".join(PATCH_TYPES), code=415)
        self.content_type = content_type


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: 1 == 1.0, but true != 1 and "1" != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b
