"""Validation of topology files: every error, in one pass, with path, line and fix.

``load_topology`` is the only way a topology file becomes a ``Topology``. It
runs before anything touches the kernel, so a bad file costs nothing: the CLI
prints the ``TopologyError`` and exits 2. Each ``Problem`` names the YAML path
(``nodes[2].name``), its line, what is wrong and how to fix it. The checker and
its primitives live in ``checker.py``; the physical networks, routers and what
they allow in ``racks.py``; ``cluster.store`` in ``store.py``.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Callable, Optional

from netlab.topology import model
from netlab.topology.checker import (
    _DNS_LABEL,
    DNS_FIX,
    Problem,
    TopologyError,
    _Checker,
    _kind,
    _suggest,
)
from netlab.topology.racks import (
    Networks,
    check_networks,
    check_pinned,
    check_routing,
    node_networks,
    on_network,
)
from netlab.topology.source import (
    PathKey,
    SourceError,
    format_path,
    load_manifests,
    parse_yaml,
)
from netlab.topology.store import check_store, check_store_nodes
from netlab.units import QuantityError, cpu_millis, memory_bytes, parse_duration

__all__ = ["Problem", "TopologyError", "load_topology", "parse_topology"]

MAX_LAB_NAME = 12
# A node named "net" would collide with the lab's underlay namespace "<lab>-net".
RESERVED_NODE_NAMES = {"net"}
# A lab's data lives in /var/lib/netlab/<lab>/, and `down` removes it: a lab named
# "images" would take the image store every lab shares (netlab.images.store) with it,
# one named "seccomp" the Localhost seccomp profiles (netlab.paths.SECCOMP_ROOT).
RESERVED_LAB_NAMES = {"images": "the image store",
                      "seccomp": "where Localhost seccomp profiles are read from"}

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

TOP_KEYS = ("name", "network", "networks", "cluster", "nodes", "workloads")
CLUSTER_KEYS = ("podSubnet", "serviceSubnet", "overlay", "vxlan", "nodeMonitorGracePeriod",
                "podEvictionTimeout", "store", "dnsDomain", "dns")
DNS_KEYS = ("upstream",)
# The kubelet heartbeats every 5 s: a shorter grace period would flap.
MIN_GRACE, MAX_TIMING = 6.0, 3600.0
VXLAN_KEYS = ("vni", "port")
NODE_KEYS = ("name", "role", "cpu", "memory", "maxPods", "labels", "taints", "network",
             "networks")
TAINT_KEYS = ("key", "value", "effect")


def load_topology(path: str | Path) -> model.Topology:
    """Read, validate and default a topology file; raise ``TopologyError`` on any problem."""
    path = Path(path)
    filename = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise TopologyError(filename, [Problem("(file)", None, "the file does not exist",
                                               "check the path")]) from exc
    except OSError as exc:
        raise TopologyError(filename, [Problem("(file)", None, f"cannot read it: {exc.strerror}",
                                               "check the path and its permissions")]) from exc
    except UnicodeDecodeError as exc:
        raise TopologyError(filename, [Problem("(file)", None, "it is not a UTF-8 text file",
                                               "give the path of a YAML topology")]) from exc
    return parse_topology(text, filename, default_name=path.stem, base_dir=path.parent,
                          source_path=path)


def parse_topology(text: str, filename: str, default_name: str = "",
                   base_dir: Path | None = None, source_path: Path | None = None) -> model.Topology:
    try:
        source = parse_yaml(text, filename)
    except SourceError as exc:
        raise TopologyError(filename, [Problem("(file)", exc.line, str(exc), exc.fix)]) from exc
    check = _Checker(source)
    if source.data is None:
        check.error((), "the file is empty",
                    "describe the lab's nodes: one control-plane and at least one worker")
        raise TopologyError(filename, check.problems)
    if not isinstance(source.data, dict):
        check.error((), f"expected a mapping of topology keys, got {_kind(source.data)}",
                    f"write the topology as 'key: value' pairs ({', '.join(TOP_KEYS)})")
        raise TopologyError(filename, check.problems)
    top = check.mapping(source.data, (), TOP_KEYS)
    name = _check_name(check, top, default_name)
    networks = check_networks(check, top)
    cluster = _check_cluster(check, top.get("cluster"))
    grace, eviction = _check_timings(check, top.get("cluster"))
    store = check_store(check, top.get("cluster"), base_dir or Path("."))
    domain, upstream = _check_dns(check, top.get("cluster"), networks, cluster[0])
    nodes = _check_nodes(check, top.get("nodes"), networks, store.etcd_members)
    if nodes and not check.problems:
        check_store_nodes(check, store.etcd_members, nodes)
    _check_ranges(check, networks, cluster, top.get("nodes"))
    workloads = _check_workloads(check, top.get("workloads"), base_dir or Path("."), nodes)
    if check.problems:
        raise TopologyError(filename, check.problems)
    pods, services, overlay, vni, port = cluster
    assert name and networks and pods and services and overlay
    assert vni is not None and port is not None  # None only with a problem recorded
    return model.Topology(
        name=name, networks=tuple(n for _, n in networks),
        cluster=model.Cluster(pod_subnet=pods, service_subnet=services, overlay=overlay,
                              vni=vni, vxlan_port=port, node_monitor_grace_period=grace,
                              pod_eviction_timeout=eviction, store=store.store,
                              etcd_members=store.etcd_members,
                              etcd_external=store.etcd_external, dns_domain=domain,
                              dns_upstream=upstream),
        nodes=tuple(nodes), workloads=tuple(workloads), source=source_path)


def _check_name(check: _Checker, top: dict[str, Any], default: str) -> str | None:
    explicit = "name" in top
    name = top.get("name", default)
    fix = f"{DNS_FIX}, at most {MAX_LAB_NAME} characters"
    if not explicit:
        fix += "; or add a 'name:' line, since the file name is used by default"
    if not explicit and not name:
        check.error(("name",), "the lab has no name", "add a 'name:' line", at_line=False)
        return None
    where = "" if explicit else " (taken from the file name)"
    if name is None or name == "":
        check.error(("name",), "the lab name is empty", fix)
        return None
    if not isinstance(name, str):
        check.error(("name",), f"expected a name, got {name!r}", f"quote it: name: \"{name}\"")
        return None
    if len(name) > MAX_LAB_NAME:
        check.error(("name",), f"'{name}'{where} is {len(name)} characters, longer than "
                    f"{MAX_LAB_NAME}", fix, at_line=explicit)
        return None
    if not _DNS_LABEL.match(name):
        check.error(("name",), f"'{name}'{where} is not a DNS-1123 label", fix, at_line=explicit)
        return None
    if name in RESERVED_LAB_NAMES:
        check.error(("name",), f"'{name}'{where} is reserved: /var/lib/netlab/{name} is "
                    f"{RESERVED_LAB_NAMES[name]}", "choose another lab name", at_line=explicit)
        return None
    return name


_ClusterParts = tuple[Optional[IPv4Network], Optional[IPv4Network], Optional[str],
                      Optional[int], Optional[int]]


def _check_cluster(check: _Checker, value: Any) -> _ClusterParts:
    section = check.mapping(value, ("cluster",), CLUSTER_KEYS)
    pods = check.subnet(section.get("podSubnet", model.DEFAULT_POD_SUBNET),
                        ("cluster", "podSubnet"))
    services = check.subnet(section.get("serviceSubnet", model.DEFAULT_SERVICE_SUBNET),
                            ("cluster", "serviceSubnet"))
    overlay = section.get("overlay", "vxlan")
    if overlay not in model.OVERLAYS:
        check.error(("cluster", "overlay"),
                    f"unknown overlay {overlay!r}{_suggest(overlay, model.OVERLAYS)}",
                    "use 'vxlan' (pods reach each other across nodes) or 'none' (no SDN)")
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
    return pods, services, overlay, vni, port


def _check_dns(check: _Checker, value: Any, networks: Networks,
               pods: IPv4Network | None) -> tuple[str, str | None]:
    """``cluster.dnsDomain`` (the zone, default cluster.local) and ``cluster.dns.upstream``,
    a server inside the lab for names outside the zone: netlab never sends a query out."""
    section = value if isinstance(value, dict) else {}
    domain = section.get("dnsDomain", "cluster.local")
    dpath = ("cluster", "dnsDomain")
    if not isinstance(domain, str) or not domain.strip("."):
        check.error(dpath, f"expected a DNS domain, got {_kind(domain)}",
                    "write e.g. 'dnsDomain: cluster.local'")
        domain = "cluster.local"
    domain = domain.strip(".").lower()
    if not all(_DNS_LABEL.match(label) for label in domain.split(".")) or len(domain) > 253:
        check.error(dpath, f"'{domain}' is not a DNS domain", f"{DNS_FIX}, for each label")
        domain = "cluster.local"
    dns = check.mapping(section.get("dns"), ("cluster", "dns"), DNS_KEYS)
    raw = dns.get("upstream")
    if raw is None:
        return domain, None
    upath = ("cluster", "dns", "upstream")
    fix = ("give the address of a DNS server inside the lab ('ip' or 'ip:port', e.g. a pod or "
           "the client node), or leave it out to answer other names REFUSED")
    host, _, port = str(raw).partition(":")
    try:
        address = IPv4Address(host)
        port_ok = not port or (port.isdigit() and 1 <= int(port) <= 65535)
    except ValueError:
        check.error(upath, f"{raw!r} is not an IPv4 address", fix)
        return domain, None
    if not port_ok:
        check.error(upath, f"{port!r} is not a port", fix)
        return domain, None
    inside = [n for n in (*(net.subnet for _, net in networks), pods)
              if n is not None and address in n]
    if not inside:
        check.error(upath, f"{address} is outside the lab: netlab never sends a query "
                    "outside its namespaces", fix)
        return domain, None
    return domain, str(raw)


def _check_timings(check: _Checker, value: Any) -> tuple[float | None, float]:
    """``nodeMonitorGracePeriod`` (None when not set: the default depends on the lab's
    size) and ``podEvictionTimeout``: "10s", "1m30s" or seconds."""
    section = value if isinstance(value, dict) else {}
    grace = _check_duration(check, section, "nodeMonitorGracePeriod", 10.0, MIN_GRACE)
    eviction = _check_duration(check, section, "podEvictionTimeout", 20.0, 0.0)
    return grace, 20.0 if eviction is None else eviction


def _check_duration(check: _Checker, section: dict[str, Any], key: str, example: float,
                    low: float) -> float | None:
    """``section[key]`` in seconds, None when absent; ``example`` when it is wrong (the
    error names it as the fix)."""
    raw = section.get(key)
    if raw is None:
        return None
    try:
        seconds = parse_duration(raw) if not isinstance(raw, bool) else -1.0
    except ValueError:
        seconds = -1.0
    if not low <= seconds <= MAX_TIMING:
        check.error(("cluster", key), f"{raw!r} is not a duration from {low:g}s to 1h",
                    f"write a duration such as {example:g}s or 1m30s")
        return example
    return seconds


def _check_nodes(check: _Checker, value: Any, networks: Networks,
                 etcd_members: int = 0) -> list[model.Node]:
    """The nodes; ``etcd_members`` (the lab's own members) allows that many
    control-plane nodes, one member on each, as kubeadm's stacked-etcd HA."""
    if value is None or value == []:
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
        node = _check_node(check, item, ("nodes", i), networks)
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name:
            if name in seen:
                check.error(("nodes", i, "name"),
                            f"'{name}' is already used by nodes[{seen[name]}]",
                            "give every node a unique name")
                continue
            seen[name] = i
        if node is not None:
            nodes.append(node)
    # Role counts are judged from what the file says, so that they are reported
    # even when some node has an unrelated problem, but only when every role is known.
    roles = [item.get("role", "worker") if isinstance(item, dict) else None for item in value]
    if all(role in model.ROLES for role in roles):
        control = [i for i, role in enumerate(roles) if role == "control-plane"]
        if not control:
            check.error(("nodes",), "there is no control-plane node",
                        "mark exactly one node with 'role: control-plane'")
        elif len(control) > max(1, etcd_members):
            names = ", ".join(f"nodes[{i}]" for i in control)
            check.error(("nodes", control[max(1, etcd_members)], "role"),
                        f"there are {len(control)} control-plane nodes ({names}); a lab has "
                        "one, or one per etcd member (each runs a member of "
                        "'cluster.store: {etcd: {members: 3}}')",
                        "make all but one of them 'role: worker', or set 'cluster.store: "
                        "{etcd: {members: 3}}' for up to 3 control-plane nodes"
                        if etcd_members < 3 else "make the others 'role: worker'")
        if "worker" not in roles:
            check.error(("nodes",), "there is no worker node",
                        "add at least one node with 'role: worker' (the default role)")
    if len(nodes) == len(value):
        check_routing(check, nodes, networks)
    return nodes


def _check_node(check: _Checker, item: Any, path: PathKey,
                networks: Networks) -> model.Node | None:
    if not isinstance(item, dict):
        check.error(path, f"expected a mapping, got {_kind(item)}",
                    "write the node as '- name: worker1' with its keys indented below it")
        return None
    before = len(check.problems)
    check.mapping(item, path, NODE_KEYS)
    name = item.get("name")
    if name is None or name == "":
        check.error((*path, "name"), "the node has no name", "add 'name: <node name>'")
    elif not isinstance(name, str):
        check.error((*path, "name"), f"expected a name, got {name!r}",
                    f"quote it: name: \"{name}\"")
    elif len(name) > 63:
        check.error((*path, "name"), f"'{name}' is {len(name)} characters, longer than 63",
                    "use a shorter node name")
    elif not _DNS_LABEL.match(name):
        check.error((*path, "name"), f"'{name}' is not a DNS-1123 label", DNS_FIX)
    elif name in RESERVED_NODE_NAMES:
        check.error((*path, "name"),
                    f"'{name}' is reserved: the lab's physical network namespace is '<lab>-{name}'",
                    "choose another node name")
    role = item.get("role", "worker")
    if role not in model.ROLES:
        check.error((*path, "role"), f"unknown role {role!r}{_suggest(role, model.ROLES)}",
                    f"use one of {', '.join(model.ROLES)}")
    external = role in ("external", "router")
    for key in ("cpu", "memory", "maxPods", "taints"):
        if external and key in item:
            check.error((*path, key), f"{'a router' if role == 'router' else 'an external node'}"
                        f" runs no pods, so '{key}' has no meaning",
                        "remove it, or make the node a worker")
    joined = node_networks(check, item, path, role, networks)
    cpu = _quantity(check, item, (*path, "cpu"), model.DEFAULT_NODE_CPU, cpu_millis,
                    "CPU", "use cores or millicores, e.g. 2 or 1500m")
    memory = _quantity(check, item, (*path, "memory"), model.DEFAULT_NODE_MEMORY, memory_bytes,
                       "memory", "use a Kubernetes quantity, e.g. 4Gi or 512Mi")
    max_pods = check.integer(item.get("maxPods", model.DEFAULT_MAX_PODS), (*path, "maxPods"),
                             1, 250)
    labels = _check_labels(check, item.get("labels"), (*path, "labels"))
    taints = _check_taints(check, item.get("taints"), (*path, "taints"))
    if len(check.problems) > before:
        return None
    assert isinstance(name, str)  # else a problem was recorded above
    return model.Node(name=name, role=role, cpu_millis=cpu, memory_bytes=memory,
                      max_pods=max_pods or model.DEFAULT_MAX_PODS, labels=labels,
                      taints=tuple(taints), networks=joined)


def _quantity(check: _Checker, item: dict[Any, Any], path: PathKey, default: str,
              parse: Callable[[Any], int], what: str, fix: str) -> int:
    value = item.get(path[-1], default)
    if isinstance(value, str) and value.strip().endswith("m") and path[-1] == "memory":
        # "512m" is a valid quantity, but it means 0.512 bytes: always a slip for 512Mi.
        number = value.strip()[:-1]
        check.error(path, f"'{value}' means {number} thousandths of a byte",
                    f"for mebibytes write {number}Mi")
        return 0
    try:
        result = parse(value)
    except QuantityError:
        check.error(path, f"{value!r} is not a valid {what} quantity", fix)
        return 0
    if result <= 0:
        check.error(path, f"the {what} must be more than zero, got {value!r}", fix)
    return result


def _valid_label_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253
                  or not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))


