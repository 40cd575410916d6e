"""Server-side Table columns and cells for NetworkPolicy, Ingress, IngressClass, the RBAC
kinds and APIService, as kube-apiserver's printers (pkg/printers/internalversion and
kube-aggregator's table convertor) print them.

:mod:`netlab.api.tables` adds this module's ``PRINTERS`` to its own. Access reviews are
never listed and have no printer. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from netlab.api.printers import _age, _get, _name, format_label_selector
from netlab.api.tables_base import _AGE, _NAME, Column, Printer
from netlab.api.views import dict_at

Obj = dict[str, Any]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str:
    """A string field as printed; stored objects are valid, this only guards the printer."""
    return value if isinstance(value, str) else ""


def network_policy_cells(obj: Obj, now: datetime) -> list[Any]:
    selector = _get(obj, "spec", "podSelector")
    return [_name(obj), format_label_selector(selector if isinstance(selector, dict) else None),
            _age(obj, now)]


def ingress_hosts(rules: Any, limit: int = 3) -> str:
    """``formatHosts``: the first three hosts, ``*`` when no rule names one."""
    rules = _list(rules)
    hosts = [_s(r.get("host")) for r in rules[:limit] if isinstance(r, dict) and
             _s(r.get("host"))]
    if not hosts:
        return "*"
    text = ",".join(hosts)
    if len(rules) > limit:
        text += f" + {len(rules) - limit} more..."
    return text


def ingress_address(obj: Obj) -> str:
    """IPs or else hostnames from status.loadBalancer.ingress, sorted and deduplicated."""
    found = set()
    for entry in _list(_get(obj, "status", "loadBalancer", "ingress")):
        if isinstance(entry, dict) and (_s(entry.get("ip")) or _s(entry.get("hostname"))):
            found.add(_s(entry.get("ip")) or _s(entry.get("hostname")))
    return ",".join(sorted(found))


def ingress_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = dict_at(obj, "spec")
    ports = "80, 443" if _list(spec.get("tls")) else "80"
    return [_name(obj), _s(spec.get("ingressClassName")) or "<none>",
            ingress_hosts(spec.get("rules")), ingress_address(obj), ports, _age(obj, now)]


def ingress_class_cells(obj: Obj, now: datetime) -> list[Any]:
    params = _get(obj, "spec", "parameters")
    text = "<none>"
    if isinstance(params, dict):
        text = _s(params.get("kind"))
        if params.get("apiGroup") is not None:
            text += "." + _s(params["apiGroup"])
        text += "/" + _s(params.get("name"))
    return [_name(obj), _s(_get(obj, "spec", "controller")), text, _age(obj, now)]


def role_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_name(obj), _get(obj, "metadata", "creationTimestamp") or ""]


def subjects_strings(subjects: Any) -> tuple[str, str, str]:
    """Users, groups and service accounts (``namespace/name``), each joined by ``, ``."""
    users, groups, sas = [], [], []
    for s in _list(subjects):
        if not isinstance(s, dict):
            continue
        kind, name = s.get("kind"), _s(s.get("name"))
        if kind == "ServiceAccount":
            sas.append(f"{_s(s.get('namespace'))}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return ", ".join(users), ", ".join(groups), ", ".join(sas)


def binding_cells(obj: Obj, now: datetime) -> list[Any]:
    ref = dict_at(obj, "roleRef")
    users, groups, sas = subjects_strings(obj.get("subjects"))
    return [_name(obj), f"{_s(ref.get('kind'))}/{_s(ref.get('name'))}", _age(obj, now),
            users, groups, sas]


def apiservice_available(obj: Obj) -> str:
    for cond in _list(_get(obj, "status", "conditions")):
        if isinstance(cond, dict) and cond.get("type") == "Available":
            if cond.get("status") == "True":
                return "True"
            return f"{_s(cond.get('status'))} ({_s(cond.get('reason'))})"
    return "Unknown"


def apiservice_cells(obj: Obj, now: datetime) -> list[Any]:
    service = _get(obj, "spec", "service")
    where = "Local" if not isinstance(service, dict) else \
        f"{_s(service.get('namespace'))}/{_s(service.get('name'))}"
    return [_name(obj), where, apiservice_available(obj), _age(obj, now)]


_CREATED = Column("Created At", type="date", description="When the object was created.")
_ROLE = (_NAME, _CREATED)
_BINDING = (
    _NAME,
    Column("Role", description="The role the subjects are bound to (kind/name)."),
    _AGE,
    Column("Users", priority=1, description="Users bound to the role."),
    Column("Groups", priority=1, description="Groups bound to the role."),
    Column("ServiceAccounts", priority=1, description="Service accounts bound to the role."),
)

PRINTERS: dict[str, Printer] = {
    "NetworkPolicy": Printer((
        _NAME,
        Column("Pod-Selector", description="Pods the policy applies to."),
        _AGE,
    ), network_policy_cells),
    "Ingress": Printer((
        _NAME,
        Column("Class", description="The IngressClass that implements the ingress."),
        Column("Hosts", description="Hosts the rules match."),
        Column("Address", description="Load balancer addresses of the ingress."),
        Column("Ports", description="Ports the ingress listens on."),
        _AGE,
    ), ingress_cells),
    "IngressClass": Printer((
        _NAME,
        Column("Controller", description="The controller that implements the class."),
        Column("Parameters", description="The resource with the controller's parameters."),
        _AGE,
    ), ingress_class_cells),
    "Role": Printer(_ROLE, role_cells),
    "ClusterRole": Printer(_ROLE, role_cells),
    "RoleBinding": Printer(_BINDING, binding_cells),
    "ClusterRoleBinding": Printer(_BINDING, binding_cells),
    "APIService": Printer((
        _NAME,
        Column("Service", description="The service that serves the group version, or Local."),
        Column("Available", description="Whether the group version is available."),
        _AGE,
    ), apiservice_cells),
}
