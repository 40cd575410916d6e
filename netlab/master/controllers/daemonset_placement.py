"""Where a DaemonSet runs: node eligibility, and the pod it puts on a node.

Kubernetes' ``NodeShouldRunDaemonPod`` and ``CreatePodTemplate``/
``AddOrUpdateDaemonPodTolerations``/``ReplaceDaemonSetPodNodeNameNodeAffinity``
(pkg/controller/daemon, pkg/controller/daemon/util), over plain dicts:

* a node *should run* the daemon pod when the pod's nodeSelector and required node
  affinity match it and it has no NoSchedule/NoExecute taint the pod does not
  tolerate; a pod already there *may continue* unless a NoExecute taint is
  untolerated (an untolerated NoSchedule taint only stops new placements);
* every daemon pod tolerates the taints that must not stop a node daemon
  (not-ready and unreachable NoExecute without seconds, disk/memory/pid pressure
  and unschedulable NoSchedule, network-unavailable for host-network pods), so a
  cordoned node keeps its daemons, as upstream, and the control-plane taint is not
  among them: it keeps the DaemonSet off unless its template tolerates it;
* the pod is pinned by required node affinity on ``metadata.name`` (matchFields)
  and placed by the scheduler, which netlab's filters evaluate like kube-scheduler.

A node whose Ready condition is not True counts as carrying the not-ready (or
unreachable) NoSchedule taint the node lifecycle controller would put on it, as
netlab's scheduler also treats it, so no new daemon pod is made for it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from netlab.api.objects import deep_copy
from netlab.api.views import dict_at, meta_of, name_of, node_spec, pod_spec, spec_of, template_of
from netlab.master.scheduler.filters import node_affinity, tolerated
from netlab.master.scheduler.nodeinfo import node_info, pod_info, ready_status

Obj = Mapping[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"

# (key, effect) of the tolerations every daemon pod gets; network-unavailable only with
# hostNetwork, as upstream.
DAEMON_TOLERATIONS = (
    (NOT_READY, "NoExecute"),
    (UNREACHABLE, "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
NETWORK_UNAVAILABLE = ("node.kubernetes.io/network-unavailable", "NoSchedule")


def add_daemon_tolerations(pod_spec: dict[str, Any]) -> None:
    """``AddOrUpdateDaemonPodTolerations``: add each one unless an equal one is there."""
    tolerations = pod_spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = pod_spec["tolerations"] = []
    wanted = list(DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork") is True:
        wanted.append(NETWORK_UNAVAILABLE)
    for key, effect in wanted:
        toleration = {"key": key, "operator": "Exists", "effect": effect}
        # An existing toleration for the same key and effect is replaced, as upstream.
        tolerations[:] = [t for t in tolerations if not (
            isinstance(t, dict) and t.get("key") == key and t.get("effect") == effect)]
        tolerations.append(toleration)


def pin_to_node(pod_spec: dict[str, Any], node_name: str) -> None:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity``: required affinity on the node's name
    replaces any required node selector terms (preferred terms are kept)."""
    affinity = pod_spec.get("affinity")
    if not isinstance(affinity, dict):
        affinity = pod_spec["affinity"] = {}
    node_aff = affinity.get("nodeAffinity")
    if not isinstance(node_aff, dict):
        node_aff = affinity["nodeAffinity"] = {}
    node_aff["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}


def target_node(pod: Obj) -> Optional[str]:
    """``GetTargetNodeName``: the node a daemon pod is on, or is pinned to."""
    spec = spec_of(pod)
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expr in (term or {}).get("matchFields") or []:
            values = expr.get("values") or []
            if expr.get("key") == "metadata.name" and expr.get("operator") == "In" \
                    and len(values) == 1:
                return str(values[0])
    return None


def daemon_pod(ds: Obj, node_name: str, hash_value: str) -> dict[str, Any]:
    """The pod template for ``node_name``: labels with the revision hash and generation,
    the daemon tolerations, the node pin."""
    spec = spec_of(ds)
    template = deep_copy(dict(spec.get("template") or {}))
    tmeta = dict_at(template, "metadata")
    labels = dict(tmeta.get("labels") or {})
    generation = meta_of(ds).get("generation")
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(generation)
    labels["controller-revision-hash"] = hash_value
    tmeta["labels"] = labels
    template["metadata"] = tmeta
    tspec = dict_at(template, "spec")
    add_daemon_tolerations(tspec)
    pin_to_node(tspec, node_name)
    template["spec"] = tspec
    return template


def _effective_taints(node: Obj) -> list[Mapping[str, Any]]:
    taints: list[Mapping[str, Any]] = [t for t in node_spec(node).get("taints") or []
                                       if isinstance(t, Mapping)]
    ready = ready_status(dict(node))
    if ready != "True":
        key = UNREACHABLE if ready == "Unknown" else NOT_READY
        if not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
            taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def should_run(ds: Obj, node: Obj) -> tuple[bool, bool]:
    """``NodeShouldRunDaemonPod``: (should run a new daemon pod, may keep a running one)."""
    template_spec = dict(pod_spec(template_of(ds)))
    name = name_of(node)
    if template_spec.get("nodeName") and template_spec["nodeName"] != name:
        return False, False
    add_daemon_tolerations(template_spec := deep_copy(template_spec))
    pod = pod_info({"metadata": {"name": "probe", "namespace": "default"},
                    "spec": template_spec})
    if node_affinity(pod, node_info(dict(node))):
        return False, False
    run = True
    for taint in _effective_taints(node):
        effect = taint.get("effect")
        if effect not in ("NoSchedule", "NoExecute") or tolerated(pod.tolerations, taint):
            continue
        if effect == "NoExecute":
            return False, False
        run = False
    return run, True
