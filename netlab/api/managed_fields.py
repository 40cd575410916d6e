"""Field sets and ``metadata.managedFields``: which manager owns which fields of an object.

Server-side apply (see :mod:`netlab.api.server_side_apply`) and every other write record,
per field manager, the set of fields it manages, in the ``FieldsV1`` format of
sigs.k8s.io/structured-merge-diff. This module holds the pure parts:

* :class:`Shape`: what the schema says about a node (a granular map/struct, an atomic
  value, or a list of type ``atomic``/``set``/``map`` with its ``x-kubernetes-list-map-keys``),
  read from the OpenAPI v3 component schemas in :mod:`netlab.api.openapi_schemas` or from a
  CRD's structural schema; values without a schema are "deduced" as upstream does (objects
  are granular maps, lists are atomic);
* field sets: a ``frozenset`` of paths, each path a tuple of FieldsV1 path elements
  (``f:name``, ``k:{"name":"x"}``, ``v:"value"``, ``i:0``), with :func:`field_set` (the
  fields a value sets), :func:`compare` (what changed between two values);
* encoding: :func:`to_fields_v1`/:func:`from_fields_v1` and :func:`path_string` (the
  ``.spec.containers[name="x"].image`` form conflict messages use);
* :class:`Entry`: one ``managedFields`` entry, :func:`decode_entries`/:func:`encode_entries`.

Approximation, stated: upstream inserts a node's own path (the ``.: {}`` marker) for nodes
that were absent in the Go zero value of the type; netlab emulates that with the schema's
``required`` lists plus the well-known non-pointer struct fields. Pure: stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from netlab.api import openapi_schemas as S

__all__ = [
    "Entry",
    "FieldSet",
    "Path",
    "Shape",
    "compare",
    "decode_entries",
    "encode_entries",
    "field_set",
    "from_fields_v1",
    "path_string",
    "shape_for_kind",
    "shape_for_schema",
    "to_fields_v1",
]

Path = tuple[str, ...]
FieldSet = frozenset  # of Path
_REF = "#/components/schemas/"
# Struct fields that exist in the Go zero value of their parent (non-pointer structs and
# non-omitempty fields): adding them never inserts the node's own path.
_FIXED = frozenset(("metadata", "spec", "status", "template", "strategy", "updateStrategy",
                    "jobTemplate"))
# Defaults of list-map key fields (OpenAPI ``default``): a port without a protocol is TCP.
_KEY_DEFAULTS = {"protocol": "TCP"}


class ShapeError(ValueError):
    """A value that does not fit its schema the way a field set needs (e.g. an element of
    an associative list without its key fields)."""


# --- shapes -----------------------------------------------------------------------------------


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(64):
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
            merged = dict(schema)
            merged.pop("allOf")
            inner = all_of[0]
            ref = inner.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF):] in S.SCHEMAS:
                base = dict(S.SCHEMAS[ref[len(_REF):]])
                base.update({k: v for k, v in merged.items() if k.startswith("x-")})
                schema = base
            else:
                schema = {**merged, **inner}
            continue
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF):] in S.SCHEMAS:
            schema = S.SCHEMAS[ref[len(_REF):]]
            continue
        return schema
    return schema


@dataclass(frozen=True)
class Shape:
    """What a schema says about one node. ``kind``: ``map`` (granular struct or map),
    ``atomic`` (a leaf: scalar, atomic struct/map, or an atomic list), ``set`` (a list of
    scalars merged as a set) or ``assoc`` (a list of objects keyed by ``keys``)."""

    kind: str
    schema: Optional[Mapping[str, Any]] = field(default=None, compare=False)
    keys: tuple[str, ...] = ()
    typed: bool = False  # a built-in kind (Go zero-value rules apply to ``.`` markers)
    required: frozenset[Any] = frozenset()
    _children: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def child(self, name: str) -> Shape:
        """The shape of field/key ``name`` of a map node (memoized per declared property
        and for the map's values; never per arbitrary key, so memory stays bounded)."""
        schema = self.schema
        if schema is None:
            return DEDUCED
        props = schema.get("properties")
        key = name if isinstance(props, Mapping) and name in props else "\x00values"
        cached = self._children.get(key)
        if cached is None:
            cached = self._children[key] = self._child(name)
        return cached

    def _child(self, name: str) -> Shape:
        schema = self.schema
        assert schema is not None
        props = schema.get("properties")
        if isinstance(props, Mapping) and name in props:
            return _shape(props[name], self.typed)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            return _shape(extra, self.typed)
        return DEDUCED

    def item(self) -> Shape:
        """The shape of a list node's elements."""
        cached = self._children.get("\x00items")
        if cached is None:
            items = self.schema.get("items") if self.schema is not None else None
            cached = _shape(items, self.typed) if isinstance(items, Mapping) else DEDUCED
            self._children["\x00items"] = cached
        return cached

    def fixed(self, name: str) -> bool:
        """Whether field ``name`` exists in the zero value of this struct (no ``.``)."""
        return name in self.required or (self.typed and name in _FIXED)


DEDUCED = Shape("map")
ATOMIC = Shape("atomic")


def _shape(schema: Any, typed: bool) -> Shape:
    if not isinstance(schema, Mapping):
        return DEDUCED
    schema = _resolve(schema)
    stype = schema.get("type")
    if stype == "array" or "items" in schema:
        ltype = schema.get("x-kubernetes-list-type")
        if ltype == "set":
            return Shape("set", schema, typed=typed)
        keys = schema.get("x-kubernetes-list-map-keys")
        if ltype == "map" and isinstance(keys, list) and keys and \
                all(isinstance(k, str) for k in keys):
            return Shape("assoc", schema, tuple(keys), typed=typed)
        return Shape("atomic", schema, typed=typed)
    if schema.get("x-kubernetes-map-type") == "atomic" or \
            schema.get("x-kubernetes-int-or-string") or "oneOf" in schema:
        return Shape("atomic", schema, typed=typed)
    if stype == "object" or "properties" in schema or "additionalProperties" in schema:
        if "properties" not in schema and not isinstance(schema.get("additionalProperties"),
                                                         Mapping):
            return Shape("map", None, typed=typed)  # free-form: deduced below
        req = schema.get("required")
        required = frozenset(r for r in req if isinstance(r, str)) \
            if isinstance(req, list) else frozenset()
        return Shape("map", schema, typed=typed, required=required)
    if stype in ("string", "integer", "number", "boolean"):
        return ATOMIC
    return DEDUCED


def shape_for_kind(kind: str, api_version: str) -> Shape:
    """The shape of a built-in kind in ``api_version`` (deduced if netlab has no schema)."""
    group, _, version = api_version.rpartition("/")
    for short, (g, v, k) in S.KINDS.items():
        if k == kind and g == group and v == version:
            return _shape(S.SCHEMAS[S.full_name(short)], True)
    for short, (_g, _v, k) in S.KINDS.items():
        if k == kind:
            return _shape(S.SCHEMAS[S.full_name(short)], True)
    return DEDUCED


def shape_for_schema(schema: Optional[Mapping[str, Any]]) -> Shape:
    """The shape of a custom resource from its structural schema; ``metadata`` is always
    ObjectMeta (so labels are a map and finalizers a set)."""
    base: dict[str, Any] = dict(schema) if isinstance(schema, Mapping) else {"type": "object"}
    props = dict(base.get("properties") or {}) if isinstance(base.get("properties"),
                                                             Mapping) else {}
    props["metadata"] = {"$ref": _REF + S.full_name("meta.ObjectMeta")}
    base["properties"] = props
    base.pop("x-kubernetes-preserve-unknown-fields", None)
    base["type"] = "object"
    return Shape("map", base, typed=False)


# --- path elements ----------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def key_of(item: Any, keys: tuple[str, ...]) -> str:
    """The ``k:{...}`` element of an associative-list item (missing defaulted keys are
    filled in; other missing keys are left out, and none at all is an error)."""
    if not isinstance(item, Mapping):
        raise ShapeError(f"associative list with keys has an element that is not a map "
                         f"type: {_json(item)}")
    key = {}
    for k in keys:
        if k in item and item[k] is not None:
            value = item[k]
        elif k in _KEY_DEFAULTS:
            value = _KEY_DEFAULTS[k]
        else:
            continue
        if isinstance(value, (dict, list)):
            raise ShapeError(f"associative list key {k} must be a scalar")
        key[k] = value
    if not key:
        raise ShapeError(f"associative list with keys has an element that omits key field "
                         f"{json.dumps(keys[0])} (and doesn't have default value)")
    return "k:" + _json(key)


def value_element(value: Any) -> str:
    return "v:" + _json(value)


def path_string(path: Path) -> str:
    """``.spec.containers[name="x"].image``: the form conflicts are reported in."""
    out = []
    for elem in path:
        tag, body = elem[:2], elem[2:]
        if tag == "f:":
            out.append("." + body)
        elif tag == "k:":
            try:
                key = json.loads(body)
                out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items())
                           + "]")
            except ValueError:
                out.append("[" + body + "]")
        elif tag == "v:":
            out.append("[=" + body + "]")
        else:
            out.append("[" + body + "]")
    return "".join(out)


