"""Reading the request bodies kubectl sends as Kubernetes protobuf.

kubectl 1.32 and later build the objects of ``kubectl create SUBCOMMAND`` (configmap,
secret, deployment, job, cronjob, service, namespace, serviceaccount,
poddisruptionbudget, ingress, role, clusterrole, rolebinding, clusterrolebinding), and the
reviews of ``kubectl auth can-i``/``auth whoami``, and ``kubectl autoscale``'s
HorizontalPodAutoscaler, with the typed clientset, which POSTs
``application/vnd.kubernetes.protobuf`` and has no JSON fallback on 415. netlab answers
in JSON (those clients accept it) and decodes such bodies here: the ``k8s\\x00`` envelope
(``runtime.Unknown``), then the object by the field-number tables of
:mod:`netlab.master.apiserver.protobuf_messages`, for the kinds in its ``KINDS`` (every
kind kubectl's typed clients send, plus Pod and the other workloads; a kind whose message
differs between versions, as HorizontalPodAutoscaler's in autoscaling/v1 and v2, by the
body's ``apiVersion``). The result is the object as JSON would have carried it: zero
plain scalars dropped as ``omitempty`` drops them, set pointer fields kept even when zero,
bytes as base64, quantities and IntOrStrings as their JSON forms. Unknown field numbers
are skipped; a malformed body is a 400 naming the problem; any other kind keeps answering
415. Pure: no I/O.
"""

from __future__ import annotations

import base64
import datetime
import struct
from typing import Any

from netlab.api import errors
from netlab.master.apiserver.protobuf_messages import KINDS, MESSAGES, Message

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
MAX_DEPTH = 40

_TYPE_META: Message = {1: ("apiVersion", "string", ""), 2: ("kind", "string", "")}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_ZERO_TIME = -62135596800  # Go's zero time.Time (0001-01-01), which JSON carries as null


