"""What the scheduler knows about pods and nodes, distilled from API objects.

The filters and scores run once per (pod, node) pair, thousands of times a
second, so nothing they read is parsed there: a pod's requirements are
computed once (``PodInfo``) and a node's state is kept up to date
incrementally (``NodeInfo``: allocatable, taints, labels, readiness, what is
already placed on it, the usage its kubelet measured). The scheduler's cache
(``cache.py``) owns the ``NodeInfo`` objects; this module is pure.

Requests follow kube-scheduler's ``computePodResourceRequest``: the sum over
containers, at least the largest init container, plus ``overhead``. For
scoring, containers that request nothing count as 100m CPU and 200Mi memory
(kube-scheduler's "non-zero" requests), so that spreading BestEffort pods
still works.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from netlab.api.timefmt import parse_time
from netlab.api.usage import USAGE_ANNOTATION
from netlab.api.views import (
    annotations_of,
    dict_at,
    meta_of,
    name_of,
    node_spec,
    node_status,
    pod_spec,
)
from netlab.units import QuantityError, cpu_millis, memory_bytes

DEFAULT_MILLI_CPU_REQUEST = 100  # kube-scheduler's schedutil.DefaultMilliCPURequest
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024  # schedutil.DefaultMemoryRequest
DEFAULT_MAX_PODS = 110
# The annotation in which each kubelet publishes the usage it measures (see
# netlab/node/kubelet/metrics.py: the API object is the contract, not the module).

HostPort = tuple[str, str, int]  # (hostIP, protocol, port)


@functools.lru_cache(maxsize=4096, typed=True)
def _parse(kind: str, value: Any) -> Optional[int]:
    # Pods of one template repeat the same few quantity strings: parse each once.
    try:
        return cpu_millis(value) if kind == "cpu" else memory_bytes(value)
    except (QuantityError, TypeError):
        return None


def _cpu(value: Any) -> Optional[int]:
    if not isinstance(value, (str, int, float)):
        return None
    return _parse("cpu", value)


def _memory(value: Any) -> Optional[int]:
    if not isinstance(value, (str, int, float)):
        return None
    return _parse("memory", value)


def _container_requests(container: Any) -> tuple[int, int, int, int]:
    """(cpu, memory, non-zero cpu, non-zero memory) of one container."""
    resources = container.get("resources") if isinstance(container, dict) else None
    requests = resources.get("requests") if isinstance(resources, dict) else None
    requests = requests if isinstance(requests, dict) else {}
    cpu = _cpu(requests["cpu"]) if "cpu" in requests else None
    mem = _memory(requests["memory"]) if "memory" in requests else None
    return (cpu or 0, mem or 0,
            DEFAULT_MILLI_CPU_REQUEST if cpu is None else cpu,
            DEFAULT_MEMORY_REQUEST if mem is None else mem)


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


@dataclass(frozen=True)
class PodInfo:
    """A pod's scheduling requirements, parsed once."""

    key: str  # namespace/name
    uid: str
    cpu: int  # millicores requested
    memory: int  # bytes requested
    nonzero_cpu: int  # for scoring: unspecified requests count as the defaults
    nonzero_memory: int
    host_ports: tuple[HostPort, ...] = ()
    owner: str = ""  # uid of the controlling owner (ReplicaSet, Job...), for spreading
    node_selector: tuple[tuple[str, str], ...] = ()
    affinity_terms: tuple[dict[str, Any], ...] = ()  # required nodeSelectorTerms (ORed)
    tolerations: tuple[dict[str, Any], ...] = ()
    priority: int = 0


def pod_priority(pod: dict[str, Any]) -> int:
    """The ``spec.priority`` Priority admission gave the pod (0 for a pod without one)."""
    priority = pod_spec(pod).get("priority")
    return priority if isinstance(priority, int) and not isinstance(priority, bool) else 0


def pod_info(pod: dict[str, Any]) -> PodInfo:
    meta = meta_of(pod)
    spec = pod_spec(pod)
    cpu = mem = nz_cpu = nz_mem = 0
    ports: list[HostPort] = []
    for container in _list(spec.get("containers")):
        c, m, nc, nm = _container_requests(container)
        cpu, mem, nz_cpu, nz_mem = cpu + c, mem + m, nz_cpu + nc, nz_mem + nm
        for port in _list(container.get("ports")):
            host_port = port.get("hostPort")
            if isinstance(host_port, int) and not isinstance(host_port, bool) and host_port > 0:
                ports.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP",
                              host_port))
    for container in _list(spec.get("initContainers")):
        c, m, nc, nm = _container_requests(container)
        cpu, mem, nz_cpu, nz_mem = max(cpu, c), max(mem, m), max(nz_cpu, nc), max(nz_mem, nm)
    overhead = dict_at(spec, "overhead")
    if overhead:
        extra_cpu, extra_mem = _cpu(overhead.get("cpu", 0)) or 0, _memory(
            overhead.get("memory", 0)) or 0
        cpu, mem, nz_cpu, nz_mem = (cpu + extra_cpu, mem + extra_mem, nz_cpu + extra_cpu,
                                    nz_mem + extra_mem)
    owner = ""
    for ref in _list(meta.get("ownerReferences")):
        if ref.get("controller") is True:
            owner = ref.get("uid") or ""
    selector = dict_at(spec, "nodeSelector")
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}) if isinstance(
        spec.get("affinity"), dict) else {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = _list(required.get("nodeSelectorTerms")) if isinstance(required, dict) else []
    return PodInfo(
        key=f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}",
        uid=meta.get("uid") or "", cpu=cpu, memory=mem, nonzero_cpu=nz_cpu,
        nonzero_memory=nz_mem, host_ports=tuple(ports), owner=owner,
        node_selector=tuple(sorted((str(k), str(v)) for k, v in selector.items())),
        affinity_terms=tuple(terms), tolerations=tuple(_list(spec.get("tolerations"))),
        priority=pod_priority(pod))


