"""Label and field selectors, parsed, printed and matched the way the Kubernetes apiserver does.

Every list and watch in netlab's API takes ``?labelSelector=`` and ``?fieldSelector=``, and
controllers match Services, ReplicaSets and Deployments to pods by label. kubectl users know
the apiserver's grammar and its error messages, so this module follows
k8s.io/apimachinery/pkg/labels and pkg/fields exactly (Kubernetes 1.27-1.33): the same
tokens, the same canonical ``str()`` form (requirements sorted by key, set values sorted), the
same label key/value rules and the same error wording. The apiserver answers a bad selector
with a 400 Status carrying the message of :class:`SelectorError`; kubectl then prints it
after its own ``Unable to find "..." that match label selector "..."`` prefix.

Pure: no I/O, stdlib only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

__all__ = [
    "DEFAULT_FIELD_SELECTORS", "FIELD_SELECTORS", "FieldRequirement", "FieldSelector",
    "LabelSelector", "Requirement", "SelectorError", "field_value", "is_qualified_name",
    "is_valid_label_value", "label_selector_from_object", "new_requirement",
    "parse_field_selector", "parse_label_selector", "selector_from_set",
]


class SelectorError(ValueError):
    """A selector the apiserver would reject; ``str()`` is the apiserver's message."""


# ---------------------------------------------------------------------------------------------
# Label key and value validation (k8s.io/apimachinery/pkg/util/validation).

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_ERR = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
              "end with an alphanumeric character")
_QNAME_MAX = 63
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_ERR = ("a valid label must be an empty string or consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character")
_LABEL_VALUE_MAX = 63
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR = ("a lowercase RFC 1123 subdomain must consist of lower case "
                          "alphanumeric characters, '-' or '.', and must start and end with an "
                          "alphanumeric character")
_DNS1123_SUBDOMAIN_MAX = 253

_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    # Kubernetes' wording, including its odd "',  or '" spacing, which users grep for.
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _byte_len(s: str) -> int:
    # Go measures strings in bytes.
    return len(s.encode("utf-8", "surrogatepass"))


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if _byte_len(value) > _DNS1123_SUBDOMAIN_MAX:
        errs.append(f"must be no more than {_DNS1123_SUBDOMAIN_MAX} characters")
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Kubernetes' label-key check (``[prefix/]name``); returns the problems, empty if valid."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _byte_len(name) > _QNAME_MAX:
        errs.append(f"name part must be no more than {_QNAME_MAX} characters")
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + _regex_error(_QNAME_ERR, _QNAME_FMT,
                                                "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """Kubernetes' label-value check; returns the problems, empty if valid."""
    errs = []
    if _byte_len(value) > _LABEL_VALUE_MAX:
        errs.append(f"must be no more than {_LABEL_VALUE_MAX} characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT,
                                 "MyValue", "my_value", "12345"))
    return errs


def _go_quote(s: str) -> str:
    # Close to Go's %q for the strings that occur in selectors.
    return json.dumps(s, ensure_ascii=False)


def _go_string_slice(values: Iterable[str]) -> str:
    # Go's %#v of a []string; Kubernetes builds the slice with append(nil, ...), so empty is nil.
    vals = list(values)
    if not vals:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_quote(v) for v in vals) + "}"


def _invalid(path: str, shown_value: str, detail: str) -> str:
    # field.Invalid(...).Error()
    return f"{path}: Invalid value: {shown_value}: {detail}"


def _aggregate(errs: list[str]) -> str:
    # utilerrors.NewAggregate(...).Error(): one message alone, several in brackets.
    uniq = list(dict.fromkeys(errs))
    return uniq[0] if len(uniq) == 1 else "[" + ", ".join(uniq) + "]"


# ---------------------------------------------------------------------------------------------
# Label selectors.

