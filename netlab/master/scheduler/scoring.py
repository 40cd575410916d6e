"""Scores: of the nodes a pod fits on, which is best?

The score (0-100, an integer as in kube-scheduler) blends two views of how
loaded a node is:

- **requests** (kube-scheduler's NodeResourcesFit ``LeastAllocated``): the
  share of allocatable cpu and memory left once this pod's requests are added
  to those already placed there. It reacts at once to each placement, so a
  burst of pods spreads out before any of them runs;
- **usage** (what the seed asks of a scheduler: "monitor the resource usage of
  each node"): the share left according to what the node's kubelet measured
  (psutil/cgroups), published on the Node. It sees what requests cannot:
  pods that use more than they asked for, and everything else on the node.

::

    free_requests = mean over {cpu, memory} of 100 * (alloc - (placed + pod)) / alloc
    free_usage    = mean over {cpu, memory} of 100 * (1 - min(1, used / alloc))
    score         = round((1 - w) * free_requests + w * free_usage)     (w = 0.5)

Requests use kube-scheduler's non-zero defaults (100m, 200Mi for a container
that asks for nothing). A node whose usage report is missing or stale (older
than ``USAGE_MAX_AGE``) is scored on requests alone.

Ties are broken by spreading: the node running fewer pods of the same owner
(ReplicaSet, Job) first, then fewer pods in all, then by name, so the choice is
deterministic and replicas of one owner land on different nodes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from netlab.master.scheduler.nodeinfo import NodeInfo, PodInfo

MAX_SCORE = 100
DEFAULT_USAGE_WEIGHT = 0.5
USAGE_MAX_AGE = 60.0  # seconds; kubelets publish every 10 s


def _least_requested(requested: int, capacity: int) -> int:
    """kube-scheduler's ``leastRequestedScore``, in integers as there."""
    if capacity <= 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_SCORE // capacity


def requests_score(pod: PodInfo, node: NodeInfo) -> int:
    cpu = _least_requested(node.nonzero_cpu + pod.nonzero_cpu, node.alloc_cpu)
    memory = _least_requested(node.nonzero_memory + pod.nonzero_memory, node.alloc_memory)
    return (cpu + memory) // 2


def usage_score(node: NodeInfo, now: float, max_age: float = USAGE_MAX_AGE) -> Optional[float]:
    """Free share of the node by measured usage; None when there is no fresh report."""
    usage = node.usage
    if usage is None or now - usage.at > max_age or node.alloc_cpu <= 0 or \
            node.alloc_memory <= 0:
        return None
    cpu = min(1.0, usage.cpu / node.alloc_cpu)
    memory = min(1.0, usage.memory / node.alloc_memory)
    return MAX_SCORE * (1.0 - (cpu + memory) / 2)


def score_node(pod: PodInfo, node: NodeInfo, now: float,
               usage_weight: float = DEFAULT_USAGE_WEIGHT) -> int:
    by_requests = requests_score(pod, node)
    by_usage = usage_score(node, now) if usage_weight > 0 else None
    if by_usage is None:
        return by_requests
    return round((1.0 - usage_weight) * by_requests + usage_weight * by_usage)


@dataclass(frozen=True)
class Choice:
    node: NodeInfo
    score: int
    candidates: int  # how many nodes shared the best score


def select_node(pod: PodInfo, feasible: Sequence[NodeInfo], now: Optional[float] = None,
                usage_weight: float = DEFAULT_USAGE_WEIGHT) -> Optional[Choice]:
    """The best node for ``pod`` among ``feasible`` (None if there are none)."""
    if not feasible:
        return None
    when = time.time() if now is None else now
    best: Optional[tuple] = None
    best_node: Optional[NodeInfo] = None
    ties = 0
    for node in feasible:
        score = score_node(pod, node, when, usage_weight)
        # Higher score first; on a tie, fewer pods of the same owner, fewer pods, name.
        rank = (-score, node.owners.get(pod.owner, 0) if pod.owner else 0, len(node.pods),
                node.name)
        if best is None or rank[0] < best[0]:
            ties = 1
        elif rank[0] == best[0]:
            ties += 1
        if best is None or rank < best:
            best, best_node = rank, node
    assert best is not None and best_node is not None
    return Choice(node=best_node, score=-best[0], candidates=ties)
