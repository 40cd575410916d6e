"""Typed read-only views of Kubernetes objects, and the accessors that return them.

Objects stay plain ``dict[str, Any]`` everywhere (they are JSON, and the API
server stores and serves them as such). What this module adds is the shape of
the parts code reads most, as ``total=False`` TypedDicts in the spirit of
kopf's ``bodies.py`` (metadata, owner references, the pod spec and status, the
Service spec, the Node spec and status), and small accessors that replace the
``(obj.get("metadata") or {}).get(...)`` chains:

- :func:`meta_of`, :func:`spec_of`, :func:`status_of` and the kind-specific
  :func:`pod_spec`, :func:`pod_status`, :func:`service_spec`,
  :func:`node_spec`, :func:`node_status`, :func:`template_of` are exactly
  ``obj.get(field) or {}``: the object's own dict when the field is set, else
  a fresh empty one. Treat them as read-only: a write lands in the object only
  when the field was there and non-empty (to create metadata, use
  :func:`netlab.api.objects.meta`).
- :func:`name_of`, :func:`namespace_of`, :func:`uid_of`, :func:`labels_of`,
  :func:`annotations_of`, :func:`owner_references`, :func:`finalizers_of` and
  the other scalar accessors never fail: a missing or malformed field reads as
  ``""``, ``{}`` or ``[]``.
- :func:`dict_at` and :func:`str_at` are the guarded ``obj[key]`` for input
  that validation has not seen yet (request bodies, what a patch produced).

The TypedDicts are views for the type checker, not validation: nothing checks
an object against them at run time (``netlab.api.validation`` does that when an
object is written). They list the fields netlab reads, not every field of the
API. Pure: imports nothing but ``typing`` and ``collections.abc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, TypedDict, cast

# --- shapes -----------------------------------------------------------------------------------


class OwnerReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMeta(TypedDict, total=False):
    """``metav1.ObjectMeta``."""

    name: str
    generateName: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    deletionTimestamp: str
    deletionGracePeriodSeconds: int
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[OwnerReference]
    finalizers: list[str]
    managedFields: list[dict[str, Any]]


class PodTemplateSpec(TypedDict, total=False):
    """A workload's ``spec.template``."""

    metadata: ObjectMeta
    spec: PodSpec


class ContainerPort(TypedDict, total=False):
    name: str
    containerPort: int
    hostPort: int
    protocol: str


class Container(TypedDict, total=False):
    name: str
    image: str
    imagePullPolicy: str
    command: list[str]
    args: list[str]
    workingDir: str
    env: list[dict[str, Any]]
    envFrom: list[dict[str, Any]]
    ports: list[ContainerPort]
    resources: dict[str, Any]
    volumeMounts: list[dict[str, Any]]
    livenessProbe: dict[str, Any]
    readinessProbe: dict[str, Any]
    startupProbe: dict[str, Any]
    lifecycle: dict[str, Any]
    restartPolicy: str
    securityContext: dict[str, Any]
    terminationMessagePath: str
    terminationMessagePolicy: str


class EphemeralContainer(Container, total=False):
    """``core/v1.EphemeralContainer``: a container plus the one it debugs."""

    targetContainerName: str


class Toleration(TypedDict, total=False):
    key: str
    operator: str
    value: str
    effect: str
    tolerationSeconds: int


class PodSpec(TypedDict, total=False):
    """``core/v1.PodSpec``."""

    nodeName: str
    nodeSelector: dict[str, str]
    schedulerName: str
    priority: int
    priorityClassName: str
    affinity: dict[str, Any]
    tolerations: list[Toleration]
    topologySpreadConstraints: list[dict[str, Any]]
    containers: list[Container]
    initContainers: list[Container]
    ephemeralContainers: list[EphemeralContainer]
    restartPolicy: str
    terminationGracePeriodSeconds: int
    activeDeadlineSeconds: int
    readinessGates: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    serviceAccountName: str
    automountServiceAccountToken: bool
    hostNetwork: bool
    hostname: str
    subdomain: str
    setHostnameAsFQDN: bool
    dnsPolicy: str
    dnsConfig: dict[str, Any]
    hostAliases: list[dict[str, Any]]
    enableServiceLinks: bool
    securityContext: dict[str, Any]
    overhead: dict[str, Any]


