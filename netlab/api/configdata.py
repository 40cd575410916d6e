"""The payload of ConfigMaps and Secrets: base64 ``[]byte`` fields, ``stringData``, sizes.

On the wire a Secret's ``data`` and a ConfigMap's ``binaryData`` are Go ``[]byte`` values,
base64 strings that the API server's JSON decoder decodes before anything else runs. A
value that is not base64 therefore fails the request with 400 BadRequest, not 422 (the
message is the decoder's: ``illegal base64 data at input byte N``). A Secret's
``stringData`` is write-only: conversion merges it into ``data`` (its values win) and it is
never stored. The API server's strategy calls :func:`decode_payload` on every write;
validation and the kubelet use :func:`decoded` and :func:`payload_size`. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from netlab.api import errors

# core.MaxSecretSize: the limit on a ConfigMap's or a Secret's total payload.
MAX_SIZE = 1024 * 1024

_B64 = re.compile(r"[A-Za-z0-9+/]*")


class Base64Error(ValueError):
    """Go's ``base64.CorruptInputError``, with its message."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def decode_base64(value: str) -> bytes:
    """Decode standard, padded base64 as Go's ``StdEncoding`` does (``\\r`` and ``\\n``
    ignored); raise :class:`Base64Error` naming the first offending byte."""
    text = value.replace("\r", "").replace("\n", "")
    body = text.rstrip("=")
    m = _B64.match(body)
    end = m.end() if m else 0
    if end < len(body):
        raise Base64Error(end)
    padding = len(text) - len(body)
    if (len(body) + padding) % 4 or padding > 2 or len(body) % 4 == 1:
        # Go reports the start of the incomplete quantum, or where bad padding begins.
        raise Base64Error(len(body) - len(body) % 4 if padding == 0 else len(body))
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Base64Error(len(body)) from None


def encode_base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def byte_fields(kind: str) -> tuple[str, ...]:
    """The top-level maps of ``kind`` whose values are base64 ``[]byte``."""
    return {"Secret": ("data",), "ConfigMap": ("binaryData",)}.get(kind, ())


def decode_payload(kind: str, obj: dict[str, Any]) -> None:
    """What the decoder and conversion do to a written ConfigMap or Secret, in place:
    reject values that are not base64 (400), merge ``stringData`` into ``data``."""
    for field in byte_fields(kind):
        values = obj.get(field)
        if not isinstance(values, dict):
            continue
        for value in values.values():
            if not isinstance(value, str):
                continue  # a type error, reported by validation
            try:
                decode_base64(value)
            except Base64Error as err:
                raise errors.bad_request(f'{kind} in version "v1" cannot be handled as a '
                                         f"{kind}: {err}") from None
    if kind == "Secret" and "stringData" in obj:
        string_data = obj.pop("stringData")
        if isinstance(string_data, dict) and string_data:
            data = obj.get("data")
            if not isinstance(data, dict):
                data = obj["data"] = {}
            for key, value in string_data.items():
                data[key] = encode_base64(str(value).encode())


def decoded(kind: str, obj: dict[str, Any], field: str) -> dict[str, bytes]:
    """The values of ``field`` as bytes; undecodable or non-string values are skipped."""
    values = obj.get(field)
    out: dict[str, bytes] = {}
    if not isinstance(values, dict):
        return out
    binary = field in byte_fields(kind)
    for key, value in values.items():
        if not isinstance(value, str):
            continue
        if binary:
            try:
                out[str(key)] = decode_base64(value)
            except Base64Error:
                continue
        else:
            out[str(key)] = value.encode()
    return out


def payload_size(kind: str, obj: dict[str, Any]) -> int:
    """Bytes counted against :data:`MAX_SIZE`: every value of data (and binaryData)."""
    fields = ("data", "binaryData") if kind == "ConfigMap" else ("data",)
    return sum(len(v) for f in fields for v in decoded(kind, obj, f).values())
