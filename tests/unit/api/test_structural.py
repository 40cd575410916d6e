"""Structural schemas and custom objects: the structural check a CRD must pass, validation
of custom objects with apiextensions' messages, pruning, defaulting, naming verdicts,
printer columns and the CRD validator."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

from netlab.api import customresources, structural, validation
from netlab.api.resources import Resource

SPEC = {
    "type": "object",
    "required": ["size"],
    "properties": {
        "size": {"type": "integer", "minimum": 1, "maximum": 10, "exclusiveMaximum": True},
        "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 5},
        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "port": {"x-kubernetes-int-or-string": True},
        "note": {"type": "string", "nullable": True},
        "when": {"type": "string", "format": "date-time"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "inner": {"type": "object", "default": {},
                  "properties": {"level": {"type": "integer", "default": 3}}},
    },
}
SCHEMA = {"type": "object", "properties": {"spec": SPEC, "status": {"type": "object"}}}


def messages(errs: list) -> list[str]:
    return [str(e) for e in errs]


def obj(**spec: object) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 3, **spec}}


def test_structural_schema_accepted() -> None:
    assert structural.structural_errors(SCHEMA, "s") == []


def test_non_structural_schemas_refused_with_paths() -> None:
    cases = {
        "s.properties[spec].properties[x].type: Required value: must not be empty for "
        "specified object fields": {"properties": {"x": {"minimum": 1}}},
        "s.properties[spec].additionalProperties: Forbidden: additionalProperties and "
        "properties are mutual exclusive": {"properties": {"x": {"type": "string"}},
                                            "additionalProperties": {"type": "string"}},
        "s.properties[spec].properties[x].items: Required value: must be specified":
            {"properties": {"x": {"type": "array"}}},
        "s.properties[spec].properties[x].type: Invalid value: \"string\": must be empty if "
        "x-kubernetes-int-or-string is true":
            {"properties": {"x": {"type": "string", "x-kubernetes-int-or-string": True}}},
        "s.properties[spec].$ref: Forbidden: $ref is not supported": {"$ref": "#/x"},
        "s.properties[spec].properties[x].type: Unsupported value: \"map\": supported "
        "values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"":
            {"properties": {"x": {"type": "map"}}},
    }
    for want, spec in cases.items():
        schema = {"type": "object", "properties": {"spec": {"type": "object", **spec}}}
        assert want in messages(structural.structural_errors(schema, "s")), want
    more = {
        "s.properties[spec].properties[x].items.type: Required value: must not be empty for "
        "specified array items": {"properties": {"x": {"type": "array", "items": {}}}},
        "s.properties[spec].anyOf[0].type: Forbidden: must be empty to be structural":
            {"anyOf": [{"type": "object"}]},
        "s.properties[spec].properties[x].uniqueItems: Forbidden: uniqueItems cannot be set "
        "to true since the runtime complexity becomes quadratic":
            {"properties": {"x": {"type": "array", "items": {"type": "string"},
                                  "uniqueItems": True}}},
        "s.properties[spec].additionalProperties: Forbidden: additionalProperties and "
        "properties are mutual exclusive": {"properties": {"x": {"type": "string"}},
                                            "additionalProperties": False},
    }
    for want, spec in more.items():
        schema = {"type": "object", "properties": {"spec": {"type": "object", **spec}}}
        assert want in messages(structural.structural_errors(schema, "s")), want
    assert "s.additionalProperties: Forbidden: must not be used at the root" in messages(
        structural.structural_errors({"type": "object", "additionalProperties": {
            "type": "string"}}, "s"))
    # The spelled-out int-or-string form is structural.
    assert structural.structural_errors({"type": "object", "properties": {"port": {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}]}}}, "s") == []
    assert "s.type: Invalid value: \"string\": must be object at the root" in messages(
        structural.structural_errors({"type": "string"}, "s"))
    # preserve-unknown-fields may stand in for a type.
    assert structural.structural_errors(
        {"type": "object", "properties": {"spec": {
            "x-kubernetes-preserve-unknown-fields": True}}}, "s") == []


def test_custom_object_validation_messages() -> None:
    errs = messages(structural.validate_object(SCHEMA, obj(size="big")))
    assert errs == ['spec.size: Invalid value: "string": spec.size in body must be of type '
                    'integer: "string"']
    errs = messages(structural.validate_object(SCHEMA, obj(size=10)))
    assert errs == ["spec.size: Invalid value: 10: spec.size in body should be less than 10"]
    errs = messages(structural.validate_object(SCHEMA, obj(size=0)))
    assert errs == ["spec.size: Invalid value: 0: spec.size in body should be greater than "
                    "or equal to 1"]
    errs = messages(structural.validate_object(SCHEMA, obj(name="AB1")))
    assert errs == ["spec.name: Invalid value: \"AB1\": spec.name in body should match "
                    "'^[a-z]+$'"]
    errs = messages(structural.validate_object(SCHEMA, obj(name="a")))
    assert errs == ['spec.name: Invalid value: "a": spec.name in body should be at least 2 '
                    'chars long']
    errs = messages(structural.validate_object(SCHEMA, obj(color="green")))
    assert errs == ['spec.color: Unsupported value: "green": supported values: "red", "blue"']
    errs = messages(structural.validate_object(SCHEMA, obj(tags=[])))
    assert errs == ["spec.tags: Invalid value: 0: spec.tags in body should have at least 1 "
                    "items"]
    errs = messages(structural.validate_object(SCHEMA, obj(tags=["a", 1])))
    assert errs == ['spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of '
                    'type string: "integer"']
    errs = messages(structural.validate_object(SCHEMA, obj(labels={"a": True})))
    assert errs == ['spec.labels[a]: Invalid value: "boolean": spec.labels[a] in body must be '
                    'of type string: "boolean"']
    errs = messages(structural.validate_object(SCHEMA, obj(when="yesterday")))
    assert errs == ['spec.when: Invalid value: "yesterday": spec.when in body must be of type '
                    'date-time: "yesterday"']
    assert structural.validate_object(SCHEMA, obj(port=80, note=None, when="2024-01-02T03:04:05Z",
                                                  free={"any": [1, {"x": None}]})) == []
    assert structural.validate_object(SCHEMA, obj(port="http")) == []
    assert structural.validate_object(SCHEMA, obj(port=True)) != []
    missing = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}, "spec": {}}
    assert messages(structural.validate_object(SCHEMA, missing)) == [
        "spec.size: Required value"]


def test_pruning_keeps_declared_and_preserved_fields() -> None:
    o = obj(bogus=1, free={"kept": 1}, labels={"a": "b"}, inner={"level": 1, "x": 2})
    o["top"] = True
    dropped = structural.prune(SCHEMA, o)
    assert sorted(dropped) == ["spec.bogus", "spec.inner.x", "top"]
    assert o["spec"]["free"] == {"kept": 1} and o["spec"]["labels"] == {"a": "b"}
    assert o["metadata"] == {"name": "w"} and o["kind"] == "Widget"


def test_defaulting_fills_missing_and_nested() -> None:
    o = obj()
    structural.apply_defaults(SCHEMA, o)
    assert o["spec"]["color"] == "red" and o["spec"]["inner"] == {"level": 3}
    o = obj(color=None, inner={"level": 7})
    structural.apply_defaults(SCHEMA, o)
    assert o["spec"]["color"] == "red" and o["spec"]["inner"] == {"level": 7}
    assert structural.has_defaults(SCHEMA) and not structural.has_defaults({"type": "object"})


def crd(plural: str = "widgets", kind: str = "Widget", **extra: object) -> dict:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.example.com",
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": plural, "kind": kind, "shortNames": ["wd"]},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)},
                                   "additionalPrinterColumns": [
                                       {"name": "Size", "type": "integer",
                                        "jsonPath": ".spec.size"}]}],
                     **extra}}


def test_crd_validation() -> None:
    assert validation.validate("CustomResourceDefinition", crd(), False) == []
    bad = crd()
    bad["spec"]["group"] = "example"
    bad["metadata"]["name"] = "widgets.example"
    assert 'spec.group: Invalid value: "example": should be a domain with at least one dot' \
        in messages(validation.validate("CustomResourceDefinition", bad, False))
    bad = crd(scope="Global")
    assert any("spec.scope: Unsupported value: \"Global\"" in m for m in messages(
        validation.validate("CustomResourceDefinition", bad, False)))
    bad = crd()
    bad["spec"]["versions"][0]["storage"] = False
    assert any("must have exactly one version marked as storage version" in m for m in messages(
        validation.validate("CustomResourceDefinition", bad, False)))
    bad = crd()
    bad["spec"]["names"]["plural"] = "Widgets"
    assert any(m.startswith("spec.names.plural: Invalid value") for m in messages(
        validation.validate("CustomResourceDefinition", bad, False)))
    old, new = crd(), crd(scope="Cluster")
    assert "spec.scope: Invalid value: \"Cluster\": field is immutable" in messages(
        validation.validate_update("CustomResourceDefinition", new, old, False))


def test_naming_conflicts() -> None:
    first, second = crd(), crd(plural="gadgets", kind="Gadget")
    second["metadata"]["creationTimestamp"] = "2024-01-02T00:00:00Z"
    verdicts = customresources.accept_names([second, first])
    assert verdicts["widgets.example.com"].accepted
    v = verdicts["gadgets.example.com"]
    assert not v.accepted and v.reason == "ShortNamesConflict" and \
        v.message == '"wd" is already in use'
    status = customresources.desired_status(second, v, terminating=False)
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["NamesAccepted"]["status"] == "False"
    assert conds["Established"] == {**conds["Established"], "status": "False",
                                    "reason": "NotAccepted"}


def test_resource_and_printer_columns() -> None:
    res = customresources.resource_from_crd(crd())
    assert isinstance(res, Resource) and res.store_segment == "widgets.example.com"
    assert res.short_names == ("wd",) and res.custom.storage_version == "v1"
    now = datetime(2024, 1, 1, 1, 0, tzinfo=timezone.utc)
    cols = customresources.printer_columns(res, "v1")
    assert customresources.row_cells(cols, obj(), now) == ["w", 3]
    plain = crd()
    del plain["spec"]["versions"][0]["additionalPrinterColumns"]
    res = customresources.resource_from_crd(plain)
    cols = customresources.printer_columns(res, "v1")
    o = obj()
    o["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    assert customresources.row_cells(cols, o, now) == ["w", "60m"]
    assert now - timedelta(hours=1) < now


def test_json_path_subset() -> None:
    o = {"status": {"conditions": [{"type": "A", "status": "False"},
                                   {"type": "Ready", "status": "True"}]},
         "spec": {"items": [{"name": "x"}, {"name": "y"}]}}
    assert customresources.json_path(o, '.status.conditions[?(@.type=="Ready")].status') == \
        ["True"]
    assert customresources.json_path(o, ".spec.items[1].name") == ["y"]
    assert customresources.json_path(o, ".spec.items[*].name") == ["x", "y"]
    assert customresources.json_path(o, ".spec.missing") == []
    assert customresources.json_path(o, "!!") == []