# selection.Operator spellings, as they appear in error messages and String().
EXISTS, DOES_NOT_EXIST = "exists", "!"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN, GREATER_THAN, LESS_THAN = "in", "notin", "gt", "lt"
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_ALL_OPERATORS = (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST)
_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(s: str) -> Optional[int]:
    # strconv.ParseInt(s, 10, 64); Python's int() would also take "1_0" and " 1".
    if not _INT64_RE.fullmatch(s):
        return None
    n = int(s)
    return n if -(2**63) <= n < 2**63 else None


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: ``key operator values``."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Optional[Mapping[str, str]]) -> bool:
        labels = labels or {}
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op == EXISTS:
            return self.key
        vals = ",".join(sorted(self.values)) if len(self.values) > 1 else "".join(self.values)
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({vals})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{vals}"


def new_requirement(key: str, operator: str, values: Iterable[str] = ()) -> Requirement:
    """labels.NewRequirement: validate and build one requirement, or raise SelectorError."""
    vals = tuple(values)
    if not isinstance(key, str) or not all(isinstance(v, str) for v in vals):
        # Kubernetes fails earlier, decoding JSON into typed strings.
        raise SelectorError(f"label selector keys and values must be strings: {key!r} {vals!r}")
    errs = []
    key_errs = is_qualified_name(key)
    if key_errs:
        errs.append(_invalid("key", _go_quote(key), "; ".join(key_errs)))
    if operator in (IN, NOT_IN):
        if not vals:
            errs.append(_invalid("values", _go_string_slice(vals),
                                 "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(_invalid("values", _go_string_slice(vals),
                                 "exact-match compatibility requires one single value"))
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(_invalid("values", _go_string_slice(vals),
                                 "values set must be empty for exists and does not exist"))
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(_invalid("values", _go_string_slice(vals),
                                 "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(_invalid(f"values[{i}]", _go_quote(v),
                                     "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        supported = ", ".join(_go_quote(o) for o in _ALL_OPERATORS)
        errs.append(f"operator: Unsupported value: {_go_quote(operator)}: "
                    f"supported values: {supported}")
    for i, v in enumerate(vals):
        value_errs = is_valid_label_value(v)
        if value_errs:
            errs.append(_invalid(f"values[{i}][{key}]", _go_quote(v), "; ".join(value_errs)))
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, operator, vals)


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements. ``nothing`` is the selector of a nil LabelSelector."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def match_nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @property
    def empty(self) -> bool:
        """True if the selector does not restrict anything (matches every object)."""
        return not self.requirements and not self.nothing

    def matches(self, labels: Optional[Mapping[str, str]]) -> bool:
        if self.nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def requires_exact_match(self, key: str) -> Optional[str]:
        """The single value ``key`` must have, if the selector pins it (for indexing)."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _sorted_by_key(reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
    # Kubernetes sorts requirements by key for a deterministic String().
    return tuple(sorted(reqs, key=lambda r: r.key))


# --- lexer ---------------------------------------------------------------------------------

_ID, _EOS = "identifier", "end of string"
_SPECIAL = "=!(),><"
_WHITESPACE = " \t\r\n"
_SYMBOLS = frozenset({")", ",", "!", "==", "=", ">", "<", "!=", "("})
_KEYWORDS = frozenset({IN, NOT_IN})


def _lex(s: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); kind is _ID, _EOS, a keyword or the symbol itself."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in _WHITESPACE:
            i += 1
        if i >= n:
            out.append((_EOS, ""))
            return out
        if s[i] in _SPECIAL:
            # Longest run of special characters that is still a known symbol: "!=", "==".
            # Every single special character is a symbol, so end always advances.
            j, end = i, i + 1
            while j < n and s[j] in _SPECIAL and s[i:j + 1] in _SYMBOLS:
                end = j = j + 1
            out.append((s[i:end], s[i:end]))
            i = end
        else:
            j = i
            while j < n and s[j] not in _SPECIAL and s[j] not in _WHITESPACE:
                j += 1
            literal = s[i:j]
            out.append((literal if literal in _KEYWORDS else _ID, literal))
            i = j


class _LabelParser:
    """The apiserver's recursive-descent parser, with its messages."""

    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    # In value position "in" and "notin" are ordinary identifiers ("x in (in)").
    def peek(self, values: bool = True) -> tuple[str, str]:
        kind, lit = self.items[self.pos]
        return (_ID if values and kind in _KEYWORDS else kind), lit

    def take(self, values: bool = True) -> tuple[str, str]:
        tok = self.peek(values)
        self.pos += 1
        return tok

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            kind, lit = self.peek()
            if kind == _EOS:
                return reqs
            if kind not in (_ID, "!"):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except SelectorError as e:
                raise SelectorError(f"unable to parse requirement: {e}") from None
            kind, lit = self.take()
            if kind == _EOS:
                return reqs
            if kind != ",":
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            kind, lit = self.peek()
            if kind not in (_ID, "!"):
                raise SelectorError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = False
        kind, key = self.take()
        if kind == "!":
            negated = True
            kind, key = self.take()
        if kind != _ID:
            raise SelectorError(f"found '{key}', expected: identifier")
        key_errs = is_qualified_name(key)
        if key_errs:
            # The parser validates with a nil field path, hence Kubernetes' "<nil>:" prefix.
            raise SelectorError(_invalid("<nil>", _go_quote(key), "; ".join(key_errs)))
        if negated:
            # "!a=b" stops here; the caller then trips over "=".
            return new_requirement(key, DOES_NOT_EXIST)
        if self.peek()[0] in (_EOS, ","):
            return new_requirement(key, EXISTS)
        kind, lit = self.take(values=False)
        operator = {IN: IN, NOT_IN: NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS,
                    "!=": NOT_EQUALS, ">": GREATER_THAN, "<": LESS_THAN}.get(kind)
        if operator is None:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        values = self.set_values() if operator in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, operator, sorted(values))

    def set_values(self) -> set[str]:
        kind, lit = self.take()
        if kind != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        kind, lit = self.peek()
        if kind == ")":  # "()" is the set holding the empty string
            self.take()
            return {""}
        if kind not in (_ID, ","):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            kind, lit = self.take()
            if kind == _ID:
                values.add(lit)
                nxt, nlit = self.peek()
                if nxt == ")":
                    self.take()
                    return values
                if nxt != ",":
                    raise SelectorError(f"found '{nlit}', expected: ',' or ')'")
            elif kind == ",":
                # Empty members: "(,a)", "(a,,b)" and "(a,)" all contain "".
                if not values:
                    values.add("")
                nxt = self.peek()[0]
                if nxt == ")":
                    self.take()
                    values.add("")
                    return values
                if nxt == ",":
                    self.take()
                    values.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in (_EOS, ","):
            return {""}  # "a=" requires the empty value
        kind, lit = self.take()
        if kind != _ID:
            raise SelectorError(f"found '{lit}', expected: identifier")
        return {lit}


