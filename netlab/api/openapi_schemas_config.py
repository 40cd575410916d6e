"""OpenAPI v3 schemas of core/v1 ConfigMap, Secret, ServiceAccount and ReplicationController.

Restated from k8s.io/api/core/v1 like the rest of :mod:`netlab.api.openapi_schemas`, which
imports this module at its end so that these ``_def``/``_kind`` calls register the kinds in
its tables. ``data`` of a Secret and ``binaryData`` of a ConfigMap are Go ``[]byte`` values:
base64 strings on the wire (``format: byte``).
"""

from __future__ import annotations

from netlab.api.openapi_schemas_base import (
    I32,
    I64,
    MAP,
    SMAP,
    TIME,
    A,
    B,
    M,
    R,
    S,
    _def,
    _kind,
    obj,
)

BYTES = {"type": "string", "format": "byte"}

_kind("core.ConfigMap", "", "v1", {"binaryData": MAP(BYTES), "data": SMAP, "immutable": B})
_kind("core.Secret", "", "v1", {"data": MAP(BYTES), "immutable": B, "stringData": SMAP,
                                "type": S})
_kind("core.ServiceAccount", "", "v1", {
    "automountServiceAccountToken": B,
    "imagePullSecrets": A("core.LocalObjectReference", ltype="atomic"),
    "secrets": M("core.ObjectReference", "name", ltype=None)})

_def("core.ReplicationControllerSpec", obj(
    minReadySeconds=I32, replicas=I32, selector=MAP(S, mtype="atomic"),
    template=R("core.PodTemplateSpec")))
_def("core.ReplicationControllerCondition", obj(
    ("type", "status"), lastTransitionTime=TIME, message=S, reason=S, status=S, type=S))
_def("core.ReplicationControllerStatus", obj(
    ("replicas",), availableReplicas=I32,
    conditions=M("core.ReplicationControllerCondition", "type"), fullyLabeledReplicas=I32,
    observedGeneration=I64, readyReplicas=I32, replicas=I32))
_kind("core.ReplicationController", "", "v1", {
    "spec": R("core.ReplicationControllerSpec"),
    "status": R("core.ReplicationControllerStatus")})
