"""Validation of the objects netlab serves, with Kubernetes' field paths and messages.

The API server answers an invalid create or update with 422 Invalid and one
``details.causes`` entry per problem, e.g. ``spec.containers[0].image: Required
value``. This module produces those :class:`~netlab.api.errors.FieldError`
lists. It follows k8s.io/kubernetes/pkg/apis/*/validation for what kubectl
users actually run into (names, container and port rules, selectors that must
match templates, immutable fields); it does not try to be complete.

The shared pieces (name formats, the error collector, metadata rules) live in
:mod:`netlab.api.validation_base`; this module holds each kind's rules.

Objects arrive already defaulted (see :mod:`netlab.api.defaults`). Values of the
wrong JSON type are reported as invalid rather than crashing, since Kubernetes
would have refused them while decoding. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable

from netlab.api import validation_apiregistration as _apireg
from netlab.api import validation_batch_policy as _batch_policy
from netlab.api import validation_networking as _net
from netlab.api import validation_rbac as _rbac
from netlab.api import validation_scheduling as _sched
from netlab.api import validation_storage as _storage
from netlab.api.errors import (
    duplicate,
    forbidden_field,
    invalid,
    required,
)
from netlab.api.validation_apps import (
    validate_controllerrevision,
    validate_controllerrevision_update,
    validate_daemonset,
    validate_daemonset_update,
    validate_statefulset,
    validate_statefulset_update,
)
from netlab.api.validation_base import (  # the shared building blocks
    _V,
    IP_MSG,
    PORT_RANGE_MSG,
    Errs,
    _immutable,
    _int_or_percent,
    dns1123_subdomain,
    port_name,
    validate_meta,
)
from netlab.api.validation_config import (
    validate_configmap,
    validate_configmap_update,
    validate_replicationcontroller,
    validate_secret,
    validate_secret_update,
    validate_serviceaccount,
)
from netlab.api.validation_crd import validate_crd, validate_crd_update
from netlab.api.validation_discovery import (
    validate_endpointslice,
    validate_endpointslice_update,
)
from netlab.api.validation_pod import (
    _check_containers_present,
    _selector_and_template,
    validate_pod_spec,
)
from netlab.api.views import dict_at, meta_of, spec_of


def validate_pod(v: _V, obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    _check_containers_present(v, spec, "spec")
    validate_pod_spec(v, spec, "spec")


_POD_UPDATE_MSG = ("pod updates may not change fields other than `spec.containers[*].image`,"
                   "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                   "`spec.tolerations` (only additions to existing tolerations),"
                   "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                   "previously negative)")


def validate_pod_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    new_spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return
    # Copy the mutable fields from the old spec; what still differs was not allowed.
    probe = dict(new_spec)
    for key in ("containers", "initContainers"):
        new_cs, old_cs = new_spec.get(key), old_spec.get(key)
        if isinstance(new_cs, list) and isinstance(old_cs, list) and len(new_cs) == len(old_cs):
            probe[key] = [dict(n, image=o.get("image")) if isinstance(n, dict) and
                          isinstance(o, dict) else n for n, o in zip(new_cs, old_cs)]
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        probe.pop(key, None)
    old_probe = {k: val for k, val in old_spec.items()
                 if k not in ("activeDeadlineSeconds", "terminationGracePeriodSeconds")}
    old_tols = old_spec.get("tolerations") or []
    new_tols = new_spec.get("tolerations") or []
    if isinstance(new_tols, list) and all(t in new_tols for t in old_tols):
        probe.pop("tolerations", None)
        old_probe.pop("tolerations", None)
    if probe != old_probe:
        v.add(forbidden_field("spec", _POD_UPDATE_MSG))


# --- services ---------------------------------------------------------------------------------


SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def validate_service(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    svc_type = v.one_of(spec, "type", "spec.type", SERVICE_TYPES)
    cluster_ip = v.string(spec, "clusterIP", "spec.clusterIP")
    if svc_type == "ExternalName":
        if cluster_ip:
            v.add(forbidden_field("spec.clusterIP", "may not be set for ExternalName services"))
        ext = v.string(spec, "externalName", "spec.externalName")
        if not ext:
            v.add(required("spec.externalName"))
        else:
            for msg in dns1123_subdomain(ext.rstrip(".")):
                v.add(invalid("spec.externalName", ext, msg))
    elif cluster_ip and cluster_ip != "None":
        try:
            ipaddress.IPv4Address(cluster_ip)
        except ValueError:
            v.add(invalid("spec.clusterIP", cluster_ip, IP_MSG))
    elif cluster_ip == "None" and svc_type in ("NodePort", "LoadBalancer"):
        v.add(invalid("spec.clusterIP", cluster_ip,
                      f"may not be set to 'None' for {svc_type} services"))
    ports = v.objs(spec, "ports", "spec.ports")
    if not ports and svc_type != "ExternalName" and cluster_ip != "None":
        v.add(required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for path, port in ports:
        pname = v.unique_name(port, f"{path}.name", names)
        if len(ports) > 1 and not pname:
            v.add(required(f"{path}.name"))
        number = v.port(port, "port", f"{path}.port", zero_is_missing=False)
        protocol = v.one_of(port, "protocol", f"{path}.protocol", ("SCTP", "TCP", "UDP"))
        if (number, protocol) in seen:
            v.add(duplicate(path, {"port": number, "protocol": protocol}))
        seen.add((number, protocol))
        target = port.get("targetPort")
        if isinstance(target, bool) or (target is not None
                                        and not isinstance(target, (int, str))):
            v.add(invalid(f"{path}.targetPort", target, "must be an integer or a string"))
        elif isinstance(target, int) and not 1 <= target <= 65535:
            v.add(invalid(f"{path}.targetPort", target, PORT_RANGE_MSG))
        elif isinstance(target, str) and target:
            for msg in port_name(target):
                v.add(invalid(f"{path}.targetPort", target, msg))
        node_port = v.integer(port, "nodePort", f"{path}.nodePort")
        if node_port and svc_type not in ("NodePort", "LoadBalancer"):
            v.add(forbidden_field(f"{path}.nodePort",
                                  f"may not be used when `type` is '{svc_type}'"))
    selector = spec.get("selector")
    if selector is not None:
        v.labels(selector, "spec.selector")
    v.one_of(spec, "sessionAffinity", "spec.sessionAffinity", ("ClientIP", "None"))
    if spec.get("externalTrafficPolicy") is not None:
        if svc_type not in ("NodePort", "LoadBalancer"):
            v.add(invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"],
                          "may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
        else:
            v.one_of(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy",
                     ("Cluster", "Local"))
    v.one_of(spec, "internalTrafficPolicy", "spec.internalTrafficPolicy", ("Cluster", "Local"))


def validate_service_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    old_ip = spec_of(old).get("clusterIP")
    new_spec = dict_at(new, "spec")
    if old_ip and new_spec.get("type") != "ExternalName" and \
            spec_of(old).get("type") != "ExternalName" and \
            new_spec.get("clusterIP") != old_ip:
        v.add(invalid("spec.clusterIP", new_spec.get("clusterIP", ""), "field is immutable"))


# --- workloads --------------------------------------------------------------------------------


def validate_deployment(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    v.non_negative(spec, "replicas", "spec.replicas")
    _selector_and_template(v, spec, "deployment", "empty selector is invalid for deployment",
                           ("Always",))
    strategy = v.obj(spec, "strategy", "spec.strategy")
    stype = v.one_of(strategy, "type", "spec.strategy.type", ("Recreate", "RollingUpdate"))
    rolling = strategy.get("rollingUpdate")
    if stype == "Recreate" and rolling is not None:
        v.add(forbidden_field("spec.strategy.rollingUpdate",
                              "may not be specified when strategy `type` is 'Recreate'"))
    elif isinstance(rolling, dict):
        path = "spec.strategy.rollingUpdate"
        unavailable = _int_or_percent(v, rolling, "maxUnavailable", f"{path}.maxUnavailable")
        surge = _int_or_percent(v, rolling, "maxSurge", f"{path}.maxSurge")
        if unavailable == 0 and surge == 0:
            v.add(invalid(f"{path}.maxUnavailable", rolling.get("maxUnavailable"),
                          "may not be 0 when `maxSurge` is 0"))
        if isinstance(rolling.get("maxUnavailable"), str) and unavailable and unavailable > 100:
            v.add(invalid(f"{path}.maxUnavailable", rolling["maxUnavailable"],
                          "must not be greater than 100%"))
    v.non_negative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    min_ready = v.non_negative(spec, "minReadySeconds", "spec.minReadySeconds") or 0
    deadline = v.integer(spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds")
    if deadline is not None and deadline <= min_ready:
        v.add(invalid("spec.progressDeadlineSeconds", deadline,
                      "must be greater than minReadySeconds"))


def validate_replicaset(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    v.non_negative(spec, "replicas", "spec.replicas")
    v.non_negative(spec, "minReadySeconds", "spec.minReadySeconds")
    _selector_and_template(v, spec, "replicaset", "empty selector is invalid for deployment",
                           ("Always",))


def validate_job(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    for key in ("parallelism", "completions", "backoffLimit"):
        v.non_negative(spec, key, f"spec.{key}")
    deadline = v.integer(spec, "activeDeadlineSeconds", "spec.activeDeadlineSeconds")
    if deadline is not None and deadline <= 0:
        v.add(invalid("spec.activeDeadlineSeconds", deadline, "must be greater than 0"))
    mode = v.one_of(spec, "completionMode", "spec.completionMode", ("NonIndexed", "Indexed"))
    if mode == "Indexed" and spec.get("completions") is None:
        v.add(required("spec.completions", "when completion mode is Indexed"))
    _selector_and_template(v, spec, "job", "empty selector is invalid for job",
                           ("OnFailure", "Never"))


def validate_job_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    _immutable(v, new, old, "spec", "selector")
    _immutable(v, new, old, "spec", "template")
    _immutable(v, new, old, "spec", "completions")


def validate_hpa(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    ref = v.obj(spec, "scaleTargetRef", "spec.scaleTargetRef")
    for key in ("kind", "name"):
        if not v.string(ref, key, f"spec.scaleTargetRef.{key}"):
            v.add(required(f"spec.scaleTargetRef.{key}"))
    min_replicas = v.integer(spec, "minReplicas", "spec.minReplicas")
    if min_replicas is not None and min_replicas < 1:
        v.add(invalid("spec.minReplicas", min_replicas, "must be greater than or equal to 1"))
    max_replicas = v.integer(spec, "maxReplicas", "spec.maxReplicas")
    if max_replicas is None:
        v.add(required("spec.maxReplicas"))
    elif max_replicas < 1:
        v.add(invalid("spec.maxReplicas", max_replicas, "must be greater than 0"))
    elif min_replicas is not None and max_replicas < min_replicas:
        v.add(invalid("spec.maxReplicas", max_replicas,
                      "must be greater than or equal to `minReplicas`"))
    for path, metric in v.objs(spec, "metrics", "spec.metrics"):
        mtype = v.one_of(metric, "type", f"{path}.type", (
            "ContainerResource", "External", "Object", "Pods", "Resource"), required_=True)
        if mtype == "Resource":
            res = v.obj(metric, "resource", f"{path}.resource")
            if not v.string(res, "name", f"{path}.resource.name"):
                v.add(required(f"{path}.resource.name"))
            target = v.obj(res, "target", f"{path}.resource.target")
            ttype = v.one_of(target, "type", f"{path}.resource.target.type",
                             ("AverageValue", "Utilization", "Value"), required_=True)
            if ttype == "Utilization":
                util = v.integer(target, "averageUtilization",
                                 f"{path}.resource.target.averageUtilization")
                if util is None:
                    v.add(required(f"{path}.resource.target.averageUtilization"))
                elif util <= 0:
                    v.add(invalid(f"{path}.resource.target.averageUtilization", util,
                                  "must be greater than 0"))


# --- cluster objects --------------------------------------------------------------------------


def validate_node(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    cidr = v.string(spec, "podCIDR", "spec.podCIDR")
    if cidr:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            v.add(invalid("spec.podCIDR", cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 "
                          "or 2001:db8::/64)"))


def validate_endpoints(v: _V, obj: dict[str, Any]) -> None:
    for spath, subset in v.objs(obj, "subsets", "subsets"):
        for key in ("addresses", "notReadyAddresses"):
            for apath, addr in v.objs(subset, key, f"{spath}.{key}"):
                ip = v.string(addr, "ip", f"{apath}.ip")
                try:
                    ipaddress.ip_address(ip)
                except ValueError:
                    v.add(invalid(f"{apath}.ip", ip, IP_MSG))
        ports = v.objs(subset, "ports", f"{spath}.ports")
        for ppath, port in ports:
            v.port(port, "port", f"{ppath}.port", zero_is_missing=False)
            v.one_of(port, "protocol", f"{ppath}.protocol", ("SCTP", "TCP", "UDP"))
            if len(ports) > 1 and not port.get("name"):
                v.add(required(f"{ppath}.name"))


def validate_event(v: _V, obj: dict[str, Any]) -> None:
    involved = v.obj(obj, "involvedObject", "involvedObject")
    ns = meta_of(obj).get("namespace")
    inv_ns = involved.get("namespace")
    if inv_ns and ns and inv_ns != ns:
        v.add(invalid("involvedObject.namespace", inv_ns, "does not match event.namespace"))


def validate_lease(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    duration = v.integer(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds")
    if duration is not None and duration <= 0:
        v.add(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))


_VALIDATORS: dict[str, Callable[[_V, dict[str, Any]], None]] = {
    "Pod": validate_pod,
    "Service": validate_service,
    "Deployment": validate_deployment,
    "ReplicaSet": validate_replicaset,
    "Job": validate_job,
    "DaemonSet": validate_daemonset,
    "StatefulSet": validate_statefulset,
    "ControllerRevision": validate_controllerrevision,
    "HorizontalPodAutoscaler": validate_hpa,
    "Node": validate_node,
    "Endpoints": validate_endpoints,
    "Event": validate_event,
    "Lease": validate_lease,
    "CustomResourceDefinition": validate_crd,
    "EndpointSlice": validate_endpointslice,
    "NetworkPolicy": _net.validate_network_policy,
    "Ingress": _net.validate_ingress,
    "IngressClass": _net.validate_ingress_class,
    "Role": _rbac.validate_role,
    "ClusterRole": _rbac.validate_cluster_role,
    "RoleBinding": _rbac.validate_role_binding,
    "ClusterRoleBinding": _rbac.validate_cluster_role_binding,
    "APIService": _apireg.validate_apiservice,
    "ConfigMap": validate_configmap,
    "Secret": validate_secret,
    "ServiceAccount": validate_serviceaccount,
    "ReplicationController": validate_replicationcontroller,
    "CronJob": _batch_policy.validate_cronjob,
    "PodDisruptionBudget": _batch_policy.validate_pdb,
    "PriorityClass": _sched.validate_priority_class,
    "PersistentVolume": _storage.validate_volume,
    "PersistentVolumeClaim": _storage.validate_claim,
    "StorageClass": _storage.validate_storage_class,
}

_UPDATE_VALIDATORS: dict[str, Callable[[_V, dict[str, Any], dict[str, Any]], None]] = {
    "Pod": validate_pod_update,
    "Service": validate_service_update,
    "Deployment": lambda v, n, o: _immutable(v, n, o, "spec", "selector"),
    "ReplicaSet": lambda v, n, o: _immutable(v, n, o, "spec", "selector"),
    "Job": validate_job_update,
    "CustomResourceDefinition": validate_crd_update,
    "EndpointSlice": validate_endpointslice_update,
    "IngressClass": _net.validate_ingress_class_update,
    "RoleBinding": _rbac.validate_binding_update,
    "ClusterRoleBinding": _rbac.validate_binding_update,
    "ConfigMap": validate_configmap_update,
    "Secret": validate_secret_update,
    "DaemonSet": validate_daemonset_update,
    "StatefulSet": validate_statefulset_update,
    "ControllerRevision": validate_controllerrevision_update,
    "CronJob": _batch_policy.validate_cronjob_update,
    "PriorityClass": _sched.validate_priority_class_update,
    "PersistentVolume": _storage.validate_volume_update,
    "PersistentVolumeClaim": _storage.validate_claim_update,
    "StorageClass": _storage.validate_storage_class_update,
}


def validate(kind: str, obj: dict[str, Any], namespaced: bool) -> Errs:
    """Every problem with ``obj`` as a new object of ``kind``; empty when valid."""
    v = _V()
    validate_meta(v, kind, obj, namespaced)
    check = _VALIDATORS.get(kind)
    if check is not None:
        check(v, obj)
    return v.errs


def validate_update(kind: str, new: dict[str, Any], old: dict[str, Any], namespaced: bool) -> Errs:
    """Problems with replacing ``old`` by ``new``: the object rules plus immutability."""
    v = _V()
    v.errs.extend(validate(kind, new, namespaced))
    check = _UPDATE_VALIDATORS.get(kind)
    if check is not None:
        check(v, new, old)
    return v.errs


def validate_status_update(kind: str, new: dict[str, Any], old: dict[str, Any],
                           namespaced: bool) -> Errs:
    """A status write: metadata is checked (spec is the old, already valid one)."""
    v = _V()
    validate_meta(v, kind, new, namespaced)
    return v.errs

