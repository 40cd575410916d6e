"""EndpointSlices as kube-proxy reads them: a Service's slices merged into endpoints per port.

kube-proxy's source of endpoints is discovery.k8s.io/v1 EndpointSlices (as upstream's
since 1.19; Endpoints stay in the API for older clients). A Service may have many
slices (100 endpoints each, one group per resolved port list), so the proxy keeps
every slice by the Service it belongs to, the ``kubernetes.io/service-name`` label
(:class:`SliceCache`, upstream's ``EndpointSliceCache``), and merges them when it
resolves that Service (:func:`slice_endpoint_ports`):

- an endpoint is its first address with the slice port's number; ``pod`` and
  ``node`` (from ``targetRef`` and ``nodeName``) label its rules;
- ``ready`` unset means ready, ``serving`` unset means "as ready" (the API's
  semantics); an endpoint listed by two slices (a move between slices in flight)
  counts once, as ready if either copy says so;
- a service port uses its ready endpoints; only when it has none does it use the
  endpoints that are serving while terminating (upstream's
  ``ProxyTerminatingEndpoints``), so connections drain onto pods still shutting
  down rather than being refused.

Pure, like :mod:`model`, whose per-port matching (by Service port name, or the
``targetPort`` name for hand-written slices) this feeds through
:func:`model.resolve_ports`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from netlab.api.views import meta_of
from netlab.node.proxy import model
from netlab.node.proxy.model import Endpoint, ServicePort

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
Key = tuple[str, str]  # (namespace, Service name)
PortEndpoints = dict[tuple[str, str], list[Endpoint]]


def slice_service_key(slice_: Mapping[str, Any]) -> Key | None:
    """``(namespace, service)`` a slice belongs to; None for a slice without the label."""
    meta = meta_of(slice_)
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service:
        return None
    return (meta.get("namespace") or "default", service)


def _flag(conditions: Mapping[str, Any], key: str, default: bool) -> bool:
    value = conditions.get(key)
    return default if value is None else bool(value)


def slice_endpoint_ports(slices: Iterable[Mapping[str, Any]]) -> PortEndpoints:
    """Usable endpoints of a Service's slices, keyed by ``(port name, protocol)``."""
    ready: dict[tuple[str, str], set[Endpoint]] = {}
    fallback: dict[tuple[str, str], set[Endpoint]] = {}
    for slice_ in slices:
        if slice_.get("addressType") not in ("IPv4", None):
            continue  # the lab's Services are IPv4; FQDN slices are not proxied
        for port in slice_.get("ports") or []:
            protocol = model.proto_of(port.get("protocol"))
            number = port.get("port")
            if protocol is None or not isinstance(number, int) or not 0 < number < 65536:
                continue
            key = (port.get("name") or "", protocol)
            for ep in slice_.get("endpoints") or []:
                addresses = ep.get("addresses") or []
                if not addresses or not isinstance(addresses[0], str):
                    continue
                conditions = ep.get("conditions") or {}
                is_ready = _flag(conditions, "ready", True)
                serving = _flag(conditions, "serving", is_ready)
                terminating = _flag(conditions, "terminating", False)
                ref = ep.get("targetRef") or {}
                endpoint = Endpoint(ip=addresses[0], port=number, pod=ref.get("name") or "",
                                    node=ep.get("nodeName") or "")
                if is_ready:
                    ready.setdefault(key, set()).add(endpoint)
                elif serving and terminating:
                    fallback.setdefault(key, set()).add(endpoint)
    out: PortEndpoints = {}
    for key in set(ready) | set(fallback):
        chosen = ready.get(key) or fallback.get(key)
        if chosen:
            out[key] = sorted(_dedupe(chosen))
    return out


def _dedupe(endpoints: set[Endpoint]) -> set[Endpoint]:
    """One endpoint per ip:port, whatever labels two slices' copies carry."""
    by_address: dict[tuple[str, int], Endpoint] = {}
    for ep in sorted(endpoints):
        by_address.setdefault((ep.ip, ep.port), ep)
    return set(by_address.values())


def resolve_slices(service: Mapping[str, Any],
                   slices: Iterable[Mapping[str, Any]]) -> list[ServicePort]:
    """The Service's proxied ports, each with the endpoints its slices offer."""
    return model.resolve_ports(service, slice_endpoint_ports(slices))


class SliceCache:
    """Every slice the proxy knows, by the Service it belongs to."""

    def __init__(self) -> None:
        self._by_service: dict[Key, dict[str, Mapping[str, Any]]] = {}
        self._service_of: dict[tuple[str, str], Key] = {}  # (namespace, slice) -> Service

    def update(self, slice_: Mapping[str, Any]) -> set[Key]:
        """Store a slice; returns the Services whose endpoints may have changed (two if
        the slice's label moved it from one Service to another)."""
        meta = meta_of(slice_)
        ident = (meta.get("namespace") or "default", meta.get("name") or "")
        touched = self._remove(ident)
        key = slice_service_key(slice_)
        if key is not None:
            self._by_service.setdefault(key, {})[ident[1]] = slice_
            self._service_of[ident] = key
            touched.add(key)
        return touched

    def delete(self, slice_: Mapping[str, Any]) -> set[Key]:
        meta = meta_of(slice_)
        return self._remove((meta.get("namespace") or "default", meta.get("name") or ""))

    def _remove(self, ident: tuple[str, str]) -> set[Key]:
        key = self._service_of.pop(ident, None)
        if key is None:
            return set()
        slices = self._by_service.get(key, {})
        slices.pop(ident[1], None)
        if not slices:
            self._by_service.pop(key, None)
        return {key}

    def slices(self, key: Key) -> list[Mapping[str, Any]]:
        """The Service's slices, in name order (merging does not depend on it)."""
        found = self._by_service.get(key, {})
        return [found[name] for name in sorted(found)]

    def __len__(self) -> int:
        return len(self._service_of)
