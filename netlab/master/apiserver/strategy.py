"""Per-kind behaviour of the generic registry: Kubernetes' REST "strategies".

The storage layer (``storage.py``) runs one pipeline for every kind; this
module supplies what differs between kinds, as pkg/registry/*/strategy.go does
in Kubernetes:

* what the server sets on create (uid, timestamps, generation, initial
  status, the Job selector, a pod's QoS class and admission defaults), and on a
  pod update the priority the Priority admission plugin keeps;
* what an update may not change (system metadata; ``status`` through the main
  resource and ``spec`` through ``/status`` for kinds with a status
  subresource) and when ``metadata.generation`` moves (spec changes only);
* deletion policy: graceful deletion for pods, which kinds return the deleted
  object, the default propagation policy, create-on-update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from netlab.api import (
    configdata,
    customresources,
    defaults,
    defaults_pod,
    priority_admission,
    validation,
    validation_ephemeral,
)
from netlab.api.objects import deep_copy, meta, new_uid, timestamp
from netlab.api.resources import Resource
from netlab.api.validation_base import _V
from netlab.api.views import dict_at, pod_status, spec_of
from netlab.master.apiserver import apiservices
from netlab.master.apiserver.allocators import ServiceAllocator

# System metadata a client can neither set on create nor change on update.
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "generation", "selfLink", "managedFields")

PVC_PROTECTION = "kubernetes.io/pvc-protection"
JOB_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300


@dataclass(frozen=True)
class KindPolicy:
    """The fixed facts about one kind."""

    status_subresource: bool = False
    generation: bool = False  # metadata.generation tracks spec changes
    allow_create_on_update: bool = False
    return_deleted_object: bool = False
    default_propagation: str = "Background"
    graceful: bool = False  # deletion waits for the kubelet (pods)
    # A finalizer DELETE adds before marking the object (CRDs: the cleanup of their CRs).
    delete_finalizer: Optional[str] = None
    generation_on_content: bool = False  # generation tracks every non-metadata change


_POLICIES: dict[str, KindPolicy] = {
    "Pod": KindPolicy(status_subresource=True, return_deleted_object=True, graceful=True),
    "Service": KindPolicy(status_subresource=True, return_deleted_object=True),
    "Node": KindPolicy(status_subresource=True),
    "Namespace": KindPolicy(return_deleted_object=True),
    "Endpoints": KindPolicy(allow_create_on_update=True),
    # EndpointSlices have no spec: any change outside metadata is a new generation.
    "EndpointSlice": KindPolicy(generation=True, generation_on_content=True),
    "Event": KindPolicy(allow_create_on_update=True),
    "Lease": KindPolicy(allow_create_on_update=True),
    "Deployment": KindPolicy(status_subresource=True, generation=True),
    "ReplicaSet": KindPolicy(status_subresource=True, generation=True),
    "DaemonSet": KindPolicy(status_subresource=True, generation=True),
    "StatefulSet": KindPolicy(status_subresource=True, generation=True),
    # batch/v1 Jobs orphan their pods unless told otherwise (kubectl always tells).
    "Job": KindPolicy(status_subresource=True, generation=True, default_propagation="Orphan"),
    "HorizontalPodAutoscaler": KindPolicy(status_subresource=True),
    "CronJob": KindPolicy(status_subresource=True, generation=True),
    "PodDisruptionBudget": KindPolicy(status_subresource=True, generation=True),
    "NetworkPolicy": KindPolicy(generation=True),
    "Ingress": KindPolicy(status_subresource=True, generation=True),
    "IngressClass": KindPolicy(generation=True),
    "PriorityClass": KindPolicy(generation=True),
    "PersistentVolume": KindPolicy(status_subresource=True),
    "PersistentVolumeClaim": KindPolicy(status_subresource=True),
    "APIService": KindPolicy(status_subresource=True),
    "ReplicationController": KindPolicy(status_subresource=True, generation=True),
    "CustomResourceDefinition": KindPolicy(
        status_subresource=True, generation=True,
        delete_finalizer=customresources.CLEANUP_FINALIZER),
}


def policy(res: Resource) -> KindPolicy:
    if res.custom is not None:  # a custom kind may reuse any built-in kind's name
        return KindPolicy(status_subresource=res.custom.status, generation=True)
    return _POLICIES.get(res.kind, KindPolicy())


# --- create -----------------------------------------------------------------------------------


def _initial_status(kind: str, obj: dict) -> Optional[dict]:
    """The status a new object starts with; None keeps what the client sent."""
    if kind == "Pod":
        spec = dict_at(obj, "spec")
        return {"phase": "Pending", "qosClass": defaults_pod.pod_qos_class(spec)}
    if kind == "Service":
        return {"loadBalancer": {}}
    if kind == "Namespace":
        return {"phase": "Active"}
    if kind == "HorizontalPodAutoscaler":
        return {"desiredReplicas": 0}
    if kind in ("Deployment", "ReplicaSet", "Job", "CronJob", "ReplicationController"):
        return {}
    if kind == "PodDisruptionBudget":  # the disruption controller fills it in
        return {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                "expectedPods": 0}
    if kind == "Ingress":
        return {"loadBalancer": {}}
    if kind in ("PersistentVolume", "PersistentVolumeClaim"):
        # The binder moves them on (Available/Bound; Bound/Lost); the client's is ignored.
        return {"phase": "Pending"}
    if kind == "APIService":
        return apiservices.initial_status(obj)
    if kind == "CustomResourceDefinition":
        return {"acceptedNames": {"kind": "", "plural": ""},
                "storedVersions": customresources.stored_versions(obj, [])}
    if kind == "DaemonSet":
        return {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                "desiredNumberScheduled": 0, "numberReady": 0}
    if kind == "StatefulSet":
        return {"replicas": 0, "availableReplicas": 0}
    return None


def _admit_pod(obj: dict) -> None:
    """What Kubernetes' default admission plugins add to every new pod, but for what
    needs other objects: the registry (``storage.py``) runs the ServiceAccount plugin's
    token mount and the Priority plugin, which read the account and the PriorityClasses."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    # ServiceAccount admission: "default", which the serviceaccount controller keeps.
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    # DefaultTolerationSeconds: ride out a node's short NotReady/unreachable spells.
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = spec["tolerations"] = []
    if not isinstance(tolerations, list):
        return
    for key in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if not _tolerates(tolerations, key):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})


