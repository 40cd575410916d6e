"""The OpenAPI components of custom resources: each served version's CRD schema,
published in ``/openapi/v3/apis/<group>/<version>`` and ``/openapi/v2`` as
kube-apiserver's CRD OpenAPI builder publishes it.

Component names are the group reversed, then version and kind
(``com.example.v1.Widget`` and ``com.example.v1.WidgetList``). The kind's schema is
the version's ``openAPIV3Schema`` with ``apiVersion``, ``kind`` and ``metadata``
(a reference to ObjectMeta) and ``x-kubernetes-group-version-kind`` added. Paths
come from :mod:`netlab.api.openapi` like any resource's; their PATCH operations
accept no strategic merge patch, so kubectl computes JSON merge patches for CRs.
Pure: built from :func:`netlab.api.resources.custom_resources`.
"""

from __future__ import annotations

from typing import Any, Optional

from netlab.api.objects import deep_copy
from netlab.api.resources import Resource, custom_resources

_REF = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."


def component_name(res: Resource, version: str) -> str:
    return ".".join(reversed(res.group.split("."))) + f".{version}.{res.kind}"


def _served(group: str, version: str) -> list[Resource]:
    return [r for r in custom_resources() if r.group == group and version in r.versions]


def schema_name(group: str, version: str, kind: str) -> Optional[str]:
    """The component of a custom kind (or its list kind); None if not a custom kind."""
    for res in _served(group, version):
        if res.kind == kind:
            return component_name(res, version)
    return None


def is_custom_group(group: str) -> bool:
    return any(r.group == group for r in custom_resources())


def _gvk(res: Resource, version: str, kind: str) -> list[dict[str, str]]:
    return [{"group": res.group, "kind": kind, "version": version}]


def components(group: str, version: str) -> dict[str, Any]:
    """Every component the custom kinds of one group-version define."""
    out: dict[str, Any] = {}
    for res in _served(group, version):
        info = res.custom.version(version)
        schema = deep_copy(info.schema) if info is not None and info.schema else {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}
        props = schema.get("properties")
        if not isinstance(props, dict):
            props = schema["properties"] = {}
        props["apiVersion"] = {"type": "string", "description": "APIVersion defines the "
                               "versioned schema of this representation of an object."}
        props["kind"] = {"type": "string", "description": "Kind is a string value "
                         "representing the REST resource this object represents."}
        props["metadata"] = {"allOf": [{"$ref": _REF + _META + "ObjectMeta"}]}
        schema["x-kubernetes-group-version-kind"] = _gvk(res, version, res.kind)
        name = component_name(res, version)
        out[name] = schema
        out[name + "List"] = {
            "type": "object", "required": ["items"],
            "description": f"{res.list_kind} is a list of {res.kind}",
            "properties": {
                "apiVersion": {"type": "string"},
                "items": {"type": "array", "items": {"$ref": _REF + name}},
                "kind": {"type": "string"},
                "metadata": {"allOf": [{"$ref": _REF + _META + "ListMeta"}]},
            },
            "x-kubernetes-group-version-kind": _gvk(res, version, res.list_kind),
        }
    return out
