"""API errors as the Kubernetes API server reports them: ``Status`` objects.

Every failing request to the API server answers with a ``Status`` (kind
``Status``, apiVersion ``v1``) whose ``reason``, ``message``, ``details`` and
``code`` follow k8s.io/apimachinery/pkg/api/errors exactly, because kubectl
prints ``Error from server (<reason>): <message>`` and client libraries branch
on ``reason`` and ``code`` (409 AlreadyExists vs Conflict, 410 Expired, ...).

:class:`APIError` is the exception the API server's layers raise; the HTTP
layer turns it into a response with :meth:`APIError.status`. The constructors
below build the common ones with Kubernetes' wording. :class:`FieldError` is
one entry of a 422 Invalid (``field.Error`` in Go) and knows how Go prints it.

Pure: no I/O, stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

# The conflict detail every optimistic-concurrency failure carries.
OBJECT_MODIFIED = ("the object has been modified; please apply your changes to the "
                   "latest version and try again")


def status_object(code: int, reason: str, message: str,
                  details: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """A failure ``Status`` as the API server serializes it (empty parts omitted)."""
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "message": message}
    if reason:
        status["reason"] = reason
    if details:
        status["details"] = dict(details)
    status["code"] = code
    return status


def success_status(details: Optional[Mapping[str, Any]] = None, code: int = 0) -> dict[str, Any]:
    """A ``Status`` with ``status: Success`` (a delete that removed the object, a binding)."""
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success"}
    if details:
        status["details"] = dict(details)
    if code:
        status["code"] = code
    return status


class APIError(Exception):
    """An error the API server answers with a ``Status``; ``code`` is the HTTP status."""

    def __init__(self, code: int, reason: str, message: str,
                 details: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details) if details else None

    def status(self) -> dict[str, Any]:
        return status_object(self.code, self.reason, self.message, self.details)

    def __repr__(self) -> str:
        return f"APIError({self.code}, {self.reason!r}, {self.message!r})"


# --- qualified names --------------------------------------------------------------------------


def qualified_resource(resource: str, group: str = "") -> str:
    """``schema.GroupResource.String()``: ``pods``, ``deployments.apps``."""
    return f"{resource}.{group}" if group else resource


def qualified_kind(kind: str, group: str = "") -> str:
    """``schema.GroupKind.String()``: ``Pod``, ``Deployment.apps``."""
    return f"{kind}.{group}" if group else kind


def _details(name: str, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    details.update({k: v for k, v in extra.items() if v})
    return details


# --- constructors -----------------------------------------------------------------------------


def not_found(resource: str, name: str, group: str = "") -> APIError:
    return APIError(404, "NotFound",
                    f'{qualified_resource(resource, group)} "{name}" not found',
                    _details(name, group, resource))


def path_not_found() -> APIError:
    """Unknown path, group, version or resource."""
    return APIError(404, "NotFound", "the server could not find the requested resource",
                    {})


def already_exists(resource: str, name: str, group: str = "") -> APIError:
    return APIError(409, "AlreadyExists",
                    f'{qualified_resource(resource, group)} "{name}" already exists',
                    _details(name, group, resource))


def conflict(resource: str, name: str, detail: str = OBJECT_MODIFIED,
             group: str = "") -> APIError:
    return APIError(409, "Conflict",
                    f'Operation cannot be fulfilled on {qualified_resource(resource, group)} '
                    f'"{name}": {detail}',
                    _details(name, group, resource))


def forbidden(resource: str, name: str, detail: str, group: str = "",
              causes: Optional[list[dict[str, Any]]] = None) -> APIError:
    target = qualified_resource(resource, group)
    subject = f'{target} "{name}"' if name else target
    return APIError(403, "Forbidden", f"{subject} is forbidden: {detail}",
                    _details(name, group, resource, causes=causes))


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def expired(message: str) -> APIError:
    """410: a resourceVersion or continue token older than the compacted history."""
    return APIError(410, "Expired", message)


def too_old_resource_version(requested: int, oldest: int) -> APIError:
    return expired(f"too old resource version: {requested} ({oldest})")


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def request_entity_too_large(limit: int) -> APIError:
    return APIError(413, "RequestEntityTooLarge",
                    f"Request entity too large: limit is {limit}")


def unsupported_media_type(content_type: str, accepted: Iterable[str]) -> APIError:
    return APIError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media "
                    f"types include: {', '.join(accepted)}",
                    {})


def not_acceptable(accepted: Iterable[str]) -> APIError:
    return APIError(406, "NotAcceptable",
                    f"only the following media types are accepted: {', '.join(accepted)}")


def method_not_allowed(verb: str = "", resource: str = "", group: str = "") -> APIError:
    if verb and resource:
        message = (f"{verb} is not supported on resources of kind "
                   f'"{qualified_resource(resource, group)}"')
        return APIError(405, "MethodNotAllowed", message, _details("", group, resource))
    return APIError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource")


def internal_error(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}",
                    {"causes": [{"message": message}]})


def service_unavailable(message: str) -> APIError:
    return APIError(503, "ServiceUnavailable", message)


def timeout(message: str) -> APIError:
    return APIError(504, "Timeout", message)


# --- field errors and 422 Invalid -------------------------------------------------------------

# field.ErrorType: (Go's String(), the StatusCause reason)
_FIELD_TYPES = {
    "Required": ("Required value", "FieldValueRequired"),
    "NotFound": ("Not found", "FieldValueNotFound"),
    "Duplicate": ("Duplicate value", "FieldValueDuplicate"),
    "Invalid": ("Invalid value", "FieldValueInvalid"),
    "NotSupported": ("Unsupported value", "FieldValueNotSupported"),
    "Forbidden": ("Forbidden", "FieldValueForbidden"),
    "TooLong": ("Too long", "FieldValueTooLong"),
    "TooMany": ("Too many", "FieldValueTooMany"),
    "Internal": ("Internal error", "InternalError"),
}
_NO_VALUE = ("Required", "Forbidden", "TooLong", "Internal")
_OMIT = object()


def go_value(value: Any) -> str:
    """A bad value printed roughly as Go's ``%v``/``%q``/``%#v`` would print it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                          for k, v in value.items()):
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(value.items()))
        return "map[string]string{" + inner + "}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def supported_values(values: Iterable[str]) -> str:
    return "supported values: " + ", ".join(json.dumps(v) for v in values)


