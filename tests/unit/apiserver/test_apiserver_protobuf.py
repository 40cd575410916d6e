"""Protobuf request bodies (``kubectl create clusterrolebinding`` sends one): decoded for
the RBAC kinds, 400 when malformed, 415 for kinds netlab does not decode."""

from __future__ import annotations

import random

import pytest

from netlab.api import errors
from netlab.master.apiserver import protobuf

PB = "application/vnd.kubernetes.protobuf"


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, value) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return protobuf.MAGIC + _field(1, _field(1, api_version) + _field(2, kind)) + \
        _field(2, raw) + _field(4, PB)


def binding_body() -> bytes:
    meta = _field(1, "watchers") + _field(2, "") + _field(11, _field(1, "a") + _field(2, "b")) \
        + _field(8, b"")  # an empty creationTimestamp, as Go sends it
    subject = _field(1, "User") + _field(2, "rbac.authorization.k8s.io") + _field(3, "jane") \
        + _field(4, "")
    ref = _field(1, "rbac.authorization.k8s.io") + _field(2, "ClusterRole") + _field(3, "view")
    raw = _field(1, meta) + _field(2, subject) + _field(3, ref)
    return _envelope("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", raw)


def test_decodes_a_cluster_role_binding_as_json_would_carry_it():
    obj = protobuf.decode(binding_body(), "ClusterRoleBinding", "rbac.authorization.k8s.io/v1")
    assert obj == {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "watchers", "labels": {"a": "b"}},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                      "name": "jane"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"}}


def test_malformed_bodies_are_400_never_a_crash():
    body = binding_body()
    rng = random.Random(7)
    for _ in range(3000):
        cut = bytearray(body[:rng.randint(0, len(body))])
        for _ in range(rng.randint(0, 3)):
            if cut:
                cut[rng.randrange(len(cut))] = rng.randrange(256)
        try:
            protobuf.decode(bytes(cut), "ClusterRoleBinding", "rbac.authorization.k8s.io/v1")
        except errors.APIError as err:
            assert err.code == 400
    with pytest.raises(errors.APIError) as err:
        protobuf.decode(b"{}", "Role", "rbac.authorization.k8s.io/v1")
    assert err.value.code == 400


async def test_the_server_takes_protobuf_and_415s_kinds_it_does_not_decode(api, memory_store):
    async with api(memory_store) as c:
        status, out = await c.request(
            "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            data=binding_body(), content_type=PB, fieldValidation="Strict")
        assert status == 201 and out["roleRef"]["name"] == "view"
        status, _ = await c.request("POST", "/api/v1/nodes", data=binding_body(),
                                    content_type=PB)
        assert status == 415
