"""Field sets, FieldsV1 encoding, the apply merge, pruning and conflicts (pure)."""

from __future__ import annotations

import pytest

from netlab.api import managed_fields as mf
from netlab.api import server_side_apply as ssa

DEPLOY = mf.shape_for_kind("Deployment", "apps/v1")


def deployment(replicas: int = 1, image: str = "nginx", labels: dict | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels or {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "containers": [{"name": "c", "image": image,
                                         "ports": [{"containerPort": 80}]}]}}}}


def entry(manager: str, fields: set, operation: str = "Update") -> mf.Entry:
    return mf.Entry(manager, operation, "apps/v1", set(fields), "2024-01-01T00:00:00Z")


REPLICAS = ("f:spec", "f:replicas")
IMAGE = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"c"}', "f:image")


# --- shapes and field sets --------------------------------------------------------------------


def test_schema_list_types_and_keys():
    spec = DEPLOY.child("spec").child("template").child("spec")
    containers = spec.child("containers")
    assert containers.kind == "assoc" and containers.keys == ("name",)
    ports = containers.item().child("ports")
    assert ports.keys == ("containerPort", "protocol")
    assert spec.child("tolerations").kind == "atomic"  # no list-type: atomic
    assert DEPLOY.child("spec").child("selector").kind == "atomic"  # map-type atomic
    assert DEPLOY.child("metadata").child("finalizers").kind == "set"
    assert DEPLOY.child("metadata").child("labels").kind == "map"


def test_field_set_of_an_applied_configuration():
    fields = mf.field_set(deployment(), DEPLOY)
    assert REPLICAS in fields and IMAGE in fields
    assert ("f:metadata", "f:labels", "f:app") in fields
    assert ("f:spec", "f:selector") in fields  # atomic: a leaf
    port = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"c"}', "f:ports",
            'k:{"containerPort":80,"protocol":"TCP"}')  # the defaulted key is filled in
    assert port in fields and (*port, "f:containerPort") in fields
    assert ("f:metadata", "f:labels") not in fields  # implied by its children


def test_unknown_lists_are_atomic_and_maps_granular():
    shape = mf.shape_for_schema(None)
    fields = mf.field_set({"spec": {"a": [1, 2], "b": {"c": 1}}}, shape)
    assert fields == {("f:spec", "f:a"), ("f:spec", "f:b", "f:c")}


def test_crd_list_map_keys_and_sets():
    shape = mf.shape_for_schema({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "properties": {
                          "name": {"type": "string"}, "port": {"type": "integer"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set",
                     "items": {"type": "string"}}}}}})
    fields = mf.field_set({"spec": {"ports": [{"name": "http", "port": 80}], "tags": ["a"]}},
                          shape)
    assert ("f:spec", "f:ports", 'k:{"name":"http"}', "f:port") in fields
    assert ("f:spec", "f:tags", 'v:"a"') in fields