@dataclass(frozen=True)
class FieldError:
    """One validation failure (``field.Error``): ``type`` is a key of Go's ErrorType
    names (``Required``, ``Invalid``, ``Duplicate``, ``NotSupported``, ``Forbidden``...)."""

    type: str
    field: str
    value: Any = _OMIT
    detail: str = ""

    @property
    def reason(self) -> str:
        return _FIELD_TYPES[self.type][1]

    def body(self) -> str:
        """``ErrorBody()``: the message without the field path."""
        text = _FIELD_TYPES[self.type][0]
        if self.type not in _NO_VALUE and self.value is not _OMIT:
            text += ": " + go_value(self.value)
        if self.detail:
            text += ": " + self.detail
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.body(), "field": self.field}


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("Required", field, detail=detail)


def invalid(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("Invalid", field, value, detail)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("Duplicate", field, value)


def not_supported(field: str, value: Any, supported: Iterable[str]) -> FieldError:
    return FieldError("NotSupported", field, value, supported_values(supported))


def forbidden_field(field: str, detail: str) -> FieldError:
    return FieldError("Forbidden", field, detail=detail)


def field_not_found(field: str, value: Any) -> FieldError:
    return FieldError("NotFound", field, value)


def too_long(field: str, limit: int) -> FieldError:
    return FieldError("TooLong", field, detail=f"may not be more than {limit} bytes")


def aggregate(messages: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message alone, several in brackets,
    duplicates removed."""
    seen: list[str] = []
    for m in messages:
        if m not in seen:
            seen.append(m)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


def invalid_object(kind: str, name: str, errors: list[FieldError], group: str = "") -> APIError:
    """422 Invalid: ``Pod "x" is invalid: spec.containers[0].image: Required value``."""
    message = f'{qualified_kind(kind, group)} "{name}" is invalid: ' + aggregate(
        [str(e) for e in errors])
    details = _details(name, group, kind, causes=[e.cause() for e in errors])
    return APIError(422, "Invalid", message, details)
