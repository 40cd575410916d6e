"""What the EndpointSlice controller computes: a Service's desired slices, and the writes
that get the existing slices there (pure; the controller in ``endpointslice.py`` does I/O).

This restates upstream's endpointslice reconciler (k8s.io/endpointslice): each pod
the Service selects becomes one endpoint (IPv4 address, ``ready``/``serving``/
``terminating`` conditions, ``nodeName``, ``targetRef``, ``hostname`` when the pod
names the Service as its subdomain). Its ports are the Service ports resolved for
that pod (a named ``targetPort`` may differ per pod), and pods with the same
resolved ports share slices: one group of slices per distinct port list, at most
100 endpoints per slice. Terminating pods stay, with ``ready`` false and
``serving`` per their readiness, so kube-proxy can fall back to them.

Reconciling keeps churn low, as upstream does: an existing slice keeps the
endpoints still desired (in place), drops the others and is deleted when none is
left; leftover endpoints first fill slices that are being updated anyway, then
one unchanged slice they fit into, then new slices (``generateName: <svc>-``).
A slice whose content and labels are already right is not written. A Service
with no endpoints at all keeps one empty "placeholder" slice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from netlab.api.views import labels_of, meta_of, name_of, pod_status, service_spec
from netlab.master.controllers import podutil
from netlab.master.controllers.endpoints import find_port, pod_reference, should_be_in_endpoints

Obj = Mapping[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_ENDPOINTS_PER_SLICE = 100
ADDRESS_TYPE = "IPv4"  # the lab's pod network is IPv4 only
API_VERSION = "discovery.k8s.io/v1"

PortKey = tuple[tuple[str, int, str, str], ...]
EndpointKey = tuple[tuple[str, ...], str, str, str]
Desired = dict[PortKey, tuple[list[dict[str, Any]], dict[EndpointKey, dict]]]


# --- one pod, one endpoint -----------------------------------------------------------------------


def pod_ipv4(pod: Obj) -> str:
    """The pod's IPv4 address (``podIPs``, then ``podIP``); "" when it has none."""
    status = pod_status(pod)
    candidates = [p.get("ip", "") for p in status.get("podIPs") or [] if isinstance(p, dict)]
    candidates.append(status.get("podIP") or "")
    for ip in candidates:
        try:
            if ip and ipaddress.ip_address(ip).version == 4:
                return ip
        except ValueError:
            continue
    return ""


def pod_to_endpoint(service: Obj, pod: Obj) -> dict[str, Any]:
    """``podToEndpoint``: a terminating pod is never ready (unless the Service publishes
    not-ready addresses), but keeps ``serving`` from its readiness."""
    publish_not_ready = bool(service_spec(service).get("publishNotReadyAddresses"))
    serving = podutil.is_ready(pod)
    terminating = podutil.is_terminating(pod)
    ready = publish_not_ready or serving
    if terminating and not publish_not_ready:
        ready = False
    return {
        "addresses": [pod_ipv4(pod)],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        **pod_reference(service, pod),
    }


def endpoint_ports(service: Obj, pod: Obj) -> list[dict[str, Any]]:
    """``getEndpointPorts``: the Service's ports this pod serves, with its numbers."""
    out = []
    for sp in service_spec(service).get("ports") or []:
        number = find_port(pod, sp)
        if number is None:
            continue
        port: dict[str, Any] = {"name": sp.get("name") or "", "port": number,
                                "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        out.append(port)
    return sorted(out, key=_one_port_key)


def _one_port_key(port: Obj) -> tuple[str, int, str, str]:
    number = port.get("port")
    return (str(port.get("name") or ""), number if isinstance(number, int) else -1,
            str(port.get("protocol") or "TCP"), str(port.get("appProtocol") or ""))


def port_key(ports: Optional[Iterable[Obj]]) -> PortKey:
    """The identity of a port list, whatever its order (upstream's port map key)."""
    return tuple(sorted(_one_port_key(p) for p in ports or [] if isinstance(p, Mapping)))


def endpoint_key(endpoint: Obj) -> EndpointKey:
    """Which endpoint this is (``hashEndpoint``): addresses, hostname and pod; an
    endpoint with the same key but other conditions is an update, not a new one."""
    ref = endpoint.get("targetRef") or {}
    return (tuple(sorted(str(a) for a in endpoint.get("addresses") or [])),
            str(endpoint.get("hostname") or ""), str(ref.get("namespace") or ""),
            str(ref.get("name") or ""))


def _sort_key(endpoint: Obj) -> tuple:
    try:
        ip = int(ipaddress.ip_address((endpoint.get("addresses") or [""])[0]))
    except ValueError:
        ip = -1
    return (ip, endpoint_key(endpoint))


def desired_endpoints(service: Obj, pods: Iterable[Obj]) -> Desired:
    """Port key -> (the ports, the endpoints by key) for the pods the Service selected."""
    out: Desired = {}
    for pod in pods:
        if not should_be_in_endpoints(pod, include_terminating=True) or not pod_ipv4(pod):
            continue
        ports = endpoint_ports(service, pod)
        endpoint = pod_to_endpoint(service, pod)
        _, by_key = out.setdefault(port_key(ports), (ports, {}))
        by_key[endpoint_key(endpoint)] = endpoint
    return out


# --- slices ------------------------------------------------------------------------------------


def slice_labels(service: Obj) -> dict[str, str]:
    """``setEndpointSliceLabels``: the Service's labels, minus the reserved ones, plus
    the service name, the manager and the headless marker."""
    meta = meta_of(service)
    labels = {k: v for k, v in (meta.get("labels") or {}).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    if service_spec(service).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    labels[SERVICE_NAME_LABEL] = meta.get("name", "")
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


@dataclass(frozen=True)
class SliceOwner:
    """Whose slices these are: the object that owns them (a Service here, an Endpoints
    object for the mirroring controller), the name they are generated from and the
    labels every one of them carries."""

    namespace: str
    name: str
    kind: str
    uid: str
    labels: Mapping[str, str]

    @classmethod
    def of_service(cls, service: Obj) -> SliceOwner:
        meta = meta_of(service)
        return cls(meta.get("namespace", ""), meta.get("name", ""), "Service",
                   meta.get("uid", ""), slice_labels(service))


def new_slice(owner: SliceOwner, ports: list[dict[str, Any]]) -> dict[str, Any]:
    """A slice to create: named by the server from ``<name>-``, controlled by the owner."""
    return {
        "apiVersion": API_VERSION, "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{owner.name}-", "namespace": owner.namespace,
            "labels": dict(owner.labels),
            "ownerReferences": [{"apiVersion": "v1", "kind": owner.kind, "name": owner.name,
                                 "uid": owner.uid, "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "addressType": ADDRESS_TYPE, "endpoints": [], "ports": [dict(p) for p in ports],
    }


def owned_by(slice_: Obj, owner: SliceOwner) -> bool:
    return any(r.get("kind") == owner.kind and r.get("uid") == owner.uid
               for r in meta_of(slice_).get("ownerReferences") or [])


def _is_placeholder(slice_: Obj, owner: SliceOwner) -> bool:
    return not slice_.get("endpoints") and not slice_.get("ports") and \
        slice_.get("addressType") == ADDRESS_TYPE and owned_by(slice_, owner) and \
        labels_of(slice_) == dict(owner.labels)


@dataclass
class Plan:
    """The writes one reconcile makes: new slices, changed slices, slices to delete."""

    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


def _copy_for_update(slice_: Obj, endpoints: list[dict], labels: dict[str, str]) -> dict:
    meta = dict(meta_of(slice_))
    meta["labels"] = labels
    return {**slice_, "metadata": meta, "endpoints": endpoints}


def _reconcile_ports(owner: SliceOwner, plan: Plan, existing: Sequence[Obj], ports: list[dict],
                     wanted: dict[EndpointKey, dict], limit: int) -> None:
    """``reconcileByPortMapping`` for one port list."""
    labels = dict(owner.labels)
    remaining = dict(wanted)
    updating: list[dict[str, Any]] = []
    unchanged: list[Obj] = []
    for slice_ in existing:
        kept: list[dict] = []
        changed = False
        for endpoint in slice_.get("endpoints") or []:
            want = remaining.pop(endpoint_key(endpoint), None) if isinstance(endpoint, Mapping) \
                else None
            if want is None:
                changed = True  # gone, or a duplicate of one placed already
                continue
            changed = changed or want != endpoint
            kept.append(want)
        labels_changed = labels_of(slice_) != labels
        if changed:
            if kept:
                updating.append(_copy_for_update(slice_, kept, labels))
            else:
                plan.delete.append(dict(slice_))
        elif labels_changed:
            updating.append(_copy_for_update(slice_, kept, labels))
        else:
            unchanged.append(slice_)
    leftovers = sorted(remaining.values(), key=_sort_key)
    # Fill the slices written anyway first, fullest first.
    for slice_ in sorted(updating, key=lambda s: -len(s["endpoints"])):
        room = limit - len(slice_["endpoints"])
        if room > 0 and leftovers:
            slice_["endpoints"] = slice_["endpoints"] + leftovers[:room]
            leftovers = leftovers[room:]
    plan.update.extend(updating)
    while leftovers:
        target: Optional[dict[str, Any]] = None
        if len(leftovers) < limit and unchanged:
            target = _slice_to_fill(unchanged, len(leftovers), limit)
        if target is None:
            target = new_slice(owner, ports)
            plan.create.append(target)
        else:
            unchanged.remove(target)
            target = _copy_for_update(target, list(target.get("endpoints") or []), labels)
            plan.update.append(target)
        room = limit - len(target["endpoints"])
        target["endpoints"] = target["endpoints"] + leftovers[:room]
        leftovers = leftovers[room:]


def _slice_to_fill(slices: Sequence[Obj], count: int, limit: int) -> Optional[Any]:
    """``getSliceToFill``: the unchanged slice that the leftovers fill most tightly."""
    best, best_diff = None, limit
    for slice_ in slices:
        diff = limit - (count + len(slice_.get("endpoints") or []))
        if 0 <= diff < best_diff:
            best, best_diff = slice_, diff
            if diff == 0:
                break
    return best


def plan_slices(service: Obj, pods: Iterable[Obj], existing: Iterable[Obj],
                limit: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    """The writes that turn ``existing`` (this controller's slices labelled with the
    Service's name) into the Service's desired slices; empty when nothing changed."""
    return plan_from_desired(SliceOwner.of_service(service), desired_endpoints(service, pods),
                             existing, limit)


def plan_from_desired(owner: SliceOwner, desired: Desired, existing: Iterable[Obj],
                      limit: int = MAX_ENDPOINTS_PER_SLICE, placeholder: bool = True) -> Plan:
    """The reconciler proper, for any owner: ``desired`` endpoints grouped by port list
    against the slices that exist; ``placeholder`` keeps one empty slice when nothing
    is desired (the Service controller's behaviour; mirroring has none)."""
    plan = Plan()
    existing = list(existing)
    by_ports: dict[PortKey, list[Obj]] = {}
    for slice_ in sorted(existing, key=name_of):
        if not owned_by(slice_, owner) or slice_.get("addressType") != ADDRESS_TYPE:
            plan.delete.append(dict(slice_))  # a predecessor's, or another family's
            continue
        by_ports.setdefault(port_key(slice_.get("ports")), []).append(slice_)
    for key, slices in by_ports.items():
        if key not in desired:  # no pod serves this port list any more
            plan.delete.extend(dict(s) for s in slices)
    for key in sorted(desired):
        ports, wanted = desired[key]
        _reconcile_ports(owner, plan, by_ports.get(key, []), ports, wanted, limit)
    if placeholder and len(plan.delete) == len(existing) and not plan.create:
        # Nothing would be left: keep (or make) one empty placeholder slice.
        placeholders = [s for s in plan.delete if _is_placeholder(s, owner)]
        if len(plan.delete) == 1 and placeholders:
            plan.delete.clear()
        else:
            plan.create.append(new_slice(owner, []))
    return plan


def desired_after(existing: Iterable[Obj], plan: Plan) -> list[Obj]:
    """The slices a plan leaves (tests and the bench use it to check convergence)."""
    gone = {meta_of(s).get("name") for s in plan.delete}
    updated = {meta_of(s).get("name"): s for s in plan.update}
    out = [updated.get(meta_of(s).get("name"), s) for s in existing
           if meta_of(s).get("name") not in gone]
    return out + list(plan.create)
