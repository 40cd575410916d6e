"""Explain a node's proxy table: which Service each chain is, and where it sends traffic.

``describe(text)`` takes what ``nft list table ip netlab-proxy`` prints (for
every shard table, one after the other: ``syncer.list_proxy_tables``) and
returns a summary (one block per service port: ClusterIP, NodePort, affinity,
endpoints in round-robin order, or that it refuses connections) followed by
the ruleset itself with a ``# …`` label above every Service chain, endpoint
chain, dispatch or DNAT map and affinity set. It reads the table alone, with no API,
so it works on a saved listing as well as on a live node; ``netlab proxy show
NODE`` prints it, and ``summary`` gives the same as data for ``-o json``.

Objects no Service reaches any more are listed as awaiting deletion: partial
syncs empty them at once and delete them later (see ``ruleset``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from netlab.node.proxy import ruleset

_BLOCK = re.compile(r"^\t(chain|map|set) (\S+) \{$")
_DNAT = re.compile(r"dnat (?:ip )?to (\d[\d.:]*)(?: comment \"([^\"]*)\")?")
_DNAT_MAP = re.compile(r"dnat (?:ip )?to numgen inc mod \d+ map @(\S+)")
_LABEL = re.compile(r"^\S+ -> \S+ pod (\S+)(?: on (\S+))?$|^\S+ -> \S+ on (\S+)$")


@dataclass
class _Block:
    kind: str
    name: str
    lines: list[str] = field(default_factory=list)

    @property
    def comment(self) -> str:
        for line in self.lines:
            m = re.match(r'^\s*comment "([^"]*)"$', line)
            if m:
                return m.group(1)
        return ""

    def elements(self) -> list[tuple[str, str, str]]:
        """(key, comment, verdict target) of a map's elements."""
        text = " ".join(line.strip() for line in self.lines)
        out = []
        # One "elements = { … }" per shard table for the shared maps (see _blocks).
        items = [i for m in re.finditer(r"elements = \{ (.*?) \}", text)
                 for i in _split(m.group(1))]
        for item in items:
            em = re.match(r'^(.*?)(?: comment "([^"]*)")? : (?:goto|jump) (\S+)$', item.strip())
            if em:
                out.append((em.group(1), em.group(2) or "", em.group(3)))
        return out

    def data_elements(self) -> list[tuple[str, str, str]]:
        """(key, comment, ``ip:port``) of a DNAT map's ``KEY : IP . PORT`` elements."""
        text = " ".join(line.strip() for line in self.lines)
        return [(em.group(1), em.group(3) or "", f"{em.group(4)}:{em.group(5)}")
                for m in re.finditer(r"elements = \{ (.*?) \}", text)
                for em in ruleset.DNAT_ELEMENT.finditer(m.group(1))]


def _split(text: str) -> Iterator[str]:
    """Split on commas outside double quotes."""
    start, quoted = 0, False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            yield text[start:i]
            start = i + 1
    yield text[start:]


def _blocks(text: str) -> dict[str, _Block]:
    blocks: dict[str, _Block] = {}
    current: _Block | None = None
    for line in text.splitlines():
        m = _BLOCK.match(line)
        if m:
            # Shard tables repeat the shared maps and chains: their lines add up.
            current = blocks.setdefault(m.group(2), _Block(m.group(1), m.group(2)))
            continue
        if current is not None:
            if line == "\t}":
                current = None
            else:
                current.lines.append(line)
    return blocks


def _path(name: str) -> str:
    """``service-HASH-ns/name/tcp/port`` -> ``ns/name/tcp/port``."""
    return name.split("-", 2)[2] if name.count("-") >= 2 else name


def _port_label(path: str) -> tuple[str, str]:
    """``ns/name/tcp/http`` -> (``ns/name:http``, ``tcp``)."""
    parts = path.split("/")
    if len(parts) < 4:
        return path, ""
    ns, name, proto, port = parts[0], parts[1], parts[2], "/".join(parts[3:])
    return (f"{ns}/{name}:{port}" if port else f"{ns}/{name}"), proto


