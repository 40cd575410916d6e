"""ConfigMaps and Secrets through the API: base64 errors are 400, stringData is merged
and never stored, the type is defaulted and immutable, the 1 MiB limit is a 422."""

from __future__ import annotations

import random

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


WEIRD = [None, 0, -1, 1.5, True, "", "x", "!!", [], [1, "a"], {}, {"a": 1}, {"a": None},
         {"": ""}, {"k": "AA=="}, {"..": "x"}]
PLACES = {
    "configmaps": ("data", "binaryData", "immutable", "metadata"),
    "secrets": ("data", "stringData", "type", "immutable", "metadata"),
    "serviceaccounts": ("secrets", "imagePullSecrets", "automountServiceAccountToken"),
    "replicationcontrollers": ("spec",),
}
TEMPLATE = {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}
KINDS = {"configmaps": "ConfigMap", "secrets": "Secret", "serviceaccounts": "ServiceAccount",
         "replicationcontrollers": "ReplicationController"}


async def test_hostile_bodies_get_a_status_never_a_crash(api, memory_store):
    rng = random.Random(20261206)
    seen: set[int] = set()
    async with api(memory_store) as c:
        for i in range(300):
            plural = rng.choice(sorted(PLACES))
            body = {"apiVersion": "v1", "kind": KINDS[plural], "metadata": {"name": f"f{i}"}}
            for place in rng.sample(PLACES[plural], k=rng.randint(1, len(PLACES[plural]))):
                body[place] = rng.choice(WEIRD)
            if plural == "replicationcontrollers" and rng.random() < 0.5:
                body["spec"] = {"selector": rng.choice(WEIRD), "replicas": rng.choice(WEIRD),
                                "template": rng.choice([*WEIRD, TEMPLATE])}
            path = f"/api/v1/namespaces/default/{plural}"
            status, out = await c.post(path, body)
            assert status in (201, 400, 422), (body, status, out)
            seen.add(status)
            if status == 201:
                status, out = await c.patch(f"{path}/f{i}", {place: rng.choice(WEIRD)
                                                            for place in PLACES[plural][:2]})
                assert status in (200, 400, 422), (status, out)
        assert seen == {201, 400, 422}  # every outcome was exercised
        status, _ = await c.get("/readyz")
        assert status == 200
