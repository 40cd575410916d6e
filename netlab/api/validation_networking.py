"""Validation of networking.k8s.io/v1 NetworkPolicy, Ingress and IngressClass.

Restates k8s.io/kubernetes pkg/apis/networking/validation with its field paths and
messages: NetworkPolicy ports (protocol, numeric or named port, ``endPort``), peers (an
``ipBlock`` excludes selectors; each ``except`` must be a strict subset of ``cidr``) and
policyTypes; Ingress rules, paths, backends and TLS; IngressClass controller and parameters.
:mod:`netlab.api.validation` registers these in its per-kind tables. Objects arrive defaulted
(:mod:`netlab.api.defaults_netrbac`). Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Optional

from netlab.api import selectors
from netlab.api.errors import FieldError, forbidden_field, invalid, not_supported, required
from netlab.api.validation_base import (
    _V,
    PORT_RANGE_MSG,
    _regex_msg,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    port_name,
)

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
_WILDCARD_FMT = "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"


# --- shared pieces ----------------------------------------------------------------------------


def label_selector(v: _V, selector: Any, path: str) -> None:
    """``metav1validation.ValidateLabelSelector``."""
    if selector is None:
        return
    if not isinstance(selector, dict):
        v.add(invalid(path, selector, "must be an object"))
        return
    v.labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for epath, expr in v.objs(selector, "matchExpressions", f"{path}.matchExpressions"):
        op = v.string(expr, "operator", f"{epath}.operator")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                v.add(required(f"{epath}.values",
                               "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                v.add(forbidden_field(f"{epath}.values", "may not be specified when "
                                      "`operator` is 'Exists' or 'DoesNotExist'"))
        else:
            v.add(invalid(f"{epath}.operator", op, "not a valid selector operator"))
        key = v.string(expr, "key", f"{epath}.key")
        for msg in selectors.is_qualified_name(key):
            v.add(invalid(f"{epath}.key", key, msg))


def _parse_cidr(value: str) -> Optional[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        # strict=False: like Go's ParseCIDR, host bits may be set ("10.0.0.1/24").
        return ipaddress.ip_network(value, strict=False) if "/" in value else None
    except ValueError:
        return None


def _port_number(v: _V, value: Any, path: str) -> None:
    if not 1 <= value <= 65535:
        v.add(invalid(path, value, PORT_RANGE_MSG))


def wildcard_dns1123_subdomain(value: str) -> list[str]:
    """``IsWildcardDNS1123Subdomain``."""
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not re.fullmatch(_WILDCARD_FMT, value):
        errs.append(_regex_msg(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
            "subdomain, which must consist of lower case alphanumeric characters, '-' or '.' "
            "and end with an alphanumeric character", _WILDCARD_FMT, "*.example.com"))
    return errs


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _path_segment_name(value: str) -> list[str]:
    """``path.IsValidPathSegmentName``: what may be one segment of an API path."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


# --- NetworkPolicy ----------------------------------------------------------------------------


