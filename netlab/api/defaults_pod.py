"""Defaulting of pods and pod templates, and the helpers every defaulter shares.

``SetDefaults_Pod``, ``SetDefaults_PodSpec`` and what they call
(k8s.io/kubernetes/pkg/apis/core/v1/defaults.go), and the pod's QoS class.
Every kind with a pod template (Deployment, ReplicaSet, Job, CronJob,
DaemonSet, StatefulSet, ReplicationController) defaults it with
:func:`default_pod_template`, so the ``defaults*`` modules build on this one;
:mod:`netlab.api.defaults` re-exports its public names and holds the table of
defaulters. As there, a field is set only where absent. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from netlab.api.views import dict_at
from netlab.units import QuantityError, parse_quantity

DEFAULT_TERMINATION_GRACE_PERIOD = 30
DEFAULT_SCHEDULER = "default-scheduler"
QOS_RESOURCES = ("cpu", "memory")


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``parent[key]`` if it is a dict, creating it when absent; None if it has another type."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --- pods and pod templates -------------------------------------------------------------------


def image_pull_policy(image: str) -> str:
    """Always for ``:latest`` or untagged images, IfNotPresent otherwise (digests included)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    _default_handler(probe)


def _default_handler(handler: Any) -> None:
    if not isinstance(handler, dict):
        return
    http = handler.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def _default_container(c: dict[str, Any], host_network: bool) -> None:
    image = c.get("image")
    if isinstance(image, str) and image and "imagePullPolicy" not in c:
        c["imagePullPolicy"] = image_pull_policy(image)
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in _dicts(c.get("ports")):
        port.setdefault("protocol", "TCP")
        if host_network and "hostPort" not in port and "containerPort" in port:
            port["hostPort"] = port["containerPort"]
    for env in _dicts(c.get("env")):
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(
            env.get("valueFrom"), dict) else None
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _default_handler(lifecycle.get("postStart"))
        _default_handler(lifecycle.get("preStop"))


_MODE_SOURCES = ("configMap", "secret", "downwardAPI", "projected")


def _default_volume(v: dict[str, Any]) -> None:
    sources = [k for k in v if k != "name"]
    if not sources:
        v["emptyDir"] = {}
        return
    for key in _MODE_SOURCES:
        src = v.get(key)
        if isinstance(src, dict):
            src.setdefault("defaultMode", 420)  # 0644
    host_path = v.get("hostPath")
    if isinstance(host_path, dict):
        host_path.setdefault("type", "")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """``SetDefaults_PodSpec`` and what it calls; shared by pods and pod templates."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_PERIOD)
    spec.setdefault("schedulerName", DEFAULT_SCHEDULER)
    spec.setdefault("securityContext", {})
    host_network = spec.get("hostNetwork") is True
    # Ephemeral containers are defaulted as containers (SetDefaults_EphemeralContainer).
    for c in (_dicts(spec.get("containers")) + _dicts(spec.get("initContainers"))
              + _dicts(spec.get("ephemeralContainers"))):
        _default_container(c, host_network)
    for v in _dicts(spec.get("volumes")):
        _default_volume(v)


def _requests_from_limits(c: dict[str, Any]) -> None:
    # Only pods get this, not templates: a template's resources stay as written.
    resources = c.get("resources")
    if not isinstance(resources, dict):
        return
    limits = resources.get("limits")
    if not isinstance(limits, dict) or not limits:
        return
    requests = resources.get("requests")
    if requests is None:
        requests = resources["requests"] = {}
    if isinstance(requests, dict):
        for name, value in limits.items():
            requests.setdefault(name, value)


def default_pod(obj: dict[str, Any]) -> None:
    """``SetDefaults_Pod``: the pod spec defaults plus the pod-only ones."""
    spec = _dict(obj, "spec")
    if spec is None:
        return
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    for c in _dicts(spec.get("containers")) + _dicts(spec.get("initContainers")):
        _requests_from_limits(c)


def default_pod_template(template: Any) -> None:
    if not isinstance(template, dict):
        return
    spec = _dict(template, "spec")
    if spec is not None:
        default_pod_spec(spec)


def _quantity(value: Any) -> Decimal | None:
    try:
        return parse_quantity(value)
    except (QuantityError, TypeError, ValueError, ArithmeticError):
        return None


def pod_qos_class(spec: dict[str, Any]) -> str:
    """``qos.GetPodQOS``: Guaranteed, Burstable or BestEffort from cpu/memory resources."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for c in _dicts(spec.get("containers")) + _dicts(spec.get("initContainers")):
        resources = dict_at(c, "resources")
        for kind, acc in (("requests", requests), ("limits", limits)):
            values = dict_at(resources, kind)
            for name in QOS_RESOURCES:
                q = _quantity(values.get(name)) if name in values else None
                if q is not None and q > 0:
                    acc[name] = acc.get(name, Decimal(0)) + q
        climits = dict_at(resources, "limits")
        if not all(_quantity(climits.get(n)) for n in QOS_RESOURCES if n in climits) or \
                not all(n in climits for n in QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(requests.get(n) == limits.get(n) for n in QOS_RESOURCES) and \
            set(requests) == set(limits):
        return "Guaranteed"
    return "Burstable"
