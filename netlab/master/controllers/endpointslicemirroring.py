"""The EndpointSlice mirroring controller: hand-written Endpoints copied into slices.

A Service without a selector gets its endpoints from whoever writes its
Endpoints object (a user, an operator, a script pointing at something outside
the cluster). Since kube-proxy reads EndpointSlices, upstream's mirroring
controller copies such Endpoints into slices, and so does this one:

- only for Endpoints whose Service exists and has no selector, and which do not
  carry ``endpointslice.kubernetes.io/skip-mirror: "true"`` (the API server's own
  ``default/kubernetes`` Endpoints do: it writes that slice itself);
- slices are labelled with the Endpoints' labels plus ``kubernetes.io/service-name``
  and ``managed-by: endpointslicemirroring-controller.k8s.io``, controlled by the
  Endpoints object, named from ``<name>-``;
- each subset's addresses become endpoints with ``ready`` true (``addresses``) or
  false (``notReadyAddresses``), keeping ``nodeName``, ``hostname`` and
  ``targetRef``; IPv4 only (the lab's network), at most 1000 per Endpoints;
- the same reconciler as the Service controller's (:mod:`endpointslice_compute`)
  reuses slices and writes only what changed; there is no placeholder slice.

When mirroring no longer applies (the Service gained a selector or went, the
Endpoints went or were marked skip-mirror), the mirrored slices are deleted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Optional

from netlab.api.views import labels_of, meta_of, service_spec
from netlab.master.controllers.base import Context, Controller, delete_object
from netlab.master.controllers.endpointslice import (
    STALE_RETRY,
    SliceTracker,
    managed_service_key,
    write_plan,
)
from netlab.master.controllers.endpointslice_compute import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    Desired,
    SliceOwner,
    endpoint_key,
    plan_from_desired,
    port_key,
)

Obj = Mapping[str, Any]
MIRROR_CONTROLLER = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
MAX_MIRRORED = 1000


def should_mirror(service: Optional[Obj], endpoints: Optional[Obj]) -> bool:
    if service is None or endpoints is None:
        return False
    if service_spec(service).get("selector"):
        return False  # the EndpointSlice controller serves Services with selectors
    labels = labels_of(endpoints)
    return labels.get(SKIP_MIRROR_LABEL) != "true"


def mirror_owner(endpoints: Obj) -> SliceOwner:
    meta = meta_of(endpoints)
    labels = {k: v for k, v in (meta.get("labels") or {}).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    labels[SERVICE_NAME_LABEL] = meta.get("name", "")
    labels[MANAGED_BY_LABEL] = MIRROR_CONTROLLER
    return SliceOwner(meta.get("namespace", ""), meta.get("name", ""), "Endpoints",
                      meta.get("uid", ""), labels)


def _is_ipv4(value: Any) -> bool:
    try:
        return ipaddress.ip_address(value).version == 4
    except ValueError:
        return False


def _endpoint(address: Obj, ready: bool) -> dict[str, Any]:
    """``addressToEndpoint``: only ``ready`` is known for a hand-written address."""
    endpoint: dict[str, Any] = {"addresses": [address["ip"]], "conditions": {"ready": ready}}
    if address.get("hostname"):
        endpoint["hostname"] = address["hostname"]
    if address.get("nodeName"):
        endpoint["nodeName"] = address["nodeName"]
    if isinstance(address.get("targetRef"), Mapping):
        endpoint["targetRef"] = dict(address["targetRef"])
    return endpoint


def mirror_desired(endpoints: Obj) -> Desired:
    """The slices' content for an Endpoints object, grouped by each subset's ports."""
    out: Desired = {}
    count = 0
    for subset in endpoints.get("subsets") or []:
        ports = []
        for p in subset.get("ports") or []:
            port: dict[str, Any] = {"name": p.get("name") or "", "port": p.get("port"),
                                    "protocol": p.get("protocol") or "TCP"}
            if p.get("appProtocol"):
                port["appProtocol"] = p["appProtocol"]
            ports.append(port)
        key = port_key(ports)
        _, by_key = out.setdefault(key, (sorted(ports, key=lambda p: port_key([p])), {}))
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            for address in subset.get(field) or []:
                if count >= MAX_MIRRORED or not _is_ipv4(address.get("ip")):
                    continue
                endpoint = _endpoint(address, ready)
                by_key.setdefault(endpoint_key(endpoint), endpoint)
                count += 1
    return {k: v for k, v in out.items() if v[1]}


class EndpointSliceMirroringController(Controller):
    name = "endpointslicemirroring"

    def __init__(self, ctx: Context, workers: Optional[int] = None) -> None:
        super().__init__(ctx, workers)
        self.slices_by_owner = ctx.index(
            "endpointslices", "mirrored-service",
            lambda s: [k] if (k := managed_service_key(s, MIRROR_CONTROLLER)) else [])
        self.tracker = SliceTracker()
        # A Service and its Endpoints have the same key.
        self.services = self.watch("services")
        self.endpoints = self.watch("endpoints")
        self.watch("endpointslices", self._on_slice)

    def _on_slice(self, kind: str, slice_: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        for obj in (slice_, old):
            key = managed_service_key(obj, MIRROR_CONTROLLER) if obj is not None else None
            if key is not None:
                self.enqueue(key)

    async def reconcile(self, key: str) -> None:
        endpoints = self.endpoints.get(key)
        cached = self.slices_by_owner.get(key)
        if not should_mirror(self.services.get(key), endpoints):
            for slice_ in cached:
                await delete_object(self.client, "endpointslices", slice_)
            self.tracker.forget(key)
            return
        assert endpoints is not None
        if self.tracker.stale(key, cached):
            self.enqueue_after(key, STALE_RETRY)
            return
        plan = plan_from_desired(mirror_owner(endpoints), mirror_desired(endpoints), cached,
                                 placeholder=False)
        if not plan:
            return
        try:
            await write_plan(self.client, self.tracker, key, plan)
        finally:
            self.log.info("%s: mirrored into %d new, %d updated, %d deleted slices", key,
                          len(plan.create), len(plan.update), len(plan.delete))