class ContainerStatus(TypedDict, total=False):
    name: str
    ready: bool
    started: bool
    restartCount: int
    image: str
    imageID: str
    containerID: str
    state: dict[str, Any]
    lastState: dict[str, Any]


class PodCondition(TypedDict, total=False):
    type: str
    status: str
    reason: str
    message: str
    lastProbeTime: Optional[str]
    lastTransitionTime: str


class PodIP(TypedDict, total=False):
    ip: str


class PodStatus(TypedDict, total=False):
    """``core/v1.PodStatus``."""

    phase: str
    conditions: list[PodCondition]
    message: str
    reason: str
    hostIP: str
    hostIPs: list[PodIP]
    podIP: str
    podIPs: list[PodIP]
    startTime: str
    nominatedNodeName: str
    qosClass: str
    initContainerStatuses: list[ContainerStatus]
    containerStatuses: list[ContainerStatus]


class ServicePort(TypedDict, total=False):
    name: str
    protocol: str
    appProtocol: str
    port: int
    targetPort: int | str
    nodePort: int


class ServiceSpec(TypedDict, total=False):
    """``core/v1.ServiceSpec``."""

    type: str
    selector: dict[str, str]
    ports: list[ServicePort]
    clusterIP: str
    clusterIPs: list[str]
    externalIPs: list[str]
    externalName: str
    sessionAffinity: str
    sessionAffinityConfig: dict[str, Any]
    publishNotReadyAddresses: bool
    internalTrafficPolicy: str
    externalTrafficPolicy: str
    ipFamilies: list[str]
    ipFamilyPolicy: str


class Taint(TypedDict, total=False):
    key: str
    value: str
    effect: str
    timeAdded: str


class NodeSpec(TypedDict, total=False):
    """``core/v1.NodeSpec``."""

    podCIDR: str
    podCIDRs: list[str]
    taints: list[Taint]
    unschedulable: bool


class NodeAddress(TypedDict, total=False):
    type: str
    address: str


class NodeCondition(TypedDict, total=False):
    type: str
    status: str
    reason: str
    message: str
    lastHeartbeatTime: str
    lastTransitionTime: str


class NodeStatus(TypedDict, total=False):
    """``core/v1.NodeStatus``."""

    addresses: list[NodeAddress]
    conditions: list[NodeCondition]
    capacity: dict[str, str]
    allocatable: dict[str, str]
    nodeInfo: dict[str, Any]
    daemonEndpoints: dict[str, Any]


# --- whole sections ---------------------------------------------------------------------------
# The casts are what makes these views: nothing is checked (or copied) at run time.


def meta_of(obj: Mapping[str, Any]) -> ObjectMeta:
    """``obj.get("metadata") or {}``: the metadata to read (see the module docstring)."""
    return cast(ObjectMeta, obj.get("metadata") or {})


def spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj.get("spec") or {}``, for kinds without a view here."""
    return cast("dict[str, Any]", obj.get("spec") or {})


def status_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj.get("status") or {}``, for kinds without a view here."""
    return cast("dict[str, Any]", obj.get("status") or {})


def template_of(obj: Mapping[str, Any]) -> PodTemplateSpec:
    """A workload's pod template: ``spec.template``, or ``{}``."""
    return cast(PodTemplateSpec, spec_of(obj).get("template") or {})


def pod_spec(pod: Mapping[str, Any]) -> PodSpec:
    """A Pod's (or a pod template's) ``spec``, or ``{}``."""
    return cast(PodSpec, pod.get("spec") or {})


