"""PriorityClass (scheduling.k8s.io/v1): the registry row, defaulting, validation with
upstream's field paths and messages, its Table columns, and the pod spec's priority fields."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from netlab.api import defaults, resources
from netlab.api.tables import to_table
from netlab.api.validation import validate, validate_update

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def pc(name: str = "high", **fields) -> dict:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, **fields}


def _errors(obj: dict) -> list[str]:
    defaults.apply_defaults("PriorityClass", obj)
    return [str(e) for e in validate("PriorityClass", obj, False)]


def test_served_as_kubectl_knows_it():
    res = resources.resolve("pc")
    assert (res.group, res.versions, res.kind, res.plural, res.namespaced) == (
        "scheduling.k8s.io", ("v1",), "PriorityClass", "priorityclasses", False)
    assert resources.resolve("priorityclasses.scheduling.k8s.io") is res
    doc = resources.api_resource_list("scheduling.k8s.io", "v1")
    assert doc is not None and [e["name"] for e in doc["resources"]] == ["priorityclasses"]
    assert "scheduling.k8s.io" in resources.groups()


def test_preemption_policy_defaults_and_value_reads_zero():
    obj = defaults.apply_defaults("PriorityClass", pc())
    assert obj["preemptionPolicy"] == "PreemptLowerPriority" and obj["value"] == 0
    kept = defaults.apply_defaults("PriorityClass", pc(value=5, preemptionPolicy="Never"))
    assert (kept["value"], kept["preemptionPolicy"]) == (5, "Never")


@pytest.mark.parametrize(("obj", "errs"), [
    (pc(value=1000000000, globalDefault=True, description="top"), []),
    (pc(value=-5), []),
    (pc(value=1000000001), [
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]),
    (pc("system-cluster-critical", value=2000000000), []),
    (pc("system-node-critical", value=2000001000), []),
    (pc("system-node-critical", value=7), [
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved "
        "for system use only. error: value of system-node-critical PriorityClass must be "
        "2000001000"]),
    (pc("system-cluster-critical", value=2000000000, globalDefault=True), [
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved "
        "for system use only. error: globalDefault of system-cluster-critical PriorityClass "
        "must be false"]),
    (pc("system-mine", value=10), [
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved "
        "for system use only. error: system-mine is not a known system priority class"]),
    (pc(value=1, preemptionPolicy="Sometimes"), [
        'preemptionPolicy: Unsupported value: "Sometimes": supported values: '
        '"PreemptLowerPriority", "Never"']),
    (pc(value=1, preemptionPolicy=""), ["preemptionPolicy: Required value"]),
    (pc("High", value=1), [
        'metadata.name: Invalid value: "High": a lowercase RFC 1123 subdomain must consist of '
        "lower case alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
])
def test_validation_matches_upstream(obj, errs):
    assert _errors(obj) == errs


def test_value_and_preemption_policy_are_immutable_description_is_not():
    old = defaults.apply_defaults("PriorityClass", pc(value=10, description="a"))
    changed = defaults.apply_defaults("PriorityClass", pc(value=11, description="b",
                                                          preemptionPolicy="Never"))
    assert [str(e) for e in validate_update("PriorityClass", changed, old, False)] == [
        "value: Forbidden: may not be changed in an update.",
        'preemptionPolicy: Invalid value: "Never": field is immutable']
    described = defaults.apply_defaults("PriorityClass", pc(value=10, description="b",
                                                            globalDefault=True))
    assert validate_update("PriorityClass", described, old, False) == []


def test_table_columns_are_kubectls():
    table = to_table("PriorityClass", [], NOW)
    assert [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", "string", 0), ("Value", "integer", 0), ("Global-Default", "boolean", 0),
        ("Age", "string", 0), ("PreemptionPolicy", "string", 0)]
    obj = defaults.apply_defaults("PriorityClass", pc(value=1000, globalDefault=True))
    obj["metadata"]["creationTimestamp"] = "2025-12-31T23:00:00Z"
    assert to_table("PriorityClass", [obj], NOW)["rows"][0]["cells"] == [
        "high", 1000, True, "60m", "PreemptLowerPriority"]


def test_pod_spec_priority_fields_are_checked_in_pods_and_templates():
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {
        "containers": [{"name": "c", "image": "i"}], "priorityClassName": "Bad_Name",
        "preemptionPolicy": "Always"}}
    defaults.apply_defaults("Pod", pod)
    errs = [str(e) for e in validate("Pod", pod, True)]
    assert 'spec.priorityClassName: Invalid value: "Bad_Name": a lowercase RFC 1123 ' \
           "subdomain must consist of" in " ".join(errs)
    assert 'spec.preemptionPolicy: Unsupported value: "Always": supported values: ' \
           '"PreemptLowerPriority", "Never"' in errs
    deploy = {"metadata": {"name": "d", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "preemptionPolicy": ""}}}}
    defaults.apply_defaults("Deployment", deploy)
    assert [str(e) for e in validate("Deployment", deploy, True)] == [
        "spec.template.spec.preemptionPolicy: Required value"]