def _tolerates(tolerations: list, key: str) -> bool:
    """Whether some toleration already covers ``key``'s NoExecute taint."""
    for t in tolerations:
        if not isinstance(t, dict) or t.get("effect") not in (None, "", "NoExecute"):
            continue
        if t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"):
            return True
    return False


def _generate_job_selector(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    tmeta = template.get("metadata")
    if tmeta is None:
        tmeta = template["metadata"] = {}
    if not isinstance(tmeta, dict):
        return
    labels = tmeta.get("labels")
    if labels is None:
        labels = tmeta["labels"] = {}
    if not isinstance(labels, dict):
        return
    m = meta(obj)
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, m.get("name", ""))
    for key in JOB_LABELS:
        labels.setdefault(key, m.get("uid", ""))
    selector = spec.get("selector")
    if selector is None:
        selector = spec["selector"] = {}
    if isinstance(selector, dict):
        match = selector.get("matchLabels")
        if match is None:
            match = selector["matchLabels"] = {}
        if isinstance(match, dict):
            match.setdefault(JOB_LABELS[1], m.get("uid", ""))


def prepare_for_create(res: Resource, obj: dict) -> None:
    """Fill in server-owned fields of a new object (its name is already final)."""
    m = meta(obj)
    for key in _SYSTEM_META:
        m.pop(key, None)
    m["uid"] = new_uid()
    m["creationTimestamp"] = timestamp()
    if policy(res).generation:
        m["generation"] = 1
    if res.custom is not None:
        if res.custom.status:
            obj.pop("status", None)  # written through /status only
        obj["apiVersion"] = res.api_version(res.custom.storage_version)
        obj["kind"] = res.kind
        customresources.prepare(res, obj)
        return
    obj["apiVersion"] = res.api_version()
    obj["kind"] = res.kind
    configdata.decode_payload(res.kind, obj)
    defaults.apply_defaults(res.kind, obj)
    status = _initial_status(res.kind, obj)
    if status is not None:
        obj["status"] = status
    if res.kind == "Namespace":
        spec = dict_at(obj, "spec")
        spec["finalizers"] = ["kubernetes"]
        obj["spec"] = spec
    elif res.kind == "Pod":
        _admit_pod(obj)
    elif res.kind == "Job":
        _generate_job_selector(obj)
    elif res.kind == "PersistentVolumeClaim":
        # StorageObjectInUseProtection: deleting a claim a pod uses waits for that pod
        # (netlab.master.controllers.pvcprotection removes the finalizer).
        finalizers = m.setdefault("finalizers", [])
        if isinstance(finalizers, list) and PVC_PROTECTION not in finalizers:
            finalizers.append(PVC_PROTECTION)


def validate(res: Resource, obj: dict) -> list:
    """Field errors of a new object; a custom object is checked against its schema."""
    if res.custom is None:
        errs = validation.validate(res.kind, obj, res.namespaced)
        if res.kind == "Pod":
            v = _V()
            validation_ephemeral.validate_on_create(v, obj.get("spec"))
            errs += v.errs
        return errs
    return validation.validate("", obj, res.namespaced) + customresources.validate(res, obj)