# --- field sets of values ---------------------------------------------------------------------


def field_set(value: Any, shape: Shape, prefix: Path = ()) -> set[Any]:
    """The fields ``value`` sets (structured-merge-diff's ToFieldSet): leaves, associative
    and set list elements, empty maps/lists; map nodes with children are implied."""
    out: set[Any] = set()
    _collect(value, shape, prefix, out)
    return out


def _collect(value: Any, shape: Shape, path: Path, out: set[Any]) -> None:
    if shape.kind == "map" and isinstance(value, dict):
        if not value and path:
            out.add(path)
        for k, v in value.items():
            _collect(v, shape.child(k), (*path, "f:" + k), out)
    elif shape.kind == "set" and isinstance(value, list):
        if not value:
            out.add(path)
        for item in value:
            out.add((*path, value_element(item)))
    elif shape.kind == "assoc" and isinstance(value, list):
        if not value:
            out.add(path)
        item_shape = shape.item()
        for item in value:
            elem = (*path, key_of(item, shape.keys))
            out.add(elem)
            if isinstance(item, dict):
                for k, v in item.items():
                    _collect(v, item_shape.child(k), (*elem, "f:" + k), out)
    elif path:
        out.add(path)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and bool(a == b)
    return bool(a == b)


@dataclass
class Comparison:
    """What changed from one value to another, as field sets."""

    added: set[Any] = field(default_factory=set)
    modified: set[Any] = field(default_factory=set)
    removed: set[Any] = field(default_factory=set)

    def changed(self) -> set[Any]:
        return self.added | self.modified


