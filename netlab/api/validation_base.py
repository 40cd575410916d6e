"""The building blocks of object validation: name formats, the error collector and
metadata rules, shared by every kind's validator in :mod:`netlab.api.validation`.

Messages and field paths follow k8s.io/apimachinery/pkg/util/validation and
pkg/api/validation, so kubectl users see the errors they know. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from netlab.api import selectors
from netlab.api.errors import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid,
    not_supported,
    required,
)

Errs = list[FieldError]

# --- name formats (k8s.io/apimachinery/pkg/util/validation) -----------------------------------

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + "(\\." + _LABEL_FMT + ")*"
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_LABEL_FMT)
_SUBDOMAIN_RE = re.compile(_SUBDOMAIN_FMT)
_DNS1035_RE = re.compile(_DNS1035_FMT)
_ENV_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_RE = re.compile(_ENV_FMT)
_PERCENT_RE = re.compile("[0-9]+%")
_QUANTITY_MSG = ("quantities must match the regular expression "
                 "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
# The CRD cleanup finalizer has no "/": apiextensions validates CRD metadata with the
# generic rules, which accept it.
STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion",
                       "customresourcecleanup.apiextensions.k8s.io")


def _regex_msg(what: str, fmt: str, *examples: str) -> str:
    ex = ",  or ".join(f"'{e}'" for e in examples)
    return f"{what} (e.g. {ex}, regex used for validation is '{fmt}')"


def _format(value: str, max_length: int, regex: re.Pattern[str], what: str, fmt: str,
            *examples: str) -> list[str]:
    """The errors of a name format: too long, and not matching ``regex``."""
    errs = []
    if len(value) > max_length:
        errs.append(f"must be no more than {max_length} characters")
    if not regex.fullmatch(value):
        errs.append(_regex_msg(what, fmt, *examples))
    return errs


def dns1123_label(value: str) -> list[str]:
    return _format(
        value, 63, _LABEL_RE,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
        "'-', and must start and end with an alphanumeric character",
        _LABEL_FMT, "my-name", "123-abc")


def dns1123_subdomain(value: str) -> list[str]:
    return _format(
        value, 253, _SUBDOMAIN_RE,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
        "characters, '-' or '.', and must start and end with an alphanumeric character",
        _SUBDOMAIN_FMT, "example.com")


def dns1035_label(value: str) -> list[str]:
    return _format(
        value, 63, _DNS1035_RE,
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
        "start with an alphabetic character, and end with an alphanumeric character",
        _DNS1035_FMT, "my-name", "abc-123")


def port_name(value: str) -> list[str]:
    """``IsValidPortName`` (IANA_SVC_NAME)."""
    errs = []
    if len(value) > 15:
        errs.append("must be no more than 15 characters")
    if not re.fullmatch("[-a-z0-9]+", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


# Which name format each kind's metadata.name must have.
NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "Namespace": dns1123_label,
    "Service": dns1035_label,
}


# --- small typed accessors --------------------------------------------------------------------


class _V:
    """Collects errors; the accessors report a wrong type once and return a safe value."""

    def __init__(self) -> None:
        self.errs: Errs = []

    def add(self, err: FieldError) -> None:
        self.errs.append(err)

    def obj(self, parent: Any, key: str, path: str) -> dict[str, Any]:
        value = parent.get(key) if isinstance(parent, dict) else None
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(invalid(path, value, "must be an object"))
            return {}
        return value

    def items(self, parent: Any, key: str, path: str) -> list[tuple[str, Any]]:
        """The items of an optional list field, each with its path (``path[i]``)."""
        value = parent.get(key) if isinstance(parent, dict) else None
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(invalid(path, value, "must be a list"))
            return []
        return [(f"{path}[{i}]", item) for i, item in enumerate(value)]

    def objs(self, parent: Any, key: str, path: str) -> list[tuple[str, dict[str, Any]]]:
        """The items of an optional list of objects; an item that is not one is reported."""
        out = []
        for ipath, item in self.items(parent, key, path):
            if isinstance(item, dict):
                out.append((ipath, item))
            else:
                self.add(invalid(ipath, item, "must be an object"))
        return out

    def string(self, parent: dict[str, Any], key: str, path: str) -> str:
        value = parent.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.add(invalid(path, value, "must be a string"))
            return ""
        return value

    def integer(self, parent: dict[str, Any], key: str, path: str) -> Optional[int]:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(invalid(path, value, "must be an integer"))
            return None
        return value

    def non_negative(self, parent: dict[str, Any], key: str, path: str) -> Optional[int]:
        value = self.integer(parent, key, path)
        if value is not None and value < 0:
            self.add(invalid(path, value, "must be greater than or equal to 0"))
        return value

    def one_of(self, parent: dict[str, Any], key: str, path: str, allowed: tuple[str, ...],
               required_: bool = False) -> str:
        value = self.string(parent, key, path)
        if not value:
            if required_ and parent.get(key) is None:
                self.add(required(path))
            elif parent.get(key) == "":
                self.add(not_supported(path, "", allowed))
            return value
        if value not in allowed:
            self.add(not_supported(path, value, allowed))
        return value

    def labels(self, value: Any, path: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.add(invalid(path, value, "must be an object"))
            return
        for k, v in value.items():
            for msg in selectors.is_qualified_name(k):
                self.add(invalid(path, k, msg))
            if not isinstance(v, str):
                self.add(invalid(f"{path}[{k}]", v, "must be a string"))
                continue
            for msg in selectors.is_valid_label_value(v):
                self.add(invalid(path, v, msg))

    def unique_name(self, parent: dict[str, Any], path: str, seen: set[str],
                    rule: Callable[[str], list[str]] = dns1123_label,
                    count_empty: bool = False) -> str:
        """The ``name`` of one item of a list whose names must differ (ports): checked with
        ``rule`` when set, reported as Duplicate when ``seen`` already holds it, then added
        to ``seen``. An empty name counts only with ``count_empty`` (EndpointSlice ports,
        where one unnamed port is a name like any other)."""
        name = self.string(parent, "name", path)
        if name:
            for msg in rule(name):
                self.add(invalid(path, name, msg))
        if name or count_empty:
            if name in seen:
                self.add(duplicate(path, name))
            seen.add(name)
        return name

    def port(self, parent: dict[str, Any], key: str, path: str, zero_is_missing: bool = True,
             ) -> Optional[int]:
        """A port number field: 1-65535. Kubernetes reports a missing (zero) container
        port as "Required value" but a zero service port as out of range."""
        value = self.integer(parent, key, path)
        if value is None:
            if key in parent:
                return None  # the type error is already reported
            value = 0
        if value == 0 and zero_is_missing:
            self.add(required(path))
        elif not 1 <= value <= 65535:
            self.add(invalid(path, value, PORT_RANGE_MSG))
        return value


# --- metadata ---------------------------------------------------------------------------------


def validate_meta(v: _V, kind: str, obj: dict[str, Any], namespaced: bool) -> None:
    meta = v.obj(obj, "metadata", "metadata")
    name = v.string(meta, "name", "metadata.name")
    if not name:
        v.add(required("metadata.name", "name or generateName is required"))
    else:
        for msg in NAME_RULES.get(kind, dns1123_subdomain)(name):
            v.add(invalid("metadata.name", name, msg))
    namespace = v.string(meta, "namespace", "metadata.namespace")
    if namespaced:
        if not namespace:
            v.add(required("metadata.namespace"))
        else:
            for msg in dns1123_label(namespace):
                v.add(invalid("metadata.namespace", namespace, msg))
    elif namespace:
        v.add(forbidden_field("metadata.namespace", "not allowed on this type"))
    v.labels(meta.get("labels"), "metadata.labels")
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            v.add(invalid("metadata.annotations", annotations, "must be an object"))
        else:
            total = 0
            for k, val in annotations.items():
                for msg in selectors.is_qualified_name(k.lower()):
                    v.add(invalid("metadata.annotations", k, msg))
                if not isinstance(val, str):
                    v.add(invalid(f"metadata.annotations[{k}]", val, "must be a string"))
                    continue
                total += len(k) + len(val)
            if total > 256 * 1024:
                v.add(FieldError("TooLong", "metadata.annotations", detail=(
                    f"may not be more than {256 * 1024} bytes")))
    controllers = 0
    for path, ref in v.objs(meta, "ownerReferences", "metadata.ownerReferences"):
        for key in ("apiVersion", "kind", "name", "uid"):
            if not v.string(ref, key, f"{path}.{key}"):
                v.add(required(f"{path}.{key}"))
        if ref.get("controller") is True:
            controllers += 1
    if controllers > 1:
        v.add(invalid("metadata.ownerReferences", meta.get("ownerReferences"),
                      "Only one reference can have Controller set to true"))
    for path, f in v.items(meta, "finalizers", "metadata.finalizers"):
        if not isinstance(f, str) or not f:
            v.add(invalid(path, f, "must be a non-empty string"))
        elif "/" not in f and f not in STANDARD_FINALIZERS:
            v.add(invalid(path, f, "name is neither a standard finalizer name nor "
                          "is it fully qualified"))
        else:
            for msg in selectors.is_qualified_name(f):
                v.add(invalid(path, f, msg))


# --- rules several kinds share ----------------------------------------------------------------


def _int_or_percent(v: _V, parent: dict[str, Any], key: str, path: str) -> Optional[float]:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        v.add(invalid(path, value, "must be an integer or percentage"))
        return None
    if isinstance(value, str):
        if not _PERCENT_RE.fullmatch(value):
            v.add(invalid(path, value, _regex_msg(
                "a valid percent string must be a numeric string followed by an ending '%'",
                "[0-9]+%", "1%", "93%")))
            return None
        return float(value[:-1])
    if value < 0:
        v.add(invalid(path, value, "must be greater than or equal to 0"))
    return float(value)


def _immutable(v: _V, new: dict[str, Any], old: dict[str, Any], *path: str) -> None:
    n: Any = new
    o: Any = old
    for p in path:
        n = n.get(p) if isinstance(n, dict) else None
        o = o.get(p) if isinstance(o, dict) else None
    if n != o:
        v.add(invalid(".".join(path), n, "field is immutable"))