@dataclass
class _Endpoint:
    index: int
    address: str
    pod: str
    node: str
    chain: str  # where its DNAT is: its own chain, the Service chain or the DNAT map


@dataclass
class _Port:
    label: str
    protocol: str
    chain: str
    cluster: str = ""
    node_port: str = ""
    affinity: str = ""
    refuses: bool = False
    dispatch: str = ""
    endpoints: list[_Endpoint] = field(default_factory=list)


def _pod_node(label: str) -> tuple[str, str]:
    lm = _LABEL.match(label)
    return (lm.group(1) or "", lm.group(2) or lm.group(3) or "") if lm else ("", "")


def _endpoint(blocks: dict[str, _Block], index: int, chain: str) -> _Endpoint:
    address, pod, node = "?", "", ""
    for line in blocks[chain].lines if chain in blocks else []:
        m = _DNAT.search(line)
        if m:
            address = m.group(1)
            pod, node = _pod_node(m.group(2) or "")
    return _Endpoint(index, address, pod, node, chain)


def _ports(blocks: dict[str, _Block]) -> list[_Port]:
    ports: dict[str, _Port] = {}
    for key, _, target in blocks.get(ruleset.SERVICE_IPS, _Block("map", "")).elements():
        label, proto = _port_label(_path(target))
        ip, _, number = (p.strip() for p in key.split(" . "))
        ports[target] = _Port(label, proto, target, cluster=f"{ip}:{number}")
    for key, _, target in blocks.get(ruleset.SERVICE_NODEPORTS, _Block("map", "")).elements():
        svc = ruleset.SERVICE_PREFIX + target.split("-", 1)[1]
        if svc in ports:
            ports[svc].node_port = key.split(" . ")[-1].strip()
    for port in ports.values():
        for line in blocks[port.chain].lines if port.chain in blocks else []:
            if f"0x{ruleset.REJECT_MARK:08x}" in line:
                port.refuses = True
            m = re.search(r"vmap @(\S+)", line) or _DNAT_MAP.search(line)
            if m:
                port.dispatch = m.group(1)
            elif _DNAT.search(line):  # a lone endpoint, DNATed by the Service chain itself
                port.endpoints = [_endpoint(blocks, 0, port.chain)]
            m = re.search(r"goto (endpoint-\S+)", line)
            if m and "ip saddr @" not in line:  # a lone endpoint, without a map
                port.endpoints = [_endpoint(blocks, 0, m.group(1))]
            m = re.search(r"ip saddr @(\S+)", line)
            if m and not port.affinity:
                lines = blocks[m.group(1)].lines if m.group(1) in blocks else []
                timeout = [x.split()[1] for x in lines if x.strip().startswith("timeout ")]
                port.affinity = f"ClientIP, timeout {timeout[0] if timeout else '?'}"
        if port.dispatch.startswith(ruleset.DNAT_PREFIX) and port.dispatch in blocks:
            port.endpoints = [_Endpoint(int(k), address, *_pod_node(comment), port.dispatch)
                              for k, comment, address in blocks[port.dispatch].data_elements()]
        elif port.dispatch in blocks:
            port.endpoints = [_endpoint(blocks, int(k), target)
                              for k, _, target in blocks[port.dispatch].elements()]
    return sorted(ports.values(), key=lambda p: p.label)


