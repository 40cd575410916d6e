"""apps/v1 DaemonSet, StatefulSet and ControllerRevision at the API: defaults, 422s with
field paths, Table columns, discovery and OpenAPI."""

from __future__ import annotations

from datetime import datetime, timezone

from netlab.api import defaults, openapi, resources, tables, validation

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def _workload(kind: str, **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "x", "namespace": "default",
                         "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}},
                     **spec}}


def _errors(kind: str, obj: dict) -> list[str]:
    defaults.apply_defaults(kind, obj)
    return [f"{e.field}: {e.type}" for e in validation.validate(kind, obj, True)]


def test_daemonset_defaults_as_upstream():
    obj = defaults.apply_defaults("DaemonSet", _workload("DaemonSet"))
    assert obj["spec"]["updateStrategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    on_delete = defaults.apply_defaults("DaemonSet", _workload(
        "DaemonSet", updateStrategy={"type": "OnDelete"}))
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_statefulset_defaults_as_upstream():
    spec = defaults.apply_defaults("StatefulSet", _workload("StatefulSet"))["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain",
                                                            "whenScaled": "Retain"}


def test_daemonset_validation_names_the_fields():
    assert _errors("DaemonSet", _workload("DaemonSet")) == []
    assert _errors("DaemonSet", _workload("DaemonSet", selector={"matchLabels": {"app": "y"}})) \
        == ["spec.template.metadata.labels: Invalid"]
    bad = _workload("DaemonSet", updateStrategy={"type": "Sometimes"})
    assert _errors("DaemonSet", bad) == ["spec.updateStrategy.type: NotSupported"]
    zero = _workload("DaemonSet", updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    assert _errors("DaemonSet", zero) == ["spec.updateStrategy.rollingUpdate.maxUnavailable: "
                                          "Required"]
    never = _workload("DaemonSet")
    never["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert _errors("DaemonSet", never) == [
        "spec.template.spec.restartPolicy: NotSupported"]


def test_statefulset_volume_claim_templates_are_checked_as_claims_and_mountable():
    """A StatefulSet with volumeClaimTemplates is accepted (it used to be refused: no
    storage); each template is checked as a claim's spec, with upstream's paths."""
    bad = _workload("StatefulSet", volumeClaimTemplates=[{"metadata": {"name": "data"},
                                                          "spec": {}}])
    defaults.apply_defaults("StatefulSet", bad)
    errs = validation.validate("StatefulSet", bad, True)
    assert [(e.field, e.type, e.detail) for e in errs] == [
        ("spec.volumeClaimTemplates[0].spec.accessModes", "Required",
         "at least 1 access mode is required"),
        ("spec.volumeClaimTemplates[0].spec.resources[storage]", "Required", "")]
    good = _workload("StatefulSet", volumeClaimTemplates=[{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}])
    good["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/data"}]
    defaults.apply_defaults("StatefulSet", good)
    assert validation.validate("StatefulSet", good, True) == []
    template = good["spec"]["volumeClaimTemplates"][0]
    assert template["spec"]["volumeMode"] == "Filesystem"
    assert template["status"] == {"phase": "Pending"}
    # A mount naming neither a volume nor a claim template is still NotFound.
    good["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["name"] = "other"
    assert _errors("StatefulSet", good) == [
        "spec.template.spec.containers[0].volumeMounts[0].name: NotFound"]
    assert _errors("StatefulSet", _workload("StatefulSet", volumeClaimTemplates=[])) == []


def test_statefulset_validation_and_update_rules():
    assert _errors("StatefulSet", _workload("StatefulSet", podManagementPolicy="Random")) == [
        "spec.podManagementPolicy: NotSupported"]
    assert _errors("StatefulSet", _workload("StatefulSet", updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"partition": -1}})) == [
        "spec.updateStrategy.rollingUpdate.partition: Invalid"]
    assert _errors("StatefulSet", _workload("StatefulSet", updateStrategy={
        "type": "OnDelete", "rollingUpdate": {}})) == [
        "spec.updateStrategy.rollingUpdate: Invalid"]
    old = defaults.apply_defaults("StatefulSet", _workload("StatefulSet", serviceName="a"))
    new = defaults.apply_defaults("StatefulSet", _workload("StatefulSet", serviceName="b"))
    errs = validation.validate_update("StatefulSet", new, old, True)
    assert [(e.field, e.type) for e in errs] == [("spec", "Forbidden")]
    scaled = defaults.apply_defaults("StatefulSet", _workload("StatefulSet", serviceName="a",
                                                              replicas=5))
    assert validation.validate_update("StatefulSet", scaled, old, True) == []


def test_controller_revision_validation():
    rev = {"metadata": {"name": "x-1", "namespace": "default"}, "revision": 1, "data": {}}
    assert validation.validate("ControllerRevision", rev, True) == []
    errs = validation.validate("ControllerRevision", {"metadata": rev["metadata"],
                                                      "revision": -1}, True)
    assert sorted(e.field for e in errs) == ["data", "revision"]
    changed = {**rev, "data": {"a": 1}}
    assert [e.field for e in validation.validate_update("ControllerRevision", changed, rev,
                                                        True)] == ["data"]


def _render(kind: str, obj: dict) -> list[list[str]]:
    table = tables.to_table(kind, [obj], NOW)
    return [line.split("   ") for line in tables.render_table(table).strip().split("\n")]


def test_tables_have_kubectls_columns():
    ds = _workload("DaemonSet")
    ds["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    ds["status"] = {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                    "updatedNumberScheduled": 2, "numberAvailable": 1}
    table = tables.to_table("DaemonSet", [ds], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
        "Containers", "Images", "Selector"]
    assert table["rows"][0]["cells"][:8] == ["x", 2, 2, 1, 2, 1, "disk=ssd", "60m"]
    sts = _workload("StatefulSet", replicas=3)
    sts["status"] = {"readyReplicas": 2}
    table = tables.to_table("StatefulSet", [sts], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Ready", "Age", "Containers", "Images"]
    assert table["rows"][0]["cells"][:2] == ["x", "2/3"]
    rev = {"metadata": {"name": "x-abc", "creationTimestamp": "2024-05-01T11:00:00Z",
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                             "name": "x", "uid": "u", "controller": True}]},
           "revision": 2, "data": {}}
    table = tables.to_table("ControllerRevision", [rev], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Controller", "Revision", "Age"]
    assert table["rows"][0]["cells"] == ["x-abc", "daemonset.apps/x", 2, "60m"]


def test_discovery_and_get_all():
    assert resources.resolve("ds").kind == "DaemonSet"
    assert resources.resolve("sts").kind == "StatefulSet"
    assert resources.resolve("controllerrevisions.apps").kind == "ControllerRevision"
    assert {"daemonsets", "statefulsets"} <= {r.plural for r in resources.by_category("all")}
    assert resources.resolve("sts").subresource("scale") is not None


def test_openapi_serves_the_kinds_with_strict_field_lists():
    doc = openapi.openapi_v3_document("apis/apps/v1")
    schemas = doc["components"]["schemas"]
    for kind in ("DaemonSet", "StatefulSet", "ControllerRevision"):
        assert f"io.k8s.api.apps.v1.{kind}" in schemas
    spec = schemas["io.k8s.api.apps.v1.StatefulSetSpec"]["properties"]
    assert {"volumeClaimTemplates", "podManagementPolicy", "serviceName", "ordinals"} <= set(spec)
    assert "io.k8s.api.core.v1.PersistentVolumeClaim" in schemas