def _netpol_port(v: _V, port: dict[str, Any], path: str) -> None:
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        v.add(not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    value = port.get("port")
    end = v.integer(port, "endPort", f"{path}.endPort")
    if value is None:
        if end is not None:
            v.add(invalid(f"{path}.endPort", end,
                          "may not be specified when `port` is not specified"))
    elif isinstance(value, int) and not isinstance(value, bool):
        _port_number(v, value, f"{path}.port")
        if end is not None:
            if end < value:
                v.add(invalid(f"{path}.endPort", value,
                              "must be greater than or equal to `port`"))
            _port_number(v, end, f"{path}.endPort")
    elif isinstance(value, str):
        if end is not None:
            v.add(invalid(f"{path}.endPort", end,
                          "may not be specified when `port` is non-numeric"))
        for msg in port_name(value):
            v.add(invalid(f"{path}.port", value, msg))
    else:
        v.add(invalid(f"{path}.port", value, "must be an integer or a string"))


def _ip_block(v: _V, block: dict[str, Any], path: str) -> None:
    cidr = v.string(block, "cidr", f"{path}.cidr")
    if not cidr:
        v.add(required(f"{path}.cidr"))
        return
    network = _parse_cidr(cidr)
    if network is None:
        v.add(invalid(f"{path}.cidr", cidr, CIDR_MSG))
        return
    for epath, text in v.items(block, "except", f"{path}.except"):
        inner = _parse_cidr(text) if isinstance(text, str) else None
        if inner is None:
            v.add(invalid(epath, text, CIDR_MSG))
            continue
        # Go's check: the except's address inside cidr and its prefix strictly longer.
        if inner.version != network.version or inner.network_address not in network \
                or network.prefixlen >= inner.prefixlen:
            v.add(invalid(epath, text, "must be a strict subset of `cidr`"))


def _peer(v: _V, peer: dict[str, Any], path: str) -> None:
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            label_selector(v, peer[key], f"{path}.{key}")
    has_block = peer.get("ipBlock") is not None
    if has_block:
        count += 1
        _ip_block(v, v.obj(peer, "ipBlock", f"{path}.ipBlock"), f"{path}.ipBlock")
    if count == 0:
        v.add(required(path, "must specify a peer"))
    elif count > 1 and has_block:
        v.add(forbidden_field(path, "may not specify both ipBlock and another peer"))


def validate_network_policy(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    label_selector(v, spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for rpath, rule in v.objs(spec, direction, f"spec.{direction}"):
            for ppath, port in v.objs(rule, "ports", f"{rpath}.ports"):
                _netpol_port(v, port, ppath)
            for ppath, peer in v.objs(rule, peers, f"{rpath}.{peers}"):
                _peer(v, peer, ppath)
    types = spec.get("policyTypes")
    if types is None:
        return
    if not isinstance(types, list):
        v.add(invalid("spec.policyTypes", types, "must be a list"))
    elif len(types) > len(POLICY_TYPES):
        v.add(invalid("spec.policyTypes", types, "may not specify more than two policyTypes"))
    else:
        for i, value in enumerate(types):
            if value not in POLICY_TYPES:
                v.add(not_supported(f"spec.policyTypes[{i}]", value, POLICY_TYPES))


# --- Ingress ----------------------------------------------------------------------------------


def _typed_reference(v: _V, ref: dict[str, Any], path: str) -> None:
    group = ref.get("apiGroup")
    if isinstance(group, str):
        for msg in dns1123_subdomain(group):
            v.add(invalid(f"{path}.apiGroup", group, msg))
    for key in ("kind", "name"):
        value = v.string(ref, key, f"{path}.{key}")
        if not value:
            v.add(required(f"{path}.{key}", f"{key} is required"))
        for msg in _path_segment_name(value):
            v.add(invalid(f"{path}.{key}", value, msg))


def _backend(v: _V, backend: dict[str, Any], path: str) -> None:
    has_resource = backend.get("resource") is not None
    has_service = backend.get("service") is not None
    if has_resource and has_service:
        v.add(invalid(path, "", "cannot set both resource and service backends"))
    elif has_resource:
        _typed_reference(v, v.obj(backend, "resource", f"{path}.resource"), f"{path}.resource")
    elif has_service:
        service = v.obj(backend, "service", f"{path}.service")
        name = v.string(service, "name", f"{path}.service.name")
        if not name:
            v.add(required(f"{path}.service.name"))
        for msg in dns1035_label(name) if name else ():
            v.add(invalid(f"{path}.service.name", name, msg))
        port = v.obj(service, "port", f"{path}.service.port")
        pname = v.string(port, "name", f"{path}.service.port.name")
        number = v.integer(port, "number", f"{path}.service.port.number") or 0
        if pname and number:
            v.add(invalid(path, "", "cannot set both port name & port number"))
        elif pname:
            for msg in port_name(pname):
                v.add(invalid(f"{path}.service.port.name", pname, msg))
        elif number:
            _port_number(v, number, f"{path}.service.port.number")
        else:
            v.add(required(path, "port name or number is required"))
    else:
        v.add(invalid(path, "", "resource or service backend is required"))


def _http_path(v: _V, item: dict[str, Any], path: str) -> None:
    path_type = item.get("pathType")
    value = v.string(item, "path", f"{path}.path")
    if path_type is None:
        v.add(required(f"{path}.pathType", "pathType must be specified"))
        return
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            v.add(invalid(f"{path}.path", value, "must be an absolute path"))
        for seq in _INVALID_PATH_SEQUENCES if value else ():
            if seq in value:
                v.add(invalid(f"{path}.path", value, f"must not contain '{seq}'"))
        for suffix in _INVALID_PATH_SUFFIXES if value else ():
            if value.endswith(suffix):
                v.add(invalid(f"{path}.path", value, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            v.add(invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        v.add(not_supported(f"{path}.pathType", path_type, PATH_TYPES))
    if item.get("backend") is None:
        v.add(invalid(f"{path}.backend", "", "resource or service backend is required"))
    else:
        _backend(v, v.obj(item, "backend", f"{path}.backend"), f"{path}.backend")


def _host(v: _V, host: str, path: str) -> None:
    check = wildcard_dns1123_subdomain if "*" in host else dns1123_subdomain
    for msg in check(host):
        v.add(invalid(path, host, msg))


def validate_ingress(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    rules = spec.get("rules")
    if not rules and spec.get("defaultBackend") is None:
        v.add(invalid("spec", rules, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        _backend(v, v.obj(spec, "defaultBackend", "spec.defaultBackend"), "spec.defaultBackend")
    for rpath, rule in v.objs(spec, "rules", "spec.rules"):
        host = v.string(rule, "host", f"{rpath}.host")
        if host:
            if _is_ip(host):
                v.add(invalid(f"{rpath}.host", host, "must be a DNS name, not an IP address"))
            _host(v, host, f"{rpath}.host")
        if rule.get("http") is not None:
            http = v.obj(rule, "http", f"{rpath}.http")
            if not http.get("paths"):
                v.add(required(f"{rpath}.http.paths"))
            for ppath, item in v.objs(http, "paths", f"{rpath}.http.paths"):
                _http_path(v, item, ppath)
    for tpath, tls in v.objs(spec, "tls", "spec.tls"):
        hosts = tls.get("hosts") or []
        for i, host in enumerate(hosts if isinstance(hosts, list) else []):
            if isinstance(host, str):
                _host(v, host, f"{tpath}.hosts[{i}]")
        secret = v.string(tls, "secretName", f"{tpath}.secretName")
        for msg in dns1123_subdomain(secret) if secret else ():
            v.add(invalid(f"{tpath}.secretName", secret, msg))
    class_name = spec.get("ingressClassName")
    if isinstance(class_name, str):
        for msg in dns1123_subdomain(class_name):
            v.add(invalid("spec.ingressClassName", class_name, msg))


# --- IngressClass -----------------------------------------------------------------------------


def _domain_prefixed_path(v: _V, value: str, path: str) -> None:
    """``IsDomainPrefixedPath``: ``acme.io/foo``."""
    if not value:
        v.add(required(path))
        return
    host, slash, rest = value.partition("/")
    if not slash or not host or not rest:
        v.add(invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")'))
        return
    for msg in dns1123_subdomain(host):
        v.add(invalid(path, host, msg))
    if not re.fullmatch(_HTTP_PATH_FMT, rest):
        v.add(invalid(path, rest, _regex_msg("Invalid path", _HTTP_PATH_FMT)))


def validate_ingress_class(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    controller = v.string(spec, "controller", "spec.controller")
    if len(controller) > 250:
        v.add(FieldError("TooLong", "spec.controller", detail="may not be more than 250 bytes"))
    _domain_prefixed_path(v, controller, "spec.controller")
    if spec.get("parameters") is None:
        return
    path = "spec.parameters"
    params = v.obj(spec, "parameters", path)
    _typed_reference(v, params, path)
    scope = params.get("scope")
    namespace = params.get("namespace")
    if scope is None:
        v.add(required(f"{path}.scope"))
    elif scope not in ("Cluster", "Namespace"):
        v.add(not_supported(f"{path}.scope", scope, ("Cluster", "Namespace")))
    elif scope == "Namespace":
        if namespace is None:
            v.add(required(f"{path}.namespace", "`parameters.scope` is set to 'Namespace'"))
        elif isinstance(namespace, str):
            for msg in dns1123_label(namespace):
                v.add(invalid(f"{path}.namespace", namespace, msg))
    elif namespace is not None:
        v.add(forbidden_field(f"{path}.namespace", "`parameters.scope` is set to 'Cluster'"))


def validate_ingress_class_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    def controller(obj: dict[str, Any]) -> Any:
        spec = obj.get("spec")
        return spec.get("controller") if isinstance(spec, dict) else None

    before, after = controller(old), controller(new)
    if before != after:
        v.add(invalid("spec.controller", after, "field is immutable"))