def _label_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # YAML's true/false, as the user wrote them
        return str(value).lower()
    return str(value)


def _valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_NAME.match(value))


_LABEL_KEY_FIX = "use [prefix/]name with letters, digits, '-', '_' and '.', the name at most 63"
_LABEL_VALUE_FIX = "use at most 63 letters, digits, '-', '_' and '.', starting and ending with " \
                   "a letter or digit"


def _check_labels(check: _Checker, value: Any, path: PathKey) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        check.error(path, f"expected a mapping, got {_kind(value)}", "write labels as 'key: value'")
        return {}
    labels = {}
    for key, raw in value.items():
        val = _label_value(raw)
        if not isinstance(key, str) or not _valid_label_key(key):
            check.error((*path, str(key)), f"'{key}' is not a valid label key", _LABEL_KEY_FIX)
        elif isinstance(raw, (dict, list)) or not _valid_label_value(val):
            check.error((*path, key), f"'{val}' is not a valid label value", _LABEL_VALUE_FIX)
        else:
            labels[key] = val
    return labels


_TAINT_FIX = "write 'key[=value]:Effect', e.g. 'dedicated=gpu:NoSchedule', or a mapping " \
             "with key, value and effect"


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
        key: Any
        val: Any
        effect: Any
        if isinstance(item, str):  # kubectl taint syntax: key[=value]:Effect
            if ":" not in item:
                check.error(where, f"taint '{item}' has no effect", _TAINT_FIX)
                continue
            head, _, effect = item.rpartition(":")
            key, _, val = head.partition("=")
            key_at = value_at = effect_at = where
        elif isinstance(item, dict):
            check.mapping(item, where, TAINT_KEYS)
            key, val, effect = item.get("key"), _label_value(item.get("value")), item.get("effect")
            key_at, value_at, effect_at = (*where, "key"), (*where, "value"), (*where, "effect")
        else:
            check.error(where, f"expected a taint, got {_kind(item)}", _TAINT_FIX)
            continue
        valid = True
        if not key:
            check.error(key_at, "the taint has no key", _TAINT_FIX)
            valid = False
        elif not isinstance(key, str) or not _valid_label_key(key):
            check.error(key_at, f"taint key {key!r} is not valid", _LABEL_KEY_FIX)
            valid = False
        if not _valid_label_value(val):
            check.error(value_at, f"taint value {val!r} is not valid", _LABEL_VALUE_FIX)
            valid = False
        if effect not in model.TAINT_EFFECTS:
            check.error(effect_at, f"taint effect {effect!r} is not valid"
                        f"{_suggest(effect, model.TAINT_EFFECTS)}",
                        f"use one of {', '.join(model.TAINT_EFFECTS)}")
            valid = False
        if valid:
            taints.append(model.Taint(key=key, effect=effect, value=val))
    return taints


