"""PATCH bodies as kubectl and controllers send them, applied as the apiserver applies them.

Covers RFC 7386 (appendix A), RFC 6902 (appendix A), Kubernetes' strategic merge patch
(directives, element order, the server-side test vectors of k8s.io/apimachinery's
strategicpatch package) and the exact bodies kubectl 1.27-1.33 sends for ``apply``,
``set image``, ``rollout restart``, ``cordon``, ``label`` and ``scale``.
"""

from __future__ import annotations

import copy
import json

import pytest

from netlab.api.patch import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    PatchError,
    UnsupportedPatchType,
    apply_json_patch,
    apply_merge_patch,
    apply_patch,
    json_equal,
)
from netlab.api.patch import apply_strategic_merge_patch as smp_via_patch
from netlab.api.strategic_merge import (
    SCHEMAS,
    FieldStrategy,
    apply_strategic_merge_patch,
    merge_by,
)

# --- RFC 7386 JSON merge patch ------------------------------------------------------------------

# RFC 7386 appendix A, row by row.
@pytest.mark.parametrize(("original", "patch", "result"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_rfc7386_appendix_a(original, patch, result):
    before = copy.deepcopy(original)
    assert apply_merge_patch(original, patch) == result
    assert original == before  # the target is not modified


def test_merge_patch_as_kubectl_label_and_scale_send_it():
    pod = {"metadata": {"name": "web", "labels": {"app": "web", "old": "x"}},
           "spec": {"containers": [{"name": "web"}]}}
    # kubectl label pod web tier=fe old-
    body = b'{"metadata":{"labels":{"old":null,"tier":"fe"}}}'
    assert apply_patch(MERGE_PATCH, pod, body) == {
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
        "spec": {"containers": [{"name": "web"}]}}
    # kubectl scale deployment web --replicas=3 (PATCH on the scale subresource)
    scale = {"kind": "Scale", "spec": {"replicas": 1}, "status": {"replicas": 1}}
    assert apply_patch(MERGE_PATCH, scale, b'{"spec":{"replicas":3}}')["spec"] == {"replicas": 3}
    # a merge patch replaces lists whole, even merge lists
    assert apply_patch(MERGE_PATCH, pod, b'{"spec":{"containers":[{"name":"db"}]}}')[
        "spec"] == {"containers": [{"name": "db"}]}


# --- RFC 6902 JSON patch ------------------------------------------------------------------------

# RFC 6902 appendix A: the examples that succeed.
@pytest.mark.parametrize(("doc", "ops", "result"), [
    pytest.param({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
                 {"baz": "qux", "foo": "bar"}, id="A.1 add object member"),
    pytest.param({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
                 {"foo": ["bar", "qux", "baz"]}, id="A.2 add array element"),
    pytest.param({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}],
                 {"foo": "bar"}, id="A.3 remove object member"),
    pytest.param({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
                 {"foo": ["bar", "baz"]}, id="A.4 remove array element"),
    pytest.param({"baz": "qux", "foo": "bar"},
                 [{"op": "replace", "path": "/baz", "value": "boo"}],
                 {"baz": "boo", "foo": "bar"}, id="A.5 replace"),
    pytest.param({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
                 [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
                 {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
                 id="A.6 move value"),
    pytest.param({"foo": ["all", "grass", "cows", "eat"]},
                 [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
                 {"foo": ["all", "cows", "eat", "grass"]}, id="A.7 move array element"),
    pytest.param({"baz": "qux", "foo": ["a", 2, "c"]},
                 [{"op": "test", "path": "/baz", "value": "qux"},
                  {"op": "test", "path": "/foo/1", "value": 2}],
                 {"baz": "qux", "foo": ["a", 2, "c"]}, id="A.8 test success"),
    pytest.param({"foo": "bar"},
                 [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
                 {"foo": "bar", "child": {"grandchild": {}}}, id="A.10 nested member object"),
    pytest.param({"foo": "bar"},
                 [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
                 {"foo": "bar", "baz": "qux"}, id="A.11 unrecognized elements ignored"),
    pytest.param({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
                 {"/": 9, "~1": 10}, id="A.14 ~ escape ordering"),
    pytest.param({"foo": ["bar"]},
                 [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
                 {"foo": ["bar", ["abc", "def"]]}, id="A.16 add array value"),
])
def test_rfc6902_appendix_a(doc, ops, result):
    before = copy.deepcopy(doc)
    assert apply_json_patch(doc, ops) == result
    assert doc == before


# RFC 6902 appendix A: the examples that must fail (A.13's duplicate "op" member cannot
# survive JSON decoding; the last one wins, and removing a missing member fails too).
@pytest.mark.parametrize(("doc", "body", "message"), [
    pytest.param({"baz": "qux"}, b'[{"op": "test", "path": "/baz", "value": "bar"}]',
                 "testing value /baz failed: test failed", id="A.9 test error"),
    pytest.param({"foo": "bar"}, b'[{"op": "add", "path": "/baz/bat", "value": "qux"}]',
                 'add operation does not apply: doc is missing path: "/baz/bat"',
                 id="A.12 add to nonexistent target"),
    pytest.param({"foo": "bar"},
                 b'[{"op": "add", "path": "/baz", "value": "qux", "op": "remove"}]',
                 'remove operation does not apply: doc is missing path: "/baz"',
                 id="A.13 invalid patch document"),
    pytest.param({"/": 9, "~1": 10}, b'[{"op": "test", "path": "/~01", "value": "10"}]',
                 "testing value /~01 failed: test failed", id="A.15 string vs number"),
])
def test_rfc6902_appendix_a_errors(doc, body, message):
    with pytest.raises(PatchError) as err:
        apply_patch(JSON_PATCH, doc, body)
    assert str(err.value) == message
    assert err.value.code == 422


@pytest.mark.parametrize(("doc", "ops", "result"), [
    ({"a": 1}, [{"op": "add", "path": "/a", "value": 2}], {"a": 2}),  # add replaces a member
    ({"a": [1]}, [{"op": "add", "path": "/a/1", "value": 2}], {"a": [1, 2]}),
    ({"a": [1]}, [{"op": "add", "path": "/a/0", "value": 0}], {"a": [0, 1]}),
    ({"a": 1}, [{"op": "add", "path": "", "value": [1]}], [1]),
    ({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ({"a": [1, 2, 3]}, [{"op": "replace", "path": "/a/2", "value": 9}], {"a": [1, 2, 9]}),
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}],
     {"a": {"b": 1}, "c": {"b": 1}}),
    ({"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
    ({"a": None}, [{"op": "test", "path": "/a", "value": None}], {"a": None}),
    ({"a/b": 1, "m~n": 2}, [{"op": "remove", "path": "/a~1b"},
                            {"op": "replace", "path": "/m~0n", "value": 3}], {"m~n": 3}),
    ({"": {"": 1}}, [{"op": "replace", "path": "//", "value": 2}], {"": {"": 2}}),
    # kubectl patch --type=json, typical bodies
    ({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 1}},
     [{"op": "replace", "path": "/spec/replicas", "value": 3},
      {"op": "add", "path": "/metadata/labels/tier", "value": "fe"},
      {"op": "remove", "path": "/metadata/labels/app"}],
     {"metadata": {"labels": {"tier": "fe"}}, "spec": {"replicas": 3}}),
    ({"spec": {"containers": [{"name": "a", "args": ["x"]}]}},
     [{"op": "add", "path": "/spec/containers/0/args/-", "value": "y"}],
     {"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}),
])
def test_json_patch_operations(doc, ops, result):
    assert apply_json_patch(doc, ops) == result


@pytest.mark.parametrize(("ops", "message", "code"), [
    ({"op": "add"}, "invalid JSON patch: the body must be a JSON array of operations", 400),
    (["add"], "invalid JSON patch: each operation must be a JSON object", 400),
    ([{"op": "frobnicate", "path": "/a"}], 'invalid JSON patch: unexpected operation "frobnicate"',
     400),
    ([{"path": "/a", "value": 1}], "invalid JSON patch: unexpected operation null", 400),
    ([{"op": "add", "value": 1}], 'invalid JSON patch: operation "add" is missing "path"', 400),
    ([{"op": "add", "path": "/a"}], 'invalid JSON patch: operation "add" is missing "value"', 400),
    ([{"op": "move", "path": "/a"}], 'invalid JSON patch: operation "move" is missing "from"',
     400),
    ([{"op": "add", "path": "a", "value": 1}],
     'invalid JSON pointer "a": must be empty or start with "/"', 400),
    ([{"op": "add", "path": "/a~2", "value": 1}],
     'invalid JSON pointer "/a~2": "~" must be followed by 0 or 1', 400),
    ([{"op": "remove", "path": "/missing"}],
     'remove operation does not apply: doc is missing path: "/missing"', 422),
    ([{"op": "replace", "path": "/missing", "value": 1}],
     'replace operation does not apply: doc is missing path: "/missing"', 422),
    ([{"op": "remove", "path": ""}],
     "remove operation does not apply: cannot remove the whole document", 422),
    ([{"op": "add", "path": "/list/5", "value": 1}], 'array index 5 out of bounds in "/list/5"',
     422),
    ([{"op": "remove", "path": "/list/2"}], 'array index 2 out of bounds in "/list/2"', 422),
    ([{"op": "add", "path": "/list/01", "value": 1}], 'invalid array index "01" in "/list/01"',
     422),
    ([{"op": "remove", "path": "/list/-"}], 'invalid array index "-" in "/list/-"', 422),
    ([{"op": "add", "path": "/list/x", "value": 1}], 'invalid array index "x" in "/list/x"',
     422),
    ([{"op": "add", "path": "/obj/a/b", "value": 1}],
     'add operation does not apply: doc is missing path: "/obj/a/b"', 422),
    ([{"op": "move", "from": "/obj", "path": "/obj/inner"}],
     'move operation does not apply: "/obj" is a proper prefix of "/obj/inner"', 422),
    ([{"op": "copy", "from": "/nope", "path": "/x"}],
     'copy operation does not apply: doc is missing path: "/nope"', 422),
    ([{"op": "test", "path": "/flag", "value": 1}], "testing value /flag failed: test failed",
     422),
    # all or nothing: a later failure leaves no partial result behind
    ([{"op": "add", "path": "/new", "value": 1}, {"op": "remove", "path": "/missing"}],
     'remove operation does not apply: doc is missing path: "/missing"', 422),
])
def test_json_patch_errors(ops, message, code):
    doc = {"list": [1, 2], "obj": {}, "flag": True}
    before = copy.deepcopy(doc)
    with pytest.raises(PatchError) as err:
        apply_json_patch(doc, ops)
    assert str(err.value) == message
    assert err.value.code == code
    assert doc == before


@pytest.mark.parametrize(("a", "b", "equal"), [
    (1, 1.0, True), (True, 1, False), (False, 0, False), ("1", 1, False), (None, None, True),
    (None, False, False), ([1, {"a": 2}], [1.0, {"a": 2.0}], True), ([1], [1, 1], False),
    ({"a": 1}, {"a": 1, "b": None}, False), ({"a": True}, {"a": True}, True),
])
def test_json_equal(a, b, equal):
    assert json_equal(a, b) is equal


# --- dispatch -----------------------------------------------------------------------------------

def test_apply_patch_dispatches_on_content_type():
    doc = {"spec": {"containers": [{"name": "a", "image": "x"}]}}
    body = b'{"spec":{"containers":[{"name":"b","image":"y"}]}}'
    # a strategic merge patch merges the container list of a Pod; a merge patch replaces it
    assert [c["name"] for c in apply_patch(STRATEGIC_MERGE_PATCH, doc, body, "Pod")["spec"][
        "containers"]] == ["b", "a"]
    assert [c["name"] for c in apply_patch(MERGE_PATCH, doc, body)["spec"]["containers"]] == [
        "b"]
    assert apply_patch("application/json-patch+json; charset=utf-8", doc,
                       b'[{"op":"remove","path":"/spec"}]') == {}
    assert apply_patch("Application/Merge-Patch+JSON", doc, b'{"spec":null}') == {}


@pytest.mark.parametrize("content_type", [
    "application/apply-patch+yaml", "application/json", "text/plain", "", "application/yaml"])
def test_unsupported_patch_types_are_415(content_type):
    with pytest.raises(UnsupportedPatchType) as err:
        apply_patch(content_type, {}, b"{}")
    assert err.value.code == 415
    assert str(err.value) == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json")
    assert isinstance(err.value, PatchError)


@pytest.mark.parametrize(("content_type", "body", "message"), [
    (MERGE_PATCH, b"{", "invalid JSON in the patch body"),
    (STRATEGIC_MERGE_PATCH, b"\xff\xfe\xfa", "invalid JSON in the patch body"),
    (MERGE_PATCH, b"null", "invalid patch: the body must be a JSON object"),
    (MERGE_PATCH, b"[1]", "invalid patch: the body must be a JSON object"),
    (STRATEGIC_MERGE_PATCH, b'"x"', "invalid patch: the body must be a JSON object"),
    (JSON_PATCH, b"{}", "invalid JSON patch: the body must be a JSON array of operations"),
])
def test_malformed_bodies_are_400(content_type, body, message):
    with pytest.raises(PatchError) as err:
        apply_patch(content_type, {"a": 1}, body)
    assert str(err.value).startswith(message)
    assert err.value.code == 400


def test_a_patch_must_leave_an_object():
    with pytest.raises(PatchError, match="the patched object is not a JSON object") as err:
        apply_patch(JSON_PATCH, {"a": 1}, b'[{"op":"replace","path":"","value":[1]}]')
    assert err.value.code == 422


def test_strategic_merge_patch_is_reachable_from_the_patch_module():
    assert smp_via_patch({"a": [1]}, {"a": [2]}) == {"a": [2]}


# --- strategic merge patch: Kubernetes' own server-side vectors ---------------------------------

# The test type of k8s.io/apimachinery/pkg/util/strategicpatch, restated as a schema.
MERGE_ITEM = {
    "mergingList": merge_by("name"),
    "mergingList[].mergingList": merge_by("name"),
    "mergingIntList": merge_by(),
    "retainKeysMap": FieldStrategy(retain_keys=True),
    "retainKeysMergingList": merge_by("name", retain_keys=True),
    "replacingItem": FieldStrategy(replace=True),
}


def names(*items):
    return [i if isinstance(i, dict) else {"name": i} for i in items]


# (current live object, patch, result): the "current", "threeWay" and "result" documents of
# the strategicpatch package's test tables.
@pytest.mark.parametrize(("current", "patch", "result"), [
    pytest.param({"mergingIntList": [1, 2]}, {"mergingIntList": [2, 3]},
                 {"mergingIntList": [1, 2, 3]}, id="unique scalars when merging lists"),
    pytest.param({"simpleMap": {"key1": 1, "key2": 1}}, {"simpleMap": {"$patch": "delete"}},
                 {"simpleMap": {}}, id="delete map from nested map"),
    pytest.param({"mergingList": names(1, 2)}, {"mergingList": [{"$patch": "replace"}]},
                 {"mergingList": []}, id="delete all items from merging list"),
    pytest.param({"name": 1, "value": 1}, {"$patch": "replace"}, {},
                 id="delete all keys from map"),
    pytest.param({"name": 1, "value": 1}, {"other": "a", "$patch": "replace"}, {"other": "a"},
                 id="add key and delete all keys from map"),
    pytest.param({"mergingList": names(1, 1, {"name": 2, "value": "a"}, 3, 3)},
                 {"mergingList": [{"name": 1, "$patch": "delete"},
                                  {"name": 3, "$patch": "delete"}]},
                 {"mergingList": names({"name": 2, "value": "a"})},
                 id="deleting by merge key removes every duplicate"),
    pytest.param({"retainKeysMap": {"name": "foo", "value": "a"}},
                 {"retainKeysMap": {"value": None}}, {"retainKeysMap": {"name": "foo"}},
                 id="retainKeys map deletes a field without the directive"),
    pytest.param({"mergingList": names(1, {"name": 2, "value": "b"}, 3)},
                 {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"},
                                  {"name": 2, "other": "x"}]},
                 {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"},
                                  {"name": 2, "value": "b", "other": "x"}]},
                 id="preserve the order from the patch in a merging list"),
    pytest.param({"mergingList": names(1, {"name": 2, "value": "b"}, 3)},
                 {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]},
                 {"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"},
                                  {"name": 1, "value": "a"}]},
                 id="preserve the order from the patch in a merging list 2"),
    pytest.param({"mergingIntList": [1, 2, 3]}, {"mergingIntList": [3, 1]},
                 {"mergingIntList": [2, 3, 1]}, id="preserve the patch order in an int list"),
    pytest.param({"mergingList": names(1, 3)},
                 {"$setElementOrder/mergingList": names(3, 2, 1),
                  "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]},
                 {"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]},
                 id="$setElementOrder names an item that is not in the list"),
    pytest.param({"mergingIntList": [1, 2, 3, 4]},
                 {"$setElementOrder/mergingIntList": [1, 2],
                  "$deleteFromPrimitiveList/mergingIntList": [3]},
                 {"mergingIntList": [1, 2, 4]}, id="delete items in lists of scalars"),
    pytest.param({"mergingIntList": [1, 2, 3, 3, 4]},
                 {"$setElementOrder/mergingIntList": [1, 2],
                  "$deleteFromPrimitiveList/mergingIntList": [3]},
                 {"mergingIntList": [1, 2, 4]}, id="delete all duplicate items in scalars"),
    pytest.param({"mergingList": [{"name": 1, "other": "a"},
                                  {"name": 2, "value": 2, "other": "b"}]},
                 {"$setElementOrder/mergingList": names(4, 1, 2, 3),
                  "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]},
                 {"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"},
                                  {"name": 2, "value": 2, "other": "b"},
                                  {"name": 3, "value": 3}]},
                 id="merge lists of maps"),
    pytest.param({"mergingList": [{"name": 1, "other": "a"}, {"name": 3, "value": 2}]},
                 {"$setElementOrder/mergingList": names(1, 2),
                  "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
                 {"mergingList": [{"name": 1, "value": 1, "other": "a"},
                                  {"name": 2, "value": 2}, {"name": 3, "value": 2}]},
                 id="add field to map in merging list with server-only item"),
    pytest.param({"mergingList": names(1, 1)},
                 {"$setElementOrder/mergingList": names(1),
                  "mergingList": [{"$patch": "delete", "name": 1}]},
                 {"mergingList": []}, id="de-duplicate by deleting"),
    pytest.param({"mergingList": names(1, {"name": 2, "other": "b"})},
                 {"$setElementOrder/mergingList": names(2),
                  "mergingList": [{"name": 1, "$patch": "delete"}]},
                 {"mergingList": [{"name": 2, "other": "b"}]},
                 id="delete map from merging list"),
    pytest.param({"mergingList": [{"name": 2, "other": "b"}]},
                 {"$setElementOrder/mergingList": names(2),
                  "mergingList": [{"name": 1, "$patch": "delete"}]},
                 {"mergingList": [{"name": 2, "other": "b"}]},
                 id="delete missing map from merging list"),
    pytest.param({"mergingList": [{"name": 3, "other": "a"}]},
                 {"$setElementOrder/mergingList": names(2),
                  "mergingList": [{"name": 2}, {"name": 1, "$patch": "delete"}]},
                 {"mergingList": [{"name": 2}, {"name": 3, "other": "a"}]},
                 id="delete missing map from merging list with conflict"),
    pytest.param({"mergingList": [{"name": 1}, {"name": 2, "other": "b"},
                                  {"name": 4, "other": "c"}]},
                 {"$setElementOrder/mergingList": names(2, 3),
                  "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}]},
                 {"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"},
                                  {"name": 3}]},
                 id="add map and delete map from merging list"),
    pytest.param({"mergingList": [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}]},
                 {"$setElementOrder/mergingList": names(2, 3),
                  "mergingList": [{"name": 2}, {"name": 3}, {"name": 1, "$patch": "delete"}]},
                 {"mergingList": [{"name": 4, "other": "c"}, {"name": 2}, {"name": 3}]},
                 id="add map and delete map from merging list with conflict"),
    pytest.param({"mergingList": [{"name": 1, "value": 1, "other": "a"},
                                  {"name": 2, "value": 2, "other": "b"}]},
                 {"$setElementOrder/mergingList": names(1, 2),
                  "mergingList": [{"name": 1, "value": None}]},
                 {"mergingList": [{"name": 1, "other": "a"},
                                  {"name": 2, "value": 2, "other": "b"}]},
                 id="delete field from map in merging list"),
    pytest.param({"mergingList": [{"name": 1, "other": "a", "nonMergingList": names(2)},
                                  {"name": 2}]},
                 {"$setElementOrder/mergingList": names(1, 2),
                  "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}]},
                 {"mergingList": [{"name": 1, "other": "a",
                                   "nonMergingList": [{"name": 1, "value": 1}]},
                                  {"name": 2}]},
                 id="replace non merging list nested in merging list"),
    pytest.param({"mergingList": [{"name": 1, "mergingList": names(1, {"name": 2, "value": 2})},
                                  {"name": 2}]},
                 {"$setElementOrder/mergingList": names(1, 2),
                  "mergingList": [{"$setElementOrder/mergingList": names(1, 2), "name": 1,
                                   "mergingList": [{"name": 1, "value": 1}]}]},
                 {"mergingList": [{"name": 1, "mergingList": [{"name": 1, "value": 1},
                                                              {"name": 2, "value": 2}]},
                                  {"name": 2}]},
                 id="add field to map in merging list nested in merging list"),
    pytest.param({"mergingList": names(1, 2, 9, 3, 4)},
                 {"$setElementOrder/mergingList": names(2, 1, 4, 3)},
                 {"mergingList": names(2, 1, 9, 4, 3)},
                 id="set elements order in a list with server-only items"),
    pytest.param({"mergingList": names(1, 2, 7, 9, 8, 3, 4)},
                 {"$setElementOrder/mergingList": names(2, 1, 4, 3)},
                 {"mergingList": names(2, 1, 7, 9, 8, 4, 3)},
                 id="set elements order in a list with server-only items 3"),
    pytest.param({"mergingIntList": [1, 2]},
                 {"$setElementOrder/mergingIntList": [1, 4, 2, 3], "mergingIntList": [4, 3]},
                 {"mergingIntList": [1, 4, 2, 3]}, id="add items in an int list in order"),
    pytest.param({"mergingIntList": [1, 2, 3]},
                 {"$setElementOrder/mergingIntList": [4, 2, 1], "mergingIntList": [4],
                  "$deleteFromPrimitiveList/mergingIntList": [3]},
                 {"mergingIntList": [4, 2, 1]},
                 id="add and delete an item in an int list and preserve order"),
    pytest.param({"mergingIntList": [1, 2, 7, 9, 8, 3, 4]},
                 {"$setElementOrder/mergingIntList": [2, 1, 4, 3]},
                 {"mergingIntList": [2, 1, 7, 9, 8, 4, 3]},
                 id="set elements order in an int list with server-only items"),
    pytest.param({"mergingList": [{"name": 1}, {"name": 2, "value": "dup1"}, {"name": 3},
                                  {"name": 2, "value": "dup2"}, {"name": 4}]},
                 {"$setElementOrder/mergingList": names(2, 1, 4, 3, 2)},
                 {"mergingList": [{"name": 2, "value": "dup1"}, {"name": 2, "value": "dup2"},
                                  {"name": 1}, {"name": 4}, {"name": 3}]},
                 id="set element order for a merging list with duplicates"),
    pytest.param({"retainKeysMap": {"name": "type1", "value": "foo"}},
                 {"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2",
                                    "other": "bar"}},
                 {"retainKeysMap": {"name": "type2", "other": "bar"}},
                 id="retainKeys clears a defaulted field (discriminated union)"),
    pytest.param({"retainKeysMap": {"name": "foo", "value": "bar", "other": "a"}},
                 {"retainKeysMap": {"$retainKeys": ["name", "value"]}},
                 {"retainKeysMap": {"name": "foo", "value": "bar"}},
                 id="retainKeys map clears a field"),
    pytest.param({"retainKeysMap": {"name": "foo", "simpleMap": {"key1": "a", "key3": "c"}}},
                 {"retainKeysMap": {"$retainKeys": ["name", "simpleMap"],
                                    "simpleMap": {"key2": "b"}}},
                 {"retainKeysMap": {"name": "foo",
                                    "simpleMap": {"key1": "a", "key2": "b", "key3": "c"}}},
                 id="retainKeys map adds a field in a nested map"),
    pytest.param({"replacingItem": {"a": 1, "b": 2}}, {"replacingItem": {"c": 3}},
                 {"replacingItem": {"c": 3}}, id="patchStrategy replace on a map"),
])
def test_kubernetes_strategic_merge_vectors(current, patch, result):
    before = (copy.deepcopy(current), copy.deepcopy(patch))
    assert apply_strategic_merge_patch(current, patch, MERGE_ITEM) == result
    assert (current, patch) == before  # inputs are not modified


@pytest.mark.parametrize(("current", "patch", "message", "code"), [
    ({"mergingList": names(1, 3, 2)},
     {"$setElementOrder/mergingList": names(1, 2, 3),
      "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]},
     "doesn't match $setElementOrder list", 422),
    ({"mergingIntList": [1, 3, 2]},
     {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]},
     "doesn't match $setElementOrder list", 422),
    ({"mergingList": [{"name": 1, "value": "a"}]}, {"mergingList": [{"value": "b"}]},
     'map: {"value": "b"} does not contain declared merge key: name', 422),
    ({"mergingList": names(1)}, {"mergingList": [{"$patch": "delete"}]},
     'map: {"$patch": "delete"} does not contain declared merge key: name', 422),
    ({"mergingList": names(1)}, {"mergingList": [{"name": 1, "$patch": "frob"}]},
     'unknown patch type: frob in map: {"$patch": "frob", "name": 1}', 400),
    ({"a": {}}, {"a": {"$patch": "frob"}}, 'unknown patch type: frob in map: {"$patch": "frob"}',
     400),
    ({"mergingList": names(1)}, {"mergingList": [[1]]}, "lists of lists are not supported", 422),
    ({"mergingList": names(1)}, {"mergingList": [1]}, "list element types are not identical",
     422),
    ({"retainKeysMap": {"name": "a"}},
     {"retainKeysMap": {"$retainKeys": ["name"], "value": "x"}},
     "invalid patch format of retainKeys", 400),
    ({"retainKeysMap": {}}, {"retainKeysMap": {"$retainKeys": "name"}},
     "invalid patch format of retainKeys", 400),
    ({}, {"$setElementOrder/": []}, "invalid patch format of setElementOrder list", 400),
    ({}, {"$setElementOrder/mergingList": {"name": 1}},
     "invalid patch format of setElementOrder list", 400),
    ({}, {"$deleteFromPrimitiveList": [1]}, "invalid patch format of primitive list", 400),
    ({"mergingIntList": [1]}, {"$deleteFromPrimitiveList/mergingIntList": 1},
     "invalid patch format of primitive list", 400),
    ({}, {"$retain": ["a"]}, 'unknown strategic merge patch directive "$retain"', 400),
])
def test_strategic_merge_errors(current, patch, message, code):
    with pytest.raises(PatchError) as err:
        apply_strategic_merge_patch(current, patch, MERGE_ITEM)
    assert message in str(err.value)
    assert err.value.code == code


# --- strategic merge patch: directives on the kinds netlab serves -------------------------------

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "fe"},
                 "finalizers": ["netlab.io/a", "netlab.io/b"],
                 "ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "name": "web-1"}]},
    "spec": {
        "nodeName": "n1",
        "containers": [{"name": "web", "image": "netlab/echo", "args": ["--port", "8080"],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "tolerations": [{"key": "a", "operator": "Exists"}],
    },
    "status": {"phase": "Running",
               "conditions": [{"type": "Ready", "status": "False"},
                              {"type": "PodScheduled", "status": "True"}]},
}


def pod_with(**changes):
    pod = copy.deepcopy(POD)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = pod
        for p in parents:
            node = node[p]
        node[last] = value
    return pod


@pytest.mark.parametrize(("patch", "expected"), [
    pytest.param({}, POD, id="empty patch is a no-op"),
    pytest.param({"metadata": {"labels": {"tier": None, "track": "canary"}}},
                 pod_with(metadata__labels={"app": "web", "track": "canary"}),
                 id="null deletes, new keys add"),
    pytest.param({"metadata": {"labels": {"$patch": "replace", "app": "db"}}},
                 pod_with(metadata__labels={"app": "db"}), id="$patch replace on a map"),
    pytest.param({"metadata": {"labels": {"$patch": "delete"}}},
                 pod_with(metadata__labels={}), id="$patch delete on a map empties it"),
    pytest.param({"metadata": {"labels": {"$patch": "merge", "x": "y"}}},
                 pod_with(metadata__labels={"app": "web", "tier": "fe", "x": "y"}),
                 id="$patch merge on a map is the default"),
    pytest.param({"metadata": {"finalizers": ["netlab.io/c"]}},
                 pod_with(metadata__finalizers=["netlab.io/c", "netlab.io/a", "netlab.io/b"]),
                 id="finalizers merge as a set; new items lead without an order"),
    pytest.param({"metadata": {"$setElementOrder/finalizers": ["netlab.io/a", "netlab.io/c"],
                               "$deleteFromPrimitiveList/finalizers": ["netlab.io/b"],
                               "finalizers": ["netlab.io/c"]}},
                 pod_with(metadata__finalizers=["netlab.io/a", "netlab.io/c"]),
                 id="$deleteFromPrimitiveList and $setElementOrder on finalizers"),
    pytest.param({"metadata": {"$deleteFromPrimitiveList/finalizers": ["netlab.io/a", "x"]}},
                 pod_with(metadata__finalizers=["netlab.io/b"]),
                 id="$deleteFromPrimitiveList ignores values not in the list"),
    pytest.param({"metadata": {"$deleteFromPrimitiveList/gone": ["x"]}}, POD,
                 id="$deleteFromPrimitiveList on a missing list does nothing"),
    pytest.param({"metadata": {"ownerReferences": [{"uid": "u1", "controller": True}]}},
                 pod_with(metadata__ownerReferences=[{"uid": "u1", "kind": "ReplicaSet",
                                                      "name": "web-1", "controller": True}]),
                 id="ownerReferences merge by uid"),
    pytest.param({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}},
                 pod_with(spec__tolerations=[{"key": "b", "operator": "Exists"}]),
                 id="tolerations have no merge key: replaced whole"),
    pytest.param({"spec": {"containers": [{"name": "web", "args": ["--port", "9090"]}]}},
                 pod_with(spec__containers=[{**POD["spec"]["containers"][0],
                                             "args": ["--port", "9090"]}]),
                 id="args are atomic inside a merged container"),
    pytest.param({"spec": {"containers": [{"name": "web", "ports": [
                      {"containerPort": 8080, "name": "http"}, {"containerPort": 9090}]}]}},
                 pod_with(spec__containers=[{**POD["spec"]["containers"][0], "ports": [
                     {"containerPort": 8080, "protocol": "TCP", "name": "http"},
                     {"containerPort": 9090}]}]),
                 id="container ports merge by containerPort"),
    pytest.param({"spec": {"containers": [{"name": "web", "volumeMounts": [
                      {"mountPath": "/data", "readOnly": True}]}]}},
                 pod_with(spec__containers=[{**POD["spec"]["containers"][0], "volumeMounts": [
                     {"name": "data", "mountPath": "/data", "readOnly": True}]}]),
                 id="volumeMounts merge by mountPath"),
    pytest.param({"spec": {"containers": [{"name": "side", "image": "netlab/agnhost"},
                                          {"$patch": "replace"}]}},
                 pod_with(spec__containers=[{"name": "side", "image": "netlab/agnhost"}]),
                 id="$patch replace in a list replaces the list"),
    pytest.param({"spec": {"containers": [{"name": "web", "$patch": "delete"}]}},
                 pod_with(spec__containers=[]), id="$patch delete removes an element"),
    pytest.param({"spec": {"containers": [{"name": "web", "$patch": "merge", "image": "v2"}]}},
                 pod_with(spec__containers=[{**POD["spec"]["containers"][0], "image": "v2"}]),
                 id="$patch merge on an element merges"),
    pytest.param({"spec": {"initContainers": [{"name": "init", "env": [
                      {"name": "A", "value": "1"}, {"name": "B", "$patch": "delete"}]}]}},
                 pod_with(spec__initContainers=[{"name": "init", "env": [
                     {"name": "A", "value": "1"}]}]),
                 id="a new list resolves its directives"),
    pytest.param({"spec": {"volumes": [{"name": "data", "$retainKeys": ["configMap", "name"],
                                        "configMap": {"name": "cfg"}, "emptyDir": None}]}},
                 pod_with(spec__volumes=[{"name": "data", "configMap": {"name": "cfg"}}]),
                 id="volumes merge by name with $retainKeys"),
    pytest.param({"status": {"$setElementOrder/conditions": [{"type": "Ready"},
                                                             {"type": "PodScheduled"}],
                             "conditions": [{"type": "Ready", "status": "True"}]}},
                 pod_with(status__conditions=[{"type": "Ready", "status": "True"},
                                              {"type": "PodScheduled", "status": "True"}]),
                 id="status conditions merge by type (kubelet status patch)"),
    pytest.param({"spec": {"nodeName": None, "nodeSelector": {"disk": "ssd", "x": None}}},
                 pod_with(spec={k: v for k, v in POD["spec"].items() if k != "nodeName"}
                          | {"nodeSelector": {"disk": "ssd"}}),
                 id="null deletes a key; nulls inside a new map are dropped"),
])
def test_strategic_merge_on_a_pod(patch, expected):
    assert apply_strategic_merge_patch(POD, patch, "Pod") == expected


def test_unknown_kinds_replace_every_list():
    obj = {"spec": {"containers": [{"name": "a"}]}}
    patch = {"spec": {"containers": [{"name": "b"}]}}
    assert apply_strategic_merge_patch(obj, patch, "Widget") == patch
    assert apply_strategic_merge_patch(obj, patch, None) == patch
    assert apply_strategic_merge_patch(obj, patch, "Pod")["spec"]["containers"] == [
        {"name": "b"}, {"name": "a"}]


@pytest.mark.parametrize(("kind", "path", "key"), [
    ("Pod", "spec.containers", "name"),
    ("Pod", "spec.initContainers", "name"),
    ("Pod", "spec.containers[].env", "name"),
    ("Pod", "spec.containers[].ports", "containerPort"),
    ("Pod", "spec.containers[].volumeMounts", "mountPath"),
    ("Pod", "spec.initContainers[].env", "name"),
    ("Pod", "spec.volumes", "name"),
    ("Pod", "spec.imagePullSecrets", "name"),
    ("Pod", "spec.hostAliases", "ip"),
    ("Pod", "spec.topologySpreadConstraints", "topologyKey"),
    ("Pod", "status.conditions", "type"),
    ("Pod", "metadata.ownerReferences", "uid"),
    ("Pod", "metadata.finalizers", None),
    ("Deployment", "spec.template.spec.containers", "name"),
    ("Deployment", "spec.template.spec.containers[].env", "name"),
    ("Deployment", "spec.template.spec.volumes", "name"),
    ("Deployment", "status.conditions", "type"),
    ("ReplicaSet", "spec.template.spec.containers[].ports", "containerPort"),
    ("Job", "spec.template.spec.initContainers", "name"),
    ("Job", "status.conditions", "type"),
    ("Service", "spec.ports", "port"),
    ("Node", "status.conditions", "type"),
    ("Node", "status.addresses", "type"),
    ("Node", "spec.podCIDRs", None),
    ("Namespace", "status.conditions", "type"),
    ("HorizontalPodAutoscaler", "status.conditions", "type"),
    ("Endpoints", "metadata.ownerReferences", "uid"),
    ("Event", "metadata.finalizers", None),
])
def test_schema_merge_keys_match_kubernetes_tags(kind, path, key):
    strategy = SCHEMAS[kind][path]
    assert strategy.merge and strategy.merge_key == key


@pytest.mark.parametrize(("kind", "path"), [
    ("Pod", "spec.tolerations"), ("Pod", "spec.containers[].args"),
    ("Pod", "spec.containers[].command"), ("Pod", "spec.containers[].envFrom"),
    ("Endpoints", "subsets"), ("Node", "spec.taints"), ("Namespace", "spec.finalizers"),
    ("Deployment", "spec.selector.matchExpressions"),
])
def test_atomic_lists_are_not_in_the_schema(kind, path):
    assert path not in SCHEMAS[kind]


def test_retain_keys_fields():
    assert SCHEMAS["Deployment"]["spec.strategy"].retain_keys
    assert SCHEMAS["Pod"]["spec.volumes"].retain_keys


# --- the exact bodies kubectl sends --------------------------------------------------------------

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def deployment_file(env):
    """web.yaml as a user writes it (kubectl fills in the namespace)."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "netlab/echo",
                                                           "env": env}]}}}}


# kubectl's last-applied-configuration: the file as compact JSON with sorted keys (Go's
# encoding of an unstructured object), an empty "annotations" map left behind by stripping the
# annotation itself, and a trailing newline.
V1_LAST_APPLIED = (
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"web",'
    '"namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},'
    '"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"env":[{"name":'
    '"GREETING","value":"hello"},{"name":"PORT","value":"8080"}],"image":"netlab/echo",'
    '"name":"web"}]}}}}\n')
V2_LAST_APPLIED = (
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"web",'
    '"namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},'
    '"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"env":[{"name":'
    '"GREETING","value":"hi"},{"name":"PORT","value":"8080"},{"name":"DEBUG","value":"1"}],'
    '"image":"netlab/echo","name":"web"}]}}}}\n')
V3_LAST_APPLIED = (
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"web",'
    '"namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},'
    '"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"env":[{"name":'
    '"GREETING","value":"hi"},{"name":"DEBUG","value":"1"}],"image":"netlab/echo","name":'
    '"web"}]}}}}\n')

ENV_V1 = [{"name": "GREETING", "value": "hello"}, {"name": "PORT", "value": "8080"}]
ENV_V2 = [{"name": "GREETING", "value": "hi"}, {"name": "PORT", "value": "8080"},
          {"name": "DEBUG", "value": "1"}]
ENV_V3 = [{"name": "GREETING", "value": "hi"}, {"name": "DEBUG", "value": "1"}]


def kubectl_last_applied(config):
    """What kubectl stores, computed the way kubectl computes it."""
    stripped = copy.deepcopy(config)
    stripped["metadata"]["annotations"] = {}
    return json.dumps(stripped, sort_keys=True, separators=(",", ":")) + "\n"


def annotation_body(last_applied):
    """The metadata part of an apply patch, as kubectl's JSON encoder writes it."""
    return ('{"metadata":{"annotations":{"' + LAST_APPLIED + '":'
            + json.dumps(last_applied) + "}}").encode()


def live_deployment(env, last_applied, replicas=2):
    """The Deployment as the server stores it: the file plus defaults, metadata and status."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "0b1c", "generation": 1,
                     "resourceVersion": "41", "creationTimestamp": "2024-05-01T10:00:00Z",
                     "annotations": {"deployment.kubernetes.io/revision": "1",
                                     LAST_APPLIED: last_applied}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"restartPolicy": "Always", "containers": [
                                  {"name": "web", "image": "netlab/echo", "env": env,
                                   "imagePullPolicy": "IfNotPresent",
                                   "terminationMessagePath": "/dev/termination-log"}]}}},
        "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1,
                   "conditions": [{"type": "Available", "status": "True"}]},
    }


def test_last_applied_literals_are_what_kubectl_writes():
    assert kubectl_last_applied(deployment_file(ENV_V1)) == V1_LAST_APPLIED
    assert kubectl_last_applied(deployment_file(ENV_V2)) == V2_LAST_APPLIED
    assert kubectl_last_applied(deployment_file(ENV_V3)) == V3_LAST_APPLIED


def test_apply_twice_the_second_apply_is_a_no_op():
    # The second `kubectl apply -f web.yaml` computes an empty three-way patch and sends no
    # PATCH at all ("deployment.apps/web unchanged"). Should an empty patch arrive anyway
    # (a client that always sends), it changes nothing.
    live = live_deployment(ENV_V1, V1_LAST_APPLIED)
    assert apply_patch(STRATEGIC_MERGE_PATCH, live, b"{}", "Deployment") == live
    # Re-sending the unchanged annotation is a no-op too.
    body = annotation_body(V1_LAST_APPLIED) + b"}"
    assert apply_patch(STRATEGIC_MERGE_PATCH, live, body, "Deployment") == live


def test_apply_after_changing_and_adding_env_vars():
    # web.yaml edited: GREETING changed, DEBUG added after PORT.
    body = (annotation_body(V2_LAST_APPLIED)
            + b',"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],'
              b'"containers":[{"$setElementOrder/env":[{"name":"GREETING"},{"name":"PORT"},'
              b'{"name":"DEBUG"}],"env":[{"name":"GREETING","value":"hi"},'
              b'{"name":"DEBUG","value":"1"}],"name":"web"}]}}}}')
    live = live_deployment(ENV_V1, V1_LAST_APPLIED)
    assert apply_patch(STRATEGIC_MERGE_PATCH, live, body, "Deployment") == live_deployment(
        ENV_V2, V2_LAST_APPLIED)


def test_apply_after_removing_an_env_var():
    # web.yaml edited again: PORT removed.
    body = (annotation_body(V3_LAST_APPLIED)
            + b',"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],'
              b'"containers":[{"$setElementOrder/env":[{"name":"GREETING"},{"name":"DEBUG"}],'
              b'"env":[{"$patch":"delete","name":"PORT"}],"name":"web"}]}}}}')
    live = live_deployment(ENV_V2, V2_LAST_APPLIED)
    assert apply_patch(STRATEGIC_MERGE_PATCH, live, body, "Deployment") == live_deployment(
        ENV_V3, V3_LAST_APPLIED)


def test_apply_after_removing_the_env_list():
    config = deployment_file(ENV_V3)
    del config["spec"]["template"]["spec"]["containers"][0]["env"]
    last_applied = kubectl_last_applied(config)
    body = (annotation_body(last_applied)
            + b',"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],'
              b'"containers":[{"env":null,"name":"web"}]}}}}')
    result = apply_patch(STRATEGIC_MERGE_PATCH, live_deployment(ENV_V3, V3_LAST_APPLIED), body,
                         "Deployment")
    expected = live_deployment([], last_applied)
    del expected["spec"]["template"]["spec"]["containers"][0]["env"]
    assert result == expected


def test_apply_after_reordering_env_vars():
    config = deployment_file(list(reversed(ENV_V3)))
    last_applied = kubectl_last_applied(config)
    body = (annotation_body(last_applied)
            + b',"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],'
              b'"containers":[{"$setElementOrder/env":[{"name":"DEBUG"},{"name":"GREETING"}],'
              b'"name":"web"}]}}}}')
    result = apply_patch(STRATEGIC_MERGE_PATCH, live_deployment(ENV_V3, V3_LAST_APPLIED), body,
                         "Deployment")
    assert result == live_deployment(list(reversed(ENV_V3)), last_applied)


def test_apply_restores_replicas_changed_by_kubectl_scale():
    # The file is unchanged, but someone ran `kubectl scale --replicas=5`: the three-way patch
    # carries only the difference between the live object and the file.
    live = live_deployment(ENV_V1, V1_LAST_APPLIED, replicas=5)
    result = apply_patch(STRATEGIC_MERGE_PATCH, live, b'{"spec":{"replicas":2}}', "Deployment")
    assert result == live_deployment(ENV_V1, V1_LAST_APPLIED, replicas=2)


def test_apply_switching_the_deployment_strategy_clears_rolling_update():
    # strategy carries patchStrategy=retainKeys, so kubectl lists the keys to keep.
    body = b'{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"}}}'
    result = apply_patch(STRATEGIC_MERGE_PATCH, live_deployment(ENV_V1, V1_LAST_APPLIED), body,
                         "Deployment")
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_apply_changing_a_volume_source():
    live = live_deployment(ENV_V1, V1_LAST_APPLIED)
    live["spec"]["template"]["spec"]["volumes"] = [{"name": "cache", "emptyDir": {}},
                                                   {"name": "data", "emptyDir": {}}]
    body = (b'{"spec":{"template":{"spec":{"$setElementOrder/volumes":[{"name":"cache"},'
            b'{"name":"data"}],"volumes":[{"$retainKeys":["configMap","name"],'
            b'"configMap":{"name":"cfg"},"emptyDir":null,"name":"data"}]}}}}')
    result = apply_patch(STRATEGIC_MERGE_PATCH, live, body, "Deployment")
    assert result["spec"]["template"]["spec"]["volumes"] == [
        {"name": "cache", "emptyDir": {}}, {"name": "data", "configMap": {"name": "cfg"}}]


def test_kubectl_set_image():
    # kubectl set image deployment/web web=netlab/agnhost (a two-way patch)
    body = (b'{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],'
            b'"containers":[{"image":"netlab/agnhost","name":"web"}]}}}}')
    result = apply_patch(STRATEGIC_MERGE_PATCH, live_deployment(ENV_V1, V1_LAST_APPLIED), body,
                         "Deployment")
    expected = live_deployment(ENV_V1, V1_LAST_APPLIED)
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = "netlab/agnhost"
    assert result == expected


def test_kubectl_rollout_restart():
    body = (b'{"spec":{"template":{"metadata":{"annotations":{'
            b'"kubectl.kubernetes.io/restartedAt":"2024-05-01T12:00:00Z"}}}}}')
    result = apply_patch(STRATEGIC_MERGE_PATCH, live_deployment(ENV_V1, V1_LAST_APPLIED), body,
                         "Deployment")
    assert result["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T12:00:00Z"}}


def test_kubectl_cordon_and_uncordon():
    node = {"kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    cordoned = apply_patch(STRATEGIC_MERGE_PATCH, node, b'{"spec":{"unschedulable":true}}',
                           "Node")
    assert cordoned["spec"] == {"podCIDR": "10.244.1.0/24", "unschedulable": True}
    # uncordon sends {"spec":{"unschedulable":null}}
    assert apply_patch(STRATEGIC_MERGE_PATCH, cordoned, b'{"spec":{"unschedulable":null}}',
                       "Node") == node


SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"clusterIP": "10.96.0.20", "type": "ClusterIP", "selector": {"app": "web"},
             "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
}


def test_apply_adding_and_removing_a_service_port():
    add = (b'{"spec":{"$setElementOrder/ports":[{"port":80},{"port":9090}],'
           b'"ports":[{"name":"metrics","port":9090,"targetPort":9090}]}}')
    with_metrics = apply_patch(STRATEGIC_MERGE_PATCH, SERVICE, add, "Service")
    assert with_metrics["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "port": 9090, "targetPort": 9090}]
    remove = (b'{"spec":{"$setElementOrder/ports":[{"port":80}],'
              b'"ports":[{"$patch":"delete","port":9090}]}}')
    assert apply_patch(STRATEGIC_MERGE_PATCH, with_metrics, remove, "Service") == SERVICE


def test_kubelet_style_status_patch_keeps_server_only_conditions():
    pod = copy.deepcopy(POD)
    pod["status"]["conditions"].append({"type": "Initialized", "status": "True"})
    body = (b'{"status":{"$setElementOrder/conditions":[{"type":"Ready"},'
            b'{"type":"ContainersReady"}],"conditions":[{"type":"Ready","status":"True"},'
            b'{"type":"ContainersReady","status":"True"}]}}')
    result = apply_patch(STRATEGIC_MERGE_PATCH, pod, body, "Pod")
    # Server-only conditions stay; an element new to the list has no live position, so
    # Kubernetes places it ahead of the server-only elements that follow.
    assert result["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "ContainersReady", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
        {"type": "Initialized", "status": "True"}]


def test_apply_adding_a_sidecar_keeps_the_written_order():
    live = live_deployment(ENV_V1, V1_LAST_APPLIED)
    body = (b'{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"},'
            b'{"name":"sidecar"}],"containers":[{"image":"netlab/agnhost","name":"sidecar"}]}}}}')
    result = apply_patch(STRATEGIC_MERGE_PATCH, live, body, "Deployment")
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == [
        "web", "sidecar"]
    # Without $setElementOrder (a hand-written `kubectl patch`), Kubernetes puts the new
    # element first.
    bare = b'{"spec":{"template":{"spec":{"containers":[{"image":"x","name":"sidecar"}]}}}}'
    result = apply_patch(STRATEGIC_MERGE_PATCH, live, bare, "Deployment")
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == [
        "sidecar", "web"]