class _Malformed(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    out: list[tuple[int, int, Any]] = []
    pos = 0
    value: int | bytes
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _Malformed("truncated field")
            value, pos = data[pos:pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise _Malformed("truncated field")
            value, pos = data[pos:pos + size], pos + size
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _expect(wire: int, want: int, what: str) -> None:
    if wire != want:
        raise _Malformed(f"expected {what}")


def _int(wire: int, value: Any) -> int:
    _expect(wire, 0, "a varint")
    return value - (1 << 64) if value >= 1 << 63 else value


def _string(wire: int, value: Any) -> str:
    _expect(wire, 2, "a length-delimited field")
    return value.decode("utf-8")


def _quantity(data: bytes) -> str:
    out = ""
    for number, wire, value in _fields(data):
        if number == 1:
            out = _string(wire, value)
    return out


def _int_or_string(data: bytes) -> Any:
    kind, number, text = 0, 0, ""
    for field, wire, value in _fields(data):
        if field == 1:
            kind = _int(wire, value)
        elif field == 2:
            number = _int(wire, value)
        elif field == 3:
            text = _string(wire, value)
    return text if kind == 1 else number


def _time(data: bytes, micro: bool) -> Any:
    seconds = nanos = 0
    for field, wire, value in _fields(data):
        if field == 1:
            seconds = _int(wire, value)
        elif field == 2:
            nanos = _int(wire, value)
    if (seconds <= _ZERO_TIME or seconds == 0) and not nanos:
        return None  # Go writes a zero time as an empty message; JSON says null
    try:
        when = _EPOCH + datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise _Malformed("a timestamp out of range") from None
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if micro:
        text += f".{(nanos // 1000) % 1000000:06d}"
    return text + "Z"


def _duration(nanos: int) -> str:
    """Go's time.Duration.String, as metav1.Duration carries it in JSON."""
    if nanos == 0:
        return "0s"
    sign, nanos = ("-", -nanos) if nanos < 0 else ("", nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
            if nanos >= size:
                return f"{sign}{_trim(nanos / size)}{unit}"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim(rest / 1e9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    return f"{sign}{minutes}m{seconds}" if minutes else sign + seconds


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def _value(kind: str, wire: int, value: Any, depth: int) -> Any:
    """One field's value in its JSON form."""
    if kind == "string":
        return _string(wire, value)
    if kind in ("int", "duration"):
        number = _int(wire, value)
        return _duration(number) if kind == "duration" else number
    if kind == "bool":
        _expect(wire, 0, "a varint")
        return bool(value)
    if kind == "double":
        _expect(wire, 1, "a 64-bit field")  # _fields read exactly 8 bytes
        return struct.unpack("<d", value)[0]
    _expect(wire, 2, "a length-delimited field")
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    if kind == "quantity":
        return _quantity(value)
    if kind == "intorstr":
        return _int_or_string(value)
    if kind in ("time", "microtime"):
        return _time(value, kind == "microtime")
    return _message(value, MESSAGES[kind], depth + 1)


_MAP_VALUES = {"map": "string", "bytesmap": "bytes", "qmap": "quantity"}
_ZERO = ("", 0, False, None)


def _message(data: bytes, schema: Message, depth: int = 0) -> dict:
    if depth > MAX_DEPTH:
        raise _Malformed("nested too deeply")
    out: dict = {}
    for number, wire, value in _fields(data):
        if number not in schema:
            continue  # a field netlab does not read (status, timestamps, newer fields)
        name, kind, mark = schema[number]
        if kind in _MAP_VALUES:
            _expect(wire, 2, "a map entry")
            key, item = "", _value(_MAP_VALUES[kind], 2, b"", depth)
            for field, entry_wire, entry_value in _fields(value):
                if field == 1:
                    key = _string(entry_wire, entry_value)
                elif field == 2:
                    item = _value(_MAP_VALUES[kind], entry_wire, entry_value, depth)
            out.setdefault(name, {})[key] = item
            continue
        item = _value(kind, wire, value, depth)
        if mark == "*":
            out.setdefault(name, []).append(item)
        elif name == "-":
            out.update(item)
        elif item is not None and (mark == "?" or kind not in _ZERO_KINDS
                                   or isinstance(item, float) or item not in _ZERO):
            out[name] = item
    return out


# Kinds whose zero value a plain (non-pointer) field drops, as omitempty does.
_ZERO_KINDS = frozenset(("string", "int", "bool", "bytes", "time", "microtime"))


def decodable(kind: str) -> bool:
    return kind in KINDS


def _root(kind: str, api_version: str) -> Message:
    """The message of ``kind`` in ``api_version``: a group's own where another group's
    message has the same name (``autoscaling.v2.HorizontalPodAutoscaler``), else the one."""
    return MESSAGES.get(f"{api_version.replace('/', '.')}.{kind}") or MESSAGES[kind]


def decode(raw: bytes, kind: str, api_version: str) -> dict:
    """The object in a protobuf request body, as JSON would have carried it; 400 when the
    body is not a protobuf ``kind`` of ``api_version``."""
    try:
        if not raw.startswith(MAGIC):
            raise _Malformed("missing the k8s protobuf prefix")
        # runtime.Unknown: typeMeta = 1, raw = 2 (contentEncoding, contentType unused).
        type_meta: dict = {}
        body = b""
        for number, wire, value in _fields(raw[len(MAGIC):]):
            if number == 1:
                _expect(wire, 2, "an embedded message")
                type_meta = _message(value, _TYPE_META)
            elif number == 2:
                _expect(wire, 2, "a length-delimited field")
                body = value
        obj = _message(body, _root(kind, type_meta.get("apiVersion") or api_version))
    except (_Malformed, UnicodeDecodeError, RecursionError) as err:
        raise errors.bad_request(f"couldn't decode the protobuf body: {err}") from None
    obj["apiVersion"] = type_meta.get("apiVersion") or api_version
    obj["kind"] = type_meta.get("kind") or kind
    return obj