def validate_update(res: Resource, new: dict, old: dict, subresource: Optional[str]) -> list:
    """Field errors of an update; status, binding and finalize writes skip the spec rules
    (a custom object's status is still checked against its schema)."""
    if res.custom is not None:
        return validation.validate("", new, res.namespaced) + customresources.validate(res, new)
    if subresource is None:
        return validation.validate_update(res.kind, new, old, res.namespaced)
    if subresource == "ephemeralcontainers":
        v = _V()
        validation_ephemeral.validate_update(v, new, old)
        return validation.validate_status_update(res.kind, new, old, res.namespaced) + v.errs
    return validation.validate_status_update(res.kind, new, old, res.namespaced)


# --- update -----------------------------------------------------------------------------------


def prepare_for_update(res: Resource, new: dict, old: dict,
                       subresource: Optional[str] = None) -> dict:
    """The object to store for an update of ``old`` with ``new``; may return a new dict.

    For ``/status`` only the status is taken from ``new``; for the main resource of
    a kind with a status subresource, the status is kept from ``old``.
    """
    kind_policy = policy(res)
    if subresource == "binding":
        return new  # built from the stored pod by the binding handler itself
    if subresource == "ephemeralcontainers":
        # Only spec.ephemeralContainers changes (dropNonEphemeralContainerUpdates),
        # defaulted as containers are.
        result = deep_copy(old)
        spec = dict_at(result, "spec")
        wanted = spec_of(new).get("ephemeralContainers")
        if wanted:
            spec["ephemeralContainers"] = wanted
        else:
            spec.pop("ephemeralContainers", None)
        defaults.apply_defaults(res.kind, result)
        return result
    if subresource == "status":
        result = deep_copy(old)
        if "status" in new:
            result["status"] = new["status"]
        else:
            result.pop("status", None)
        if res.custom is not None:
            customresources.prepare(res, result)
        return result
    if res.custom is not None:
        new["apiVersion"] = res.api_version(res.custom.storage_version)
        new["kind"] = res.kind
        customresources.prepare(res, new)
    else:
        new["apiVersion"] = res.api_version()
        new["kind"] = res.kind
        configdata.decode_payload(res.kind, new)
        defaults.apply_defaults(res.kind, new)
        if res.kind == "Pod":
            priority_admission.keep_on_update(new, old)
    m, old_m = meta(new), meta(old)
    for key in _SYSTEM_META:
        if key in old_m:
            m[key] = old_m[key]
        else:
            m.pop(key, None)
    m["name"] = old_m.get("name")
    if "namespace" in old_m:
        m["namespace"] = old_m["namespace"]
    if kind_policy.status_subresource or res.kind == "Namespace":
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if res.kind == "Namespace" and subresource != "finalize":
        # spec.finalizers changes only through the namespace finalize path.
        new["spec"] = old.get("spec", {})
    if res.kind == "Service":
        ServiceAllocator.fix_up_update(new, old)
    if res.kind == "CustomResourceDefinition" and res.custom is None:
        status = dict_at(new, "status")
        status["storedVersions"] = customresources.stored_versions(
            new, status.get("storedVersions") or [])
        new["status"] = status
    if kind_policy.generation and _generation_content(res, kind_policy, new) != \
            _generation_content(res, kind_policy, old):
        m["generation"] = int(old_m.get("generation") or 0) + 1
    return new


def _generation_content(res: Resource, kind_policy: KindPolicy, obj: dict) -> object:
    """What a change of moves ``metadata.generation``."""
    if res.custom is not None:
        # A custom object's generation moves with any change but metadata (and status,
        # when that has its own subresource), as apiextensions counts it.
        skip = ("metadata", "status", "apiVersion") if res.custom.status else \
            ("metadata", "apiVersion")
        return {k: v for k, v in obj.items() if k not in skip}
    if kind_policy.generation_on_content:
        return {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    return obj.get("spec")


def should_delete_after_update(res: Resource, obj: dict) -> bool:
    """An object marked for deletion whose last finalizer is gone (and, for a pod,
    whose grace period is over) leaves the store with this update. A namespace
    also waits for its ``spec.finalizers`` (the namespace deleter's)."""
    m = meta(obj)
    if not m.get("deletionTimestamp") or m.get("finalizers"):
        return False
    if res.kind == "Namespace" and spec_of(obj).get("finalizers"):
        return False
    return not m.get("deletionGracePeriodSeconds")


def pod_grace_period(pod: dict, requested: Optional[int]) -> int:
    """``podStrategy.CheckGracefulDelete``: the grace period a pod delete gets."""
    spec = dict_at(pod, "spec")
    if requested is None:
        period = spec.get("terminationGracePeriodSeconds")
        if not isinstance(period, int) or isinstance(period, bool):
            period = defaults_pod.DEFAULT_TERMINATION_GRACE_PERIOD
    else:
        period = requested
    if not spec.get("nodeName"):
        return 0  # never scheduled: nothing to stop
    phase = pod_status(pod).get("phase") if isinstance(pod.get("status"), dict) else ""
    if phase in ("Succeeded", "Failed"):
        return 0
    return 1 if period < 0 else period
