"""The server stays up under hostile input: random and truncated bodies, headers,
paths, query strings, content types and methods (fixed seed, bounded in time),
and afterwards still answers /readyz and serves a correct list."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Optional

from apiserver_kit import PODS, TOKEN, deployment, pod, service

SEED = 20240611
REQUESTS = 2500
BUDGET = 25.0  # seconds; the loop stops early rather than slowing the suite

PATHS = [
    "/", "/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/healthz", "/openapi/v3",
    "/api/v1/pods", PODS, f"{PODS}/fuzz", f"{PODS}/fuzz/status", f"{PODS}/fuzz/log",
    f"{PODS}/fuzz/binding", f"{PODS}/fuzz/exec", f"{PODS}/fuzz/attach", "/api/v1/namespaces",
    f"{PODS}/fuzz/portforward", f"{PODS}/fuzz/portforward?ports=80,x",
    "/api/v1/namespaces/fuzz",
    "/api/v1/namespaces/default/services", "/api/v1/nodes/n1",
    "/apis/apps/v1/namespaces/default/deployments/fuzz/scale",
    "/apis/apps/v1/namespaces/default/deployments", "/apis/batch/v1/namespaces/x/jobs",
    "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
    "/api/v1/watch/namespaces/default/pods", "/api/v1/namespaces/%2e%2e/pods",
    "/api/v1/namespaces/default/pods/a%00b", "/apis/apps", "/api/v1/namespaces//pods",
    "/apis/batch/v1/namespaces/default/cronjobs", f"{PODS}/fuzz/eviction",
    "/apis/policy/v1/namespaces/default/poddisruptionbudgets/fuzz/status",
    "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies",
    "/apis/networking.k8s.io/v1/namespaces/default/ingresses/fuzz/status",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/fuzz",
    "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
    "/apis/apiregistration.k8s.io/v1/apiservices/v1.fuzz",
    "/apis/metrics.k8s.io", "/apis/metrics.k8s.io/v1beta1/nodes/n1",
    "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/fuzz",
    "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/a/b/c",
    f"{PODS}/fuzz/proxy", f"{PODS}/fuzz:80/proxy/a?b=c", f"{PODS}/http:fuzz:x:y/proxy/",
    "/api/v1/namespaces/default/services/fuzz:80/proxy/", "/api/v1/namespaces/%2e%2e/pods/"
    "fuzz/proxy/%00",
]
METHODS = ["GET"] * 6 + ["POST"] * 4 + ["PUT"] * 3 + ["PATCH"] * 4 + ["DELETE"] * 2 + [
    "OPTIONS", "PROPFIND", "HEAD"]
# Paths and bodies that fit each other, so that many requests get past routing.
COHERENT = [
    ("POST", PODS, 0), ("PUT", f"{PODS}/fuzz", 0), ("PATCH", f"{PODS}/fuzz", 4),
    ("PUT", f"{PODS}/fuzz/status", 0), ("POST", f"{PODS}/fuzz/binding", 6),
    ("POST", "/apis/apps/v1/namespaces/default/deployments", 1),
    ("PATCH", "/apis/apps/v1/namespaces/default/deployments/fuzz", 5),
    ("PATCH", "/apis/apps/v1/namespaces/default/deployments/fuzz/scale", 4),
    ("POST", "/api/v1/namespaces/default/services", 2), ("POST", "/api/v1/namespaces", 3),
    ("DELETE", f"{PODS}/fuzz", 3), ("DELETE", "/api/v1/namespaces/fuzz", 3),
    ("POST", "/apis/batch/v1/namespaces/default/cronjobs", 7),
    ("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", 8),
    ("POST", f"{PODS}/fuzz/eviction", 9),
    ("POST", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", 10),
    ("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", 11),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", 12),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", 12),
    ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", 12),
    ("POST", "/apis/apiregistration.k8s.io/v1/apiservices", 13),
    ("POST", "/apis/networking.k8s.io/v1/namespaces/default/ingresses", 14),
]
CONTENT_TYPES = ["application/json", "application/yaml", "application/merge-patch+json",
                 "application/strategic-merge-patch+json", "application/json-patch+json",
                 "application/apply-patch+yaml", "text/plain", "", "application/x-www-form"]
ACCEPTS = ["application/json", "application/yaml", "*/*", "application/vnd.kubernetes.protobuf",
           "application/json;as=Table;v=v1;g=meta.k8s.io", "text/html", ";;;",
           "application/json;q=x",
           "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"]
QUERY_KEYS = ["watch", "labelSelector", "fieldSelector", "limit", "continue", "resourceVersion",
              "timeoutSeconds", "dryRun", "gracePeriodSeconds", "propagationPolicy",
              "fieldValidation", "includeObject", "resourceVersionMatch", "container",
              "tailLines", "pretty", "allowWatchBookmarks", "sendInitialEvents"]
QUERY_VALUES = ["", "1", "0", "-1", "true", "All", "x=y", "!(", "a in (b", "9" * 30, "Strict",
                "Foreground", "\u00e9", "%zz", "1.5", "spec.nodeName=n", "Object", "Exact"]
SEEDS = [pod("fuzz"), deployment("fuzz"), service("fuzz"), {"metadata": {"name": "fuzz"}},
         {"spec": {"replicas": 2}}, [{"op": "add", "path": "/metadata/labels/x", "value": "y"}],
         {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "fuzz"},
          "target": {"name": "n1"}},
         {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "fuzz"},
          "spec": {"schedule": "*/5 1-3 * jan mon-fri", "timeZone": "Europe/Paris",
                   "jobTemplate": {"spec": {"template": {"spec": {
                       "restartPolicy": "Never",
                       "containers": [{"name": "c", "image": "busybox"}]}}}}}},
         {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "fuzz"},
          "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "test"}}}},
         {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "fuzz"},
          "deleteOptions": {"gracePeriodSeconds": 0}},
         {"metadata": {"name": "fuzz"}, "spec": {"podSelector": {}, "egress": [{"to": [
             {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
             "ports": [{"port": 80, "endPort": 90}]}]}},
         {"metadata": {"name": "fuzz"}, "roleRef": {"kind": "Role", "name": "r"},
          "subjects": [{"kind": "User", "name": "u"}]},
         {"spec": {"user": "u", "groups": ["g"], "namespace": "default",
                   "resourceAttributes": {"verb": "get", "resource": "pods"}}},
         {"metadata": {"name": "v1.fuzz"}, "spec": {"group": "fuzz", "version": "v1",
                                                    "groupPriorityMinimum": 1,
                                                    "versionPriority": 1}},
         {"metadata": {"name": "fuzz"}, "spec": {"rules": [{"host": "a.io", "http": {
             "paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {
                 "name": "s", "port": {"number": 80}}}}]}}]}}]


def mutate(rng: random.Random, value: object, depth: int = 0) -> object:
    """A random structural mutation of a JSON value."""
    choice = rng.random()
    if depth > 6 or choice < 0.1:
        return rng.choice([None, 0, -1, 2**70, 1.5, "", "x" * rng.randint(0, 300), True, [],
                           {}, "None", "../..", {"$patch": "delete"}])
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if rng.random() < 0.1:
                continue
            out[k if rng.random() > 0.05 else k + "x"] = mutate(rng, v, depth + 1)
        if rng.random() < 0.1:
            out[rng.choice(["metadata", "spec", "status", "kind", "apiVersion", "zz"])] = \
                mutate(rng, {}, depth + 1)
        return out
    if isinstance(value, list):
        return [mutate(rng, v, depth + 1) for v in value if rng.random() > 0.1]
    return value if rng.random() < 0.7 else mutate(rng, None, depth + 7)


def random_body(rng: random.Random, seed: Optional[int] = None,
                seeds: Optional[list] = None) -> bytes:
    seeds = SEEDS if seeds is None else seeds
    kind = rng.random()
    if kind < 0.15:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    value = seeds[seed] if seed is not None else rng.choice(seeds)
    if seed is not None and rng.random() < 0.3:
        return json.dumps(value).encode()  # intact, so some writes succeed
    text = json.dumps(mutate(rng, value)).encode()
    if kind < 0.35:
        return text[:rng.randint(0, len(text))]  # truncated
    if kind < 0.4:
        return b"a: &x [1]\nb: *x\n" if rng.random() < 0.5 else b"- !!binary aGk=\n"
    return text


def generate(rng: random.Random, count: int = REQUESTS, coherent: Optional[list] = None,
             paths: Optional[list] = None,
             seeds: Optional[list] = None) -> list[tuple[str, str, dict, dict, bytes]]:
    """The requests, drawn up front so the run is the same whatever the timing."""
    requests = []
    for _ in range(count):
        seed = None
        if rng.random() < 0.5:
            method, path, seed = rng.choice(coherent or COHERENT)
        else:
            method, path = rng.choice(METHODS), rng.choice(paths or PATHS)
        params = {}
        for _ in range(rng.randint(0, 3)):
            params[rng.choice(QUERY_KEYS)] = rng.choice(QUERY_VALUES)
        if "watch" in path or params.get("watch") not in (None, "0", "false"):
            params["timeoutSeconds"] = "1"  # keep watches short
        headers = {"Accept": rng.choice(ACCEPTS)}
        if rng.random() < 0.9:
            headers["Authorization"] = f"Bearer {TOKEN}"
        body = random_body(rng, seed, seeds) if method in ("POST", "PUT", "PATCH", "DELETE") \
            else b""
        if body or rng.random() < 0.5:
            headers["Content-Type"] = rng.choice(CONTENT_TYPES)
        requests.append((method, path, params, headers, body))
    return requests


async def _fire(c, requests: list, budget: float) -> tuple[int, dict[int, int]]:
    """Send ``requests`` (16 at a time) until the budget is spent; (sent, statuses)."""
    deadline = time.monotonic() + budget
    statuses: dict[int, int] = {}
    sent = 0
    limit = asyncio.Semaphore(16)  # concurrent, so one-second watches overlap

    async def send(method: str, path: str, params: dict, headers: dict,
                   body: bytes) -> None:
        nonlocal sent
        async with limit:
            if time.monotonic() > deadline:
                return
            try:
                async with c.raw.request(method, path, params=params, data=body,
                                         headers=headers, timeout=10) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
            except Exception as err:  # a transport error would mean the server broke
                if method != "HEAD":
                    raise AssertionError(f"{method} {path} {params}: {err!r}") from err
            sent += 1

    await asyncio.gather(*(send(*r) for r in requests))
    print("fuzz statuses", sorted(statuses.items()))
    return sent, statuses


async def test_fuzz(api, memory_store):
    requests = generate(random.Random(SEED))
    async with api(memory_store, max_body=64 * 1024) as c:
        await c.ok("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
        sent, statuses = await _fire(c, requests, BUDGET)
        assert sent >= 500, sent
        assert statuses.get(500, 0) == 0, statuses
        # Still healthy, and lists are still right.
        async with c.raw.get("/readyz") as resp:
            assert resp.status == 200 and await resp.text() == "ok"
        await c.ok("POST", PODS, pod("after-fuzz"))
        listing = await c.ok("GET", PODS)
        names = [i["metadata"]["name"] for i in listing["items"]]
        assert "after-fuzz" in names and names == sorted(names)
        assert listing["metadata"]["resourceVersion"] == str(memory_store.current_revision())
        for item in listing["items"]:
            status, got = await c.get(f"{PODS}/{item['metadata']['name']}")
            assert status == 200 and got == item


# --- CustomResourceDefinitions and custom objects ------------------------------------------------

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
             "versions": [{
                 "name": "v1", "served": True, "storage": True,
                 "subresources": {"status": {}, "scale": {
                     "specReplicasPath": ".spec.replicas",
                     "statusReplicasPath": ".status.replicas"}},
                 "additionalPrinterColumns": [
                     {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                     {"name": "Ready", "type": "string",
                      "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}],
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                     "spec": {"type": "object", "required": ["size"], "properties": {
                         "size": {"type": "integer", "minimum": 1},
                         "name": {"type": "string", "pattern": "^[a-z(]+$", "maxLength": 9},
                         "replicas": {"type": "integer"},
                         "tags": {"type": "array", "items": {"type": "string"}},
                         "port": {"x-kubernetes-int-or-string": True},
                         "free": {"type": "object",
                                  "x-kubernetes-preserve-unknown-fields": True},
                         "mode": {"type": "string", "enum": ["a", "b"], "default": "a"}}},
                     "status": {"type": "object",
                                "x-kubernetes-preserve-unknown-fields": True}}}},
             }]},
}
CR_SEEDS = [
    CRD,
    {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "fuzz"},
     "spec": {"size": 2, "name": "abc", "tags": ["x"], "port": 80, "free": {"a": [1]}}},
    {"status": {"replicas": 1, "conditions": [{"type": "Ready", "status": "True"}]}},
    {"spec": {"replicas": 3}},
    [{"op": "replace", "path": "/spec/size", "value": 5}],
]
CR_COHERENT = [
    ("POST", CRDS, 0), ("PUT", f"{CRDS}/widgets.example.com", 0),
    ("PATCH", f"{CRDS}/widgets.example.com", 3), ("PUT", f"{CRDS}/widgets.example.com/status", 0),
    ("POST", WIDGETS, 1), ("PUT", f"{WIDGETS}/fuzz", 1), ("PATCH", f"{WIDGETS}/fuzz", 3),
    ("PATCH", f"{WIDGETS}/fuzz", 4), ("PUT", f"{WIDGETS}/fuzz/status", 2),
    ("PATCH", f"{WIDGETS}/fuzz/status", 2), ("PATCH", f"{WIDGETS}/fuzz/scale", 3),
    ("DELETE", f"{WIDGETS}/fuzz", 3), ("POST", "/apis/example.com/v1/widgets", 1),
]
CR_PATHS = [CRDS, f"{CRDS}/widgets.example.com", WIDGETS, f"{WIDGETS}/fuzz",
            f"{WIDGETS}/fuzz/status", f"{WIDGETS}/fuzz/scale", "/apis/example.com/v1",
            "/apis/example.com", "/apis/example.com/v1/widgets",
            "/apis/example.com/v1/watch/namespaces/default/widgets"]


async def test_fuzz_crds_and_custom_objects(api, memory_store):
    requests = generate(random.Random(SEED + 1), 1200, CR_COHERENT, CR_PATHS, CR_SEEDS)
    async with api(memory_store, max_body=64 * 1024) as c:
        await c.ok("POST", CRDS, CRD)
        sent, statuses = await _fire(c, requests, BUDGET / 2)
        assert sent >= 300, sent
        assert statuses.get(500, 0) == 0, statuses
        async with c.raw.get("/readyz") as resp:
            assert resp.status == 200
        # The CRD may have been deleted by the fuzz; either way the server answers sanely.
        status, _ = await c.get(f"{CRDS}/widgets.example.com")
        assert status in (200, 404)


# --- server-side apply ---------------------------------------------------------------------------

DEPLOY = "/apis/apps/v1/namespaces/default/deployments/fuzz"
APPLY_SEEDS = [
    pod("fuzz"), deployment("fuzz"), service("fuzz"),
    {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "fuzz"},
     "spec": {"replicas": 2}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fuzz"},
     "status": {"observedGeneration": 2, "conditions": [{"type": "Available",
                                                         "status": "True"}]}},
    CR_SEEDS[1],
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fuzz", "finalizers": ["a/b"],
                                                     "labels": {"a": "b"}},
     "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 1}],
                              "env": [{"name": "A", "value": "1"}]}]}},
]
APPLY_TARGETS = [
    (f"{PODS}/fuzz", (0, 6)), (DEPLOY, (1,)), (f"{DEPLOY}/scale", (3,)),
    (f"{DEPLOY}/status", (4, 1)), ("/api/v1/namespaces/default/services/fuzz", (2,)),
    (f"{WIDGETS}/fuzz", (5,)), (f"{WIDGETS}/fuzz/status", (5,)), (f"{WIDGETS}/fuzz/scale", (3,)),
    (f"{PODS}/fuzz/binding", (0,)), ("/api/v1/namespaces/default/pods", (0,)),
]
MANAGERS = ["kubectl", "a", "b", "kubectl-client-side-apply", "", "x" * 200, "\u0007bell"]


def generate_apply(rng: random.Random, count: int) -> list[tuple[str, str, dict, dict, bytes]]:
    requests = []
    for _ in range(count):
        path, seeds = rng.choice(APPLY_TARGETS)
        params = {"fieldManager": rng.choice(MANAGERS)}
        if rng.random() < 0.3:
            params["force"] = rng.choice(["true", "false", "1", ""])
        if rng.random() < 0.2:
            params["dryRun"] = rng.choice(["All", "x"])
        if rng.random() < 0.2:
            params["fieldValidation"] = rng.choice(["Strict", "Warn", "Ignore", "x"])
        headers = {"Accept": "application/json", "Authorization": f"Bearer {TOKEN}",
                   "Content-Type": rng.choice(["application/apply-patch+yaml"] * 6 + [
                       "application/apply-patch+yaml; charset=utf-8",
                       "application/apply-patch+cbor"])}
        seed = APPLY_SEEDS[rng.choice(seeds)]
        if rng.random() < 0.1:
            body = rng.choice([b"", b"- a", b"42", b"null", b"{", b"a: &x [1]\nb: *x\n",
                               b"apiVersion: v1\nkind: Pod\nmetadata: 3\n"])
        else:
            body = json.dumps(seed if rng.random() < 0.3 else mutate(rng, seed)).encode()
        method = "PATCH" if rng.random() < 0.95 else rng.choice(["PUT", "POST"])
        requests.append((method, path, params, headers, body))
    return requests


async def test_fuzz_apply(api, memory_store):
    requests = generate_apply(random.Random(SEED + 2), 1500)
    async with api(memory_store, max_body=64 * 1024) as c:
        await c.ok("POST", CRDS, CRD)
        await c.ok("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
        sent, statuses = await _fire(c, requests, BUDGET / 2)
        assert sent >= 300, sent
        assert statuses.get(500, 0) == 0, statuses
        assert statuses.get(200, 0) + statuses.get(201, 0) > 0, statuses
        assert statuses.get(409, 0) > 0, statuses  # some managers did conflict
        async with c.raw.get("/readyz") as resp:
            assert resp.status == 200
        # Whatever was applied still reads back with well-formed managedFields.
        for path in (f"{PODS}/fuzz", DEPLOY, f"{WIDGETS}/fuzz"):
            status, got = await c.get(path)
            if status == 200:
                for e in got["metadata"].get("managedFields", []):
                    assert e["fieldsType"] == "FieldsV1" and e["operation"] in (
                        "Apply", "Update") and e["fieldsV1"]
