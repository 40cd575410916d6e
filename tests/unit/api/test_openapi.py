"""The OpenAPI documents and strict field validation kubectl relies on.

The expectations are kube-apiserver's: the v3 index and documents kubectl's field-validation
probe and client-side ``apply`` read, the ``/openapi/v2`` protobuf it parses, and the exact
``strict decoding error`` wording of test/integration/apiserver/field_validation_test.go.
The last tests run the real ``/usr/bin/kubectl`` against a stub API server on 127.0.0.1 that
serves only discovery, these documents and an in-memory object store.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netlab.api import openapi, openapi_schemas, resources
from netlab.api.openapi import (
    duplicate_fields,
    known_fields,
    openapi_v2,
    openapi_v3_bytes,
    openapi_v3_document,
    openapi_v3_index,
    patch_problems,
    prune_unknown_fields,
    serve_openapi,
    strict_decode,
    strict_error_message,
    unknown_fields,
)
from netlab.api.patch import apply_merge_patch
from netlab.api.strategic_merge import SCHEMAS as SMP_TABLES

GROUP_VERSIONS = sorted([
    "api/v1", "apis/apps/v1", "apis/autoscaling/v1", "apis/autoscaling/v2", "apis/batch/v1",
    "apis/coordination.k8s.io/v1", "apis/discovery.k8s.io/v1", "apis/policy/v1",
    "apis/networking.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1",
    "apis/authorization.k8s.io/v1", "apis/authentication.k8s.io/v1",
    "apis/apiregistration.k8s.io/v1", "apis/apiextensions.k8s.io/v1",
    "apis/scheduling.k8s.io/v1", "apis/storage.k8s.io/v1"])
REF = "#/components/schemas/"

# --- the v3 index and documents ----------------------------------------------------------------


def test_index_lists_every_group_version_with_its_hash():
    index = openapi_v3_index()
    assert sorted(index["paths"]) == GROUP_VERSIONS
    for gv, entry in index["paths"].items():
        body, etag = openapi_v3_bytes(gv)
        # kube-openapi: upper-case hex SHA-512 of the JSON served at that URL.
        assert etag == hashlib.sha512(body).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{gv}?hash={etag}"


def test_hash_changes_when_the_document_changes(monkeypatch):
    before = openapi_v3_index()["paths"]["apis/apps/v1"]["serverRelativeURL"]
    openapi._v3_built.cache_clear()
    monkeypatch.setattr(openapi, "KUBERNETES_VERSION", "v1.99.0")
    try:
        after = openapi_v3_index()["paths"]["apis/apps/v1"]["serverRelativeURL"]
        assert openapi_v3_document("apps/v1")["info"]["version"] == "v1.99.0"
    finally:
        openapi._v3_built.cache_clear()
    assert after != before
    monkeypatch.undo()
    assert openapi_v3_index()["paths"]["apis/apps/v1"]["serverRelativeURL"] == before


def test_document_spellings_and_unknown_group_versions():
    assert openapi_v3_document("apis/apps/v1") == openapi_v3_document("apps/v1")
    assert openapi_v3_document("api/v1") == openapi_v3_document("v1")
    for missing in ("apis/apps/v2", "apis/extensions/v1beta1", "api/v2", ""):
        assert openapi_v3_document(missing) is None
    # A fresh copy each time: a caller's mutation cannot leak into what is served.
    openapi_v3_document("v1")["paths"].clear()
    assert openapi_v3_document("v1")["paths"]


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        for v in node.values():
            found |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= _refs(v)
    return found


@pytest.mark.parametrize("gv", GROUP_VERSIONS)
def test_each_document_parses_and_is_self_contained(gv):
    doc = json.loads(openapi_v3_bytes(gv)[0])
    assert doc["openapi"] == "3.0.0"
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith(REF) and ref[len(REF):] in schemas, ref
    for path, item in doc["paths"].items():
        assert path.startswith("/" + gv + "/")
        for method, op in item.items():
            if method == "parameters":
                continue
            gvk = op["x-kubernetes-group-version-kind"]
            assert set(gvk) == {"group", "version", "kind"}
            names = [p["name"] for p in op.get("parameters", [])]
            # Inline parameters, as kubectl's probe reads them.
            assert all("$ref" not in p for p in op.get("parameters", []))
            if method in ("post", "put", "patch"):
                assert {"fieldValidation", "fieldManager", "dryRun"} <= set(names), (path, method)
            else:
                assert "fieldValidation" not in names
            if method == "patch":
                content = op["requestBody"]["content"]
                assert "application/strategic-merge-patch+json" in content
                assert "application/merge-patch+json" in content
                assert "application/json-patch+json" in content


def _ops(gv: str) -> dict[tuple[str, str], dict]:
    doc = openapi_v3_document(gv)
    return {(path, m): op for path, item in doc["paths"].items()
            for m, op in item.items() if m != "parameters"}


def test_the_operations_kubectl_uses_exist_with_their_kinds():
    core = _ops("v1")
    pod = "/api/v1/namespaces/{namespace}/pods/{name}"
    for method in ("get", "put", "patch", "delete"):
        assert core[(pod, method)]["x-kubernetes-group-version-kind"] == {
            "group": "", "version": "v1", "kind": "Pod"}
    assert core[(pod, "patch")]["operationId"] == "patchCoreV1NamespacedPod"
    assert core[("/api/v1/namespaces/{namespace}/pods", "post")]["x-kubernetes-action"] == "post"
    assert ("/api/v1/pods", "get") in core
    assert (pod + "/log", "get") in core and (pod + "/status", "patch") in core
    assert (pod + "/binding", "post") in core
    assert ("/api/v1/nodes/{name}", "patch") in core          # cluster-scoped
    assert ("/api/v1/namespaces", "delete") not in core        # no deletecollection
    apps = _ops("apps/v1")
    scale = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"
    assert apps[(scale, "patch")]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert apps[("/apis/apps/v1/namespaces/{namespace}/replicasets/{name}", "patch")]
    hpa = "/apis/autoscaling/{v}/namespaces/{{namespace}}/horizontalpodautoscalers/{{name}}"
    for version in ("v1", "v2"):
        op = _ops(f"autoscaling/{version}")[(hpa.format(v=version), "patch")]
        assert op["x-kubernetes-group-version-kind"]["version"] == version
    assert ("/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status", "put") in _ops("batch/v1")
    lease = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
    assert (lease, "put") in _ops("coordination.k8s.io/v1")


def test_every_served_resource_has_a_documented_patch():
    for res in resources.RESOURCES:
        if "patch" not in res.verbs:
            continue  # the create-only access reviews
        for version in res.versions:
            gv = f"{res.group}/{version}" if res.group else version
            kinds = {op["x-kubernetes-group-version-kind"]["kind"]
                     for (_, m), op in _ops(gv).items() if m == "patch"}
            assert res.kind in kinds, (gv, res.kind)


def _component(doc: dict, name: str) -> dict:
    return doc["components"]["schemas"][openapi_schemas.full_name(name)]


def _target(doc: dict, prop: dict) -> dict:
    node = prop["items"] if prop.get("type") == "array" else prop
    ref = node.get("$ref") or node["allOf"][0]["$ref"]
    return doc["components"]["schemas"][ref[len(REF):]]


def test_merge_key_extensions_on_the_lists_kubectl_apply_merges():
    core = openapi_v3_document("v1")
    pod_spec = _component(core, "core.PodSpec")
    containers = pod_spec["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    container = _target(core, containers)
    assert container["properties"]["env"]["x-kubernetes-patch-merge-key"] == "name"
    assert container["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert container["properties"]["ports"]["x-kubernetes-list-map-keys"] == [
        "containerPort", "protocol"]
    assert container["properties"]["volumeMounts"]["x-kubernetes-patch-merge-key"] == "mountPath"
    assert pod_spec["properties"]["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    ports = _component(core, "core.ServiceSpec")["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    assert ports["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    apps = openapi_v3_document("apps/v1")
    strategy = _component(apps, "apps.DeploymentSpec")["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    deployment = _component(apps, "apps.Deployment")
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]


def _walk_to(kind: str, path: str) -> dict:
    """The property at a strategic_merge path such as ``spec.containers[].env``."""
    schema: dict = known_fields(kind)
    prop: dict = {}
    for part in path.split("."):
        while "properties" not in schema:
            schema = openapi_schemas.SCHEMAS[_ref_name(schema)]
        prop = schema["properties"][part.removesuffix("[]")]
        schema = prop["items"] if part.endswith("[]") else prop
    return prop


def _ref_name(node: dict) -> str:
    ref = node.get("$ref") or node["allOf"][0]["$ref"]
    return ref[len(REF):]


@pytest.mark.parametrize("kind", sorted(SMP_TABLES))
def test_extensions_agree_with_the_servers_strategic_merge_tables(kind):
    """netlab's server-side patch tables and the published schemas must say the same."""
    for path, strategy in SMP_TABLES[kind].items():
        prop = _walk_to(kind, path)
        if strategy.merge:
            assert prop.get("x-kubernetes-patch-merge-key") == strategy.merge_key, path
            expected = "merge,retainKeys" if strategy.retain_keys else "merge"
            assert prop["x-kubernetes-patch-strategy"] == expected, path
        elif strategy.retain_keys:
            assert prop["x-kubernetes-patch-strategy"] == "retainKeys", path