@dataclass(frozen=True)
class Usage:
    """What a node's kubelet measured: CPU millicores and working-set bytes."""

    cpu: int
    memory: int
    at: float  # epoch seconds of the measurement


def read_usage(node: dict[str, Any]) -> Optional[Usage]:
    """The node usage the kubelet published on its Node object, if any and readable."""
    text = annotations_of(node).get(USAGE_ANNOTATION)
    if not text:
        return None
    try:
        data = json.loads(text)
        usage = data["node"]
        when = parse_time(data.get("timestamp"))
        cpu, mem = _cpu(usage.get("cpu", "0")), _memory(usage.get("memory", "0"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if cpu is None or mem is None or when is None:
        return None
    return Usage(cpu=cpu, memory=mem, at=when.timestamp())


def ready_status(node: dict[str, Any]) -> Optional[str]:
    """The status of the node's Ready condition: "True", "False", "Unknown" or None."""
    for cond in _list(node_status(node).get("conditions")):
        if cond.get("type") == "Ready":
            return str(cond.get("status"))
    return None


@dataclass
class NodeInfo:
    """One node as the scheduler sees it: the Node object's facts and what is placed there."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, Any], ...] = ()
    unschedulable: bool = False
    ready: Optional[str] = None
    alloc_cpu: int = 0
    alloc_memory: int = 0
    alloc_pods: int = DEFAULT_MAX_PODS
    usage: Optional[Usage] = None
    exists: bool = True  # False: only pods reference it (the Node object is gone or not seen yet)
    # What is placed here (bound and assumed pods), maintained incrementally.
    cpu: int = 0
    memory: int = 0
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)
    ports: Counter = field(default_factory=Counter)
    owners: Counter = field(default_factory=Counter)

    def set_node(self, node: dict[str, Any]) -> None:
        meta, spec = meta_of(node), node_spec(node)
        status = node_status(node)
        alloc = status.get("allocatable") or status.get("capacity") or {}
        self.labels = dict(meta.get("labels") or {})
        self.taints = tuple(_list(spec.get("taints")))
        self.unschedulable = spec.get("unschedulable") is True
        self.ready = ready_status(node)
        self.alloc_cpu = _cpu(alloc.get("cpu", 0)) or 0
        self.alloc_memory = _memory(alloc.get("memory", 0)) or 0
        pods = alloc.get("pods")
        self.alloc_pods = int(str(pods)) if str(pods).isdigit() else DEFAULT_MAX_PODS
        self.usage = read_usage(node)
        self.exists = True

    def filter_signature(self) -> tuple:
        """What filters read of the Node object: when it changes, pods that did not
        fit may fit now. Heartbeats and usage reports leave it unchanged."""
        return (tuple(sorted(self.labels.items())),
                tuple(tuple(sorted(t.items())) for t in self.taints),
                self.unschedulable, self.ready, self.alloc_cpu, self.alloc_memory,
                self.alloc_pods, self.exists)

    def add_pod(self, pod: PodInfo) -> None:
        if pod.key in self.pods:
            self.remove_pod(pod.key)
        self.pods[pod.key] = pod
        self.cpu += pod.cpu
        self.memory += pod.memory
        self.nonzero_cpu += pod.nonzero_cpu
        self.nonzero_memory += pod.nonzero_memory
        self.ports.update(pod.host_ports)
        if pod.owner:
            self.owners[pod.owner] += 1

    def remove_pod(self, key: str) -> Optional[PodInfo]:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        self.cpu -= pod.cpu
        self.memory -= pod.memory
        self.nonzero_cpu -= pod.nonzero_cpu
        self.nonzero_memory -= pod.nonzero_memory
        self.ports.subtract(pod.host_ports)
        self.ports += Counter()  # drop the ports whose count fell to zero
        if pod.owner:
            self.owners[pod.owner] -= 1
            if self.owners[pod.owner] <= 0:
                del self.owners[pod.owner]
        return pod


def node_info(node: dict[str, Any], pods: Iterable[PodInfo] = ()) -> NodeInfo:
    """A ``NodeInfo`` from a Node object and the pods placed on it (tests, benchmarks)."""
    info = NodeInfo(name=name_of(node))
    info.set_node(node)
    for pod in pods:
        info.add_pod(pod)
    return info
