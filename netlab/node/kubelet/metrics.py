"""Resource usage: what the kubelet measures, how it serves it, how it publishes it.

The runtime measures CPU (millicores over a window) and memory (working set)
per pod and for the node (``Runtime.usage``). The kubelet makes it available
two ways:

- the Kubernetes way, on its HTTPS port: ``GET /stats/summary``, the Summary
  API metrics-server scrapes (``summary``);
- through the API, without any extra component: on each metrics period it
  writes one annotation, ``metrics.netlab.io/usage``, on its own Node object,
  holding the node's usage and that of every pod with a running container (as
  metrics-server lists them), with a timestamp and window
  (``usage_annotation``). One small PATCH per node per period, whatever the
  number of pods, and anything with API access can read it: ``netlab top``,
  the scheduler and the HPA controller. Every kubelet watches every Node, so
  a node with no pods (whose samples no HPA waits for) writes only when its
  usage moved by 5 % of its capacity or once per report interval
  (``usage_is_news``): an idle 100-node lab is not 100² events a period.

``node_metrics`` and ``pod_metrics`` turn that annotation into
``metrics.k8s.io/v1beta1`` NodeMetrics and PodMetrics, the objects
``kubectl top`` reads; an API server that serves that group can build its
answers with them. Pure, unit-tested.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Optional

from netlab.api.timefmt import format_time, parse_time
from netlab.api.usage import container_usages, read_usage
from netlab.api.views import meta_of, name_of
from netlab.units import QuantityError, cpu_millis, memory_bytes

METRICS_API = "metrics.k8s.io/v1beta1"


def cpu_quantity(millis: int) -> str:
    return f"{max(millis, 0)}m"


def memory_quantity(num_bytes: int) -> str:
    return f"{max(num_bytes, 0) // 1024}Ki"


def usage_annotation(node_usage: Any, pods: dict[str, tuple[str, str]], when: datetime,
                     window: float) -> str:
    """The annotation's JSON: ``node_usage`` is a runtime ``NodeUsage``; ``pods``
    maps a pod uid to (namespace, name)."""
    out: dict[str, Any] = {
        "timestamp": format_time(when), "window": f"{window:g}s",
        "node": {"cpu": cpu_quantity(node_usage.node.cpu_millis),
                 "memory": memory_quantity(node_usage.node.memory_bytes)},
        "pods": {}}
    running = getattr(node_usage, "running", None)
    for uid, usage in sorted(node_usage.pods.items()):
        # A pod none of whose containers runs has no container metrics, and
        # metrics-server, which builds pods from them, leaves it out of the Metrics API.
        if uid not in pods or (running is not None and uid not in running):
            continue
        namespace, name = pods[uid]
        entry: dict[str, Any] = {"uid": uid, "cpu": cpu_quantity(usage.cpu_millis),
                                 "memory": memory_quantity(usage.memory_bytes)}
        measured = getattr(node_usage, "containers", {}).get(uid)
        if measured:
            entry["containers"] = {c: {"cpu": cpu_quantity(u.cpu_millis),
                                       "memory": memory_quantity(u.memory_bytes)}
                                   for c, u in measured.items()}
        out["pods"][f"{namespace}/{name}"] = entry
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


def node_metrics(node: dict[str, Any]) -> Optional[dict[str, Any]]:
    """A ``NodeMetrics`` object from a Node's usage annotation."""
    data = read_usage(node)
    if data is None:
        return None
    name = name_of(node)
    return {"kind": "NodeMetrics", "apiVersion": METRICS_API,
            "metadata": {"name": name, "labels": meta_of(node).get("labels")
                         or {}},
            "timestamp": data.get("timestamp"), "window": data.get("window"),
            "usage": {"cpu": data["node"].get("cpu", "0"),
                      "memory": data["node"].get("memory", "0")}}


def pod_metrics(node: dict[str, Any], containers: Optional[dict[str, list[str]]] = None
                ) -> list[dict[str, Any]]:
    """``PodMetrics`` of every pod in a Node's usage annotation, per container as
    ``netlab.api.usage.container_usages`` gives them; ``containers`` (``ns/name`` ->
    container names) gives their order and names."""
    data = read_usage(node)
    if data is None:
        return []
    out = []
    for key, usage in sorted((data.get("pods") or {}).items()):
        namespace, _, name = key.partition("/")
        listed = container_usages(usage, (containers or {}).get(key) or [])
        out.append({"kind": "PodMetrics", "apiVersion": METRICS_API,
                    "metadata": {"name": name, "namespace": namespace},
                    "timestamp": data.get("timestamp"), "window": data.get("window"),
                    "containers": [{"name": n, "usage": {"cpu": u.get("cpu", "0"),
                                                         "memory": u.get("memory", "0")}}
                                   for n, u in listed]})
    return out


def summary(node_name: str, node_usage: Any, pods: dict[str, tuple[str, str]],
            when: datetime, start_time: str) -> dict[str, Any]:
    """The kubelet Summary API (``/stats/summary``), the parts metrics-server reads."""
    stamp = format_time(when)

    def block(usage: Any) -> dict[str, Any]:
        return {"cpu": {"time": stamp, "usageNanoCores": usage.cpu_millis * 1_000_000},
                "memory": {"time": stamp, "workingSetBytes": usage.memory_bytes,
                           "usageBytes": usage.memory_bytes}}

    out_pods = []
    for uid, usage in sorted(node_usage.pods.items()):
        if uid in pods:
            namespace, name = pods[uid]
            measured = getattr(node_usage, "containers", {}).get(uid) or {}
            out_pods.append({"podRef": {"name": name, "namespace": namespace, "uid": uid},
                             "startTime": stamp,
                             "containers": [{"name": c, "startTime": stamp, **block(u)}
                                            for c, u in sorted(measured.items())],
                             **block(usage)})
    return {"node": {"nodeName": node_name, "startTime": start_time, **block(node_usage.node)},
            "pods": out_pods}


def cpu_of(quantity: str) -> int:
    try:
        return cpu_millis(quantity)
    except QuantityError:
        return 0


def memory_of(quantity: str) -> int:
    try:
        return memory_bytes(quantity)
    except QuantityError:
        return 0


def age_of(data: dict[str, Any], now: datetime) -> Optional[float]:
    when = parse_time(data.get("timestamp"))
    return (now - when).total_seconds() if when else None


# A node's own usage must move this much (a share of its capacity) to be news.
USAGE_NEWS_SHARE = 0.05


def usage_is_news(usage: Any, last: Any, pods_listed: bool, age: float,
                  cpu_capacity_millis: int, memory_capacity: int,
                  report_interval: float) -> bool:
    """Whether this measurement (a runtime ``NodeUsage``) is worth a Node update, after
    ``last`` (the node's ``ResourceUsage`` last published, ``age`` seconds ago): always
    when pods are listed (the HPA wants a fresh sample each period) or nothing was
    published yet; else when the node's CPU or memory moved by USAGE_NEWS_SHARE of its
    capacity, or the report interval passed."""
    if pods_listed or last is None or age >= report_interval:
        return True
    node = usage.node
    return (abs(node.cpu_millis - last.cpu_millis) >= USAGE_NEWS_SHARE * cpu_capacity_millis
            or abs(node.memory_bytes - last.memory_bytes)
            >= USAGE_NEWS_SHARE * memory_capacity)
