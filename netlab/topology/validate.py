"""Validation of topology files: every error, in one pass, with path, line and fix.

``load_topology`` is the only way a topology file becomes a ``Topology``. It
runs before anything touches the kernel, so a bad file costs nothing: the CLI
prints the ``TopologyError`` and exits 2. Each ``Problem`` names the YAML path
(``nodes[2].name``), its line, what is wrong and how to fix it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_network
from pathlib import Path
from typing import Any

from netlab.topology import model
from netlab.topology.quantity import QuantityError, cpu_millis, memory_bytes
from netlab.topology.source import (
    PathKey,
    Source,
    SourceError,
    format_path,
    load_manifests,
    parse_yaml,
)

MAX_LAB_NAME = 12
MIN_MTU, MAX_MTU = 1280, 9000
# A node named "net" would collide with the lab's underlay namespace "<lab>-net".
RESERVED_NODE_NAMES = {"net"}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

TOP_KEYS = ("name", "network", "cluster", "nodes", "workloads")
NETWORK_KEYS = ("subnet", "mtu")
CLUSTER_KEYS = ("podSubnet", "serviceSubnet", "overlay", "vxlan")
VXLAN_KEYS = ("vni", "port")
NODE_KEYS = ("name", "role", "cpu", "memory", "maxPods", "labels", "taints")
TAINT_KEYS = ("key", "value", "effect")
DNS_FIX = "use lower-case letters, digits and '-', starting and ending with a letter or digit"


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str
    fix: str

    def format(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        return f"{where}: {self.path}: {self.message}. Fix: {self.fix}."


class TopologyError(Exception):
    """A topology file that cannot be used, with every problem found in it."""

    def __init__(self, filename: str, problems: list[Problem]):
        self.filename = filename
        self.problems = problems
        super().__init__(self.format())

    def format(self) -> str:
        count = len(self.problems)
        head = f"{self.filename}: {count} error{'s' if count != 1 else ''} in the topology"
        return "\n".join([head, *("  " + p.format(self.filename) for p in self.problems)])


@dataclass
class _Checker:
    source: Source
    problems: list[Problem] = field(default_factory=list)

    def error(self, path: PathKey, message: str, fix: str) -> None:
        self.problems.append(Problem(format_path(path), self.source.line(path), message, fix))

    def mapping(self, value: Any, path: PathKey, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {_kind(value)}",
                       f"write {format_path(path)} as 'key: value' pairs ({', '.join(allowed)})")
            return {}
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
                self.error((*path, str(key)), f"unknown key '{key}'",
                           f"{hint} (remove or rename it)")
        return value

    def integer(self, value: Any, path: PathKey, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expected a whole number, got {value!r}",
                       f"use a number from {low} to {high}")
            return None
        if not low <= value <= high:
            self.error(path, f"{value} is out of range", f"use a number from {low} to {high}")
            return None
        return value

    def subnet(self, value: Any, path: PathKey) -> IPv4Network | None:
        try:
            net = ip_network(str(value), strict=False)
        except ValueError:
            self.error(path, f"{value!r} is not an IPv4 subnet", "write it as CIDR, e.g. 10.0.0.0/16")
            return None
        if net.version != 4:
            self.error(path, f"{value} is IPv6; netlab labs are IPv4", "use an IPv4 CIDR")
            return None
        if str(net) != str(value) and str(net.network_address) != str(value).split("/")[0]:
            self.error(path, f"{value} has host bits set", f"use {net}")
            return None
        return net


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), repr(value))


def load_topology(path: str | Path) -> model.Topology:
    """Read, validate and default a topology file; raise ``TopologyError`` on any problem."""
    path = Path(path)
    filename = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(filename, [Problem("(file)", None, f"cannot read it: {exc.strerror}",
                                               "check the path")]) from exc
    return parse_topology(text, filename, default_name=path.stem, base_dir=path.parent,
                          source_path=path)


def parse_topology(text: str, filename: str, default_name: str = "",
                   base_dir: Path | None = None, source_path: Path | None = None) -> model.Topology:
    try:
        source = parse_yaml(text, filename)
    except SourceError as exc:
        raise TopologyError(filename, [Problem("(file)", exc.line, str(exc),
                                               "fix the YAML syntax at that line")]) from exc
    check = _Checker(source)
    top = check.mapping(source.data, (), TOP_KEYS)
    if source.data is None:
        check.error((), "the file is empty", "describe at least a control-plane and a worker node")
    name = _check_name(check, top, default_name)
    network = _check_network(check, top.get("network"))
    cluster = _check_cluster(check, top.get("cluster"))
    nodes = _check_nodes(check, top.get("nodes"))
    if network and cluster:
        _check_ranges(check, network, cluster, nodes)
    workloads = _check_workloads(check, top.get("workloads"), base_dir or Path("."))
    if check.problems:
        raise TopologyError(filename, check.problems)
    assert network and cluster and name
    return model.Topology(name=name, network=network, cluster=cluster, nodes=tuple(nodes),
                          workloads=tuple(workloads), source=source_path)


def _check_name(check: _Checker, top: dict[str, Any], default: str) -> str | None:
    explicit = "name" in top
    name = top.get("name", default)
    fix = (f"{DNS_FIX}, at most {MAX_LAB_NAME} characters"
           + ("" if explicit else "; or add a 'name:' line, since the file name is used by default"))
    if not isinstance(name, str) or not name:
        check.error(("name",), "the lab needs a name", fix)
        return None
    if len(name) > MAX_LAB_NAME:
        check.error(("name",), f"'{name}' is {len(name)} characters, longer than {MAX_LAB_NAME}",
                    fix)
        return None
    if not _DNS_LABEL.match(name):
        check.error(("name",), f"'{name}' is not a DNS-1123 label", fix)
        return None
    return name


def _check_network(check: _Checker, value: Any) -> model.Network | None:
    section = check.mapping(value, ("network",), NETWORK_KEYS)
    subnet = check.subnet(section.get("subnet", model.DEFAULT_UNDERLAY), ("network", "subnet"))
    mtu = check.integer(section.get("mtu", model.DEFAULT_MTU), ("network", "mtu"), MIN_MTU, MAX_MTU)
    if subnet is None or mtu is None:
        return None
    return model.Network(subnet=subnet, mtu=mtu)


def _check_cluster(check: _Checker, value: Any) -> model.Cluster | None:
    section = check.mapping(value, ("cluster",), CLUSTER_KEYS)
    pods = check.subnet(section.get("podSubnet", model.DEFAULT_POD_SUBNET), ("cluster", "podSubnet"))
    services = check.subnet(section.get("serviceSubnet", model.DEFAULT_SERVICE_SUBNET),
                            ("cluster", "serviceSubnet"))
    overlay = section.get("overlay", "vxlan")
    if overlay not in model.OVERLAYS:
        check.error(("cluster", "overlay"), f"unknown overlay {overlay!r}",
                    "use 'vxlan' (pods reach each other across nodes) or 'none'")
        overlay = None
    vxlan = check.mapping(section.get("vxlan"), ("cluster", "vxlan"), VXLAN_KEYS)
    vni = check.integer(vxlan.get("vni", model.DEFAULT_VNI), ("cluster", "vxlan", "vni"),
                        1, 2**24 - 1)
    port = check.integer(vxlan.get("port", model.DEFAULT_VXLAN_PORT), ("cluster", "vxlan", "port"),
                         1, 65535)
    if services is not None and services.prefixlen > 28:
        check.error(("cluster", "serviceSubnet"), f"{services} is too small for Services",
                    "use a /28 or larger, e.g. 10.96.0.0/16")
        services = None
    if None in (pods, services, overlay, vni, port):
        return None
    return model.Cluster(pod_subnet=pods, service_subnet=services, overlay=overlay, vni=vni,
                         vxlan_port=port)


def _check_nodes(check: _Checker, value: Any) -> list[model.Node]:
    if value is None:
        check.error(("nodes",), "no nodes are defined",
                    "add a 'nodes:' list with one control-plane and at least one worker")
        return []
    if not isinstance(value, list):
        check.error(("nodes",), f"expected a list, got {_kind(value)}",
                    "write each node as a '- name: ...' item")
        return []
    nodes: list[model.Node] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        node = _check_node(check, item, ("nodes", i))
        if node is None:
            continue
        if node.name in seen:
            check.error(("nodes", i, "name"), f"'{node.name}' is already used by nodes[{seen[node.name]}]",
                        "give every node a unique name")
            continue
        seen[node.name] = i
        nodes.append(node)
    roles = [n.role for n in nodes]
    if len(nodes) == len(value):  # role counts only mean something when every node parsed
        if roles.count("control-plane") != 1:
            check.error(("nodes",), f"{roles.count('control-plane')} control-plane nodes",
                        "mark exactly one node with 'role: control-plane'")
        if roles.count("worker") < 1:
            check.error(("nodes",), "no worker nodes", "add at least one node with 'role: worker'")
    return nodes


def _check_node(check: _Checker, item: Any, path: PathKey) -> model.Node | None:
    if not isinstance(item, dict):
        check.error(path, f"expected a mapping, got {_kind(item)}", "write the node as '- name: worker1'")
        return None
    before = len(check.problems)
    check.mapping(item, path, NODE_KEYS)
    name = item.get("name")
    if not isinstance(name, str) or not name:
        check.error((*path, "name"), "the node has no name", "add 'name: <node name>'")
    elif not _DNS_LABEL.match(name) or len(name) > 63:
        check.error((*path, "name"), f"'{name}' is not a DNS-1123 label", DNS_FIX)
    elif name in RESERVED_NODE_NAMES:
        check.error((*path, "name"), f"'{name}' is reserved for the lab's physical network namespace",
                    "choose another node name")
    role = item.get("role", "worker")
    if role not in model.ROLES:
        check.error((*path, "role"), f"unknown role {role!r}", f"use one of {', '.join(model.ROLES)}")
    external = role == "external"
    for key in ("cpu", "memory", "maxPods", "taints"):
        if external and key in item:
            check.error((*path, key), f"an external node runs no pods, so '{key}' has no meaning",
                        "remove it, or make the node a worker")
    cpu = memory = 0
    try:
        cpu = cpu_millis(item.get("cpu", model.DEFAULT_NODE_CPU))
        if cpu <= 0:
            raise QuantityError("not positive")
    except QuantityError:
        check.error((*path, "cpu"), f"{item.get('cpu')!r} is not a positive CPU quantity",
                    "use cores or millicores, e.g. 2 or 1500m")
    try:
        memory = memory_bytes(item.get("memory", model.DEFAULT_NODE_MEMORY))
        if memory <= 0:
            raise QuantityError("not positive")
    except QuantityError:
        check.error((*path, "memory"), f"{item.get('memory')!r} is not a positive memory quantity",
                    "use a Kubernetes quantity, e.g. 4Gi or 512Mi")
    max_pods = check.integer(item.get("maxPods", model.DEFAULT_MAX_PODS), (*path, "maxPods"), 1, 250)
    labels = _check_labels(check, item.get("labels"), (*path, "labels"))
    taints = _check_taints(check, item.get("taints"), (*path, "taints"))
    if len(check.problems) > before:
        return None
    return model.Node(name=name, role=role, cpu_millis=cpu, memory_bytes=memory,
                      max_pods=max_pods or model.DEFAULT_MAX_PODS, labels=labels,
                      taints=tuple(taints))


def _valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))


def _check_labels(check: _Checker, value: Any, path: PathKey) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        check.error(path, f"expected a mapping, got {_kind(value)}", "write labels as 'key: value'")
        return {}
    labels = {}
    for key, val in value.items():
        val = "" if val is None else str(val) if not isinstance(val, bool) else str(val).lower()
        if not isinstance(key, str) or not _valid_label_key(key):
            check.error((*path, str(key)), f"'{key}' is not a valid label key",
                        "use [prefix/]name with letters, digits, '-', '_' and '.', name at most 63")
        elif len(val) > 63 or not _LABEL_NAME.match(val):
            check.error((*path, key), f"'{val}' is not a valid label value",
                        "use at most 63 letters, digits, '-', '_' and '.'")
        else:
            labels[key] = val
    return labels


def _check_taints(check: _Checker, value: Any, path: PathKey) -> list[model.Taint]:
    if value is None:
        return []
    if not isinstance(value, list):
        check.error(path, f"expected a list, got {_kind(value)}",
                    "write taints as a list, e.g. ['dedicated=gpu:NoSchedule']")
        return []
    taints = []
    for i, item in enumerate(value):
        where = (*path, i)
        if isinstance(item, str):  # kubectl taint syntax: key[=value]:Effect
            head, _, effect = item.rpartition(":")
            key, _, val = head.partition("=")
            item = {"key": key, "value": val, "effect": effect}
        elif isinstance(item, dict):
            check.mapping(item, where, TAINT_KEYS)
        else:
            check.error(where, f"expected a taint, got {_kind(item)}",
                        "write 'key=value:Effect' or a mapping with key, value, effect")
            continue
        key, effect = str(item.get("key") or ""), item.get("effect")
        if not _valid_label_key(key):
            check.error(where, f"taint key {key!r} is not valid", "use a label-style key")
        elif effect not in model.TAINT_EFFECTS:
            check.error(where, f"taint effect {effect!r} is not valid",
                        f"use one of {', '.join(model.TAINT_EFFECTS)}")
        else:
            taints.append(model.Taint(key=key, effect=effect, value=str(item.get("value") or "")))
    return taints


def _check_ranges(check: _Checker, network: model.Network, cluster: model.Cluster,
                  nodes: list[model.Node]) -> None:
    named = [(("network", "subnet"), network.subnet), (("cluster", "podSubnet"), cluster.pod_subnet),
             (("cluster", "serviceSubnet"), cluster.service_subnet)]
    for i, (path_a, net_a) in enumerate(named):
        for path_b, net_b in named[i + 1:]:
            if net_a.overlaps(net_b):
                check.error(path_b, f"{net_b} overlaps {format_path(path_a)} {net_a}",
                            "choose ranges that do not overlap")
    # One address per node, plus the first host kept free (as kind keeps .1 for the gateway).
    usable = max(network.subnet.num_addresses - 2, 0)
    if usable < len(nodes) + 1:
        check.error(("network", "subnet"), f"{network.subnet} has {usable} host addresses, "
                    f"too few for {len(nodes)} nodes", f"use a subnet with at least {len(nodes) + 1} hosts")
    in_cluster = sum(1 for n in nodes if n.in_cluster)
    pod = cluster.pod_subnet
    if pod.prefixlen > 24:
        check.error(("cluster", "podSubnet"), f"{pod} is smaller than a /24",
                    "each node takes a /24 of it: use a /16 such as 10.244.0.0/16")
    elif 2 ** (24 - pod.prefixlen) < in_cluster:
        check.error(("cluster", "podSubnet"), f"{pod} holds {2 ** (24 - pod.prefixlen)} /24s, "
                    f"too few for {in_cluster} cluster nodes", "use a larger range, e.g. a /16")


def _check_workloads(check: _Checker, value: Any, base_dir: Path) -> list[model.Workload]:
    if value is None:
        return []
    if not isinstance(value, list):
        check.error(("workloads",), f"expected a list, got {_kind(value)}",
                    "list manifest file paths or inline manifests")
        return []
    workloads = []
    for i, item in enumerate(value):
        where: PathKey = ("workloads", i)
        if isinstance(item, str):
            file = base_dir / item
            try:
                docs = load_manifests(file.read_text(), str(file))
            except OSError:
                check.error(where, f"workload file {item!r} does not exist (looked in {file})",
                            "give a path relative to the topology file")
                continue
            except SourceError as exc:
                line = f" line {exc.line}" if exc.line else ""
                check.error(where, f"{item}{line}: {exc}", "fix the manifest's YAML")
                continue
            for n, doc in enumerate(docs):
                origin = f"{format_path(where)} ({item}, document {n + 1})"
                if _check_manifest(check, doc, where, origin):
                    workloads.append(model.Workload(manifest=doc, origin=origin))
        elif isinstance(item, dict):
            if _check_manifest(check, item, where, format_path(where)):
                workloads.append(model.Workload(manifest=item, origin=format_path(where)))
        else:
            check.error(where, f"expected a file path or a manifest, got {_kind(item)}",
                        "write a path like 'web.yaml' or an inline manifest with apiVersion and kind")
    return workloads


def _check_manifest(check: _Checker, doc: Any, where: PathKey, origin: str) -> bool:
    if not isinstance(doc, dict):
        check.error(where, f"{origin} is not a Kubernetes object", "each document must be a mapping")
        return False
    missing = [k for k in ("apiVersion", "kind") if not doc.get(k)]
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        missing.append("metadata.name")
    if missing:
        check.error(where, f"{origin} lacks {', '.join(missing)}",
                    "every manifest needs apiVersion, kind and metadata.name")
        return False
    return True
