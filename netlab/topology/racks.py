"""Several physical networks (racks) and the routers joining them, in topology files.

``networks:`` lists named networks (or ``network:`` gives the one, named
``default``); each node says its ``network:``, a router (``role: router``) its
``networks:``, two or more. Every network must reach the control plane's through
routers. Routers and external nodes run no pods, so no workload may pin a pod to
one. Called by ``validate.py``, with its checker; pure.
"""

from __future__ import annotations

from typing import Any

from netlab.topology import model
from netlab.topology.checker import _DNS_LABEL, DNS_FIX, _Checker, _kind, _suggest
from netlab.topology.source import PathKey

NETWORK_KEYS = ("subnet", "mtu")
NETWORKS_KEYS = ("name", "subnet", "mtu")
MIN_MTU, MAX_MTU = 1280, 9000
# A network's bridge in <lab>-net is 'br-<name>' (IFNAMSIZ is 15).
MAX_NETWORK_NAME = 12


# Each valid physical network with the YAML path of its subnet (for range messages).
Networks = list[tuple[PathKey, model.Network]]


def check_networks(check: _Checker, top: dict[str, Any]) -> Networks:
    """``network:`` (one physical network, named ``default``) or ``networks:`` (several,
    named, joined by router nodes); never both."""
    if "networks" not in top:
        section = check.mapping(top.get("network"), ("network",), NETWORK_KEYS)
        subnet = check.subnet(section.get("subnet", model.DEFAULT_UNDERLAY),
                              ("network", "subnet"))
        mtu = check.integer(section.get("mtu", model.DEFAULT_MTU), ("network", "mtu"),
                            MIN_MTU, MAX_MTU)
        if subnet is None or mtu is None:
            return []
        return [(("network", "subnet"), model.Network(subnet=subnet, mtu=mtu))]
    if "network" in top:
        check.error(("network",), "'network' and 'networks' are both given",
                    "keep 'networks:' (a list of named networks) and give each node its "
                    "'network:', or keep 'network:' alone for one physical network")
    value = top["networks"]
    if not isinstance(value, list) or not value:
        check.error(("networks",), f"expected a list of networks, got {_kind(value)}",
                    "write each as '- {name: rack1, subnet: 192.168.10.0/24}'")
        return []
    out: Networks = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        path: PathKey = ("networks", i)
        if not isinstance(item, dict):
            check.error(path, f"expected a mapping, got {_kind(item)}",
                        "write the network as '- {name: rack1, subnet: 192.168.10.0/24}'")
            continue
        check.mapping(item, path, NETWORKS_KEYS)
        name = item.get("name")
        fix = f"{DNS_FIX}, at most {MAX_NETWORK_NAME} characters"
        if not isinstance(name, str) or not name:
            check.error((*path, "name"), "the network has no name", "add 'name: <network name>'")
            name = None
        elif len(name) > MAX_NETWORK_NAME or not _DNS_LABEL.match(name):
            check.error((*path, "name"), f"'{name}' is not a network name", fix)
            name = None
        elif name in seen:
            check.error((*path, "name"), f"'{name}' is already used by networks[{seen[name]}]",
                        "give every network a unique name")
            name = None
        else:
            seen[name] = i
        if "subnet" not in item:
            check.error((*path, "subnet"), "the network has no subnet",
                        "add one, e.g. 'subnet: 192.168.10.0/24'", at_line=False)
            subnet = None
        else:
            subnet = check.subnet(item["subnet"], (*path, "subnet"))
        mtu = check.integer(item.get("mtu", model.DEFAULT_MTU), (*path, "mtu"), MIN_MTU, MAX_MTU)
        if name and subnet is not None and mtu is not None:
            out.append(((*path, "subnet"), model.Network(subnet=subnet, mtu=mtu, name=name)))
    return out


