"""The resource registry, name resolution, store keys and discovery documents.

Expectations are what kubectl and its users see against a real Kubernetes API
server: the same short names and categories, and discovery payloads of the
same shape as ``kubectl get --raw /api/v1`` returns.
"""

from __future__ import annotations

import json

import pytest

from netlab.api import resources
from netlab.api.resources import (
    UnknownResourceError,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    by_api_version_kind,
    by_category,
    by_kind,
    discovery_document,
    get_resource,
    parse_store_key,
    resolve,
    resolve_with_version,
    store_key,
    store_prefix,
)

FULL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# --- registry contents ---------------------------------------------------------------------------


@pytest.mark.parametrize(("plural", "group", "kind", "short_names", "namespaced"), [
    ("pods", "", "Pod", ("po",), True),
    ("services", "", "Service", ("svc",), True),
    ("endpoints", "", "Endpoints", ("ep",), True),
    ("events", "", "Event", ("ev",), True),
    ("namespaces", "", "Namespace", ("ns",), False),
    ("nodes", "", "Node", ("no",), False),
    ("deployments", "apps", "Deployment", ("deploy",), True),
    ("replicasets", "apps", "ReplicaSet", ("rs",), True),
    ("jobs", "batch", "Job", (), True),
    ("horizontalpodautoscalers", "autoscaling", "HorizontalPodAutoscaler", ("hpa",), True),
    ("leases", "coordination.k8s.io", "Lease", (), True),
])
def test_registry_matches_kubernetes(plural, group, kind, short_names, namespaced):
    res = by_kind(kind)
    assert res is not None
    assert (res.plural, res.group, res.short_names, res.namespaced) == \
        (plural, group, short_names, namespaced)


def test_category_all_is_what_kubectl_get_all_lists():
    assert {r.plural for r in by_category("all")} == {
        "pods", "replicationcontrollers", "services", "deployments", "replicasets", "jobs",
        "cronjobs", "horizontalpodautoscalers", "daemonsets", "statefulsets"}


def test_every_typed_name_is_unambiguous():
    seen: dict[str, str] = {}
    for res in resources.all_resources():
        for name in {res.plural, res.singular, res.kind.lower(), *res.short_names}:
            assert seen.setdefault(name, res.plural) == res.plural, name


def test_resource_properties():
    dep = resolve("deploy")
    assert dep.api_version() == "apps/v1"
    assert dep.list_kind == "DeploymentList"
    assert dep.group_resource == "deployments.apps"
    pod = resolve("po")
    assert pod.api_version() == "v1"
    assert pod.group_resource == "pods"
    hpa = resolve("hpa")
    assert hpa.preferred_version == "v2"
    assert hpa.api_version("v1") == "autoscaling/v1"
    assert dep.subresource("scale").kind == "Scale"
    assert dep.subresource("log") is None


# --- lookups -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "plural", "version"), [
    ("po", "pods", "v1"),
    ("pod", "pods", "v1"),
    ("pods", "pods", "v1"),
    ("Pod", "pods", "v1"),
    ("PODS", "pods", "v1"),
    ("pods.", "pods", "v1"),
    ("svc", "services", "v1"),
    ("ep", "endpoints", "v1"),
    ("endpoints", "endpoints", "v1"),
    ("ev", "events", "v1"),
    ("ns", "namespaces", "v1"),
    ("no", "nodes", "v1"),
    ("node", "nodes", "v1"),
    ("deploy", "deployments", "v1"),
    ("deployment", "deployments", "v1"),
    ("deployments.apps", "deployments", "v1"),
    ("deployment.apps", "deployments", "v1"),
    ("deployments.v1.apps", "deployments", "v1"),
    ("rs", "replicasets", "v1"),
    ("replicasets.apps", "replicasets", "v1"),
    ("job", "jobs", "v1"),
    ("jobs.batch", "jobs", "v1"),
    ("hpa", "horizontalpodautoscalers", "v2"),
    ("hpa.autoscaling", "horizontalpodautoscalers", "v2"),
    ("horizontalpodautoscalers.v1.autoscaling", "horizontalpodautoscalers", "v1"),
    ("horizontalpodautoscaler", "horizontalpodautoscalers", "v2"),
    ("lease", "leases", "v1"),
    ("leases.coordination.k8s.io", "leases", "v1"),
    ("leases.v1.coordination.k8s.io", "leases", "v1"),
])
def test_resolve_what_users_type(typed, plural, version):
    res, got_version = resolve_with_version(typed)
    assert (res.plural, got_version) == (plural, version)
    assert resolve(typed).plural == plural