def _check_ranges(check: _Checker, networks: Networks, cluster: _ClusterParts,
                  raw_nodes: Any) -> None:
    pods, services = cluster[0], cluster[1]
    named = [*((path, net.subnet) for path, net in networks),
             *((path, net) for path, net in ((("cluster", "podSubnet"), pods),
                                             (("cluster", "serviceSubnet"), services))
               if net is not None)]
    for i, (path_a, net_a) in enumerate(named):
        for path_b, net_b in named[i + 1:]:
            if not net_a.overlaps(net_b):
                continue
            # Report at the range the file spells out, naming the other (maybe a default).
            if path_b not in check.source.lines and path_a in check.source.lines:
                path_a, net_a, path_b, net_b = path_b, net_b, path_a, net_a
            default = "" if path_a in check.source.lines else ", the default"
            fix = ("give each network its own subnet, e.g. 192.168.10.0/24 and "
                   "192.168.20.0/24" if path_a[0] == path_b[0] == "networks" else
                   "give the underlay, pod and service ranges separate addresses, "
                   "e.g. 192.168.100.0/24, 10.244.0.0/16 and 10.96.0.0/16")
            check.error(path_b, f"{net_b} overlaps {format_path(path_a)} ({net_a}{default})", fix)
    items = raw_nodes if isinstance(raw_nodes, list) else []
    in_cluster = sum(1 for n in items
                     if not (isinstance(n, dict) and n.get("role") in ("external", "router")))
    for path, net in networks:
        count = sum(1 for n in items if on_network(n, net.name, len(networks)))
        if not count:
            continue
        # One address per node from the second host on; the first host is kept
        # free (as kind keeps .1 for the gateway), and so are network and broadcast.
        underlay = net.subnet
        needed = count + 3
        if underlay.num_addresses < needed:
            prefix = 32 - (needed - 1).bit_length()
            room = _plural(max(underlay.num_addresses - 3, 0), "node")
            whose = f"the topology has {count}" if len(networks) == 1 else \
                f"{count} nodes are on it"
            check.error(path, f"{underlay} has room for {room}, but {whose} "
                        "(one address each, plus .1 kept free)",
                        f"use a /{prefix} or larger, e.g. {underlay.supernet(new_prefix=prefix)}")
    if pods is not None:
        if pods.prefixlen > 24:
            check.error(("cluster", "podSubnet"),
                        f"{pods} is smaller than a /24, and each cluster node takes a /24 of it",
                        "use a /16 such as 10.244.0.0/16")
        elif 2 ** (24 - pods.prefixlen) < in_cluster:
            prefix = 24 - (in_cluster - 1).bit_length()
            check.error(("cluster", "podSubnet"),
                        f"{pods} holds {2 ** (24 - pods.prefixlen)} /24s, too few for "
                        f"{in_cluster} cluster nodes (one /24 each)",
                        f"use a /{prefix} or larger, e.g. {pods.supernet(new_prefix=prefix)}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _check_workloads(check: _Checker, value: Any, base_dir: Path,
                     nodes: list[model.Node] | None = None) -> list[model.Workload]:
    if value is None:
        return []
    if not isinstance(value, list):
        check.error(("workloads",), f"expected a list, got {_kind(value)}",
                    "list manifest file paths or inline manifests, each as a '- ' item")
        return []
    workloads = []
    for i, item in enumerate(value):
        where: PathKey = ("workloads", i)
        if isinstance(item, str):
            docs = _read_manifests(check, item, where, base_dir)
            for n, doc in enumerate(docs):
                origin = f"{format_path(where)} ({item}, document {n + 1})"
                what = f"document {n + 1} of {item}" if len(docs) > 1 else item
                if _check_manifest(check, doc, where, what):
                    check_pinned(check, doc, where, (), nodes or [])
                    workloads.append(model.Workload(manifest=doc, origin=origin))
        elif isinstance(item, dict):
            if _check_manifest(check, item, where, "the inline manifest"):
                check_pinned(check, item, where, where, nodes or [])
                workloads.append(model.Workload(manifest=item, origin=format_path(where)))
        else:
            check.error(where, f"expected a file path or a manifest, got {_kind(item)}",
                        "write a path like 'web.yaml' or an inline manifest with apiVersion "
                        "and kind")
    return workloads