def compare(old: Any, new: Any, shape: Shape) -> Comparison:
    """Fields ``new`` adds, modifies and removes relative to ``old``."""
    out = Comparison()
    _compare(old, new, shape, (), out, None, "")
    return out


_MISSING = object()


def _added(value: Any, shape: Shape, path: Path, out: Comparison,
           parent: Optional[Shape], name: str) -> None:
    """Everything under a node ``new`` added, with the node's own path for containers
    that were absent from the parent's zero value (the ``.`` marker)."""
    container = isinstance(value, (dict, list)) and shape.kind != "atomic"
    if not container or not value:
        out.added.add(path)
        return
    if not (parent is not None and parent.fixed(name)):
        out.added.add(path)
    if shape.kind == "map" and isinstance(value, dict):
        for k, v in value.items():
            _added(v, shape.child(k), (*path, "f:" + k), out, shape, k)
    elif shape.kind == "set" and isinstance(value, list):
        out.added.update((*path, value_element(i)) for i in value)
    elif shape.kind == "assoc" and isinstance(value, list):
        item_shape = shape.item()
        for item in value:
            elem = (*path, key_of(item, shape.keys))
            out.added.add(elem)
            if isinstance(item, dict):
                for k, v in item.items():
                    _added(v, item_shape.child(k), (*elem, "f:" + k), out, item_shape, k)
    else:
        out.added.add(path)