def test_shared_kinds_name_every_group_version():
    doc = openapi_v3_document("batch/v1")
    options = _component(doc, "meta.DeleteOptions")["x-kubernetes-group-version-kind"]
    assert {"group": "batch", "kind": "DeleteOptions", "version": "v1"} in options
    assert {"group": "", "kind": "DeleteOptions", "version": "v1"} in options


# --- OpenAPI v2 --------------------------------------------------------------------------------


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7


def _pb_fields(data: bytes) -> dict[int, bytes]:
    """A minimal protobuf reader: length-delimited fields only, as the document has."""
    out, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        assert key & 7 == 2, "only wire type 2 is expected"
        size, i = _read_varint(data, i)
        out[key >> 3] = data[i:i + size]
        i += size
    return out


def test_v2_protobuf_is_a_valid_gnostic_document():
    body, ctype = openapi_v2("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    # Answered with the valid MIME spelling, as kube-openapi does: client-go cannot parse "@".
    assert ctype == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    fields = _pb_fields(body)
    assert fields[1] == b"2.0"                                  # swagger
    info = _pb_fields(fields[2])
    assert info[1] == b"Kubernetes" and info[2].startswith(b"v1.")
    assert fields[8] == b""                                     # empty Paths
    assert 9 not in fields                                      # no definitions, on purpose


def test_v2_json_for_json_clients_and_406_otherwise():
    body, ctype = openapi_v2("application/json, */*")
    assert ctype == "application/json"
    doc = json.loads(body)
    assert doc["swagger"] == "2.0"
    assert "#/components/" not in body.decode()
    pod = doc["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["properties"]["spec"] == {"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec"}
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    assert any(p["name"] == "fieldValidation" and p["type"] == "string"
               for p in patch["parameters"])
    assert openapi_v2(None)[1] == "application/json"
    with pytest.raises(LookupError):
        openapi_v2("application/xml")


# --- serving -----------------------------------------------------------------------------------


def test_serve_index_and_documents_with_caching_headers():
    index = serve_openapi("/openapi/v3", accept="application/json, */*")
    assert index.status == 200 and json.loads(index.body) == openapi_v3_index()
    url = openapi_v3_index()["paths"]["apis/apps/v1"]["serverRelativeURL"]
    path, _, query = url.partition("?")
    etag = query.removeprefix("hash=")
    fresh = serve_openapi(path, {"hash": etag}, "application/json")
    assert fresh.status == 200 and fresh.body == openapi_v3_bytes("apps/v1")[0]
    assert fresh.headers["Cache-Control"].startswith("public, immutable")
    assert fresh.headers["ETag"] == f'"{etag}"'
    stale = serve_openapi(path, {"hash": "0123"}, "application/json")
    assert stale.status == 301 and stale.headers["Location"] == url
    plain = serve_openapi(path, {}, None)
    assert plain.status == 200 and "Cache-Control" not in plain.headers
    assert serve_openapi(path, {}, "application/json", if_none_match=f'"{etag}"').status == 304
    assert serve_openapi(path, {}, "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
                         ).status == 406
    for missing in ("/openapi/v3/apis/apps/v9", "/openapi/v3/v1", "/openapi/v4", "/openapi"):
        assert serve_openapi(missing).status == 404
    v2 = serve_openapi("/openapi/v2", accept=openapi.PROTOBUF_V2)
    assert v2.status == 200
    assert v2.headers["Content-Type"] == openapi.PROTOBUF_V2_CONTENT_TYPE
    assert serve_openapi("/openapi/v2", accept="text/html").status == 406


# --- field validation --------------------------------------------------------------------------

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "web", "image": "echo", "imagee": "typo",
                                "ports": [{"containerPort": 8080}]}]}}

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                 "annotations": {"note": "x"}},
    "spec": {
        "replicas": 3, "revisionHistoryLimit": 5, "minReadySeconds": 2,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In",
                                           "values": ["front"]}]},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {
                "terminationGracePeriodSeconds": 5, "restartPolicy": "Always",
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "affinity": {"podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100, "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app": "web"}}}}]}},
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                "initContainers": [{"name": "init", "image": "busybox",
                                    "command": ["sh", "-c", "true"]}],
                "containers": [{
                    "name": "web", "image": "agnhost", "imagePullPolicy": "IfNotPresent",
                    "command": ["agnhost"], "args": ["netexec", "--http-port=8080"],
                    "workingDir": "/",
                    "env": [{"name": "A", "value": "1"},
                            {"name": "POD_IP", "valueFrom": {"fieldRef": {
                                "fieldPath": "status.podIP"}}},
                            {"name": "CPU", "valueFrom": {"resourceFieldRef": {
                                "resource": "limits.cpu", "divisor": "1m"}}}],
                    "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                  "limits": {"cpu": 1, "memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http",
                                                   "httpHeaders": [{"name": "X", "value": "y"}]},
                                       "initialDelaySeconds": 1, "periodSeconds": 2},
                    "livenessProbe": {"tcpSocket": {"port": 8080}, "failureThreshold": 3},
                    "startupProbe": {"exec": {"command": ["true"]}},
                    "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
                    "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["NET_ADMIN"]}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                }],
                "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                            {"name": "cfg", "configMap": {"name": "cfg", "items": [
                                {"key": "a", "path": "a.txt"}]}},
                            {"name": "host", "hostPath": {"path": "/tmp", "type": "Directory"}},
                            {"name": "proj", "projected": {"sources": [
                                {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {
                                    "fieldPath": "metadata.labels"}}]}}]}}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                               "whenUnsatisfiable": "ScheduleAnyway"}],
            }}}}

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"type": "NodePort", "selector": {"app": "web"}, "sessionAffinity": "None",
                    "ports": [{"name": "http", "port": 80, "targetPort": "http",
                               "protocol": "TCP", "nodePort": 30080}],
                    "externalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack"}}

JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "burn"},
       "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 1,
                "activeDeadlineSeconds": 60, "ttlSecondsAfterFinished": 30,
                "completionMode": "Indexed",
                "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {
                    "operator": "In", "values": [42]}}]},
                "template": {"spec": {"restartPolicy": "Never", "containers": [{
                    "name": "burn", "image": "cpu-burner", "command": ["burn", "--seconds=5"],
                    "resources": {"limits": {"cpu": "500m"}}}]}}}}

HPA_V2 = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "web"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "web"},
                   "minReplicas": 1, "maxReplicas": 5,
                   "metrics": [{"type": "Resource", "resource": {
                       "name": "cpu", "target": {"type": "Utilization",
                                                 "averageUtilization": 50}}}],
                   "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30, "policies": [
                       {"type": "Pods", "value": 1, "periodSeconds": 15}]}}}}

HPA_V1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "web"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "web"},
                   "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}}

# What `kubectl get pod -o json` returns, status and managed fields included: users pipe
# that back into `kubectl apply -f -`.
LIVE_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default", "uid": "u", "resourceVersion": "7",
                 "creationTimestamp": "2024-01-01T00:00:00Z", "generateName": "web-",
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": "web", "uid": "r", "controller": True,
                                      "blockOwnerDeletion": True}],
                 "managedFields": [{"manager": "kubectl", "operation": "Update",
                                    "apiVersion": "v1", "time": "2024-01-01T00:00:00Z",
                                    "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:spec": {"f:containers": {}}}}]},
    "spec": {"nodeName": "node-1", "schedulerName": "default-scheduler",
             "serviceAccountName": "default", "dnsPolicy": "ClusterFirst",
             "enableServiceLinks": True, "priority": 0, "securityContext": {},
             "containers": [{"name": "web", "image": "echo", "resources": {},
                             "terminationMessagePath": "/dev/termination-log",
                             "terminationMessagePolicy": "File"}]},
    "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
               "hostIP": "192.168.0.2", "qosClass": "BestEffort",
               "startTime": "2024-01-01T00:00:01Z",
               "conditions": [{"type": "Ready", "status": "True",
                               "lastProbeTime": None,
                               "lastTransitionTime": "2024-01-01T00:00:02Z"}],
               "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0,
                                      "started": True, "image": "echo", "imageID": "",
                                      "containerID": "netlab://1",
                                      "state": {"running": {"startedAt": "2024-01-01T00:00:02Z"}},
                                      "lastState": {}}]}}


