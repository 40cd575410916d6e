"""ConfigMaps and Secrets through the API: base64 errors are 400, stringData is merged
and never stored, the type is defaulted and immutable, the 1 MiB limit is a 422."""

from __future__ import annotations

SECRETS = "/api/v1/namespaces/default/secrets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def secret(name, **fields):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, **fields}


async def test_secret_writes_decode_merge_and_default(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.post(SECRETS, secret("bad", data={"k": "not base64!"}))
        assert status == 400 and err["reason"] == "BadRequest"
        assert err["message"] == ('Secret in version "v1" cannot be handled as a Secret: '
                                  "illegal base64 data at input byte 3")
        created = await c.ok("POST", SECRETS, secret("s", stringData={"user": "admin"}))
        assert created["data"] == {"user": "YWRtaW4="} and created["type"] == "Opaque"
        assert "stringData" not in created
        patched = await c.ok("PATCH", f"{SECRETS}/s", {"stringData": {"pw": "x"}})
        assert patched["data"] == {"user": "YWRtaW4=", "pw": "eA=="}
        status, err = await c.patch(f"{SECRETS}/s", {"type": "kubernetes.io/tls"})
        assert status == 422 and "type: Invalid value" in err["message"]
        status, err = await c.post(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": "c"},
                                                "binaryData": {"b": "AA="}})
        assert status == 400 and "ConfigMap in version" in err["message"]
        status, err = await c.post(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                                "metadata": {"name": "c"},
                                                "data": {"a": "x" * (1 << 20 | 1)}})
        assert status == 422
        assert err["details"]["causes"] == [{"reason": "FieldValueTooLong", "field": "[]",
                                             "message": "Too long: must have at most "
                                                        "1048576 bytes"}]
