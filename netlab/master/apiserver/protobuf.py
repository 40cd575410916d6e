"""Reading the few request bodies kubectl sends as Kubernetes protobuf.

Most kubectl commands send JSON, but some ``kubectl create`` subcommands build their
object with the typed clientset, which speaks ``application/vnd.kubernetes.protobuf``
(observed: ``kubectl create clusterrolebinding``). netlab answers in JSON (those clients
accept it) and decodes such bodies here for the kinds listed in :data:`MESSAGES`: the
``k8s\\x00`` envelope (``runtime.Unknown``), then the object by its generated.proto field
numbers. Empty strings and zero numbers are dropped, as JSON's ``omitempty`` would;
timestamps and managedFields are ignored (the server sets them). Any other kind keeps
answering 415, as before. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Union

from netlab.api import errors

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# A message: field number -> (JSON name, type, repeated). A type is "string", "int",
# "bool", "map" (map<string,string>) or another message.
Message = dict[int, tuple[str, Union[str, dict], bool]]

_REQUIREMENT: Message = {1: ("key", "string", False), 2: ("operator", "string", False),
                         3: ("values", "string", True)}
_LABEL_SELECTOR: Message = {1: ("matchLabels", "map", False),
                            2: ("matchExpressions", _REQUIREMENT, True)}
_OWNER_REF: Message = {1: ("kind", "string", False), 3: ("name", "string", False),
                       4: ("uid", "string", False), 5: ("apiVersion", "string", False),
                       6: ("controller", "bool", False),
                       7: ("blockOwnerDeletion", "bool", False)}
_OBJECT_META: Message = {
    1: ("name", "string", False), 2: ("generateName", "string", False),
    3: ("namespace", "string", False), 6: ("resourceVersion", "string", False),
    11: ("labels", "map", False), 12: ("annotations", "map", False),
    13: ("ownerReferences", _OWNER_REF, True), 14: ("finalizers", "string", True)}
_POLICY_RULE: Message = {1: ("verbs", "string", True), 2: ("apiGroups", "string", True),
                         3: ("resources", "string", True),
                         4: ("resourceNames", "string", True),
                         5: ("nonResourceURLs", "string", True)}
_SUBJECT: Message = {1: ("kind", "string", False), 2: ("apiGroup", "string", False),
                     3: ("name", "string", False), 4: ("namespace", "string", False)}
_ROLE_REF: Message = {1: ("apiGroup", "string", False), 2: ("kind", "string", False),
                      3: ("name", "string", False)}
_BINDING: Message = {1: ("metadata", _OBJECT_META, False), 2: ("subjects", _SUBJECT, True),
                     3: ("roleRef", _ROLE_REF, False)}

MESSAGES: dict[str, Message] = {
    "Role": {1: ("metadata", _OBJECT_META, False), 2: ("rules", _POLICY_RULE, True)},
    "ClusterRole": {1: ("metadata", _OBJECT_META, False), 2: ("rules", _POLICY_RULE, True),
                    3: ("aggregationRule", {1: ("clusterRoleSelectors", _LABEL_SELECTOR,
                                                True)}, False)},
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
}
_UNKNOWN: Message = {1: ("typeMeta", {1: ("apiVersion", "string", False),
                                      2: ("kind", "string", False)}, False),
                     2: ("raw", "bytes", False)}


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
    out, pos = [], 0
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
            value, pos = data[pos:pos + size], pos + size
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _scalar(kind: str, wire: int, value: Any) -> Any:
    if kind in ("string", "bytes", "map"):
        if wire != 2:
            raise _Malformed("expected a length-delimited field")
        return value.decode("utf-8") if kind == "string" else value
    if wire != 0:
        raise _Malformed("expected a varint")
    if kind == "bool":
        return bool(value)
    return value - (1 << 64) if value >= 1 << 63 else value


def _message(data: bytes, schema: Message, depth: int = 0) -> dict:
    if depth > 20:
        raise _Malformed("nested too deeply")
    out: dict = {}
    for number, wire, value in _fields(data):
        if number not in schema:
            continue  # timestamps, managedFields: the server's to set
        name, kind, repeated = schema[number]
        if kind == "map":
            entry = {n: _scalar("string", w, v) for n, w, v in
                     _fields(_scalar("map", wire, value)) if n in (1, 2)}
            out.setdefault(name, {})[entry.get(1, "")] = entry.get(2, "")
            continue
        if isinstance(kind, dict):
            if wire != 2:
                raise _Malformed("expected an embedded message")
            item: Any = _message(value, kind, depth + 1)
        else:
            item = _scalar(kind, wire, value)
            if item in ("", 0, False) and not repeated:
                continue  # omitempty
        if repeated:
            out.setdefault(name, []).append(item)
        else:
            out[name] = item
    return out


def decodable(kind: str) -> bool:
    return kind in MESSAGES


def decode(raw: bytes, kind: str, api_version: str) -> dict:
    """The object in a protobuf request body, as JSON would have carried it; 400 when the
    body is not a protobuf ``kind`` of ``api_version``."""
    try:
        if not raw.startswith(MAGIC):
            raise _Malformed("missing the k8s protobuf prefix")
        unknown = _message(raw[len(MAGIC):], _UNKNOWN)
        type_meta = unknown.get("typeMeta", {})
        obj = _message(unknown.get("raw", b""), MESSAGES[kind])
    except (_Malformed, UnicodeDecodeError) as err:
        raise errors.bad_request(f"couldn't decode the protobuf body: {err}") from None
    obj["apiVersion"] = type_meta.get("apiVersion") or api_version
    obj["kind"] = type_meta.get("kind") or kind
    return obj