def test_unknown_fields_finds_a_misspelled_field():
    assert unknown_fields("Pod", POD) == ["spec.containers[0].imagee"]
    bad = json.loads(json.dumps(DEPLOYMENT))
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {}
    bad["spec"]["replica"] = 2
    bad["metadata"]["label"] = {}
    # Document order: "replica" was added to spec after "template".
    assert unknown_fields("Deployment", bad) == [
        "metadata.label", "spec.template.spec.containers[0].resources.limit", "spec.replica"]


@pytest.mark.parametrize("manifest", [DEPLOYMENT, SERVICE, JOB, HPA_V2, HPA_V1, LIVE_POD],
                         ids=["deployment", "service", "job", "hpa-v2", "hpa-v1", "live-pod"])
def test_unknown_fields_accepts_realistic_manifests(manifest):
    assert unknown_fields(manifest["kind"], manifest) == []


def test_the_hpa_version_decides_the_schema():
    assert unknown_fields("HorizontalPodAutoscaler", HPA_V1, "autoscaling/v2") == [
        "spec.targetCPUUtilizationPercentage"]
    assert unknown_fields("HorizontalPodAutoscaler", HPA_V2, "autoscaling/v1") == [
        "spec.metrics", "spec.behavior"]
    with pytest.raises(KeyError):
        unknown_fields("NoSuchKind", {"apiVersion": "batch/v1"})


