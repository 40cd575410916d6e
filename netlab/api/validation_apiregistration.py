"""Validation of apiregistration.k8s.io/v1 APIServices, as kube-aggregator's
pkg/apis/apiregistration/validation does it: the name is ``<version>.<group>``, priorities
are bounded, and a Local APIService (no ``service``) carries no TLS settings.
:mod:`netlab.api.validation` registers it. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from netlab.api.errors import invalid, required
from netlab.api.validation_base import (
    _V,
    NAME_RULES,
    PORT_RANGE_MSG,
    dns1035_label,
    dns1123_subdomain,
)
from netlab.api.validation_rbac import path_segment_name

NAME_RULES["APIService"] = path_segment_name


def validate_apiservice(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    group = v.string(spec, "group", "spec.group")
    version = v.string(spec, "version", "spec.version")
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    wanted = f"{version}.{group}"
    if isinstance(name, str) and name and not path_segment_name(name) and name != wanted:
        v.add(invalid("metadata.name", name, f'must be `spec.version+"."+spec.group`: '
                                             f'"{wanted}"'))
    if not group and version != "v1":
        v.add(required("spec.group", "only v1 may have an empty group and it better be "
                                     "legacy kube"))
    for msg in dns1123_subdomain(group) if group else ():
        v.add(invalid("spec.group", group, msg))
    for msg in dns1035_label(version):
        v.add(invalid("spec.version", version, msg))
    group_min = v.integer(spec, "groupPriorityMinimum", "spec.groupPriorityMinimum") or 0
    if not 0 < group_min <= 20000:
        v.add(invalid("spec.groupPriorityMinimum", group_min,
                      "must be positive and less than 20000"))
    version_prio = v.integer(spec, "versionPriority", "spec.versionPriority") or 0
    if not 0 < version_prio <= 1000:
        v.add(invalid("spec.versionPriority", version_prio,
                      "must be positive and less than 1000"))
    ca_bundle = v.string(spec, "caBundle", "spec.caBundle")
    insecure = spec.get("insecureSkipTLSVerify") is True
    if spec.get("service") is None:
        if ca_bundle:
            v.add(invalid("spec.caBundle", f"{len(ca_bundle)} bytes",
                          "local APIServices may not have a caBundle"))
        if insecure:
            v.add(invalid("spec.insecureSkipTLSVerify", True,
                          "local APIServices may not have insecureSkipTLSVerify"))
        return
    service = v.obj(spec, "service", "spec.service")
    for key in ("namespace", "name"):
        if not v.string(service, key, f"spec.service.{key}"):
            v.add(required(f"spec.service.{key}"))
    port = v.integer(service, "port", "spec.service.port")
    if port is not None and not 1 <= port <= 65535:
        v.add(invalid("spec.service.port", port, "port is not valid: " + PORT_RANGE_MSG))
    if insecure and ca_bundle:
        v.add(invalid("spec.insecureSkipTLSVerify", True,
                      "may not be true if caBundle is present"))
