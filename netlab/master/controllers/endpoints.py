"""The Endpoints controller: for each Service with a selector, where its pods are.

For every Service that has a selector, the Endpoints object of the same name
lists the matching pods that have an IP: ready pods under ``addresses``, the
others under ``notReadyAddresses`` (all under ``addresses`` with
``publishNotReadyAddresses``); terminating pods leave, and finished pods leave
when their restart policy will not bring them back. Each address carries the
pod's ``nodeName`` and a ``targetRef`` to it, and ``hostname`` when the pod
names the Service as its subdomain. A named ``targetPort`` is looked up in
each pod's own container ports, so pods of two versions may serve the same
Service port on different numbers; a pod without that port is left out of it.
The result is "repacked" into subsets as Kubernetes' ``RepackSubsets`` does:
one subset per distinct set of ports, addresses and ports sorted, so the
object only changes when the answer does.

kube-proxy reads EndpointSlices (``endpointslice.py`` computes the same
answer as slices); these Endpoints stay for older clients. Services without a
selector are left alone (their Endpoints belong to the user, and
``endpointslicemirroring.py`` copies them into slices), and when a Service is
deleted its Endpoints go with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional

from netlab.api.selectors import selector_from_set
from netlab.api.views import labels_of, meta_of, namespace_of, pod_spec, pod_status, service_spec
from netlab.client import APIError
from netlab.client.informer import object_key
from netlab.master.controllers import podutil
from netlab.master.controllers.base import Context, Controller, Index, delete, split_key

Obj = Mapping[str, Any]
HEADLESS_LABEL = "service.kubernetes.io/headless"


# --- the computation (pure) ---------------------------------------------------------------------


def services_selecting(services: Iterable[Obj], pod: Obj,
                       old: Optional[Obj]) -> Iterator[Obj]:
    """The Services whose selector matches the pod now or matched it before the
    change (a relabelled pod leaves one Service's endpoints and joins another's)."""
    label_sets = [labels_of(pod)]
    if old is not None:
        label_sets.append(labels_of(old))
    for svc in services:
        selector = selector_of(svc)
        if selector is not None and any(selector_from_set(selector).matches(labels)
                                        for labels in label_sets):
            yield svc


def services_to_resync(services_by_ns: Index, kind: str, pod: Obj,
                       old: Optional[Obj]) -> Iterable[Obj]:
    """After a pod event, the Services whose endpoints may have changed: those selecting
    the pod now or before (:func:`services_selecting`), none when only a detail no
    endpoint shows changed."""
    if kind == "MODIFIED" and _relevant(pod) == _relevant(old):
        return ()
    return services_selecting(services_by_ns.get(namespace_of(pod)), pod, old)


def selector_of(service: Obj) -> Optional[dict[str, str]]:
    """The Service's selector, or None when the controller must not manage it."""
    spec = service_spec(service)
    selector = spec.get("selector")
    if not selector or spec.get("type") == "ExternalName":
        return None
    return dict(selector)


def pod_ip(pod: Obj) -> str:
    status = pod_status(pod)
    if status.get("podIP"):
        return status["podIP"]
    ips = status.get("podIPs") or []
    return (ips[0] or {}).get("ip", "") if ips else ""


def should_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """``ShouldPodBeInEndpoints``."""
    if not pod_ip(pod):
        return False
    if not include_terminating and podutil.is_terminating(pod):
        return False
    restart = pod_spec(pod).get("restartPolicy") or "Always"
    phase = podutil.phase(pod)
    if restart == "Never":
        return phase not in ("Failed", "Succeeded")
    if restart == "OnFailure":
        return phase != "Succeeded"
    return True


def find_port(pod: Obj, service_port: Obj) -> Optional[int]:
    """``FindPort``: the pod's number for a Service port (a named targetPort is looked up
    in the pod's containers, matching the protocol); None if the pod has no such port."""
    target = service_port.get("targetPort")
    if target in (None, "", 0):
        target = service_port.get("port")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    text = str(target)
    if text.isdigit():
        return int(text)
    protocol = service_port.get("protocol") or "TCP"
    for container in pod_spec(pod).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == text and (port.get("protocol") or "TCP") == protocol:
                return port.get("containerPort")
    return None


def pod_reference(service: Obj, pod: Obj) -> dict[str, Any]:
    """What an Endpoints address or an EndpointSlice endpoint says of its pod: the
    hostname (when the pod names the service as its subdomain), the node, the targetRef."""
    meta, spec, smeta = meta_of(pod), pod_spec(pod), meta_of(service)
    out: dict[str, Any] = {}
    if spec.get("hostname") and spec.get("subdomain") == smeta.get("name") and \
            meta.get("namespace") == smeta.get("namespace"):
        out["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        out["nodeName"] = spec["nodeName"]
    out["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace", ""),
                        "name": meta.get("name", ""), "uid": meta.get("uid", "")}
    return out


def endpoint_address(service: Obj, pod: Obj) -> dict[str, Any]:
    return {"ip": pod_ip(pod), **pod_reference(service, pod)}


def _endpoint_port(service_port: Obj, number: int) -> dict[str, Any]:
    port: dict[str, Any] = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _ip_key(address: Obj) -> tuple:
    try:
        ip = ipaddress.ip_address(address.get("ip", ""))
        return (ip.version, int(ip), (address.get("targetRef") or {}).get("uid", ""))
    except ValueError:
        return (99, 0, address.get("ip", ""))