def test_strict_decode_matches_kube_apiserver_wording():
    # The body and expected message of field_validation_test.go's post-strict-validation.
    body = """{"apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "dupename", "name": "d", "labels": {"app": "nginx"},
                   "unknownMeta": "metaVal"},
      "spec": {"unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
               "paused": true, "paused": false,
               "selector": {"matchLabels": {"app": "nginx"}},
               "template": {"metadata": {"labels": {"app": "nginx"}},
                 "spec": {"containers": [{"name": "nginx", "image": "nginx:latest",
                   "unknownNested": "val1", "imagePullPolicy": "Always",
                   "imagePullPolicy": "Never"}]}}}}"""
    obj, problems = strict_decode(body, "Deployment")
    assert strict_error_message(problems) == (
        'strict decoding error: duplicate field "metadata.name", unknown field '
        '"metadata.unknownMeta", unknown field "spec.unknown1", unknown field '
        '"spec.unknownDupe", duplicate field "spec.paused", unknown field '
        '"spec.template.spec.containers[0].unknownNested", duplicate field '
        '"spec.template.spec.containers[0].imagePullPolicy"')
    # What the Go types would hold: the last duplicate, no unknown fields.
    assert obj["metadata"] == {"name": "d", "labels": {"app": "nginx"}}
    assert obj["spec"]["paused"] is False and "unknown1" not in obj["spec"]
    assert obj["spec"]["template"]["spec"]["containers"][0] == {
        "name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Never"}
    assert strict_error_message(['unknown field "spec.foo"'], "Pod", "v1") == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.foo"')