@pytest.mark.parametrize("typed", [
    "foo", "deployments.batch", "pods.apps", "hpa.v3.autoscaling", "jobs.v2.batch", "",
    "deploy.",
])
def test_resolve_unknown_names_fail_like_kubectl(typed):
    with pytest.raises(UnknownResourceError) as err:
        resolve(typed)
    assert str(err.value) == f'the server doesn\'t have a resource type "{typed}"'


@pytest.mark.parametrize(("group", "version", "plural", "kind"), [
    ("", "v1", "pods", "Pod"),
    ("apps", "v1", "deployments", "Deployment"),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("coordination.k8s.io", "v1", "leases", "Lease"),
    ("apps", "v2", "deployments", None),
    ("", "v1", "deployments", None),
    ("apps", "v1", "pods", None),
    ("batch", "v1", "cronjobs", "CronJob"),
])
def test_get_resource_by_group_version_plural(group, version, plural, kind):
    res = get_resource(group, version, plural)
    assert (res.kind if res else None) == kind


@pytest.mark.parametrize(("api_version", "kind", "plural"), [
    ("v1", "Pod", "pods"),
    ("apps/v1", "Deployment", "deployments"),
    ("autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ("apps/v1beta1", "Deployment", None),
    ("v1", "Deployment", None),
    ("batch/v1", "CronJob", "cronjobs"),
])
def test_by_api_version_kind(api_version, kind, plural):
    res = by_api_version_kind(api_version, kind)
    assert (res.plural if res else None) == plural


def test_by_kind_respects_group():
    assert by_kind("Deployment", "apps") is not None
    assert by_kind("Deployment", "") is None
    assert by_kind("Nope") is None


# --- store keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("resource", "namespace", "name", "key"), [
    ("pods", "default", "web-1", "/registry/pods/default/web-1"),
    ("deployments", "kube-system", "coredns", "/registry/deployments/kube-system/coredns"),
    ("nodes", None, "node1", "/registry/nodes/node1"),
    ("namespaces", "", "default", "/registry/namespaces/default"),
])
def test_store_key_layout(resource, namespace, name, key):
    assert store_key(resource, namespace, name) == key
    assert parse_store_key(key) == (resource, namespace or None, name)


def test_store_key_from_resource_checks_scope():
    assert store_key(resolve("po"), "default", "a") == "/registry/pods/default/a"
    assert store_key(resolve("no"), None, "n1") == "/registry/nodes/n1"
    with pytest.raises(ValueError, match="namespaced"):
        store_key(resolve("po"), None, "a")
    with pytest.raises(ValueError, match="cluster-scoped"):
        store_key(resolve("ns"), "default", "kube-system")


@pytest.mark.parametrize(("namespace", "name"), [
    ("default", ""), ("default", "a/b"), ("a/b", "x"), ("default", "../x/y"),
])
def test_store_key_rejects_names_that_would_alias_other_keys(namespace, name):
    with pytest.raises(ValueError):
        store_key("pods", namespace, name)


def test_store_prefix_does_not_match_a_longer_namespace():
    assert store_prefix("pods") == "/registry/pods/"
    prefix = store_prefix("pods", "default")
    assert prefix == "/registry/pods/default/"
    assert store_key("pods", "default", "a").startswith(prefix)
    assert not store_key("pods", "default2", "a").startswith(prefix)
    assert store_key("pods", "default", "a").startswith(store_prefix(resolve("po")))


@pytest.mark.parametrize("key", [
    "/registry/pods", "/registry/pods/a/b/c", "/other/pods/a", "/registry//a", "registry/pods/a",
])
def test_parse_store_key_rejects_non_keys(key):
    with pytest.raises(ValueError):
        parse_store_key(key)


# --- discovery -----------------------------------------------------------------------------------


