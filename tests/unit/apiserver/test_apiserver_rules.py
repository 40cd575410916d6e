"""Pure rules the API server relies on: defaulting, validation messages, Status shapes,
and the stored encoding with its resourceVersion splice."""

from __future__ import annotations

import json

import pytest
from apiserver_kit import deployment, pod, service

from netlab.api import defaults, errors, objects, validation
from netlab.api.resources import by_kind
from netlab.master.apiserver import conversion, strategy

JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
       "spec": {"template": {"metadata": {"labels": {"app": "j"}}, "spec": {
           "restartPolicy": "Never", "containers": [{"name": "c", "image": "x:1"}]}}}}
HPA = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
       "metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment",
                                                              "name": "d"},
                                           "maxReplicas": 3, "behavior": {"scaleUp": {}}}}


@pytest.mark.parametrize("kind,obj", [
    ("Pod", pod("p", hostNetwork=True)), ("Deployment", deployment("d")),
    ("Service", service("s", type="LoadBalancer", sessionAffinity="ClientIP")),
    ("Job", JOB), ("HorizontalPodAutoscaler", HPA),
    ("Namespace", {"metadata": {"name": "n"}}),
    ("ReplicaSet", {"metadata": {"name": "r"}, "spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "i@sha256:00", "ports": [{"containerPort": 1}],
                        "livenessProbe": {"httpGet": {"port": 80}}}],
        "volumes": [{"name": "v"}, {"name": "cm", "configMap": {"name": "x"}}]}}}}),
])
def test_defaulting_is_idempotent(kind, obj):
    once = defaults.apply_defaults(kind, json.loads(json.dumps(obj)))
    twice = defaults.apply_defaults(kind, json.loads(json.dumps(once)))
    assert once == twice
    assert once != obj or kind == "Namespace"


def test_specific_defaults():
    p = defaults.apply_defaults("Pod", pod("p", hostNetwork=True))
    c = p["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "Always" and p["spec"]["enableServiceLinks"] is True
    assert defaults.image_pull_policy("nginx:1.25") == "IfNotPresent"
    assert defaults.image_pull_policy("registry:5000/nginx") == "Always"
    assert defaults.image_pull_policy("nginx@sha256:abc") == "IfNotPresent"
    rs = defaults.apply_defaults("ReplicaSet", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "livenessProbe": {"httpGet": {"port": 80}}}],
        "volumes": [{"name": "v"}, {"name": "cm", "configMap": {"name": "x"}}]}}}})
    tspec = rs["spec"]["template"]["spec"]
    assert tspec["containers"][0]["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
        "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert tspec["volumes"] == [{"name": "v", "emptyDir": {}},
                                {"name": "cm", "configMap": {"name": "x", "defaultMode": 420}}]
    assert "enableServiceLinks" not in tspec  # pods only, as in Kubernetes
    job = defaults.apply_defaults("Job", json.loads(json.dumps(JOB)))
    assert job["spec"]["completions"] == 1 and job["spec"]["backoffLimit"] == 6
    assert job["metadata"]["labels"] == {"app": "j"}
    hpa = defaults.apply_defaults("HorizontalPodAutoscaler", json.loads(json.dumps(HPA)))
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["behavior"]["scaleUp"]["selectPolicy"] == "Max"
    svc = defaults.apply_defaults("Service", service("s", type="NodePort", ports=[
        {"port": 80, "targetPort": "http"}]))
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"


def test_qos_classes():
    def qos(*resources: dict) -> str:
        spec = {"containers": [{"name": str(i), "resources": r} for i, r in enumerate(resources)]}
        return defaults.pod_qos_class(spec)

    full = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m",
                                                                   "memory": "1Gi"}}
    assert qos({}) == "BestEffort"
    assert qos(full) == "Guaranteed"
    assert qos(full, {}) == "Burstable"
    assert qos({"requests": {"cpu": "100m"}}) == "Burstable"


