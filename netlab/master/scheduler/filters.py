"""Filters: can this pod run on this node? And if no node fits, why not?

Each filter is one of kube-scheduler's default filter plugins, run in the
same order, with the same reason strings, because users read those strings in
``kubectl describe pod``:

- NodeUnschedulable: ``spec.unschedulable`` (``kubectl cordon``);
- TaintToleration: NoSchedule/NoExecute taints the pod does not tolerate;
- NodeReady: the node's Ready condition is True (kube-scheduler leaves this to
  the node lifecycle controller's not-ready/unreachable taints; netlab checks
  it too, so a node that stopped heartbeating gets no pods even before the
  taint lands, or in a lab running without that controller);
- NodeAffinity: ``nodeSelector`` and required node affinity (In, NotIn,
  Exists, DoesNotExist, Gt, Lt; ``matchFields`` on ``metadata.name``);
- NodePorts: host port conflicts;
- NodeResourcesFit: cpu, memory and pod count against allocatable minus what
  is already placed on the node.

A node's verdict is the first failing filter's reasons (NodeResourcesFit can
give several), and ``fit_error`` folds the verdicts of all nodes into
kube-scheduler's FitError message::

    0/4 nodes are available: 1 node(s) had untolerated taint
    {node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu.

(one line in reality).

Pure functions over ``PodInfo`` and ``NodeInfo``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional

from netlab.api.nodeaffinity import term_matches
from netlab.master.scheduler.nodeinfo import NodeInfo, PodInfo

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_NOT_READY = "node(s) were not ready"
ERR_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_TOO_MANY_PODS = "Too many pods"
ERR_NO_NODES = "no nodes available to schedule pods"


# --- tolerations --------------------------------------------------------------------------------


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """``Toleration.ToleratesTaint``: an empty effect or key matches any."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def untolerated_taint(pod: PodInfo, node: NodeInfo) -> Optional[Mapping[str, Any]]:
    """The first NoSchedule/NoExecute taint the pod does not tolerate (PreferNoSchedule
    only counts in scoring, which netlab does not do)."""
    for taint in node.taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and \
                not tolerated(pod.tolerations, taint):
            return taint
    return None


# --- the filters ----------------------------------------------------------------------------------


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> list[str]:
    if node.unschedulable and not tolerated(
            pod.tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}):
        return [ERR_UNSCHEDULABLE]
    return []


def taint_toleration(pod: PodInfo, node: NodeInfo) -> list[str]:
    taint = untolerated_taint(pod, node)
    if taint is None:
        return []
    return [f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"]


def node_ready(pod: PodInfo, node: NodeInfo) -> list[str]:
    if node.ready == "True":
        return []
    # A pod that tolerates the taint Kubernetes puts on such a node may go there
    # (DaemonSet-style pods do).
    key = UNREACHABLE_TAINT if node.ready == "Unknown" else NOT_READY_TAINT
    if tolerated(pod.tolerations, {"key": key, "effect": "NoSchedule"}):
        return []
    return [ERR_NOT_READY]


def node_affinity(pod: PodInfo, node: NodeInfo) -> list[str]:
    for key, value in pod.node_selector:
        if node.labels.get(key) != value:
            return [ERR_AFFINITY]
    if pod.affinity_terms and not any(term_matches(t, node.name, node.labels)
                                                for t in pod.affinity_terms):
        return [ERR_AFFINITY]
    return []


def _ports_conflict(wanted: tuple[str, str, int], used: Iterable[tuple[str, str, int]]) -> bool:
    ip, protocol, port = wanted
    for used_ip, used_protocol, used_port in used:
        if used_port == port and used_protocol == protocol and (
                ip == used_ip or "0.0.0.0" in (ip, used_ip)):
            return True
    return False


def node_ports(pod: PodInfo, node: NodeInfo) -> list[str]:
    if pod.host_ports and node.ports and any(
            _ports_conflict(p, node.ports) for p in pod.host_ports):
        return [ERR_PORTS]
    return []


def resources_fit(pod: PodInfo, node: NodeInfo) -> list[str]:
    reasons = []
    if len(node.pods) + 1 > node.alloc_pods:
        reasons.append(ERR_TOO_MANY_PODS)
    # As kube-scheduler: a resource the pod does not request never fails to fit.
    if pod.cpu > 0 and pod.cpu > node.alloc_cpu - node.cpu:
        reasons.append("Insufficient cpu")
    if pod.memory > 0 and pod.memory > node.alloc_memory - node.memory:
        reasons.append("Insufficient memory")
    return reasons


Filter = Callable[[PodInfo, NodeInfo], list]
FILTERS: tuple[Filter, ...] = (node_unschedulable, taint_toleration, node_ready, node_affinity,
                               node_ports, resources_fit)


def filter_node(pod: PodInfo, node: NodeInfo) -> list[str]:
    """The reasons ``pod`` cannot run on ``node``; empty when it can.

    ``FILTERS`` in order, each skipped when it cannot fail (no taints, no selector,
    no host ports): this runs for every (pod, node) pair, so the common case is kept
    to a few attribute reads.
    """
    if node.unschedulable:
        reasons = node_unschedulable(pod, node)
        if reasons:
            return reasons
    if node.taints:
        reasons = taint_toleration(pod, node)
        if reasons:
            return reasons
    if node.ready != "True":
        reasons = node_ready(pod, node)
        if reasons:
            return reasons
    if pod.node_selector or pod.affinity_terms:
        reasons = node_affinity(pod, node)
        if reasons:
            return reasons
    if pod.host_ports:
        reasons = node_ports(pod, node)
        if reasons:
            return reasons
    return resources_fit(pod, node)


def find_feasible(pod: PodInfo, nodes: Iterable[NodeInfo]
                  ) -> tuple[list[NodeInfo], dict[str, list[str]]]:
    """(nodes that fit, {node name: reasons} for the others)."""
    feasible: list[NodeInfo] = []
    failed: dict[str, list[str]] = {}
    for node in nodes:
        reasons = filter_node(pod, node)
        if reasons:
            failed[node.name] = reasons
        else:
            feasible.append(node)
    return feasible, failed


def fit_error(num_nodes: int, failed: Mapping[str, list[str]]) -> str:
    """kube-scheduler's FitError message: a histogram of reasons, as sorted strings."""
    if num_nodes == 0:
        return ERR_NO_NODES
    histogram: Counter = Counter()
    for reasons in failed.values():
        histogram.update(reasons)
    # Go sorts the formatted "count reason" strings, so "10 x" sorts before "2 y".
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    message = f"0/{num_nodes} nodes are available:"
    if parts:
        message += " " + ", ".join(parts) + "."
    return message
