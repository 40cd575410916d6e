"""Protobuf bodies recorded from the real kubectl 1.33 (``scripts/kubectl_capture.py``).

``data/kubectl_create_bodies.json`` holds, per command, the body kubectl 1.33 POSTed as
``application/vnd.kubernetes.protobuf`` and the JSON body kubectl 1.27 POSTed for the same
command. Decoded, the protobuf must be what the JSON says (up to the fields the server
sets and the empty values JSON and protobuf spell differently); the API server must take
every one of them; and no damaged body may be anything but a 400.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from netlab.api import errors
from netlab.master.apiserver import protobuf

PB = "application/vnd.kubernetes.protobuf"
BODIES = json.loads((Path(__file__).parent / "data" / "kubectl_create_bodies.json").read_text())
BY_COMMAND = {b["command"]: b for b in BODIES}

# What kubectl itself changed between 1.27 and 1.33, not the encoding: 1.31+ mark the
# CronJob the controller of a Job made --from it, and 1.28+ ask SelfSubjectReview v1.
CLIENT_CHANGES = {
    "kubectl create job fromcron --from=cronjob/cj0":
        lambda obj: obj["metadata"]["ownerReferences"][0].pop("controller"),
    "kubectl auth whoami":
        lambda obj: obj.update(apiVersion="authentication.k8s.io/v1beta1"),
}


def _normal(value):
    """Drop what the server sets and the empty values (``{}``, ``null``) JSON carries."""
    if isinstance(value, dict):
        out = {k: _normal(v) for k, v in value.items()
               if k not in ("status", "creationTimestamp")}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _decode(body: dict) -> dict:
    want = body["json_1_27"]
    return protobuf.decode(bytes.fromhex(body["protobuf_1_33"]), want["kind"],
                           want["apiVersion"])


@pytest.mark.parametrize("body", BODIES, ids=[b["command"][8:] for b in BODIES])
def test_kubectl_133_protobuf_decodes_to_what_kubectl_127_sends_as_json(body):
    got = _decode(body)
    if body["command"] in CLIENT_CHANGES:
        CLIENT_CHANGES[body["command"]](got)
    assert _normal(got) == _normal(body["json_1_27"])


def test_zero_pointers_bytes_quantities_and_int_or_strings_keep_their_json_form():
    zero = _decode(BY_COMMAND["kubectl create deployment zero --image=nginx --replicas=0"])
    assert zero["spec"]["replicas"] == 0
    web = _decode(BY_COMMAND["kubectl create deployment web --image=nginx --replicas=2 "
                             "--port=80"])
    assert web["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80}]
    cm = _decode(BY_COMMAND["kubectl create configmap cm --from-literal=a=b "
                            "--from-file=bin=/tmp/pcap/bin.dat"])
    assert cm["data"] == {"a": "b"}
    assert base64.b64decode(cm["binaryData"]["bin"]) == b"\x00\x01\xffbin"
    secret = _decode(BY_COMMAND["kubectl create secret generic sec --from-literal=user=admin "
                                "--type=Opaque"])
    assert secret["data"] == {"user": "YWRtaW4="} and secret["type"] == "Opaque"
    pdb = _decode(BY_COMMAND["kubectl create poddisruptionbudget pdb2 --selector=app=web "
                             "--max-unavailable=50%"])
    assert pdb["spec"]["maxUnavailable"] == "50%" and "minAvailable" not in pdb["spec"]
    svc = _decode(BY_COMMAND["kubectl create service clusterip sc --tcp=80:8080 "
                             "--tcp=443:https"])
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == [8080, "https"]


def test_timestamps_durations_and_doubles():
    def field(number, value):
        if isinstance(value, int):
            return bytes([number << 3]) + _varint(value)
        return bytes([number << 3 | 2]) + _varint(len(value)) + value

    stamp = field(1, 1700000000) + field(2, 5000)
    assert protobuf._time(stamp, False) == "2023-11-14T22:13:20Z"
    assert protobuf._time(stamp, True) == "2023-11-14T22:13:20.000005Z"
    assert protobuf._time(b"", False) is None
    assert protobuf._duration(3_600_000_000_000) == "1h0m0s"
    assert protobuf._duration(90_500_000_000) == "1m30.5s"
    assert protobuf._duration(1_500_000) == "1.5ms"


def test_wrong_wire_types_and_short_fields_are_400_and_zero_pointers_survive():
    # After the prefix: runtime.Unknown's raw (field 2) holding the object's bytes.
    spec_replicas_zero = b"\x12\x04\x12\x02\x08\x00"       # spec { replicas: 0 }
    assert protobuf.decode(protobuf.MAGIC + spec_replicas_zero, "Deployment",
                           "apps/v1")["spec"] == {"replicas": 0}
    replicas_as_bytes = b"\x12\x06\x12\x04\x0a\x02\x08\x01"  # spec { replicas: "..." }
    short_fixed64 = b"\x09\x01\x02"                         # a 64-bit field cut short
    for raw, problem in ((replicas_as_bytes, "expected a varint"),
                         (short_fixed64, "truncated field")):
        with pytest.raises(errors.APIError) as err:
            protobuf.decode(protobuf.MAGIC + raw, "Deployment", "apps/v1")
        assert err.value.code == 400 and problem in err.value.message


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def test_damaged_real_bodies_are_400_never_a_crash():
    rng = random.Random(11)
    for body in BODIES + AUTOSCALE + PRIORITY:
        raw = bytes.fromhex(body["protobuf_1_33"])
        want = body.get("json") or body["json_1_27"]
        kind, version = want["kind"], want["apiVersion"]
        for _ in range(150):
            cut = bytearray(raw[:rng.randint(0, len(raw))])
            for _ in range(rng.randint(0, 4)):
                if cut:
                    cut[rng.randrange(len(cut))] = rng.randrange(256)
            try:
                obj = protobuf.decode(bytes(cut), kind, version)
            except errors.APIError as err:
                assert err.code == 400 and "protobuf" in err.message
            else:
                json.dumps(obj)  # whatever decodes is a JSON value


async def test_the_api_server_creates_what_kubectl_133_sends(api, memory_store):
    async with api(memory_store) as c:
        status, _ = await c.post("/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
        assert status == 201
        for body in BODIES + AUTOSCALE:
            status, out = await c.request("POST", body["path"],
                                          data=bytes.fromhex(body["protobuf_1_33"]),
                                          content_type=PB, fieldValidation="Strict")
            assert status in (200, 201), (body["command"], out)
            assert out["kind"] == (body.get("json") or body["json_1_27"])["kind"]
        status, cm = await c.get("/api/v1/namespaces/demo/configmaps/cm")
        assert status == 200 and cm["data"] == {"a": "b"}
        status, dep = await c.get("/apis/apps/v1/namespaces/demo/deployments/zero")
        assert status == 200 and dep["spec"]["replicas"] == 0
        status, hpa = await c.get(
            "/apis/autoscaling/v2/namespaces/demo/horizontalpodautoscalers/plain")
        # Defaulted as upstream: one replica at least, 80% CPU.
        assert status == 200 and hpa["spec"]["minReplicas"] == 1
        assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]


# kubectl 1.33's autoscale POSTs autoscaling/v2 HorizontalPodAutoscalers as protobuf (and
# falls back to v1, protobuf again, on an error): messages whose names autoscaling/v1 uses
# with other fields. "json" is the object as JSON carries it.
AUTOSCALE = json.loads((Path(__file__).parent / "data" /
                        "kubectl_autoscale_bodies.json").read_text())


@pytest.mark.parametrize("body", AUTOSCALE, ids=[b["command"][8:] for b in AUTOSCALE])
def test_kubectl_133_autoscale_decodes_as_an_autoscaling_v2_object(body):
    assert protobuf.decode(bytes.fromhex(body["protobuf_1_33"]), "HorizontalPodAutoscaler",
                           "autoscaling/v2") == body["json"]


# kubectl 1.33's create priorityclass, protobuf; "json" is what kubectl 1.27 POSTs for the
# same command (its null creationTimestamp left out). The negative value is a ten-byte
# varint on the wire; --global-default sends the preemption policy kubectl defaults.
PRIORITY = json.loads((Path(__file__).parent / "data" /
                       "kubectl_priorityclass_bodies.json").read_text())


@pytest.mark.parametrize("body", PRIORITY, ids=[b["command"][8:] for b in PRIORITY])
def test_kubectl_133_create_priorityclass_decodes_to_what_kubectl_127_sends(body):
    assert protobuf.decode(bytes.fromhex(body["protobuf_1_33"]), "PriorityClass",
                           "scheduling.k8s.io/v1") == body["json"]


async def test_the_api_server_creates_the_priorityclasses_kubectl_133_sends(api, memory_store):
    async with api(memory_store) as c:
        for body in PRIORITY:
            status, out = await c.request("POST", body["path"],
                                          data=bytes.fromhex(body["protobuf_1_33"]),
                                          content_type=PB, fieldValidation="Strict")
            assert status == 201, (body["command"], out)
        listed = await c.ok("GET", PRIORITY[0]["path"])
        got = {o["metadata"]["name"]: (o["value"], o.get("globalDefault", False),
                                       o.get("description"), o["preemptionPolicy"])
               for o in listed["items"]}
        assert got["high"] == (1000, False, "x", "Never")
        assert got["fallback"] == (-10, True, None, "PreemptLowerPriority")


def test_an_autoscaling_v1_body_decodes_by_v1s_own_message():
    # spec { scaleTargetRef { kind: "Deployment", name: "web" }, minReplicas: 0,
    #        maxReplicas: 3, targetCPUUtilizationPercentage: 60 }
    ref = b"\x0a\x0aDeployment\x12\x03web"
    spec = b"\x0a" + _varint(len(ref)) + ref + b"\x10\x00\x18\x03\x20\x3c"
    raw = protobuf.MAGIC + b"\x12" + _varint(len(spec) + 2) + b"\x12" + _varint(len(spec)) + spec
    obj = protobuf.decode(raw, "HorizontalPodAutoscaler", "autoscaling/v1")
    assert obj["spec"] == {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                           "minReplicas": 0, "maxReplicas": 3,
                           "targetCPUUtilizationPercentage": 60}
