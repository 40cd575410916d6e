"""OpenAPI v3 component schemas of discovery.k8s.io/v1 (EndpointSlice), restated from k8s.io/api.

Imported at the bottom of :mod:`netlab.api.openapi_schemas`, whose ``_def``/``_kind``
registration tables these calls fill; kubectl validates slices and computes apply
patches from them, and strict field validation rejects fields not declared here.
List and map types follow the upstream markers: ``endpoints`` and ``ports`` are
atomic lists, an endpoint's ``addresses`` a set, an ``EndpointPort`` an atomic map.
"""

from __future__ import annotations

from netlab.api.openapi_schemas_base import AS, I32, SMAP, A, B, R, S, _def, _kind, obj

_def("disc.EndpointConditions", obj(ready=B, serving=B, terminating=B))
_def("disc.ForZone", obj(("name",), name=S))
_def("disc.ForNode", obj(("name",), name=S))
_def("disc.EndpointHints", obj(forNodes=A("disc.ForNode", ltype="atomic"),
                               forZones=A("disc.ForZone", ltype="atomic")))
_def("disc.Endpoint", obj(
    ("addresses",), addresses=AS(ltype="set"), conditions=R("disc.EndpointConditions"),
    deprecatedTopology=SMAP, hints=R("disc.EndpointHints"), hostname=S, nodeName=S,
    targetRef=R("core.ObjectReference"), zone=S))
_def("disc.EndpointPort", obj(appProtocol=S, name=S, port=I32, protocol=S, mtype="atomic"))
_kind("disc.EndpointSlice", "discovery.k8s.io", "v1", {
    "addressType": S, "endpoints": A("disc.Endpoint", ltype="atomic"),
    "ports": A("disc.EndpointPort", ltype="atomic")}, ("addressType", "endpoints"))