def test_validation_messages():
    errs = validation.validate("Service", service("Web"), namespaced=True)
    assert str(errs[0]).startswith('metadata.name: Invalid value: "Web": a DNS-1035 label')
    bad = deployment("d")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    messages = [str(e) for e in validation.validate("Deployment", bad, namespaced=True)]
    assert ('spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
            "`selector` does not match template `labels`") in messages
    assert ('spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
            '"Always"') in messages
    env = pod("p")
    env["spec"]["containers"][0]["env"] = [{"name": "1BAD"}]
    env["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2"},
                                                 "limits": {"cpu": "1"}}
    messages = [str(e) for e in validation.validate("Pod", env, namespaced=True)]
    assert any(m.startswith('spec.containers[0].env[0].name: Invalid value: "1BAD": a valid '
                            "environment variable name") for m in messages)
    assert ('spec.containers[0].resources.requests: Invalid value: "2": must be less than or '
            "equal to cpu limit of 1") in messages
    wrong = pod("p")
    wrong["spec"]["containers"] = "nope"
    assert validation.validate("Pod", wrong, namespaced=True)  # reported, not a crash
    for kind in ("Deployment", "ReplicaSet", "Job"):
        shapeless = deployment("d")
        shapeless["spec"]["selector"] = {"matchLabels": ["app"]}
        messages = [str(e) for e in validation.validate(kind, shapeless, namespaced=True)]
        assert any(m.startswith("spec.selector: Invalid value") for m in messages), messages


def test_invalid_status_shape():
    err = errors.invalid_object("Deployment", "d", [errors.required("spec.selector")], "apps")
    status = err.status()
    assert status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Deployment.apps "d" is invalid: spec.selector: Required value',
        "reason": "Invalid",
        "details": {"name": "d", "group": "apps", "kind": "Deployment", "causes": [
            {"reason": "FieldValueRequired", "message": "Required value",
             "field": "spec.selector"}]},
        "code": 422}


def test_stored_encoding_splices_resource_version():
    obj = {"kind": "Pod", "apiVersion": "v1", "spec": {"x": 1},
           "metadata": {"name": "a", "resourceVersion": "9"}}
    stored = objects.encode_for_storage(obj)
    assert b"resourceVersion" not in stored
    assert stored.startswith(b'{"apiVersion":"v1","kind":"Pod","metadata":{')
    out = json.loads(objects.with_resource_version(stored, 42))
    assert out["metadata"] == {"resourceVersion": "42", "name": "a"}
    empty = objects.encode_for_storage({"kind": "X", "apiVersion": "v1", "metadata": {}})
    assert json.loads(objects.with_resource_version(empty, 7))["metadata"] == {
        "resourceVersion": "7"}
    foreign = json.dumps({"metadata": {"name": "b"}}).encode()
    assert json.loads(objects.with_resource_version(foreign, 3))["metadata"][
        "resourceVersion"] == "3"


def test_strategy_generation_and_status_rules():
    res = by_kind("Deployment")
    old = deployment("d")
    strategy.prepare_for_create(res, old)
    assert old["metadata"]["generation"] == 1 and old["status"] == {}
    new = json.loads(json.dumps(old))
    new["metadata"]["labels"] = {"x": "y"}
    assert strategy.prepare_for_update(res, new, old)["metadata"]["generation"] == 1
    new = json.loads(json.dumps(old))
    new["spec"]["replicas"] = 5
    assert strategy.prepare_for_update(res, new, old)["metadata"]["generation"] == 2
    bound = pod("p", nodeName="n1")
    assert strategy.pod_grace_period(bound, None) == 30
    assert strategy.pod_grace_period(bound, -5) == 1
    assert strategy.pod_grace_period(pod("u"), 30) == 0


def test_hpa_conversion_round_trip():
    res = by_kind("HorizontalPodAutoscaler")
    v2 = defaults.apply_defaults("HorizontalPodAutoscaler", json.loads(json.dumps(HPA)))
    v1 = conversion.to_served(res, "v1", v2)
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 80
    back = conversion.to_storage(res, "v1", v1, stored=v2)
    assert back["spec"]["metrics"] == v2["spec"]["metrics"]
    assert back["spec"]["behavior"] == v2["spec"]["behavior"]  # v2-only fields survive