def test_patch_problems_match_kube_apiserver_order():
    # field_validation_test.go's merge-patch-strict-validation: the patch body's duplicates
    # first, then the patched object's unknown fields, sorted.
    body = """{"spec": {"unknown1": "val1", "unknownDupe": "valDupe",
      "unknownDupe": "valDupe2", "paused": true, "paused": false,
      "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:latest",
        "unknownNested": "val1", "imagePullPolicy": "Always",
        "imagePullPolicy": "Never"}]}}}}"""
    patched = apply_merge_patch(DEPLOYMENT, json.loads(body))
    assert strict_error_message(patch_problems(body, patched, "Deployment")) == (
        'strict decoding error: duplicate field "spec.unknownDupe", duplicate field '
        '"spec.paused", duplicate field "spec.template.spec.containers[0].imagePullPolicy", '
        'unknown field "spec.template.spec.containers[0].unknownNested", unknown field '
        '"spec.unknown1", unknown field "spec.unknownDupe"')


def test_repeated_problems_are_reported_once():
    _, problems = strict_decode('{"apiVersion": "v1", "kind": "Pod", "metadata": '
                                '{"name": "a", "name": "b", "name": "c"}}', "Pod")
    assert problems == ['duplicate field "metadata.name"']


def test_strict_decode_of_a_clean_body_and_malformed_json():
    obj, problems = strict_decode(json.dumps(SERVICE), "Service")
    assert problems == [] and obj == SERVICE
    with pytest.raises(ValueError):
        strict_decode(b"{not json", "Pod")


def test_prune_and_duplicates_helpers():
    assert prune_unknown_fields("Pod", POD)["spec"]["containers"][0] == {
        "name": "web", "image": "echo", "ports": [{"containerPort": 8080}]}
    assert POD["spec"]["containers"][0]["imagee"] == "typo"      # input untouched
    assert duplicate_fields('{"spec": {"a": 1, "a": 2, "b": [{"c": 1, "c": 2}]}}') == [
        "spec.a", "spec.b[0].c"]


def test_free_form_fields_accept_anything():
    pod = json.loads(json.dumps(LIVE_POD))
    pod["metadata"]["managedFields"][0]["fieldsV1"] = {"f:anything": {"k:{\"x\":1}": {}}}
    pod["spec"]["volumes"] = [{"name": "v", "gcePersistentDisk": {"pdName": "x", "fsType": "y"}}]
    assert unknown_fields("Pod", pod) == []


# --- real kubectl against a stub server ------------------------------------------------------

KUBECTL = shutil.which("kubectl")