def parse_label_selector(s: Optional[str]) -> LabelSelector:
    """Parse a ``labelSelector`` query string, e.g. ``"env in (prod,qa),!canary,tier=fe"``.

    The empty string selects everything. Raises SelectorError with the apiserver's message.
    """
    return LabelSelector(_sorted_by_key(_LabelParser(s or "").parse()))


_OBJECT_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_object(obj: Optional[Mapping[str, Any]]) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: ``{matchLabels, matchExpressions}`` to a selector.

    As in Kubernetes, a missing (None) selector matches nothing and an empty one everything.
    """
    if obj is None:
        return LabelSelector.match_nothing()
    match_labels = obj.get("matchLabels") or {}
    expressions = obj.get("matchExpressions") or []
    # Objects come from request bodies: a wrong shape is the client's error, not ours.
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels must be a map of strings")
    if not isinstance(expressions, list) or not all(isinstance(e, Mapping) for e in expressions):
        raise SelectorError("matchExpressions must be a list of requirements")
    reqs = [new_requirement(k, EQUALS, [v]) for k, v in match_labels.items()]
    for expr in expressions:
        operator = expr.get("operator", "")
        if operator not in _OBJECT_OPERATORS:
            raise SelectorError(f"{_go_quote(operator)} is not a valid label selector operator")
        values = expr.get("values") or ()
        if not isinstance(values, (list, tuple)):
            raise SelectorError("matchExpressions values must be a list of strings")
        reqs.append(new_requirement(expr.get("key", ""), _OBJECT_OPERATORS[operator], values))
    return LabelSelector(_sorted_by_key(reqs))


def selector_from_set(labels: Optional[Mapping[str, str]], *,
                      validate: bool = False) -> LabelSelector:
    """A selector matching exactly ``labels`` (Service and ReplicationController selectors).

    Like labels.SelectorFromSet, an empty or missing set selects everything, and nothing is
    validated unless ``validate`` is true (ValidatedSelectorFromSet).
    """
    if not labels:
        return LabelSelector()
    if validate:
        return LabelSelector(_sorted_by_key(new_requirement(k, EQUALS, [v])
                                            for k, v in labels.items()))
    return LabelSelector(_sorted_by_key(Requirement(k, EQUALS, (v,))
                                        for k, v in labels.items()))


# ---------------------------------------------------------------------------------------------
# Field selectors.

_NOT_SUPPORTED = "field label not supported: {}"

# Per kind: the fields its apiserver conversion accepts, and the message for any other field.
# Kinds not listed use Kubernetes' default conversion (metadata.name, metadata.namespace only).
FIELD_SELECTORS: dict[str, tuple[frozenset[str], str]] = {
    "Pod": (frozenset({
        "metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
        "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
        "status.podIP", "status.nominatedNodeName"}), _NOT_SUPPORTED),
    "Node": (frozenset({"metadata.name", "spec.unschedulable"}), _NOT_SUPPORTED),
    "Namespace": (frozenset({"metadata.name", "status.phase"}), _NOT_SUPPORTED),
    "Service": (frozenset({"metadata.name", "metadata.namespace", "spec.clusterIP",
                           "spec.type"}), _NOT_SUPPORTED),
    "Event": (frozenset({
        "metadata.name", "metadata.namespace", "involvedObject.kind",
        "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}),
        _NOT_SUPPORTED),
    "Job": (frozenset({"metadata.name", "metadata.namespace", "status.successful"}),
            'field label "{}" not supported for batchv1.Job'),
}
DEFAULT_FIELD_SELECTORS = frozenset({"metadata.name", "metadata.namespace"})
_DEFAULT_MESSAGE = '"{}" is not a known field selector: only "metadata.name", "metadata.namespace"'
# Old clients still send spec.host; the apiserver rewrites it.
_FIELD_ALIASES = {("Pod", "spec.host"): "spec.nodeName"}


def _get_path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _as_field_string(v: Any) -> str:
    # Field sets are strings; Go formats bools with FormatBool and counts with Itoa.
    if v is None or isinstance(v, (dict, list)):
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _pod_ip(pod: Any) -> str:
    ip = _get_path(pod, "status.podIP")
    if ip:
        return str(ip)
    ips = _get_path(pod, "status.podIPs") or []
    return str(ips[0].get("ip", "")) if ips and isinstance(ips[0], Mapping) else ""


def _event_source(ev: Any) -> str:
    return _as_field_string(_get_path(ev, "source.component")
                            or ev.get("reportingController"))


# Fields whose value is not simply the object's value at that path (the registries' GetAttrs).
_COMPUTED_FIELDS: dict[tuple[str, str], Callable[[Any], str]] = {
    ("Pod", "spec.hostNetwork"): lambda o: _as_field_string(
        bool(_get_path(o, "spec.hostNetwork"))),
    ("Pod", "status.podIP"): _pod_ip,
    ("Node", "spec.unschedulable"): lambda o: _as_field_string(
        bool(_get_path(o, "spec.unschedulable"))),
    ("Job", "status.successful"): lambda o: _as_field_string(
        _get_path(o, "status.succeeded") or 0),
    ("Event", "reportingComponent"): lambda o: _as_field_string(o.get("reportingController")),
    ("Event", "source"): _event_source,
}


def field_value(obj: Mapping[str, Any], field: str, kind: Optional[str] = None) -> str:
    """The string a field selector compares for ``field`` of ``obj``; missing fields are ""."""
    compute = _COMPUTED_FIELDS.get((kind or "", field))
    if compute is not None:
        return compute(obj)
    return _as_field_string(_get_path(obj, field))


def _escape_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_value(v: str) -> str:
    if not any(c in v for c in "\\,="):
        return v
    out = []
    escaped = False
    for c in v:
        if escaped:
            if c not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            # Go prints the rune with %v, i.e. as its code point ("61" for "=").
            raise SelectorError(
                f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


@dataclass(frozen=True)
class FieldRequirement:
    """One term of a field selector. ``==`` is stored as ``=``, as Kubernetes does."""

    field: str
    operator: str  # "=" or "!="
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{_escape_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field terms; ``kind`` picks how fields are read from objects."""

    requirements: tuple[FieldRequirement, ...] = ()
    kind: Optional[str] = None

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches_fields(self, fields: Mapping[str, str]) -> bool:
        """Match a precomputed field set; a field missing from it compares as ""."""
        for r in self.requirements:
            equal = fields.get(r.field, "") == r.value
            if equal != (r.operator == "="):
                return False
        return True

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return self.matches_fields({r.field: field_value(obj, r.field, self.kind)
                                    for r in self.requirements})

    def requires_exact_match(self, field: str) -> Optional[str]:
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_terms(s: str) -> list[str]:
    # Commas split terms unless backslash-escaped; the escape stays for _unescape_value.
    terms, start, escaped = [], 0, False
    for i, c in enumerate(s):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> Optional[tuple[str, str, str]]:
    # The leftmost operator wins; at one position "!=" and "==" beat "=".
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(s: Optional[str], allowed: Optional[Iterable[str]] = None, *,
                         kind: Optional[str] = None) -> FieldSelector:
    """Parse a ``fieldSelector`` query string, e.g. ``"spec.nodeName=n1,status.phase!=Failed"``.

    ``allowed`` lists the supported fields; anything else is rejected with
    ``field label not supported: <field>``. Without ``allowed``, ``kind`` selects Kubernetes'
    own table and message for that kind (FIELD_SELECTORS, else the default conversion); with
    neither, any field is accepted. ``kind`` also tells ``matches`` how to read computed fields.
    The empty string selects everything.
    """
    s = s or ""
    if allowed is not None:
        fields, message = frozenset(allowed), _NOT_SUPPORTED
    elif kind is not None:
        fields, message = FIELD_SELECTORS.get(kind, (DEFAULT_FIELD_SELECTORS, _DEFAULT_MESSAGE))
    else:
        fields, message = None, ""
    terms: list[FieldRequirement] = []
    # Kubernetes sorts the raw terms first, so errors and str() follow that order.
    for part in sorted(_split_terms(s)) if s else []:
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        lhs, op, rhs = split
        terms.append(FieldRequirement(lhs, "!=" if op == "!=" else "=", _unescape_value(rhs)))
    if fields is not None:
        converted = []
        for t in terms:
            name = _FIELD_ALIASES.get((kind or "", t.field), t.field)
            if t.field not in fields and name == t.field:
                raise SelectorError(message.format(t.field))
            converted.append(FieldRequirement(name, t.operator, t.value))
        terms = converted
    return FieldSelector(tuple(terms), kind)