def _compare(old: Any, new: Any, shape: Shape, path: Path, out: Comparison,
             parent: Optional[Shape], name: str) -> None:
    if old is _MISSING:
        _added(new, shape, path, out, parent, name)
        return
    if new is _MISSING:
        out.removed |= field_set(old, shape, path) | {path}
        return
    if shape.kind == "map" and isinstance(old, dict) and isinstance(new, dict):
        if not new and old and path:
            out.modified.add(path)
        for k in list(old) + [k for k in new if k not in old]:
            _compare(old.get(k, _MISSING), new.get(k, _MISSING), shape.child(k),
                     (*path, "f:" + k), out, shape, k)
        return
    if shape.kind in ("set", "assoc") and isinstance(old, list) and isinstance(new, list):
        item_shape = shape.item()
        if shape.kind == "set":
            olds = {value_element(i): i for i in old}
            news = {value_element(i): i for i in new}
        else:
            olds = {key_of(i, shape.keys): i for i in old}
            news = {key_of(i, shape.keys): i for i in new}
        if not new and old and path:
            out.modified.add(path)
        for k in list(olds) + [k for k in news if k not in olds]:
            elem = (*path, k)
            if k not in news:
                out.removed |= field_set(olds[k], item_shape, elem) | {elem}
            elif k not in olds:
                out.added.add(elem)
                if shape.kind == "assoc" and isinstance(news[k], dict):
                    for f, v in news[k].items():
                        _added(v, item_shape.child(f), (*elem, "f:" + f), out, item_shape, f)
            elif shape.kind == "assoc":
                _compare(olds[k], news[k], item_shape, elem, out, None, "")
        return
    if not _equal(old, new) or type(old) is not type(new):
        out.modified.add(path)


# --- FieldsV1 ---------------------------------------------------------------------------------


def _sort_key(elem: str) -> tuple[Any, ...]:
    order = {"f:": 0, "k:": 1, "v:": 2, "i:": 3}
    return (order.get(elem[:2], 4), elem)


def to_fields_v1(fields: Iterable[Path]) -> dict[str, Any]:
    """A field set as a FieldsV1 tree: members are ``{}`` leaves, or ``".": {}`` in a node
    that also has children."""
    root: dict[str, Any] = {}
    members: set[Any] = set()
    for path in fields:
        node = root
        for elem in path:
            node = node.setdefault(elem, {})
        members.add(path)

    def emit(node: dict[str, Any], path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if node and path in members:
            out["."] = {}
        for elem in sorted(node, key=_sort_key):
            out[elem] = emit(node[elem], (*path, elem))
        return out

    return emit(root, ())


def from_fields_v1(tree: Any, prefix: Path = ()) -> set[Any]:
    """The field set of a FieldsV1 tree (malformed parts are skipped)."""
    out: set[Any] = set()
    if not isinstance(tree, Mapping):
        return out
    for elem, sub in tree.items():
        if elem == ".":
            if prefix:
                out.add(prefix)
            continue
        if not isinstance(elem, str) or elem[:2] not in ("f:", "k:", "v:", "i:"):
            continue
        path = (*prefix, elem)
        if isinstance(sub, Mapping) and sub:
            out |= from_fields_v1(sub, path)
        else:
            out.add(path)
    return out


# --- managedFields entries --------------------------------------------------------------------


@dataclass
class Entry:
    """One ``metadata.managedFields`` entry, its field set decoded."""

    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    fields: set[Any]
    time: Optional[str] = None
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Entries with the same identity merge: Apply entries regardless of apiVersion."""
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"apiVersion": self.api_version, "fieldsType": "FieldsV1",
                               "fieldsV1": to_fields_v1(self.fields),
                               "manager": self.manager, "operation": self.operation}
        if self.subresource:
            out["subresource"] = self.subresource
        if self.time:
            out["time"] = self.time
        return out


def decode_entries(raw: Any) -> list[Entry]:
    """The entries of a stored ``managedFields`` list; malformed entries are dropped."""
    out: list[Entry] = []
    if not isinstance(raw, list):
        return out
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        manager, operation = item.get("manager"), item.get("operation")
        if not isinstance(manager, str) or operation not in ("Apply", "Update"):
            continue
        time = item.get("time")
        sub = item.get("subresource")
        out.append(Entry(manager, operation, str(item.get("apiVersion") or ""),
                         from_fields_v1(item.get("fieldsV1")),
                         time if isinstance(time, str) else None,
                         sub if isinstance(sub, str) else ""))
    return out


def encode_entries(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """The ``managedFields`` list: non-empty entries, Apply entries first then by time
    (upstream's order), merged by identity."""
    merged: dict[tuple[Any, ...], Entry] = {}
    for e in entries:
        if not e.fields:
            continue
        seen = merged.get(e.identity)
        if seen is None:
            merged[e.identity] = Entry(e.manager, e.operation, e.api_version, set(e.fields),
                                       e.time, e.subresource)
        else:
            seen.fields |= e.fields
            seen.time = max(seen.time or "", e.time or "") or None
    ordered = sorted(merged.values(), key=lambda e: (e.operation != "Apply", e.time or "",
                                                     e.manager))
    return [e.encode() for e in ordered]