def node_networks(check: _Checker, item: dict[Any, Any], path: PathKey, role: Any,
                   networks: Networks) -> tuple[str, ...]:
    """The networks a node is plugged into: ``network: NAME`` for a node, ``networks:
    [A, B, ...]`` for a router; the one network by default when there is one."""
    names = tuple(net.name for _, net in networks)
    raw_networks = check.source.data.get("networks")
    declared = len(raw_networks) if isinstance(raw_networks, list) else 1
    choices = ", ".join(names)
    if role == "router":
        if "network" in item:
            check.error((*path, "network"), "a router joins several networks, listed in "
                        "'networks:'", f"write 'networks: [{choices}]' (two or more of them)")
            return ()
        raw = item.get("networks")
        if raw is None or (isinstance(raw, list) and len(raw) < 2):
            have = "no network" if not raw else f"one network only ({raw[0]})"
            where = (*path, "networks") if raw is not None else path
            check.error(where, f"the router joins {have}: it routes nothing",
                        "list two or more networks, e.g. 'networks: [rack1, rack2]'; a router "
                        "needs a topology with 'networks:'" if declared < 2 else
                        f"list two or more of {choices}, e.g. 'networks: [{', '.join(names[:2])}]'")
            return ()
        if not isinstance(raw, list):
            check.error((*path, "networks"), f"expected a list of network names, got "
                        f"{_kind(raw)}", f"write 'networks: [{choices}]'")
            return ()
        out = []
        for j, name in enumerate(raw):
            if known_network(check, name, (*path, "networks", j), names):
                if name in out:
                    check.error((*path, "networks", j), f"'{name}' is listed twice",
                                "list each network once")
                    return ()
                out.append(name)
        return tuple(out) if len(out) == len(raw) else ()
    if "networks" in item:
        check.error((*path, "networks"), "only a router joins several networks",
                    "give the node one 'network:', or make it 'role: router'")
        return ()
    if "network" not in item:
        if declared > 1 and names:
            check.error(path, f"the node has no 'network:', and the topology has {declared} "
                        f"networks ({choices})",
                        f"add 'network: <one of {choices}>' to the node")
            return ()
        return names[:1]
    name = item["network"]
    return (name,) if known_network(check, name, (*path, "network"), names) else ()


def known_network(check: _Checker, name: Any, path: PathKey, names: tuple[str, ...]) -> bool:
    if name in names:
        return True
    if not names:  # the networks themselves have problems, already reported
        return False
    if names == (model.DEFAULT_NETWORK,) and check.source.data.get("networks") is None:
        check.error(path, f"unknown network {name!r}: the topology has one physical network",
                    "remove the node's 'network:', or list the networks under 'networks:' "
                    "with a name each")
        return False
    check.error(path, f"unknown network {name!r}{_suggest(name, names)}",
                f"use one of {', '.join(names)} (the names under 'networks:'), or add it "
                "there")
    return False


def check_routing(check: _Checker, nodes: list[model.Node], networks: Networks) -> None:
    """Every network must reach the control plane's through routers: otherwise its
    kubelets could not reach the API server, nor its pods the others."""
    if len(networks) < 2 or not any(n.role == "control-plane" for n in nodes):
        return
    reached = {next(n for n in nodes if n.role == "control-plane").networks[0]}
    routers = [set(n.networks) for n in nodes if n.role == "router"]
    grown = True
    while grown:
        grown = False
        for joined in routers:
            if joined & reached and not joined <= reached:
                reached |= joined
                grown = True
    home = next(n for n in nodes if n.role == "control-plane").networks[0]
    for i, (path, net) in enumerate(networks):
        if net.name not in reached:
            check.error((*path[:-1], "name"), f"network '{net.name}' has no route to the "
                        f"control plane's network '{home}'",
                        f"add a router node joining them, e.g. '- {{name: r{i}, role: router, "
                        f"networks: [{home}, {net.name}]}}'")


def on_network(item: Any, name: str, count: int) -> bool:
    if not isinstance(item, dict):
        return False
    if count == 1:
        return True
    joined = item.get("networks") if item.get("role") == "router" else [item.get("network")]
    return isinstance(joined, list) and name in joined


# Where each workload kind keeps its pod spec.
_POD_SPEC: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    **{kind: ("spec", "template", "spec") for kind in (
        "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
        "ReplicationController")},
}


def check_pinned(check: _Checker, doc: dict[str, Any], where: PathKey, inline: PathKey,
                  nodes: list[model.Node]) -> None:
    """A pod (or a pod template) whose ``nodeName`` is a router or an external node would
    wait forever: those run no kubelet, so no Node of that name ever exists. A step on the
    way to the pod spec that is there but not a mapping is a problem of its own."""
    steps = _POD_SPEC.get(doc.get("kind", ""))
    if steps is None:
        return
    spec: Any = doc
    for n, step in enumerate(steps):
        value = spec.get(step)
        if value is None:
            return
        if not isinstance(value, dict):
            fields = steps[:n + 1]
            dotted = ".".join(fields)
            check.error((*inline, *fields) if inline else where,
                        f"{'' if inline else dotted + ': '}expected a mapping, got "
                        f"{_kind(value)}",
                        f"write {dotted} of the {doc.get('kind')} as a mapping "
                        f"(e.g. '{step}: {{...}}')")
            return
        spec = value
    pinned = spec.get("nodeName")
    host = next((n for n in nodes if n.name == pinned and not n.in_cluster), None)
    if host is None:
        return
    what = "a router" if host.role == "router" else "an external node"
    path = (*inline, *steps, "nodeName") if inline else where
    check.error(path, f"nodeName '{pinned}' is {what}, which runs no pods (no kubelet, "
                "no Node object)", "pin the pods to a worker, or remove nodeName")
