"""Validation of discovery.k8s.io/v1 EndpointSlices, with Kubernetes' field paths and messages.

Restates pkg/apis/discovery/validation: ``addressType`` is required, one of IPv4,
IPv6 and FQDN, and immutable; a slice holds at most 1000 endpoints of 1-100
addresses each (checked against the address type, special addresses refused as
for Endpoints) and at most 100 ports with unique DNS-label names and a supported
protocol. Registered into :data:`netlab.api.validation._VALIDATORS` and
``_UPDATE_VALIDATORS``; objects arrive defaulted (protocol TCP, name ""). Pure.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netlab.api import selectors
from netlab.api.errors import FieldError, duplicate, invalid, not_supported, required
from netlab.api.validation_base import _V, dns1123_label, dns1123_subdomain

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 100
MAX_TOPOLOGY_LABELS = 16
MAX_HINTS = 8
ZONE_LABEL = "topology.kubernetes.io/zone"


def too_many(path: str, actual: int, limit: int) -> FieldError:
    """``field.TooMany``: "Too many: 1001: must have at most 1000 items"."""
    return FieldError("TooMany", path, actual, f"must have at most {limit} items")


def non_special_ip(v: _V, ip: Any, path: str) -> None:
    """``ValidateNonSpecialIP``: endpoints may not point at these ranges."""
    if ip.is_unspecified:
        v.add(invalid(path, str(ip), f"may not be unspecified ({ip})"))
    if ip.is_loopback:
        v.add(invalid(path, str(ip), "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local:
        v.add(invalid(path, str(ip), "may not be in the link-local range "
                      "(169.254.0.0/16, fe80::/10)"))
    if ip in ipaddress.ip_network("224.0.0.0/24") or ip in ipaddress.ip_network("ff02::/16"):
        v.add(invalid(path, str(ip), "may not be in the link-local multicast range "
                      "(224.0.0.0/24, ff02::/10)"))


def _address(v: _V, address_type: str, address: Any, path: str) -> None:
    if not isinstance(address, str):
        v.add(invalid(path, address, "must be a string"))
        return
    if address_type in ("IPv4", "IPv6"):
        version = 4 if address_type == "IPv4" else 6
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            ip = None
        if ip is None or ip.version != version or (version == 4 and address != str(ip)):
            v.add(invalid(path, address, f"must be a valid {address_type} address"))
            return
        non_special_ip(v, ip, path)
    elif address_type == "FQDN":
        name = address[:-1] if address.endswith(".") else address
        if not name:
            v.add(required(path))
            return
        for msg in dns1123_subdomain(name):
            v.add(invalid(path, address, msg))
        if len(name.split(".")) < 2:
            v.add(invalid(path, address, "should be a domain with at least two segments "
                          "separated by dots"))


def _hints(v: _V, endpoint: dict[str, Any], path: str) -> None:
    hints = v.obj(endpoint, "hints", path)
    for key in ("forZones", "forNodes"):
        items = v.objs(hints, key, f"{path}.{key}")
        if len(items) > MAX_HINTS:
            v.add(too_many(f"{path}.{key}", len(items), MAX_HINTS))
            continue
        seen: set[str] = set()
        for ipath, item in items:
            name = v.string(item, "name", f"{ipath}.name")
            if name in seen:
                v.add(duplicate(f"{ipath}.name", name))
            seen.add(name)
            if key == "forNodes":
                for msg in dns1123_subdomain(name):
                    v.add(invalid(f"{ipath}.name", name, msg))


def _endpoints(v: _V, obj: dict[str, Any], address_type: str) -> None:
    endpoints = obj.get("endpoints")
    if isinstance(endpoints, list) and len(endpoints) > MAX_ENDPOINTS:
        v.add(too_many("endpoints", len(endpoints), MAX_ENDPOINTS))
        return
    for epath, endpoint in v.objs(obj, "endpoints", "endpoints"):
        apath = f"{epath}.addresses"
        addresses = endpoint.get("addresses")
        if addresses is not None and not isinstance(addresses, list):
            v.add(invalid(apath, addresses, "must be a list"))
            addresses = []
        addresses = addresses or []
        if not addresses:
            v.add(required(apath, "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            v.add(too_many(apath, len(addresses), MAX_ADDRESSES))
        for i, address in enumerate(addresses[:MAX_ADDRESSES]):
            _address(v, address_type, address, f"{apath}[{i}]")
        conditions = v.obj(endpoint, "conditions", f"{epath}.conditions")
        for key in ("ready", "serving", "terminating"):
            value = conditions.get(key)
            if value is not None and not isinstance(value, bool):
                v.add(invalid(f"{epath}.conditions.{key}", value, "must be a boolean"))
        node = v.string(endpoint, "nodeName", f"{epath}.nodeName")
        if node:
            for msg in dns1123_subdomain(node):
                v.add(invalid(f"{epath}.nodeName", node, msg))
        hostname = v.string(endpoint, "hostname", f"{epath}.hostname")
        if "hostname" in endpoint and isinstance(endpoint["hostname"], str):
            for msg in dns1123_label(hostname):
                v.add(invalid(f"{epath}.hostname", hostname, msg))
        tpath = f"{epath}.deprecatedTopology"
        topology = endpoint.get("deprecatedTopology")
        if isinstance(topology, dict):
            if len(topology) > MAX_TOPOLOGY_LABELS:
                v.add(too_many(tpath, len(topology), MAX_TOPOLOGY_LABELS))
            v.labels(topology, tpath)
            if ZONE_LABEL in topology:
                v.add(FieldError("Internal", f"{tpath}[{ZONE_LABEL}]",
                                 detail="reserved key, use zone field instead"))
        elif topology is not None:
            v.add(invalid(tpath, topology, "must be an object"))
        if endpoint.get("hints") is not None:
            _hints(v, endpoint, f"{epath}.hints")


def _ports(v: _V, obj: dict[str, Any]) -> None:
    ports = obj.get("ports")
    if isinstance(ports, list) and len(ports) > MAX_PORTS:
        v.add(too_many("ports", len(ports), MAX_PORTS))
        return
    names: set[str] = set()
    for ppath, port in v.objs(obj, "ports", "ports"):
        v.unique_name(port, f"{ppath}.name", names, count_empty=True)
        protocol = port.get("protocol")
        if protocol is None:
            v.add(required(f"{ppath}.protocol"))
        elif protocol not in PROTOCOLS:
            v.add(not_supported(f"{ppath}.protocol", protocol, PROTOCOLS))
        number = v.integer(port, "port", f"{ppath}.port")
        if number is not None and not 0 <= number <= 65535:
            v.add(invalid(f"{ppath}.port", number, "must be between 0 and 65535, inclusive"))
        app = v.string(port, "appProtocol", f"{ppath}.appProtocol")
        if "appProtocol" in port and isinstance(port["appProtocol"], str):
            for msg in selectors.is_qualified_name(app):
                v.add(invalid(f"{ppath}.appProtocol", app, msg))


def validate_endpointslice(v: _V, obj: dict[str, Any]) -> None:
    """``ValidateEndpointSlice``: address type, endpoints, ports."""
    address_type = obj.get("addressType")
    if address_type in (None, ""):
        v.add(required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        v.add(not_supported("addressType", address_type, ADDRESS_TYPES))
    _endpoints(v, obj, address_type if isinstance(address_type, str) else "")
    _ports(v, obj)


def validate_endpointslice_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    """``ValidateEndpointSliceUpdate``: the address type may never change."""
    if new.get("addressType") != old.get("addressType"):
        v.add(invalid("addressType", new.get("addressType"), "field is immutable"))