def _port_key(port: Obj) -> tuple:
    return (port.get("name", ""), port.get("port", 0), port.get("protocol", ""))


def compute_subsets(service: Obj, pods: Sequence[Obj]) -> list[dict[str, Any]]:
    """The Endpoints subsets for ``service`` over the pods its selector matched."""
    spec = service_spec(service)
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    headless = spec.get("clusterIP") == "None"
    service_ports = spec.get("ports") or []
    # address -> (the address, ready), and port -> address keys: RepackSubsets' maps.
    addresses: dict[tuple, tuple[dict[str, Any], bool]] = {}
    by_port: dict[tuple, set[tuple]] = {}
    ports: dict[tuple, dict[str, Any]] = {}
    for pod in pods:
        if not should_be_in_endpoints(pod, publish_not_ready):
            continue
        address = endpoint_address(service, pod)
        key = (address["ip"], address["targetRef"]["uid"])
        ready = publish_not_ready or podutil.is_ready(pod)
        offered: list[Optional[dict[str, Any]]] = []
        if not service_ports and headless:
            offered.append(None)  # a headless Service may have no ports
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is not None:
                offered.append(_endpoint_port(service_port, number))
        if not offered:
            continue
        addresses[key] = (address, ready)
        for port in offered:
            pkey = _port_key(port) if port is not None else ("", -1, "")
            if port is not None:
                ports[pkey] = port
            by_port.setdefault(pkey, set()).add(key)
    # Group the ports by the exact set of addresses offering them.
    groups: dict[frozenset, list[tuple]] = {}
    for pkey, keys in by_port.items():
        groups.setdefault(frozenset(keys), []).append(pkey)
    subsets = []
    for group, pkeys in groups.items():
        members = sorted((addresses[k] for k in group), key=lambda a: _ip_key(a[0]))
        subset: dict[str, Any] = {}
        ready_addresses = [a for a, r in members if r]
        not_ready = [a for a, r in members if not r]
        if ready_addresses:
            subset["addresses"] = ready_addresses
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        real_ports = sorted((ports[p] for p in pkeys if p in ports), key=_port_key)
        if real_ports:
            subset["ports"] = real_ports
        subsets.append(subset)
    subsets.sort(key=lambda s: (_port_key((s.get("ports") or [{}])[0]),
                                _ip_key(((s.get("addresses") or s.get("notReadyAddresses"))
                                         or [{}])[0])))
    return subsets


def endpoints_labels(service: Obj) -> dict[str, str]:
    labels = dict(labels_of(service))
    if service_spec(service).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def _relevant(pod: Optional[Obj]) -> tuple:
    """What about a pod can change its endpoints (``podEndpointsChanged``)."""
    if pod is None:
        return ()
    meta, spec = meta_of(pod), pod_spec(pod)
    return (meta.get("labels"), pod_ip(pod), podutil.is_ready(pod), podutil.phase(pod),
            bool(meta.get("deletionTimestamp")), spec.get("nodeName"), spec.get("hostname"),
            spec.get("subdomain"), [c.get("ports") for c in spec.get("containers") or []])


# --- the controller -----------------------------------------------------------------------------


class EndpointsController(Controller):
    name = "endpoints"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.services_by_ns = ctx.by_namespace("services")
        self.pods_by_ns = ctx.by_namespace("pods")
        self.services = self.watch("services")
        self.endpoints = self.watch("endpoints", self._on_endpoints)
        self.watch("pods", self._on_pod)

    def _on_endpoints(self, kind: str, ep: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        # Someone else changed or deleted what we manage: put it back.
        key = object_key(ep)
        svc = self.services.get(key)
        if svc is not None and selector_of(svc) is not None:
            self.enqueue(key)

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        for svc in services_to_resync(self.services_by_ns, kind, pod, old):
            self.enqueue(object_key(svc))

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        svc = self.services.get(key)
        existing = self.endpoints.get(key)
        if svc is None:
            if existing is not None:
                self.log.info("%s: service gone, deleting its endpoints", key)
                await delete(self.client, "endpoints", namespace, name,
                             uid=meta_of(existing).get("uid"))
            return
        selector = selector_of(svc)
        if selector is None:
            return
        matcher = selector_from_set(selector)
        pods = [p for p in self.pods_by_ns.get(namespace or "")
                if matcher.matches(labels_of(p))]
        subsets = compute_subsets(svc, pods)
        labels = endpoints_labels(svc)
        if existing is not None and (existing.get("subsets") or []) == subsets and \
                labels_of(existing) == labels:
            return
        ready = sum(len(s.get("addresses") or []) for s in subsets)
        not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
        if existing is None:
            body = {"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": namespace, "labels": labels},
                    "subsets": subsets}
            try:
                await self.client.create(body)
            except APIError as err:
                if err.reason != "AlreadyExists":
                    raise
                raise APIError(409, {"message": f"endpoints {key} appeared meanwhile"}) from err
        else:
            meta = dict(meta_of(existing))
            meta["labels"] = labels
            await self.client.update({**existing, "metadata": meta, "subsets": subsets})
        self.log.info("%s: %d ready and %d not-ready addresses", key, ready, not_ready)
