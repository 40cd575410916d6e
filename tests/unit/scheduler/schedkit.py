"""Helpers for the scheduler tests: builders for the Nodes and Pods they feed in (as the
API server would hold them), and ``eventually`` to await a condition with a deadline."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from netlab.api.timefmt import format_time

CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node(name: str, cpu: str = "2", memory: str = "4Gi", *, pods: str = "110",
         labels: Optional[dict[str, str]] = None, taints: Optional[list[dict]] = None,
         ready: Optional[str] = "True", unschedulable: bool = False,
         usage: Optional[tuple[str, str]] = None, usage_at: Optional[float] = None,
         heartbeat: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                     **(labels or {})}}
    if usage is not None:
        stamp = format_time(datetime.fromtimestamp(usage_at or time.time(), timezone.utc))
        meta["annotations"] = {"metrics.netlab.io/usage": json.dumps({
            "timestamp": stamp, "window": "10s",
            "node": {"cpu": usage[0], "memory": usage[1]}, "pods": {}})}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    status: dict[str, Any] = {"capacity": {"cpu": cpu, "memory": memory, "pods": pods},
                              "allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "reason": "KubeletReady",
                                 "lastHeartbeatTime": heartbeat,
                                 "lastTransitionTime": heartbeat}]
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec,
            "status": status}


def pod(name: str, cpu: Optional[str] = None, memory: Optional[str] = None, *,
        namespace: str = "default", node_name: str = "", owner: str = "",
        node_selector: Optional[dict[str, str]] = None, affinity: Optional[list[dict]] = None,
        tolerations: Optional[list[dict]] = None, host_port: Optional[int] = None,
        phase: str = "Pending", uid: Optional[str] = None) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "c", "image": "netlab/echo"}
    if requests:
        container["resources"] = {"requests": requests}
    if host_port:
        container["ports"] = [{"containerPort": 8080, "hostPort": host_port, "protocol": "TCP"}]
    spec: dict[str, Any] = {"containers": [container], "schedulerName": "default-scheduler"}
    if node_name:
        spec["nodeName"] = node_name
    if node_selector:
        spec["nodeSelector"] = node_selector
    if affinity is not None:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": affinity}}}
    if tolerations:
        spec["tolerations"] = tolerations
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                    "name": owner, "uid": f"uid-{owner}", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": phase}}


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0,
                     what: str = "condition") -> Any:
    """Await until ``predicate()`` (sync or async) is truthy; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)  # probe interval
