"""``metrics.k8s.io/v1beta1``: NodeMetrics and PodMetrics, served by the API server itself.

In a cluster, metrics-server serves this group behind an APIService
(``v1beta1.metrics.k8s.io``) and the aggregator proxies to it; it scrapes every
kubelet's Summary API. netlab's kubelets already publish what they measure on their
own Node objects (the ``metrics.netlab.io/usage`` annotation, one PATCH per node per
metrics period; see ``netlab/node/kubelet/metrics.py``), so the API server answers the
group from the store, with metrics-server's shapes and errors:

* discovery: the group in ``/apis`` (last: metrics-server's APIService has priority
  100), ``/apis/metrics.k8s.io`` and its resource list (``nodes``, ``pods``; get, list);
* the APIService object, which ``apiservices.builtin_apiservices`` stores as Local
  (and therefore Available);
* ``nodes`` and ``pods`` (list and get, ``labelSelector``, ``fieldSelector``, every
  namespace): ``timestamp``, ``window`` (a Go duration), ``usage`` with CPU and memory
  as canonical quantities (``123456789n``, ``120m``; ``2048Ki``, ``4Mi``), and
  ``containers[]`` per pod.

Objects without a measurement are absent from lists, as with metrics-server; a get of
one is 404 ``podmetrics.metrics.k8s.io "ns/name" not found``, and of a missing pod or
node the pod's or node's own 404. The runtime measures pods, not containers: a pod with
one container reports its usage under that container's name; a pod with several reports
one entry named ``(pod)``, so that ``kubectl top pods`` sums to the pod's measured total.
Only the documented annotation is read here: the master never imports the kubelet.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional

from aiohttp import web

from netlab.api import errors, resources, selectors
from netlab.api.objects import dumps, loads, timestamp
from netlab.api.usage import container_usages, read_usage
from netlab.api.views import meta_of, name_of, namespace_of, uid_of
from netlab.master.store import Store
from netlab.units import QuantityError, cpu_millis, format_cpu, format_memory, memory_bytes
from netlab.units import format_duration as go_duration

if TYPE_CHECKING:
    from netlab.master.apiserver.storage import Registry

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
# metrics-server's APIService (its manifests): groupPriorityMinimum 100, versionPriority 100.
PRIORITY = (100, 100)
_WINDOW = re.compile(r"^(\d+(?:\.\d+)?)s$")


# --- quantities and durations -----------------------------------------------------------------


def _window(text: Any) -> str:
    match = _WINDOW.match(str(text or ""))
    return go_duration(float(match.group(1))) if match else "0s"


def _cpu(quantity: Any) -> int:
    try:
        return cpu_millis(str(quantity)) * 1_000_000
    except QuantityError:
        return 0


def _memory(quantity: Any) -> int:
    try:
        return memory_bytes(str(quantity))
    except QuantityError:
        return 0


def _usage(entry: dict[str, Any]) -> dict[str, str]:
    # Canonical as metrics-server prints them (NewScaledQuantity(n, -9), BinarySI).
    return {"cpu": format_cpu(nanocores=max(_cpu(entry.get("cpu", "0")), 0)),
            "memory": format_memory(max(_memory(entry.get("memory", "0")), 0))}


# --- objects ----------------------------------------------------------------------------------


def node_metrics(node: dict[str, Any], now: str) -> Optional[dict[str, Any]]:
    """The NodeMetrics of a Node object; None when its kubelet has measured nothing."""
    data = read_usage(node)
    if data is None:
        return None
    return {"kind": "NodeMetrics", "apiVersion": API_VERSION,
            "metadata": {"name": name_of(node), "creationTimestamp": now,
                         "labels": meta_of(node).get("labels") or {}},
            "timestamp": data.get("timestamp"), "window": _window(data.get("window")),
            "usage": _usage(data["node"])}


def pod_metrics(pod: dict[str, Any], measured: dict[str, Any], now: str) -> dict[str, Any]:
    """The PodMetrics of ``pod`` from its entry in a usage annotation (``measured``:
    the entry, with the annotation's ``timestamp`` and ``window``)."""
    names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []
             if isinstance(c, dict)]
    return {"kind": "PodMetrics", "apiVersion": API_VERSION,
            "metadata": {"name": name_of(pod), "namespace": namespace_of(pod),
                         "creationTimestamp": now,
                         "labels": meta_of(pod).get("labels") or {}},
            "timestamp": measured.get("timestamp"), "window": _window(measured.get("window")),
            "containers": [{"name": n, "usage": _usage(u)}
                           for n, u in container_usages(measured, names)]}


def measured_pods(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every pod entry of every Node's annotation, by ``namespace/name``, with its
    annotation's timestamp and window."""
    out: dict[str, dict[str, Any]] = {}
    for node in nodes:
        data = read_usage(node)
        for key, entry in ((data or {}).get("pods") or {}).items():
            if isinstance(entry, dict):
                out[key] = {**entry, "timestamp": data.get("timestamp") if data else None,
                            "window": data.get("window") if data else None}
    return out


def _measured_for(pod: dict[str, Any], measured: dict[str, dict[str, Any]]
                  ) -> Optional[dict[str, Any]]:
    entry = measured.get(f"{namespace_of(pod)}/{name_of(pod)}")
    # A pod deleted and made again under the same name is another pod: its
    # predecessor's usage is not its own.
    if entry is None or entry.get("uid") not in (None, uid_of(pod)):
        return None
    return entry


# --- discovery and the APIService -------------------------------------------------------------


def group_body() -> dict[str, Any]:
    version = {"groupVersion": API_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [version], "preferredVersion": version}


def resource_list() -> dict[str, Any]:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
            "resources": [
                {"name": "nodes", "singularName": "", "namespaced": False,
                 "kind": "NodeMetrics", "verbs": ["get", "list"]},
                {"name": "pods", "singularName": "", "namespaced": True,
                 "kind": "PodMetrics", "verbs": ["get", "list"]}]}


