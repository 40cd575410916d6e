"""NetworkPolicy, Ingress and IngressClass: defaulting, validation with upstream's field
paths and messages, and their Table columns."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from netlab.api import defaults
from netlab.api.tables import to_table
from netlab.api.validation import validate, validate_update

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _errors(kind: str, obj: dict, namespaced: bool = True) -> list[str]:
    defaults.apply_defaults(kind, obj)
    return [str(e) for e in validate(kind, obj, namespaced)]


def netpol(**spec) -> dict:
    return {"metadata": {"name": "np", "namespace": "default"}, "spec": spec}


def egress_to(peer: dict, **port) -> dict:
    rule: dict = {"to": [peer]}
    if port:
        rule["ports"] = [port]
    return netpol(podSelector={}, egress=[rule])


# --- NetworkPolicy defaulting -----------------------------------------------------------------


def test_policy_types_default_to_ingress_and_egress_only_with_egress_rules():
    only_ingress = defaults.apply_defaults("NetworkPolicy", netpol(podSelector={}))
    assert only_ingress["spec"]["policyTypes"] == ["Ingress"]
    both = defaults.apply_defaults("NetworkPolicy", egress_to({"podSelector": {}}))
    assert both["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # Named types stay as written: an egress-only policy with no egress rules denies all.
    named = defaults.apply_defaults("NetworkPolicy", netpol(policyTypes=["Egress"]))
    assert named["spec"]["policyTypes"] == ["Egress"]


def test_ports_default_to_tcp():
    obj = defaults.apply_defaults("NetworkPolicy", netpol(ingress=[{"ports": [{"port": 80}]}]))
    assert obj["spec"]["ingress"][0]["ports"][0] == {"port": 80, "protocol": "TCP"}


# --- NetworkPolicy validation -----------------------------------------------------------------


def test_a_full_policy_is_valid():
    obj = egress_to({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.5.0/24"]}},
                    port=32000, endPort=32768, protocol="SCTP")
    obj["spec"]["ingress"] = [{"from": [{"namespaceSelector": {"matchLabels": {"a": "b"}},
                                         "podSelector": {"matchExpressions": [
                                             {"key": "tier", "operator": "In",
                                              "values": ["db"]}]}}],
                               "ports": [{"port": "http"}]}]
    assert _errors("NetworkPolicy", obj) == []


@pytest.mark.parametrize("block, message", [
    ({"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]},
     'spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": '
     "must be a strict subset of `cidr`"),
    ({"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]},
     'spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "10.0.0.0/16": '
     "must be a strict subset of `cidr`"),
    ({"cidr": "10.0.0.0/16", "except": ["nope"]},
     'spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "nope": must be a valid CIDR '
     "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    ({"cidr": "10.0.0.300/16"}, 'spec.egress[0].to[0].ipBlock.cidr: Invalid value: '
                                '"10.0.0.300/16": must be a valid CIDR value'),
    ({}, "spec.egress[0].to[0].ipBlock.cidr: Required value"),
])
def test_ip_block_errors(block, message):
    errs = _errors("NetworkPolicy", egress_to({"ipBlock": block}))
    assert any(e.startswith(message) for e in errs), errs


def test_ip_block_is_exclusive_with_selectors_and_a_peer_needs_something():
    errs = _errors("NetworkPolicy", egress_to({"ipBlock": {"cidr": "10.0.0.0/8"},
                                               "podSelector": {}}))
    assert errs == ["spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and "
                    "another peer"]
    # Both selectors together are fine (pods in the selected namespaces).
    assert _errors("NetworkPolicy", egress_to({"podSelector": {},
                                               "namespaceSelector": {}})) == []
    assert _errors("NetworkPolicy", egress_to({})) == [
        "spec.egress[0].to[0]: Required value: must specify a peer"]


@pytest.mark.parametrize("port, message", [
    ({"port": 80, "endPort": 79},
     "spec.egress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to "
     "`port`"),
    ({"port": "http", "endPort": 90},
     "spec.egress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` "
     "is non-numeric"),
    ({"endPort": 90},
     "spec.egress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` "
     "is not specified"),
    ({"port": 70000}, "spec.egress[0].ports[0].port: Invalid value: 70000: must be between 1 "
                      "and 65535, inclusive"),
    ({"port": 80, "protocol": "ICMP"}, 'spec.egress[0].ports[0].protocol: Unsupported value: '
                                       '"ICMP": supported values: "TCP", "UDP", "SCTP"'),
    ({"port": "HTTP"}, 'spec.egress[0].ports[0].port: Invalid value: "HTTP": must contain '
                       "only alpha-numeric characters"),
])
def test_port_errors(port, message):
    errs = _errors("NetworkPolicy", egress_to({"podSelector": {}}, **port))
    assert any(e.startswith(message) for e in errs), errs


def test_policy_types_and_selector_errors():
    errs = _errors("NetworkPolicy", netpol(policyTypes=["Ingress", "Sideways"]))
    assert errs == ['spec.policyTypes[1]: Unsupported value: "Sideways": supported values: '
                    '"Ingress", "Egress"']
    errs = _errors("NetworkPolicy", netpol(policyTypes=["Ingress", "Egress", "Ingress"]))
    assert errs[0].startswith("spec.policyTypes: Invalid value")
    assert errs[0].endswith("may not specify more than two policyTypes")
    errs = _errors("NetworkPolicy", netpol(podSelector={"matchExpressions": [
        {"key": "a", "operator": "Near"}, {"key": "b", "operator": "In"}]}))
    assert errs == [
        'spec.podSelector.matchExpressions[0].operator: Invalid value: "Near": not a valid '
        "selector operator",
        "spec.podSelector.matchExpressions[1].values: Required value: must be specified when "
        "`operator` is 'In' or 'NotIn'"]


# --- Ingress ----------------------------------------------------------------------------------


def ingress(**spec) -> dict:
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": spec}


def rule(path: dict, host: str = "web.example.com") -> dict:
    return {"host": host, "http": {"paths": [path]}}


BACKEND = {"service": {"name": "web", "port": {"number": 80}}}


def test_a_full_ingress_is_valid():
    obj = ingress(ingressClassName="lab", defaultBackend=BACKEND,
                  tls=[{"hosts": ["*.example.com"], "secretName": "tls"}],
                  rules=[rule({"path": "/", "pathType": "Prefix", "backend": BACKEND}),
                         rule({"pathType": "ImplementationSpecific", "backend": {
                             "resource": {"apiGroup": "k8s.example.com", "kind": "Bucket",
                                          "name": "static"}}}, host="*.example.com")])
    assert _errors("Ingress", obj) == []


@pytest.mark.parametrize("obj, message", [
    (ingress(), "spec: Invalid value: null: either `defaultBackend` or `rules` must be "
                "specified"),
    (ingress(rules=[rule({"path": "/", "pathType": "Regex", "backend": BACKEND})]),
     'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: '
     '"Exact", "ImplementationSpecific", "Prefix"'),
    (ingress(rules=[rule({"path": "/", "backend": BACKEND})]),
     "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"),
    (ingress(rules=[rule({"path": "a", "pathType": "Exact", "backend": BACKEND})]),
     'spec.rules[0].http.paths[0].path: Invalid value: "a": must be an absolute path'),
    (ingress(rules=[rule({"path": "/a//b", "pathType": "Prefix", "backend": BACKEND})]),
     "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"),
    (ingress(rules=[rule({"path": "/", "pathType": "Prefix", "backend": BACKEND},
                         host="10.0.0.1")]),
     'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address'),
    (ingress(defaultBackend={"service": {"name": "web", "port": {}}}),
     "spec.defaultBackend: Required value: port name or number is required"),
    (ingress(defaultBackend={"service": {"name": "web", "port": {"name": "h", "number": 1}}}),
     'spec.defaultBackend: Invalid value: "": cannot set both port name & port number'),
    (ingress(defaultBackend={}),
     'spec.defaultBackend: Invalid value: "": resource or service backend is required'),
    (ingress(defaultBackend={**BACKEND, "resource": {"kind": "B", "name": "b"}}),
     'spec.defaultBackend: Invalid value: "": cannot set both resource and service backends'),
    (ingress(defaultBackend={"service": {"port": {"number": 80}}}),
     "spec.defaultBackend.service.name: Required value"),
    (ingress(defaultBackend=BACKEND, tls=[{"secretName": "Bad_Name"}]),
     'spec.tls[0].secretName: Invalid value: "Bad_Name"'),
])
def test_ingress_errors(obj, message):
    errs = _errors("Ingress", obj)
    assert any(e.startswith(message) for e in errs), errs


def test_ingress_class_controller_parameters_and_immutability():
    ok = {"metadata": {"name": "lab"}, "spec": {
        "controller": "example.com/ingress", "parameters": {"kind": "Config", "name": "c"}}}
    assert _errors("IngressClass", ok, namespaced=False) == []
    assert ok["spec"]["parameters"]["scope"] == "Cluster"  # defaulted
    bad = {"metadata": {"name": "lab"}, "spec": {"controller": "nginx"}}
    assert _errors("IngressClass", bad, namespaced=False) == [
        'spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as '
        '"acme.io/foo")']
    ns_scope = {"metadata": {"name": "lab"}, "spec": {
        "controller": "example.com/x", "parameters": {"kind": "C", "name": "c",
                                                      "scope": "Namespace"}}}
    assert _errors("IngressClass", ns_scope, namespaced=False) == [
        "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"]
    changed = {"metadata": {"name": "lab"}, "spec": {"controller": "example.com/other"}}
    errs = [str(e) for e in validate_update("IngressClass", changed, ok, False)]
    assert errs == ['spec.controller: Invalid value: "example.com/other": field is immutable']


# --- tables -----------------------------------------------------------------------------------


def _cells(kind: str, obj: dict) -> list:
    obj["metadata"]["creationTimestamp"] = "2025-12-31T23:00:00Z"
    return to_table(kind, [obj], NOW)["rows"][0]["cells"]


def test_network_policy_and_ingress_columns():
    table = to_table("NetworkPolicy", [], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Pod-Selector", "Age"]
    assert _cells("NetworkPolicy", netpol(podSelector={"matchLabels": {"app": "db"}})) == [
        "np", "app=db", "60m"]
    assert _cells("NetworkPolicy", netpol(podSelector={}))[1] == "<none>"
    table = to_table("Ingress", [], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Class", "Hosts", "Address", "Ports", "Age"]
    obj = ingress(rules=[rule({}, host=h) for h in ("a.io", "b.io", "c.io", "d.io")],
                  tls=[{"hosts": ["a.io"]}])
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}, {"hostname": "lb"}]}}
    assert _cells("Ingress", obj) == ["web", "<none>", "a.io,b.io,c.io + 1 more...",
                                      "10.0.0.9,lb", "80, 443", "60m"]
    assert _cells("Ingress", ingress(ingressClassName="lab", defaultBackend=BACKEND))[1:5] == [
        "lab", "*", "", "80"]
    cls = {"metadata": {"name": "lab"}, "spec": {"controller": "example.com/x", "parameters": {
        "apiGroup": "k8s.example.com", "kind": "Config", "name": "c"}}}
    assert _cells("IngressClass", cls) == ["lab", "example.com/x",
                                           "Config.k8s.example.com/c", "60m"]