def _entry(doc: dict, name: str) -> dict:
    matches = [e for e in doc["resources"] if e["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


def test_api_versions():
    assert api_versions() == {"kind": "APIVersions", "versions": ["v1"],
                              "serverAddressByClientCIDRs": []}
    doc = api_versions("192.168.100.2:6443")
    assert doc["serverAddressByClientCIDRs"] == [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "192.168.100.2:6443"}]


def test_api_group_list_with_preferred_versions():
    doc = api_group_list()
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupList", "v1")
    names = [g["name"] for g in doc["groups"]]
    # kube-apiserver's priority order, whichever groups are served.
    assert names == [g for g in resources.GROUP_ORDER if g in names]
    assert {"apps", "autoscaling", "batch", "coordination.k8s.io", "networking.k8s.io",
            "rbac.authorization.k8s.io", "authorization.k8s.io",
            "apiregistration.k8s.io"} <= set(names)
    autoscaling = doc["groups"][names.index("autoscaling")]
    assert autoscaling["versions"] == [
        {"groupVersion": "autoscaling/v2", "version": "v2"},
        {"groupVersion": "autoscaling/v1", "version": "v1"},
    ]
    assert autoscaling["preferredVersion"] == {"groupVersion": "autoscaling/v2", "version": "v2"}
    assert doc["groups"][names.index("apps")]["preferredVersion"] == {
        "groupVersion": "apps/v1", "version": "v1"}


def test_api_group():
    doc = api_group("apps")
    assert doc == {"kind": "APIGroup", "apiVersion": "v1", "name": "apps",
                   "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                   "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}
    assert api_group("extensions") is None
    assert api_group("") is None


def test_core_v1_resource_list():
    doc = api_resource_list("", "v1")
    assert doc["kind"] == "APIResourceList"
    assert doc["groupVersion"] == "v1"
    assert "apiVersion" not in doc  # as the real /api/v1 answers
    assert [e["name"] for e in doc["resources"]] == [
        "configmaps", "endpoints", "events", "namespaces", "namespaces/finalize", "nodes",
        "nodes/status", "persistentvolumeclaims", "persistentvolumeclaims/status",
        "persistentvolumes", "persistentvolumes/status", "pods", "pods/attach", "pods/binding",
        "pods/ephemeralcontainers",
        "pods/eviction", "pods/exec", "pods/log", "pods/portforward", "pods/proxy", "pods/status",
        "replicationcontrollers", "replicationcontrollers/scale",
        "replicationcontrollers/status", "secrets", "serviceaccounts", "serviceaccounts/token",
        "services", "services/proxy", "services/status"]
    assert _entry(doc, "pods") == {
        "name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
        "verbs": FULL_VERBS, "shortNames": ["po"], "categories": ["all"]}
    assert _entry(doc, "pods/log") == {
        "name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
        "verbs": ["get"]}
    assert _entry(doc, "pods/binding")["kind"] == "Binding"
    # kubectl exec and attach: upstream's kinds and verbs.
    assert _entry(doc, "pods/exec") == {
        "name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions",
        "verbs": ["create", "get"]}
    assert _entry(doc, "pods/attach")["kind"] == "PodAttachOptions"
    assert _entry(doc, "pods/portforward")["kind"] == "PodPortForwardOptions"
    assert _entry(doc, "pods/binding")["verbs"] == ["create"]
    # kubectl drain finds the eviction subresource, and the version to speak, here.
    assert _entry(doc, "pods/eviction") == {
        "name": "pods/eviction", "singularName": "", "namespaced": True, "group": "policy",
        "version": "v1", "kind": "Eviction", "verbs": ["create"]}
    assert _entry(doc, "pods/status")["verbs"] == ["get", "patch", "update"]
    assert _entry(doc, "nodes/status")["namespaced"] is False
    assert _entry(doc, "namespaces")["verbs"] == [
        "create", "delete", "get", "list", "patch", "update", "watch"]
    assert _entry(doc, "namespaces")["shortNames"] == ["ns"]
    assert "categories" not in _entry(doc, "events")
    assert _entry(doc, "events")["shortNames"] == ["ev"]
    assert _entry(doc, "endpoints")["singularName"] == "endpoints"


def test_apps_v1_resource_list_has_scale_in_autoscaling_v1():
    doc = api_resource_list("apps", "v1")
    assert (doc["apiVersion"], doc["groupVersion"]) == ("v1", "apps/v1")
    assert [e["name"] for e in doc["resources"]] == [
        "controllerrevisions", "daemonsets", "daemonsets/status",
        "deployments", "deployments/scale", "deployments/status",
        "replicasets", "replicasets/scale", "replicasets/status",
        "statefulsets", "statefulsets/scale", "statefulsets/status"]
    for name in ("deployments/scale", "replicasets/scale"):
        assert _entry(doc, name) == {
            "name": name, "singularName": "", "namespaced": True, "group": "autoscaling",
            "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
    assert _entry(doc, "deployments")["shortNames"] == ["deploy"]
    assert _entry(doc, "deployments")["categories"] == ["all"]
    assert "group" not in _entry(doc, "deployments/status")


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_autoscaling_served_in_both_versions(version):
    doc = api_resource_list("autoscaling", version)
    assert doc["groupVersion"] == f"autoscaling/{version}"
    hpa = _entry(doc, "horizontalpodautoscalers")
    assert (hpa["shortNames"], hpa["categories"]) == (["hpa"], ["all"])
    assert _entry(doc, "horizontalpodautoscalers/status")["verbs"] == ["get", "patch", "update"]


def test_batch_and_coordination_lists():
    jobs = _entry(api_resource_list("batch", "v1"), "jobs")
    assert "shortNames" not in jobs
    assert jobs["categories"] == ["all"]
    leases = api_resource_list("coordination.k8s.io", "v1")
    assert [e["name"] for e in leases["resources"]] == ["leases"]
    assert _entry(leases, "leases")["verbs"] == FULL_VERBS


@pytest.mark.parametrize(("group", "version"), [
    ("apps", "v1beta1"), ("extensions", "v1beta1"), ("", "v2"), ("autoscaling", "v2beta2"),
])
def test_unserved_group_versions(group, version):
    assert api_resource_list(group, version) is None


@pytest.mark.parametrize(("path", "kind", "group_version"), [
    ("/api", "APIVersions", None),
    ("/api/", "APIVersions", None),
    ("/api/v1", "APIResourceList", "v1"),
    ("/apis", "APIGroupList", None),
    ("/apis/apps", "APIGroup", None),
    ("/apis/apps/v1", "APIResourceList", "apps/v1"),
    ("/apis/autoscaling/v1", "APIResourceList", "autoscaling/v1"),
])
def test_discovery_document_dispatch(path, kind, group_version):
    doc = discovery_document(path)
    assert doc["kind"] == kind
    if group_version:
        assert doc["groupVersion"] == group_version
    json.dumps(doc)  # must serialise as-is


@pytest.mark.parametrize("path", ["/", "/api/v2", "/apis/nope", "/apis/apps/v9", "/healthz",
                                  "/api/v1/pods"])
def test_discovery_document_unknown_paths(path):
    assert discovery_document(path) is None


def test_every_resource_has_its_status_subresource_where_kubernetes_does():
    with_status = {r.plural for r in resources.all_resources() if r.subresource("status")}
    assert with_status == {"nodes", "pods", "services", "deployments", "replicasets", "jobs",
                           "cronjobs", "horizontalpodautoscalers", "poddisruptionbudgets",
                           "ingresses", "apiservices", "replicationcontrollers",
                           "customresourcedefinitions", "daemonsets", "statefulsets",
                           "persistentvolumes", "persistentvolumeclaims"}


def test_custom_resources_join_the_registry_and_leave_it():
    custom = resources.Resource("example.com", ("v1", "v1beta1"), "Widget", "widgets", "widget",
                                namespaced=True, short_names=("wd",), categories=("all",),
                                custom=object())
    before = resources.custom_generation()
    resources.set_custom_resources([custom])
    try:
        assert resources.custom_generation() == before + 1
        assert resources.resolve("wd") is custom
        assert resources.resolve_with_version("widgets.v1beta1.example.com")[1] == "v1beta1"
        assert resources.get_resource("example.com", "v1", "widgets") is custom
        assert resources.groups()[-1] == "example.com"
        assert custom in resources.by_category("all")
        # The plural alone may repeat across groups: custom keys carry the group.
        assert resources.store_key(custom, "default", "w") == \
            "/registry/widgets.example.com/default/w"
        doc = resources.api_resource_list("example.com", "v1")
        assert [e["name"] for e in doc["resources"]] == ["widgets"]
    finally:
        resources.set_custom_resources(())
    assert resources.get_resource("example.com", "v1", "widgets") is None
    with pytest.raises(resources.UnknownResourceError):
        resources.resolve("wd")