def apiservice() -> dict[str, Any]:
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{VERSION}.{GROUP}",
                         "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
            "spec": {"group": GROUP, "version": VERSION,
                     "groupPriorityMinimum": PRIORITY[0], "versionPriority": PRIORITY[1]}}


# --- serving ----------------------------------------------------------------------------------


def _json(doc: Any) -> web.Response:
    return web.Response(body=dumps(doc), content_type="application/json")


async def _items(store: Store, plural: str, namespace: Optional[str] = None) -> list[dict]:
    listed = await store.alist(resources.store_prefix(plural, namespace))
    return [o for o in (loads(kv.value) for kv in listed.items) if isinstance(o, dict)]


def _selectors(query: Any) -> tuple[selectors.LabelSelector, selectors.FieldSelector]:
    try:
        return (selectors.parse_label_selector(query.get("labelSelector")),
                selectors.parse_field_selector(query.get("fieldSelector"),
                                               ("metadata.name", "metadata.namespace")))
    except selectors.SelectorError as err:
        raise errors.bad_request(str(err)) from None


def _parse(path: str) -> Optional[tuple[Optional[str], str, Optional[str]]]:
    """(namespace, resource, name) of a metrics resource path; None for discovery."""
    rest = [p for p in path.split("/") if p][3:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 2 or rest[0] not in ("nodes", "pods"):
        raise errors.path_not_found()
    if rest[0] == "nodes" and namespace is not None:
        raise errors.path_not_found()
    name = rest[1] if len(rest) > 1 else None
    if rest[0] == "pods" and name is not None and namespace is None:
        raise errors.path_not_found()
    return namespace, rest[0], name


async def serve(request: web.Request, registry: Registry, group_list: Any
                ) -> Optional[web.Response]:
    """The answer for a metrics.k8s.io path (and ``/apis``, to which the group is
    added: ``group_list`` makes the built-in part); None for every other path."""
    path = request.path.rstrip("/") or "/"
    parts = [p for p in path.split("/") if p]
    if parts == ["apis"]:
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        doc = group_list()
        doc["groups"] = [*doc.get("groups", []), group_body()]
        return _json(doc)
    if parts[:2] != ["apis", GROUP]:
        return None
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    if len(parts) == 2:
        return _json({"kind": "APIGroup", "apiVersion": "v1", **group_body()})
    if parts[2] != VERSION:
        raise errors.path_not_found()
    if len(parts) == 3:
        return _json(resource_list())
    parsed = _parse(path)
    assert parsed is not None
    namespace, plural, name = parsed
    labels, fields = _selectors(request.query)
    now = timestamp()
    if plural == "nodes":
        return _json(await _nodes(registry, name, labels, fields, now))
    return _json(await _pods(registry, namespace, name, labels, fields, now))


_KINDS = {"nodes": "Node", "pods": "Pod"}


async def _existing(registry: Registry, plural: str, namespace: Optional[str],
                    name: str) -> dict[str, Any]:
    """The object metrics are asked of, or upstream's 404 naming it (a name that cannot
    be a key too: Registry.get_kv)."""
    kv = await registry.get_kv(resources.builtin(_KINDS[plural]), namespace, name)
    obj = loads(kv.value)
    if not isinstance(obj, dict):
        raise errors.not_found(plural, name)
    return obj


async def _nodes(registry: Registry, name: Optional[str], labels: selectors.LabelSelector,
                 fields: selectors.FieldSelector, now: str) -> dict[str, Any]:
    if name is not None:
        found = node_metrics(await _existing(registry, "nodes", None, name), now)
        if found is None:
            raise errors.not_found("nodemetrics", name, GROUP)
        return found
    items = [m for m in (node_metrics(n, now) for n in await _items(registry.store, "nodes")
                         if labels.matches(meta_of(n).get("labels")) and fields.matches(n))
             if m is not None]
    return {"kind": "NodeMetricsList", "apiVersion": API_VERSION, "metadata": {},
            "items": sorted(items, key=lambda m: m["metadata"]["name"])}


async def _pods(registry: Registry, namespace: Optional[str], name: Optional[str],
                labels: selectors.LabelSelector, fields: selectors.FieldSelector,
                now: str) -> dict[str, Any]:
    measured = measured_pods(await _items(registry.store, "nodes"))
    if name is not None:
        pod = await _existing(registry, "pods", namespace, name)
        entry = _measured_for(pod, measured)
        if entry is None:
            raise errors.not_found("podmetrics", f"{namespace}/{name}", GROUP)
        return pod_metrics(pod, entry, now)
    items = []
    for pod in await _items(registry.store, "pods", namespace):
        if not (labels.matches(meta_of(pod).get("labels")) and fields.matches(pod)):
            continue
        entry = _measured_for(pod, measured)
        if entry is not None:
            items.append(pod_metrics(pod, entry, now))
    items.sort(key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))
    return {"kind": "PodMetricsList", "apiVersion": API_VERSION, "metadata": {},
            "items": items}