class StubAPIServer:
    """Discovery, the OpenAPI endpoints and an in-memory store, on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.objects: dict[str, dict] = {}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())

    def __enter__(self) -> StubAPIServer:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @staticmethod
    def _status(code: int, reason: str, message: str) -> Any:
        from aiohttp import web

        return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Failure", "message": message, "reason": reason,
                                  "code": code}, status=code)

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        from netlab.api.patch import PatchError, apply_patch

        body = await request.read()
        self.requests.append({"method": request.method, "path": request.path,
                              "query": dict(request.query), "body": body,
                              "accept": request.headers.get("Accept"),
                              "content_type": request.headers.get("Content-Type")})
        path = request.path
        if path.startswith("/openapi"):
            out = serve_openapi(path, dict(request.query), request.headers.get("Accept"),
                                request.headers.get("If-None-Match"))
            return web.Response(status=out.status, headers=out.headers, body=out.body)
        if path == "/version":
            return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        doc = resources.discovery_document(path)
        if doc is not None:
            return web.json_response(doc)
        parts = [p for p in path.split("/") if p]
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        namespace = rest[1] if rest[:1] == ["namespaces"] and len(rest) > 2 else None
        rest = rest[2:] if namespace else rest
        res = resources.get_resource(group, version, rest[0])
        if res is None:
            return self._status(404, "NotFound", "the server could not find the resource")
        api_version = res.api_version(version)
        if request.method == "POST":
            obj, problems = strict_decode(body, res.kind, api_version)
            if problems and request.query.get("fieldValidation") == "Strict":
                return self._status(400, "BadRequest", strict_error_message(
                    problems, res.kind, api_version))
            name = obj["metadata"]["name"]
            obj["metadata"].update(namespace=namespace, resourceVersion="1", uid=name)
            self.objects[f"{path}/{name}"] = obj
            return web.json_response(obj, status=201)
        current = self.objects.get(path)
        if current is None:
            return self._status(404, "NotFound",
                                f'{res.plural} "{rest[-1]}" not found')
        if request.method == "PATCH":
            try:
                patched = apply_patch(request.headers.get("Content-Type", ""), current, body,
                                      res.kind)
            except PatchError as err:
                return self._status(err.code, "BadRequest", str(err))
            problems = patch_problems(body, patched, res.kind, api_version)
            if problems and request.query.get("fieldValidation") == "Strict":
                return self._status(400, "BadRequest", strict_error_message(problems))
            self.objects[path] = patched
            return web.json_response(patched)
        return web.json_response(current)

    def seen(self, method: str, path_prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.requests
                if r["method"] == method and r["path"].startswith(path_prefix)]


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[tuple[StubAPIServer, Any]]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    with StubAPIServer() as server:
        config = tmp_path / "kubeconfig"
        config.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {
                "server": f"http://127.0.0.1:{server.port}"}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "u",
                                                     "namespace": "default"}}],
            "users": [{"name": "u", "user": {}}]}))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
               "KUBECONFIG": str(config)}

        def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
            return subprocess.run(
                [KUBECTL, "--kubeconfig", str(config), "--cache-dir", str(tmp_path / "cache"),
                 "--request-timeout=20s", *args],
                input=stdin, capture_output=True, text=True, timeout=60, env=env)

        yield server, kubectl


def test_kubectl_create_with_default_validation_reaches_the_server(stub, tmp_path):
    server, kubectl = stub
    manifest = json.loads(json.dumps(POD))
    del manifest["spec"]["containers"][0]["imagee"]
    (tmp_path / "pod.json").write_text(json.dumps(manifest))
    done = kubectl("create", "-f", str(tmp_path / "pod.json"))
    assert done.returncode == 0, done.stderr
    assert "pod/web created" in done.stdout
    [post] = server.seen("POST", "/api/v1/namespaces/default/pods")
    assert post["query"]["fieldValidation"] == "Strict"
    # The probe read the v3 document; v2 was not needed.
    assert server.seen("GET", "/openapi/v3/api/v1")
    assert not server.seen("GET", "/openapi/v2")


def test_kubectl_create_with_a_typo_fails_as_kubernetes_does(stub, tmp_path):
    server, kubectl = stub
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n"
        "  - name: web\n    image: echo\n    imagee: typo\n")
    done = kubectl("create", "-f", str(tmp_path / "pod.yaml"))
    assert done.returncode != 0
    assert ('Error from server (BadRequest): error when creating "'
            f'{tmp_path / "pod.yaml"}": Pod in version "v1" cannot be handled as a Pod: '
            'strict decoding error: unknown field "spec.containers[0].imagee"') in done.stderr
    assert not server.objects


def _documents(items: list[dict]) -> str:
    # A multi-document YAML stream (JSON documents are YAML too); the leading comment keeps
    # kubectl from sniffing the stream as one JSON document.
    return "# manifests\n" + "\n---\n".join(json.dumps(item) for item in items) + "\n"


def test_kubectl_apply_patches_with_openapi_v3(stub, tmp_path):
    server, kubectl = stub
    manifest = tmp_path / "app.yaml"
    items = [DEPLOYMENT, SERVICE, JOB, HPA_V2]
    manifest.write_text(_documents(items))
    first = kubectl("apply", "-f", str(manifest))
    assert first.returncode == 0, first.stderr
    assert len(server.seen("POST", "/api")) == 4
    changed = json.loads(json.dumps(items))
    container = changed[0]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "agnhost:2"
    container["env"].append({"name": "B", "value": "2"})
    changed[1]["spec"]["ports"].append({"name": "https", "port": 443, "targetPort": 8443})
    manifest.write_text(_documents(changed))
    second = kubectl("apply", "-f", str(manifest))
    assert second.returncode == 0, second.stderr
    # No "warning: error calculating patch from openapi v3 spec": the schemas cover every
    # field, so kubectl never fell back to v2 (nor needed it to validate).
    assert "warning" not in second.stderr.lower(), second.stderr
    assert not server.seen("GET", "/openapi/v2")
    [deploy_patch] = server.seen("PATCH", "/apis/apps/v1/namespaces/default/deployments/web")
    assert deploy_patch["content_type"] == "application/strategic-merge-patch+json"
    assert deploy_patch["query"]["fieldValidation"] == "Strict"
    patch = json.loads(deploy_patch["body"])
    spec = patch["spec"]["template"]["spec"]
    assert spec["$setElementOrder/containers"] == [{"name": "web"}]
    assert spec["containers"][0]["image"] == "agnhost:2"
    stored = server.objects["/apis/apps/v1/namespaces/default/deployments/web"]
    env = stored["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["A", "POD_IP", "CPU", "B"]
    svc = server.objects["/api/v1/namespaces/default/services/web"]
    assert [p["port"] for p in svc["spec"]["ports"]] == [80, 443]


def test_kubectl_apply_of_a_list_goes_through_the_v2_document(stub, tmp_path):
    """A ``kind: List`` is never "supported" by the V3 probe, so kubectl validates it
    client-side with the v2 protobuf: that must parse, and then skip to the server."""
    server, kubectl = stub
    bad = json.loads(json.dumps(SERVICE))
    bad["spec"]["portz"] = []
    manifest = tmp_path / "list.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                    "items": [JOB, bad]}))
    done = kubectl("apply", "-f", str(manifest))
    assert server.seen("GET", "/openapi/v2")[0]["accept"] == openapi.PROTOBUF_V2
    assert done.returncode != 0
    assert "job.batch/burn created" in done.stdout
    assert ('Service in version "v1" cannot be handled as a Service: strict decoding error: '
            'unknown field "spec.portz"') in done.stderr


def test_kubectl_explain_reads_the_v3_documents(stub):
    _, kubectl = stub
    done = kubectl("explain", "deployment.spec.strategy")
    assert done.returncode == 0, done.stderr
    assert "rollingUpdate" in done.stdout and "KIND:" in done.stdout