def _labels(ports: list[_Port]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for p in ports:
        labels[p.chain] = f"{p.label} ({p.protocol}): Service chain, ClusterIP {p.cluster}"
        if p.node_port:
            external = ruleset.EXTERNAL_PREFIX + p.chain.split("-", 1)[1]
            labels[external] = f"{p.label} ({p.protocol}): NodePort {p.node_port}, masquerade"
        if p.dispatch:
            count = len(p.endpoints)
            labels[p.dispatch] = (f"{p.label}: round-robin over {count} "
                                  f"endpoint{'s' if count != 1 else ''}")
        for ep in p.endpoints:
            if not ep.chain.startswith(ruleset.ENDPOINT_PREFIX):
                continue  # DNATed by the Service chain or its map: labelled above
            where = f" pod {ep.pod}" if ep.pod else ""
            where += f" on {ep.node}" if ep.node else ""
            labels[ep.chain] = f"{p.label}: endpoint #{ep.index} {ep.address}{where}"
    return labels


def summary(ruleset_text: str) -> list[dict[str, Any]]:
    """The table's service ports as data (``netlab proxy show -o json``): each with its
    ClusterIP, NodePort, affinity, whether it refuses, and its endpoints in order."""
    return [{"service": p.label, "protocol": p.protocol, "clusterIP": p.cluster,
             "nodePort": int(p.node_port) if p.node_port.isdigit() else None,
             "affinity": p.affinity or None, "refuses": p.refuses, "chain": p.chain,
             "endpoints": [{"index": e.index, "address": e.address, "pod": e.pod or None,
                            "node": e.node or None, "chain": e.chain} for e in p.endpoints]}
            for p in _ports(_blocks(ruleset_text))]


def describe(ruleset_text: str) -> str:
    """A summary of the table's Services, then the ruleset with every chain labelled."""
    blocks = _blocks(ruleset_text)
    ports = _ports(blocks)
    labels = _labels(ports)
    # An affinity set's hash covers its timeout too: match it to its endpoint by
    # the readable part of the name.
    by_visible = {_path(n): lab for n, lab in labels.items()
                  if n.startswith(ruleset.ENDPOINT_PREFIX)}
    for name in blocks:
        if name.startswith(ruleset.AFFINITY_PREFIX) and name not in labels:
            lab = by_visible.get(_path(name))
            if lab:
                labels[name] = lab.replace(": endpoint", ": clients pinned to endpoint")
    endpoints = sum(len(p.endpoints) for p in ports)
    out = [f"table {ruleset.FAMILY} {ruleset.TABLE}: {len(ports)} service ports, "
           f"{endpoints} endpoints", ""]
    for p in ports:
        head = f"{p.label} ({p.protocol})  ClusterIP {p.cluster}"
        if p.node_port:
            head += f"  NodePort {p.node_port}"
        if p.affinity:
            head += f"  affinity {p.affinity}"
        out.append(head)
        if p.refuses or not p.endpoints:
            out.append("  no ready endpoints: new connections are refused")
        for ep in p.endpoints:
            where = f"  pod {ep.pod}" if ep.pod else ""
            where += f" on {ep.node}" if ep.node else ""
            out.append(f"  #{ep.index} -> {ep.address}{where}")
    prefixes = (ruleset.SERVICE_PREFIX, ruleset.EXTERNAL_PREFIX, ruleset.ENDPOINT_PREFIX,
                ruleset.DISPATCH_PREFIX, ruleset.AFFINITY_PREFIX, ruleset.DNAT_PREFIX)
    labels[ruleset.SERVICE_IPS] = "ClusterIP . protocol . port -> Service chain"
    labels[ruleset.SERVICE_NODEPORTS] = "protocol . NodePort -> NodePort chain"
    labels[ruleset.HAIRPIN_SET] = ("endpoint . itself: masqueraded when a pod reaches itself "
                                   "through a Service")
    unused = sorted(n for n in blocks if n.startswith(prefixes) and n not in labels)
    if unused:
        out += ["", f"unused, awaiting deletion: {len(unused)} objects ({', '.join(unused[:5])}"
                f"{', …' if len(unused) > 5 else ''})"]
        labels.update({n: "unused: emptied by a sync, awaiting deletion" for n in unused})
    out += ["", "--- the ruleset, each chain labelled ---"]
    for line in ruleset_text.splitlines():
        m = _BLOCK.match(line)
        if m and m.group(2) in labels:
            out.append(f"\t# {labels[m.group(2)]}")
        out.append(line)
    return "\n".join(out) + "\n"