def pod_status(pod: Mapping[str, Any]) -> PodStatus:
    """A Pod's ``status``, or ``{}``."""
    return cast(PodStatus, pod.get("status") or {})


def service_spec(service: Mapping[str, Any]) -> ServiceSpec:
    """A Service's ``spec``, or ``{}``."""
    return cast(ServiceSpec, service.get("spec") or {})


def node_spec(node: Mapping[str, Any]) -> NodeSpec:
    """A Node's ``spec``, or ``{}``."""
    return cast(NodeSpec, node.get("spec") or {})


def node_status(node: Mapping[str, Any]) -> NodeStatus:
    """A Node's ``status``, or ``{}``."""
    return cast(NodeStatus, node.get("status") or {})


# --- metadata fields --------------------------------------------------------------------------


def _meta_field(obj: Mapping[str, Any], key: str) -> Any:
    m = obj.get("metadata")
    return m.get(key) if isinstance(m, Mapping) else None


def name_of(obj: Mapping[str, Any]) -> str:
    """``metadata.name``, or ``""``."""
    return _meta_field(obj, "name") or ""


def namespace_of(obj: Mapping[str, Any]) -> str:
    """``metadata.namespace``, or ``""`` (cluster-scoped, or not yet defaulted)."""
    return _meta_field(obj, "namespace") or ""


def uid_of(obj: Mapping[str, Any]) -> str:
    """``metadata.uid``, or ``""``."""
    return _meta_field(obj, "uid") or ""


def resource_version_of(obj: Mapping[str, Any]) -> str:
    """``metadata.resourceVersion``, or ``""``."""
    return _meta_field(obj, "resourceVersion") or ""


def creation_timestamp_of(obj: Mapping[str, Any]) -> str:
    """``metadata.creationTimestamp`` (RFC 3339 text, which sorts in time order), or ``""``."""
    return _meta_field(obj, "creationTimestamp") or ""


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """``metadata.labels``, or ``{}``."""
    labels = _meta_field(obj, "labels")
    return labels if isinstance(labels, dict) else {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """``metadata.annotations``, or ``{}``."""
    annotations = _meta_field(obj, "annotations")
    return annotations if isinstance(annotations, dict) else {}


def is_terminating(obj: Mapping[str, Any]) -> bool:
    """Whether the object has a ``metadata.deletionTimestamp``."""
    return bool(_meta_field(obj, "deletionTimestamp"))


# --- owner references and finalizers ----------------------------------------------------------


def owner_references(obj: Mapping[str, Any]) -> list[OwnerReference]:
    """``metadata.ownerReferences`` (the well-formed ones), or ``[]``."""
    refs = _meta_field(obj, "ownerReferences")
    if not isinstance(refs, list):
        return []
    return [cast(OwnerReference, r) for r in refs if isinstance(r, dict)]


def is_owned_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    return any(r.get("uid") == owner_uid for r in owner_references(obj))


def controller_ref(obj: Mapping[str, Any]) -> Optional[OwnerReference]:
    """The owner reference with ``controller: true``, if any."""
    for ref in owner_references(obj):
        if ref.get("controller") is True:
            return ref
    return None


def finalizers_of(obj: Mapping[str, Any]) -> list[str]:
    """``metadata.finalizers`` (the strings among them), or ``[]``."""
    fins = _meta_field(obj, "finalizers")
    return [f for f in fins if isinstance(f, str)] if isinstance(fins, list) else []


# --- anywhere ---------------------------------------------------------------------------------


def dict_at(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]`` if it is a JSON object (even an empty one: the object's own dict), else a
    fresh ``{}``; for input that validation has not seen yet."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def str_at(obj: Mapping[str, Any], key: str) -> str:
    """``obj[key]`` if it is a string, else ``""``; for input validation has not seen yet."""
    value = obj.get(key)
    return value if isinstance(value, str) else ""



def get_path(obj: Any, *path: str) -> Any:
    """``obj[p0][p1]...``, or None where a step is missing or not an object."""
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj
