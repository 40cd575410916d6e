"""ClusterIP and NodePort allocation for Services.

Kubernetes allocates a Service's virtual IP from ``--service-cluster-ip-range``
and its node ports from ``--service-node-port-range`` inside the API server, at
create (and update) time, and rejects a requested value that is taken or out
of range with 422. netlab does the same with two bitmaps. They live in memory
and are rebuilt at startup by listing the stored Services, so allocations
survive a restart without a second source of truth; the event loop is the only
writer, so no lock is needed.

Like Kubernetes, both ranges are split in two bands: values picked at random
come from the upper band first, so the lower band stays free for the values
users (and the ``kubernetes`` Service at the first address) ask for.

:class:`ServiceAllocator` wraps the two for Service objects: it fills
``clusterIP(s)``, ``ipFamilies``, ``ipFamilyPolicy`` and ``nodePort``, keeps
allocated values across updates that omit them (``patchAllocatedValues``),
drops type-dependent fields when the type changes, and says what to release
once a write has committed.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from typing import Any, Callable, Optional

from netlab.api.errors import APIError, FieldError, internal_error, invalid, invalid_object
from netlab.api.views import name_of

Rollback = Callable[[], None]


class Bitmap:
    """Allocation of the integers ``0 .. size-1``; random picks prefer ``[dynamic_start, size)``."""

    def __init__(self, size: int, dynamic_start: int = 0) -> None:
        self.size = size
        self.dynamic_start = min(max(0, dynamic_start), size)
        self._bits = bytearray((size + 7) // 8)
        self.count = 0
        self._rand = random.Random()

    def has(self, i: int) -> bool:
        return bool(self._bits[i >> 3] & (1 << (i & 7)))

    def take(self, i: int) -> bool:
        """Mark ``i`` used; False if it already was."""
        if self.has(i):
            return False
        self._bits[i >> 3] |= 1 << (i & 7)
        self.count += 1
        return True

    def release(self, i: int) -> None:
        if 0 <= i < self.size and self.has(i):
            self._bits[i >> 3] &= ~(1 << (i & 7)) & 0xFF
            self.count -= 1

    def _scan(self, low: int, high: int) -> int | None:
        if high <= low:
            return None
        start = self._rand.randrange(low, high)
        for i in range(start, high):
            if self.take(i):
                return i
        for i in range(low, start):
            if self.take(i):
                return i
        return None

    def take_any(self) -> int | None:
        """A free value, taken; None when full."""
        if self.count >= self.size:
            return None
        found = self._scan(self.dynamic_start, self.size)
        return found if found is not None else self._scan(0, self.dynamic_start)


def _static_band(size: int, minimum: int, maximum: int, divisor: int) -> int:
    # Kubernetes' calculateRangeOffset: min(max(minimum, size/divisor), maximum).
    return min(max(minimum, size // divisor), maximum)


class IPAllocator:
    """Service IPs from one IPv4 subnet, without its network and broadcast addresses."""

    def __init__(self, subnet: ipaddress.IPv4Network) -> None:
        self.subnet = subnet
        self._base = int(subnet.network_address) + 1
        size = max(0, subnet.num_addresses - 2)
        self.bitmap = Bitmap(size, _static_band(size, 16, 256, 16))

    def _offset(self, ip: str) -> int | None:
        try:
            addr = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return None
        i = addr - self._base
        return i if 0 <= i < self.bitmap.size else None

    def first(self) -> str:
        """The first usable address: Kubernetes gives it to the ``kubernetes`` Service."""
        return str(ipaddress.IPv4Address(self._base))

    def contains(self, ip: str) -> bool:
        return self._offset(ip) is not None

    def allocate(self, ip: str) -> str:
        """Take ``ip``; a ValueError whose message is Kubernetes' when that is impossible."""
        i = self._offset(ip)
        if i is None:
            raise ValueError(f"failed to allocate IP {ip}: the provided IP ({ip}) is not in "
                             f"the valid range. The range of valid IPs is {self.subnet}")
        if not self.bitmap.take(i):
            raise ValueError(f"failed to allocate IP {ip}: provided IP is already allocated")
        return ip

    def allocate_next(self) -> str:
        i = self.bitmap.take_any()
        if i is None:
            raise internal_error("failed to allocate a serviceIP: range is full")
        return str(ipaddress.IPv4Address(self._base + i))

    def mark(self, ip: str) -> None:
        i = self._offset(ip)
        if i is not None:
            self.bitmap.take(i)

    def release(self, ip: str) -> None:
        i = self._offset(ip)
        if i is not None:
            self.bitmap.release(i)


class PortAllocator:
    """Node ports from an inclusive range."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        size = high - low + 1
        self.bitmap = Bitmap(size, _static_band(size, 16, 128, 32))

    def allocate(self, port: int) -> int:
        if not self.low <= port <= self.high:
            raise ValueError(f"provided port is not in the valid range. The range of valid "
                             f"ports is {self.low}-{self.high}")
        if not self.bitmap.take(port - self.low):
            raise ValueError("provided port is already allocated")
        return port

    def allocate_next(self) -> int:
        i = self.bitmap.take_any()
        if i is None:
            raise internal_error("failed to allocate a nodePort: range is full")
        return self.low + i

    def mark(self, port: Any) -> None:
        if isinstance(port, int) and self.low <= port <= self.high:
            self.bitmap.take(port - self.low)

    def release(self, port: Any) -> None:
        if isinstance(port, int) and self.low <= port <= self.high:
            self.bitmap.release(port - self.low)


# --- Services ----------------------------------------------------------------------------------


def _spec(svc: dict) -> dict:
    spec = svc.get("spec")
    return spec if isinstance(spec, dict) else {}


def _ports(svc: dict) -> list[dict]:
    ports = _spec(svc).get("ports")
    return [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []


def needs_cluster_ip(svc: dict) -> bool:
    spec = _spec(svc)
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None"


def needs_node_ports(svc: dict) -> bool:
    spec = _spec(svc)
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") \
        is not False


def _node_ports(svc: dict) -> set[int]:
    return {p["nodePort"] for p in _ports(svc)
            if isinstance(p.get("nodePort"), int) and not isinstance(p.get("nodePort"), bool)}


def _set_ip_fields(spec: dict, ip: str) -> None:
    spec["clusterIP"] = ip
    spec["clusterIPs"] = [ip]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")


class ServiceAllocator:
    """Cluster IPs and node ports of Service objects."""

    def __init__(self, subnet: ipaddress.IPv4Network, port_range: tuple[int, int]) -> None:
        self.ips = IPAllocator(subnet)
        self.ports = PortAllocator(*port_range)

    def rebuild(self, services: list[dict]) -> None:
        """Mark what stored Services hold (at startup, before serving)."""
        for svc in services:
            if needs_cluster_ip(svc) and isinstance(_spec(svc).get("clusterIP"), str):
                self.ips.mark(_spec(svc)["clusterIP"])
            for port in _node_ports(svc):
                self.ports.mark(port)

    def release(self, svc: dict) -> None:
        """Free what a deleted Service held."""
        if needs_cluster_ip(svc) and isinstance(_spec(svc).get("clusterIP"), str):
            self.ips.release(_spec(svc)["clusterIP"])
        for port in _node_ports(svc):
            self.ports.release(port)

    def _fail(self, svc: dict, errors: list[FieldError]) -> APIError:
        name = name_of(svc)
        return invalid_object("Service", name, errors)

    def _release(self, ips: Iterable[str], ports: Iterable[int]) -> None:
        for ip in ips:
            self.ips.release(ip)
        for port in ports:
            self.ports.release(port)

    def _allocate_ip(self, svc: dict, spec: dict, wanted: Optional[str],
                     taken: list[str]) -> None:
        """``wanted`` as the Service's cluster IP, or the next free one when it is empty;
        added to ``taken`` and written to ``spec``."""
        if wanted:
            try:
                taken.append(self.ips.allocate(wanted))
            except ValueError as err:
                raise self._fail(svc, [invalid("spec.clusterIPs", [wanted],
                                               str(err))]) from None
        else:
            taken.append(self.ips.allocate_next())
        _set_ip_fields(spec, taken[-1])

    def _allocate_ports(self, svc: dict, skip: set[int], taken: list[int]) -> None:
        errors: list[FieldError] = []
        for i, port in enumerate(_ports(svc)):
            wanted = port.get("nodePort")
            if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted:
                if wanted in skip or wanted in taken:
                    continue  # kept from the old object, or shared by two protocols
                try:
                    taken.append(self.ports.allocate(wanted))
                except ValueError as err:
                    errors.append(invalid(f"spec.ports[{i}].nodePort", wanted, str(err)))
            else:
                port["nodePort"] = self.ports.allocate_next()
                taken.append(port["nodePort"])
        if errors:
            raise self._fail(svc, errors)

    def allocate_create(self, svc: dict) -> Rollback:
        """Allocate for a new Service (filling its spec); returns the undo."""
        spec = _spec(svc)
        ips: list[str] = []
        ports: list[int] = []

        def rollback() -> None:
            self._release(ips, ports)

        try:
            if needs_cluster_ip(svc):
                self._allocate_ip(svc, spec, spec.get("clusterIP") or next(
                    iter(spec.get("clusterIPs") or []), ""), ips)
            elif spec.get("clusterIP") == "None":
                spec["clusterIPs"] = ["None"]
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
            if needs_node_ports(svc):
                self._allocate_ports(svc, set(), ports)
        except BaseException:
            rollback()
            raise
        return rollback

    @staticmethod
    def fix_up_update(new: dict, old: dict) -> None:
        """Before validation: keep allocated values the client left out and drop the
        ones the new type no longer uses (Kubernetes' patchAllocatedValues and
        dropTypeDependentFields), so ``kubectl apply`` of a manifest without them works."""
        new_spec, old_spec = _spec(new), _spec(old)
        if "spec" not in new or not isinstance(new["spec"], dict):
            return
        if needs_cluster_ip(old) and needs_cluster_ip(new):
            if not new_spec.get("clusterIP") and old_spec.get("clusterIP"):
                new_spec["clusterIP"] = old_spec["clusterIP"]
            for key in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if key not in new_spec and key in old_spec:
                    new_spec[key] = old_spec[key]
        elif needs_cluster_ip(old) and not needs_cluster_ip(new) and \
                new_spec.get("type") == "ExternalName":
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if new_spec.get(key) == old_spec.get(key):
                    new_spec.pop(key, None)
        if needs_node_ports(old):
            old_by_key = {(p.get("port"), p.get("protocol")): p.get("nodePort")
                          for p in _ports(old)}
            old_by_name = {p.get("name"): p.get("nodePort") for p in _ports(old)}
            old_ports = _node_ports(old)
            for port in _ports(new):
                if needs_node_ports(new) and not port.get("nodePort"):
                    kept = old_by_key.get((port.get("port"), port.get("protocol"))) or \
                        old_by_name.get(port.get("name"))
                    if kept:
                        port["nodePort"] = kept
                elif not needs_node_ports(new) and port.get("nodePort") in old_ports:
                    del port["nodePort"]
            if new_spec.get("type") not in ("NodePort", "LoadBalancer") and \
                    new_spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
                new_spec.pop("externalTrafficPolicy", None)

    def allocate_update(self, new: dict, old: dict) -> tuple[Rollback, Rollback]:
        """Allocate what ``new`` needs beyond ``old``; returns (undo, release-after-commit)."""
        new_spec, old_spec = _spec(new), _spec(old)
        ips: list[str] = []
        ports: list[int] = []

        def rollback() -> None:
            self._release(ips, ports)

        old_ip = old_spec.get("clusterIP") if needs_cluster_ip(old) else None
        try:
            if needs_cluster_ip(new) and not old_ip:
                self._allocate_ip(new, new_spec, new_spec.get("clusterIP"), ips)
            old_ports = _node_ports(old) if needs_node_ports(old) else set()
            if needs_node_ports(new):
                self._allocate_ports(new, old_ports, ports)
        except BaseException:
            rollback()
            raise
        new_ports = _node_ports(new) if needs_node_ports(new) else set()
        freed_ports = old_ports - new_ports
        freed_ip = old_ip if old_ip and not (needs_cluster_ip(new) and
                                             new_spec.get("clusterIP") == old_ip) else None

        def release() -> None:
            self._release([freed_ip] if freed_ip else [], freed_ports)

        return rollback, release
