"""OpenAPI v3 component schemas of scheduling.k8s.io/v1 (PriorityClass), restated from k8s.io/api.

Imported at the bottom of :mod:`netlab.api.openapi_schemas`, whose ``_def``/``_kind``
registration tables these calls fill: kubectl validates PriorityClass manifests and
computes apply patches from them, and strict field validation rejects fields not declared
here. ``value`` is required, as the published schema says.
"""

from __future__ import annotations

from netlab.api.openapi_schemas_base import _PREFIXES, I32, B, S, _kind

_PREFIXES["sched"] = "io.k8s.api.scheduling.v1."

_kind("sched.PriorityClass", "scheduling.k8s.io", "v1", {
    "description": S, "globalDefault": B, "preemptionPolicy": S, "value": I32}, ("value",))