def _read_manifests(check: _Checker, item: str, where: PathKey, base_dir: Path) -> list[Any]:
    if not item.strip():
        check.error(where, "the workload file path is empty", "give a manifest file's path")
        return []
    file = base_dir / item
    try:
        text = file.read_text()
    except FileNotFoundError:
        check.error(where, f"workload file '{item}' does not exist (looked for {file})",
                    "give a path relative to the topology file's folder")
        return []
    except IsADirectoryError:
        check.error(where, f"workload '{item}' is a folder, not a file",
                    "list each manifest file on its own")
        return []
    except OSError as exc:
        check.error(where, f"cannot read workload file '{item}': {exc.strerror}",
                    "check the file's permissions")
        return []
    except UnicodeDecodeError:
        check.error(where, f"workload file '{item}' is not a text file",
                    "give the path of a YAML manifest")
        return []
    try:
        docs = load_manifests(text, str(file))
    except SourceError as exc:
        line = f", line {exc.line}" if exc.line else ""
        check.error(where, f"{item}{line}: {exc}", "fix the manifest's YAML")
        return []
    if not docs:
        check.error(where, f"workload file '{item}' holds no manifests",
                    "add a manifest to it, or remove this entry")
    return docs


def _check_manifest(check: _Checker, doc: Any, where: PathKey, what: str) -> bool:
    if not isinstance(doc, dict):
        check.error(where, f"{what} is not a Kubernetes object (got {_kind(doc)})",
                    "write each manifest as a mapping with apiVersion, kind and metadata")
        return False
    missing = [k for k in ("apiVersion", "kind") if not isinstance(doc.get(k), str) or not doc[k]]
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        missing.append("metadata.name")
    if missing:
        listed = (", ".join(missing[:-1]) + " and " if len(missing) > 1 else "") + missing[-1]
        check.error(where, f"{what} has no {listed}",
                    "every manifest needs apiVersion, kind and metadata.name")
        return False
    return True
