"""Defaulting: the fields the API server fills in when a client leaves them out.

These are Kubernetes' ``SetDefaults_*`` functions (k8s.io/kubernetes/pkg/apis/
*/v1/defaults.go) for the kinds netlab serves, so that objects read back look
like a real cluster's. Every default is applied only where the field is absent,
which makes :func:`apply_defaults` idempotent and deterministic: ``kubectl
apply`` diffs its manifest against what the server returns, and a second
``apply -f`` of the same file must find nothing to change.

Only defaulting lives here. Server-assigned state (uid, status, allocated IPs,
the Job selector, which need the object's identity) is the API server's
strategy layer's business. Values of the wrong type are left alone for
validation to report. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Callable

from netlab.api import defaults_netrbac, defaults_storage
from netlab.api.defaults_apps import (
    default_daemonset,
    default_rolling_update,
    default_statefulset,
)
from netlab.api.defaults_batch_policy import default_cronjob
from netlab.api.defaults_config import default_replicationcontroller, default_secret
from netlab.api.defaults_pod import (  # noqa: F401 (re-exported: callers use defaults.<name>)
    DEFAULT_SCHEDULER,
    DEFAULT_TERMINATION_GRACE_PERIOD,
    QOS_RESOURCES,
    _dict,
    _dicts,
    default_pod,
    default_pod_spec,
    default_pod_template,
    image_pull_policy,
    pod_qos_class,
)
from netlab.api.priority_admission import PREEMPT_LOWER_PRIORITY
from netlab.api.validation_crd import default_crd
from netlab.api.views import meta_of

PERCENT_25 = "25%"


# --- services ---------------------------------------------------------------------------------


def default_service(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("sessionAffinity") == "ClientIP":
        config = _dict(spec, "sessionAffinityConfig")
        client_ip = _dict(config, "clientIP") if config is not None else None
        if client_ip is not None:
            client_ip.setdefault("timeoutSeconds", 10800)
    for port in _dicts(spec.get("ports")):
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, "") and "port" in port:
            port["targetPort"] = port["port"]
    svc_type = spec.get("type")
    if svc_type in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if svc_type != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")


# --- workloads --------------------------------------------------------------------------------


def default_deployment(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    spec.setdefault("replicas", 1)
    default_rolling_update(spec, "strategy", PERCENT_25, PERCENT_25)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_pod_template(spec.get("template"))


def default_replicaset(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    spec.setdefault("replicas", 1)
    default_pod_template(spec.get("template"))


def default_job(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if "backoffLimit" not in spec:
        spec["backoffLimit"] = 2**31 - 1 if "backoffLimitPerIndex" in spec else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if "podReplacementPolicy" not in spec:
        spec["podReplacementPolicy"] = ("Failed" if "podFailurePolicy" in spec
                                        else "TerminatingOrFailed")
    template = spec.get("template")
    if isinstance(template, dict):
        labels = meta_of(template).get("labels") if isinstance(
            template.get("metadata"), dict) else None
        meta = obj.get("metadata")
        # As in Kubernetes: a Job without labels of its own takes its template's.
        if isinstance(labels, dict) and labels and isinstance(meta, dict) \
                and not meta.get("labels"):
            meta["labels"] = dict(labels)
    default_pod_template(template)


def _default_hpa_rules(rules: Any, scale_up: bool) -> dict[str, Any] | None:
    if rules is None:
        rules = {}
    if not isinstance(rules, dict):
        return None
    if scale_up:
        rules.setdefault("stabilizationWindowSeconds", 0)
        rules.setdefault("policies", [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                      {"type": "Percent", "value": 100, "periodSeconds": 15}])
    else:
        rules.setdefault("policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])
    rules.setdefault("selectPolicy", "Max")
    return rules


def default_hpa(obj: dict[str, Any]) -> None:
    """autoscaling/v2 defaults (the stored version; v1 objects are converted first)."""
    spec = _dict(obj, "spec")
    if spec is None:
        return
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for key, up in (("scaleUp", True), ("scaleDown", False)):
            rules = _default_hpa_rules(behavior.get(key), up)
            if rules is not None:
                behavior[key] = rules


# --- cluster objects --------------------------------------------------------------------------


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def default_namespace(obj: dict[str, Any]) -> None:
    meta = _dict(obj, "metadata")
    name = meta.get("name") if meta is not None else None
    if meta is not None and isinstance(name, str) and name:
        labels = _dict(meta, "labels")
        if labels is not None:
            # Kubernetes keeps this label equal to the name, whatever the client sent.
            labels[NAMESPACE_NAME_LABEL] = name


def default_node(obj: dict[str, Any]) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and isinstance(status.get("capacity"), dict) \
            and "allocatable" not in status:
        status["allocatable"] = dict(status["capacity"])


def default_endpoints(obj: dict[str, Any]) -> None:
    for subset in _dicts(obj.get("subsets")):
        for port in _dicts(subset.get("ports")):
            port.setdefault("protocol", "TCP")


def default_endpointslice(obj: dict[str, Any]) -> None:
    """``SetDefaults_EndpointPort``: a port's name defaults to "" and its protocol to TCP."""
    for port in _dicts(obj.get("ports")):
        port.setdefault("name", "")
        port.setdefault("protocol", "TCP")


def default_priority_class(obj: dict[str, Any]) -> None:
    """``SetDefaults_PriorityClass``: ``preemptionPolicy`` is PreemptLowerPriority. ``value``
    reads 0 when left out, as the Go field (no omitempty) is written back."""
    if obj.get("value") is None:
        obj["value"] = 0
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = PREEMPT_LOWER_PRIORITY


_DEFAULTERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "Pod": default_pod,
    "Service": default_service,
    "Deployment": default_deployment,
    "ReplicaSet": default_replicaset,
    "Job": default_job,
    "DaemonSet": default_daemonset,
    "StatefulSet": default_statefulset,
    "HorizontalPodAutoscaler": default_hpa,
    "Namespace": default_namespace,
    "Node": default_node,
    "Endpoints": default_endpoints,
    "CustomResourceDefinition": default_crd,
    "EndpointSlice": default_endpointslice,
    "NetworkPolicy": defaults_netrbac.default_network_policy,
    "IngressClass": defaults_netrbac.default_ingress_class,
    "RoleBinding": defaults_netrbac.default_binding,
    "ClusterRoleBinding": defaults_netrbac.default_binding,
    "APIService": defaults_netrbac.default_apiservice,
    "Secret": default_secret,
    "ReplicationController": default_replicationcontroller,
    "CronJob": default_cronjob,
    "PriorityClass": default_priority_class,
    "PersistentVolume": defaults_storage.default_persistent_volume,
    "PersistentVolumeClaim": defaults_storage.default_persistent_volume_claim,
    "StorageClass": defaults_storage.default_storage_class,
}


def apply_defaults(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``obj``'s defaults in place (and return it). Unknown kinds are left alone."""
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None:
        defaulter(obj)
    return obj
