"""The builders and tables of the OpenAPI v3 component schemas netlab serves.

The shorthands every ``openapi_schemas*`` module restates k8s.io/api with (``S``, ``R``,
``A``, ``M``, ``OBJ``, ``obj``...), the short-to-full component names, and the two tables
their ``_def``/``_kind`` calls fill: ``SCHEMAS`` and ``KINDS``. :mod:`netlab.api.openapi_schemas`
re-exports the tables, which is where their readers find them. Data only: no I/O.
"""

from __future__ import annotations

from typing import Any, Optional

Schema = dict[str, Any]

_PREFIXES = {
    "meta": "io.k8s.apimachinery.pkg.apis.meta.v1.",
    "core": "io.k8s.api.core.v1.",
    "apps": "io.k8s.api.apps.v1.",
    "batch": "io.k8s.api.batch.v1.",
    "asv1": "io.k8s.api.autoscaling.v1.",
    "asv2": "io.k8s.api.autoscaling.v2.",
    "coord": "io.k8s.api.coordination.v1.",
    "apiext": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.",
    "disc": "io.k8s.api.discovery.v1.",
    "policy": "io.k8s.api.policy.v1.",
}
_SPECIAL = {
    "Quantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "IntOrString": "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "RawExtension": "io.k8s.apimachinery.pkg.runtime.RawExtension",
}


def full_name(short: str) -> str:
    """``core.Pod`` -> ``io.k8s.api.core.v1.Pod``; full names pass through unchanged."""
    if short in _SPECIAL:
        return _SPECIAL[short]
    prefix, dot, name = short.partition(".")
    if dot and prefix in _PREFIXES:
        return _PREFIXES[prefix] + name
    return short


# --- builders ---------------------------------------------------------------------------------

S: Schema = {"type": "string"}
B: Schema = {"type": "boolean"}
I32: Schema = {"type": "integer", "format": "int32"}
I64: Schema = {"type": "integer", "format": "int64"}


def R(short: str, **ext: Any) -> Schema:
    """A reference to another component, as the v3 server writes it, with extensions."""
    out: Schema = {"allOf": [{"$ref": "#/components/schemas/" + full_name(short)}]}
    out.update(_ext(ext))
    return out


def _ext(ext: dict[str, Any]) -> Schema:
    names = {"key": "x-kubernetes-patch-merge-key", "strategy": "x-kubernetes-patch-strategy",
             "ltype": "x-kubernetes-list-type", "mkeys": "x-kubernetes-list-map-keys",
             "mtype": "x-kubernetes-map-type"}
    return {names[k]: v for k, v in ext.items() if v is not None}


def A(item: Any, **ext: Any) -> Schema:
    """An array; ``item`` is a schema or a short component name."""
    items = {"allOf": [{"$ref": "#/components/schemas/" + full_name(item)}], "default": {}} \
        if isinstance(item, str) else item
    out: Schema = {"type": "array", "items": items}
    out.update(_ext(ext))
    return out


def AS(**ext: Any) -> Schema:
    """An atomic list of strings (Go's ``[]string`` without patch tags)."""
    return A(S, ltype=ext.pop("ltype", "atomic"), **ext)


def M(item: Any, key: str, mkeys: Optional[list[str]] = None, strategy: str = "merge",
      ltype: Optional[str] = "map") -> Schema:
    """A list merged element-wise by ``key`` under strategic merge patch."""
    return A(item, key=key, strategy=strategy, ltype=ltype,
             mkeys=(mkeys or [key]) if ltype == "map" else None)


def MAP(value: Schema, **ext: Any) -> Schema:
    out: Schema = {"type": "object", "additionalProperties": value}
    out.update(_ext(ext))
    return out


SMAP = MAP(S)
QMAP = MAP(R("Quantity"))
FREE: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def OBJ(props: dict[str, Schema], req: tuple[str, ...] = (), **ext: Any) -> Schema:
    """An object with the given properties (and required names, and map-type extension)."""
    out: Schema = {"type": "object", "properties": dict(props)}
    if req:
        out["required"] = list(req)
    out.update(_ext(ext))
    return out


def obj(req: tuple[str, ...] = (), mtype: Optional[str] = None, **props: Schema) -> Schema:
    """Shorthand for :func:`OBJ` with the properties as keyword arguments."""
    return OBJ(props, req, mtype=mtype)


TIME = R("meta.Time")
MICRO = R("meta.MicroTime")
Q = R("Quantity")
IOS = R("IntOrString")
META = R("meta.ObjectMeta")
SELECTOR = R("meta.LabelSelector")

# Each served kind: short component name -> (group, version, kind).
KINDS: dict[str, tuple[str, str, str]] = {}
SCHEMAS: dict[str, Schema] = {}


def _def(short: str, schema: Schema) -> None:
    SCHEMAS[full_name(short)] = schema


def _kind(short: str, group: str, version: str, props: dict[str, Schema],
          req: tuple[str, ...] = ()) -> None:
    """A top-level kind (apiVersion, kind, metadata, ...), and its List kind."""
    kind = short.partition(".")[2]
    schema = OBJ({"apiVersion": S, "kind": S, "metadata": META, **props}, req)
    schema["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind,
                                                  "version": version}]
    _def(short, schema)
    KINDS[short] = (group, version, kind)
    lst = OBJ({"apiVersion": S, "items": A(short), "kind": S, "metadata": R("meta.ListMeta")},
            ("items",))
    lst["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind + "List",
                                               "version": version}]
    _def(short + "List", lst)