def test_missing_list_key_is_a_shape_error():
    with pytest.raises(mf.ShapeError, match="omits key field"):
        mf.field_set({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
                     DEPLOY)


# --- encoding ---------------------------------------------------------------------------------


def test_fields_v1_round_trip_and_dot_markers():
    fields = {("f:metadata", "f:labels"), ("f:metadata", "f:labels", "f:app"), REPLICAS}
    tree = mf.to_fields_v1(fields)
    assert tree == {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {"f:replicas": {}}}
    assert list(tree["f:metadata"]["f:labels"]) == [".", "f:app"]
    assert mf.from_fields_v1(tree) == fields


def test_path_strings():
    assert mf.path_string(REPLICAS) == ".spec.replicas"
    assert mf.path_string(IMAGE) == '.spec.template.spec.containers[name="c"].image'
    assert mf.path_string(("f:m", 'k:{"a":1,"b":"x"}')) == '.m[a=1,b="x"]'
    assert mf.path_string(("f:finalizers", 'v:"x"')) == '.finalizers[="x"]'


def test_entries_merge_by_identity_drop_empty_and_sort_apply_first():
    entries = [entry("b", {REPLICAS}), entry("a", set()),
               mf.Entry("b", "Update", "apps/v1", {IMAGE}, "2024-01-02T00:00:00Z"),
               mf.Entry("x", "Apply", "apps/v1", {("f:spec", "f:paused")}, "2025-01-01T00:00:00Z")]
    encoded = mf.encode_entries(entries)
    assert [e["manager"] for e in encoded] == ["x", "b"]
    assert encoded[1]["time"] == "2024-01-02T00:00:00Z"
    assert mf.from_fields_v1(encoded[1]["fieldsV1"]) == {REPLICAS, IMAGE}
    assert encoded[0]["fieldsType"] == "FieldsV1" and encoded[0]["operation"] == "Apply"
    back = mf.decode_entries([*encoded, {"manager": 1}, "junk"])
    assert [(e.manager, e.operation) for e in back] == [("x", "Apply"), ("b", "Update")]


# --- updates ----------------------------------------------------------------------------------


def test_create_owns_everything_with_dot_markers_where_upstream_has_them():
    entries = ssa.track_update({}, deployment(), [], "kubectl-create", "apps/v1", DEPLOY,
                               now="t")
    (e,) = entries
    tree = e.encode()["fieldsV1"]
    assert e.operation == "Update" and e.time == "t"
    assert tree["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    assert "." not in tree["f:spec"] and "." not in tree["f:spec"]["f:template"]
    c = tree["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert "." in c and "." in c["f:ports"]
    assert "f:name" not in tree["f:metadata"]  # system metadata is stripped


def test_update_takes_changed_fields_from_others_and_removed_fields_leave_all():
    old = deployment()
    entries = ssa.track_update({}, old, [], "creator", "apps/v1", DEPLOY, now="t1")
    new = deployment(replicas=3)
    del new["metadata"]["labels"]
    entries = ssa.track_update(old, new, entries, "scaler", "apps/v1", DEPLOY, now="t2")
    by = {e.manager: e.fields for e in entries}
    assert by["scaler"] == {REPLICAS}
    assert REPLICAS not in by["creator"]
    assert not any(p[:2] == ("f:metadata", "f:labels") for p in by["creator"])


def test_update_without_change_returns_entries_untouched():
    entries = [entry("a", {REPLICAS})]
    assert ssa.track_update(deployment(), deployment(), entries, "b", "apps/v1",
                            DEPLOY) is entries


# --- apply ------------------------------------------------------------------------------------


def test_apply_creates_owns_config_and_is_idempotent():
    config = deployment()
    merged, entries = ssa.apply({}, config, [], "kubectl", "apps/v1", DEPLOY, now="t1")
    assert merged == config
    (e,) = entries
    assert e.operation == "Apply" and REPLICAS in e.fields and e.time == "t1"
    again, entries2 = ssa.apply(merged, config, entries, "kubectl", "apps/v1", DEPLOY,
                                now="t2")
    assert again == merged and entries2[0].time == "t1"  # a no-op keeps the time


def test_apply_conflicts_with_another_managers_field_upstream_wording():
    live = deployment()
    entries = [entry("kubectl-client-side-apply", mf.field_set(live, DEPLOY))]
    with pytest.raises(ssa.Conflicts) as err:
        ssa.apply(live, {"apiVersion": "apps/v1", "kind": "Deployment",
                         "spec": {"replicas": 5}}, entries, "other", "apps/v1", DEPLOY)
    assert str(err.value) == ('Apply failed with 1 conflict: conflict with '
                              '"kubectl-client-side-apply" using apps/v1: .spec.replicas')
    assert err.value.causes() == [{"reason": "FieldManagerConflict",
                                   "message": 'conflict with "kubectl-client-side-apply" '
                                              'using apps/v1',
                                   "field": ".spec.replicas"}]


def test_several_conflicts_are_listed_per_manager():
    live = deployment()
    entries = [entry("a", {REPLICAS}), mf.Entry("b", "Apply", "apps/v1", {IMAGE})]
    config = deployment(replicas=2, image="httpd")
    with pytest.raises(ssa.Conflicts) as err:
        ssa.apply(live, config, entries, "c", "apps/v1", DEPLOY)
    assert str(err.value) == (
        'Apply failed with 2 conflicts: conflicts with "a" using apps/v1:\n- .spec.replicas\n'
        'conflicts with "b":\n- .spec.template.spec.containers[name="c"].image')


def test_same_value_is_shared_not_a_conflict_and_force_takes_over():
    live = deployment()
    entries = [entry("a", {REPLICAS})]
    same = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1}}
    _, shared = ssa.apply(live, same, entries, "b", "apps/v1", DEPLOY)
    assert {e.manager for e in shared if REPLICAS in e.fields} == {"a", "b"}
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 4}}
    merged, forced = ssa.apply(live, other, entries, "b", "apps/v1", DEPLOY, force=True)
    assert merged["spec"]["replicas"] == 4
    assert [e.manager for e in forced] == ["b"]  # "a" lost its only field and is dropped


def test_fields_dropped_from_the_config_are_removed_unless_someone_else_owns_them():
    config = deployment(labels={"app": "web", "tier": "x"})
    live, entries = ssa.apply({}, config, [], "me", "apps/v1", DEPLOY)
    smaller = deployment()
    smaller["metadata"]["labels"] = {"app": "web"}
    merged, _ = ssa.apply(live, smaller, entries, "me", "apps/v1", DEPLOY)
    assert merged["metadata"]["labels"] == {"app": "web"}
    # Another manager co-owning the label keeps it.
    entries.append(entry("other", {("f:metadata", "f:labels", "f:tier")}))
    merged, _ = ssa.apply(live, smaller, entries, "me", "apps/v1", DEPLOY)
    assert merged["metadata"]["labels"] == {"app": "web", "tier": "x"}


def test_lists_merge_by_key_and_sets_by_value():
    live = deployment()
    live["metadata"]["finalizers"] = ["a"]
    config = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"finalizers": ["b"]},
              "spec": {"template": {"spec": {"containers": [
                  {"name": "side", "image": "busybox"}]}}}}
    merged, _ = ssa.apply(live, config, [], "m", "apps/v1", DEPLOY)
    assert merged["metadata"]["finalizers"] == ["a", "b"]
    names = [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]]
    assert names == ["c", "side"]


def test_last_applied_allows_fields_that_still_match():
    live = deployment(replicas=2)
    last = deployment(replicas=2)
    allowed = ssa.allowed_by_last_applied(last, live, DEPLOY)
    assert REPLICAS in allowed
    live["spec"]["replicas"] = 7  # changed since: no longer the applier's
    assert REPLICAS not in ssa.allowed_by_last_applied(last, live, DEPLOY)
