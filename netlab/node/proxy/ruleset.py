"""The proxy's nftables tables as text: full syncs, partial syncs and garbage collection.

One table, ``table ip netlab-proxy``, per node namespace (more for many
Services: see "Shards" below), laid out in the spirit of kube-proxy's nftables
mode (every lookup is a hash map, so the per-packet cost does not grow with
the number of Services):

- ``services`` (jumped to from the ``nat`` prerouting and output hooks) does
  two verdict-map lookups: ``ip daddr . meta l4proto . th dport`` in
  ``service-ips`` (ClusterIP dispatch), then, for traffic to the node's own
  addresses, ``meta l4proto . th dport`` in ``service-nodeports``. A hit goes
  to the service port's chain ``service-HASH-ns/name/proto/port`` (NodePorts
  through ``external-…``, which marks for masquerade first).
- A service chain DNATs itself, with no chain per endpoint: ``dnat to
  numgen inc mod N map @dnat-HASH-…``, a data map from the round-robin index
  to ``address . port`` (each element's comment names the endpoint's pod and
  node), or a plain ``dnat to IP:PORT`` for a lone endpoint. With
  ``sessionAffinity: ClientIP`` (as in upstream's nftables proxier) each
  endpoint keeps a chain ``endpoint-HASH-…__ip/port`` and a dynamic set
  ``affinity-HASH-…`` of client addresses with the Service's timeout: the
  service chain sends a known client straight to its endpoint's chain, else
  picks one through the verdict map ``dispatch-HASH-…`` (a lone endpoint is a
  plain ``goto``), and the endpoint chain adds the client and DNATs.
- Masquerade goes through a mark: ``mark-for-masquerade`` sets a bit and
  ``masquerading`` (``nat`` postrouting) clears it and masquerades. It is set
  for sources outside the pod CIDR (the node itself, an outside client), for
  every NodePort connection (the endpoint may be on another node, whose reply
  must come back through this one) and for hairpin traffic: a pod reaching
  itself through its Service would otherwise get a packet from its own
  address and drop it as a martian. Hairpin is found after DNAT, in
  ``masquerading``: ``ct status dnat`` and ``ip saddr . ip daddr`` in the set
  ``hairpin`` of ``IP . IP`` pairs, one per endpoint on this node's pod subnet.
  Partial syncs add the pairs of new endpoints and never remove any (only a
  full sync rebuilds the set): a pair left over from a gone endpoint only ever
  matches a connection DNATed back to its own sender, which is hairpin
  whoever holds the address now, and there are at most as many pairs as
  addresses in the node's pod subnet.
- A service port without ready endpoints keeps its chain, which only sets a
  second mark bit; ``filter`` chains on the input, forward and output hooks
  reject new connections carrying it (TCP reset, else ICMP port-unreachable),
  so clients fail at once instead of timing out. ``reject`` is not allowed in
  ``nat`` chains, hence the mark.

Why this shape: the cost of a sync on a large table. With the nft 1.0.6 that
Debian 12 ships, ``add rule``, ``add element`` and every ``delete`` make nft
first download every chain of the table (about 1.5 s at 10,000 Services);
``add chain NAME { rules }``, ``add map NAME { …; elements = { … } }`` and
``flush chain`` do not. So a partial sync uses only those three: it empties
the chains of the changed Services and refills them, and adds map elements by
re-declaring the map (or set). Anything a change leaves unused (a Service's old
DNAT or dispatch map, an affinity endpoint's chain and set, a deleted Service's
map elements) is emptied at
once, so no packet reaches it, and deleted later by a garbage-collection
transaction that can run when the proxy is idle (sent as raw netlink by
``netlab.kernel.nft.delete_objects``, since nft itself would fetch the table).
A Service moving between zero and some endpoints only rewrites its own chain
(the reject mark), and the per-Service DNAT and dispatch maps are named after
their endpoint lists, so a new list is a new map rather than an edit of a live
one. A rule can name a set only if the same transaction declares it (nft does
not fetch the kernel's sets for ``add chain``), which the maps' re-declaration
before their Service chain provides.

Shards: with more than ``SHARD_PORTS`` service ports, Services are spread
(by a hash of namespace/name) over several tables, ``netlab-proxy``,
``netlab-proxy-1``, … Each shard has its own ``service-ips`` and
``service-nodeports`` maps, ``services`` chain and ``nat`` prerouting/output
hooks; the main table also keeps masquerading and the rejects, which act on
marks any shard sets. The reason is the kernel's commit (measured with perf
and per-statement timings, kernel 6.18, 10,000 Services x 10 endpoints): any
transaction that adds a rule or a jump verdict makes nf_tables re-validate
the *whole table* it touches, walking every chain reachable from its base
chains (``nft_table_validate`` -> ``nft_chain_validate`` through every vmap
element): about 155 ms for one table of 112,000 chains, against 15 ms for a
commit that validates nothing. Validation is per table, so a change in one of
K shards validates 1/K of the Services. A packet sees one shard after the
other only on a connection's first packet (``nat`` chains), and the first
DNAT ends the walk (``nf_nat_inet_fn`` stops at the first chain that sets up
the mapping), so keys never clash: they are unique across all shards. Every
commit also walks every chain of every table in the namespace once (about
130 ns each, the ~15 ms above), which sharding does not change: only fewer
chains would.

Why no chain per endpoint: every chain costs at every commit (the commit
walks every chain of the namespace, and validation every chain a base chain
reaches), and endpoint chains were 10 of a 10-endpoint Service's 11-12. A
data map holds no verdicts, so a change to it validates nothing, and a full
sync of 1,000 Services x 10 endpoints sends about a third of the text (see
docs/benchmarks.md, "DNAT maps instead of endpoint chains").

Named maps rather than an anonymous ``vmap { … }`` or ``map { … }`` per
Service: the kernel resolves an anonymous set created in the same batch by
walking the whole batch, so a full sync of 10,000 Services x 10 endpoints took
164 s that way and about 35 s this way. Named sets are not free either (the
kernel finds them by walking a list), hence no map at all for a Service with
one endpoint.

Family ``ip`` rather than ``inet``: labs are IPv4 only (IPv6 is disabled in
their namespaces), and a per-family table keeps ``nat`` and ``fib`` free of
family checks, as kube-proxy keeps one table per family.

Names hash ``namespace/name/protocol/port`` (and the endpoint), and comments
on chains, rules and elements name the Service and endpoint, so ``nft list
table ip netlab-proxy`` reads on its own. A chain's comment cannot change
once the chain exists (the kernel keeps the first), so it only ever repeats
what the name says; the pod and node are on the DNAT rule or the DNAT map's
elements, which are rewritten with the chain. Everything here is pure text;
``netlab.kernel.nft`` applies it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Network

from netlab.node.proxy.model import Endpoint, ServicePort, ServicePortName

FAMILY = "ip"
TABLE = "netlab-proxy"
MASQUERADE_MARK = 0x4000  # kube-proxy's bits, so traces look familiar
REJECT_MARK = 0x8000
NAT_OUTPUT_PRIORITY = -100  # "dstnat" is only a valid name for prerouting in nft 1.0.6
# Filter chains run after DNAT: a Service without endpoints marked the packet there.
FILTER_PRIORITY = 0

SERVICES_CHAIN = "services"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NODEPORT_IPS = "nodeport-ips"
NO_ENDPOINTS_CHAIN = "no-endpoints"
MARK_CHAIN = "mark-for-masquerade"
MASQ_CHAIN = "masquerading"
SHARED_MAPS = (SERVICE_IPS, SERVICE_NODEPORTS)

SERVICE_PREFIX, EXTERNAL_PREFIX, ENDPOINT_PREFIX = "service-", "external-", "endpoint-"
DISPATCH_PREFIX, AFFINITY_PREFIX, DNAT_PREFIX = "dispatch-", "affinity-", "dnat-"
HAIRPIN_SET = "hairpin"
MAX_ENDPOINTS = 1024  # per service port; Endpoints objects hold at most 1,000 addresses
# Service ports per shard table, and the most shard tables: see "Shards" above.
SHARD_PORTS = 1000
MAX_SHARDS = 32


def shard_table(table: str, shard: int) -> str:
    """Shard 0 is the main table itself; the others are ``TABLE-1``, ``TABLE-2``, …"""
    return table if shard == 0 else f"{table}-{shard}"


def shard_count(ports: int) -> int:
    """How many shard tables ``ports`` service ports are spread over."""
    return max(1, min(MAX_SHARDS, -(-ports // SHARD_PORTS)))


@lru_cache(maxsize=1 << 16)
def _service_hash(namespace: str, name: str) -> int:
    return zlib.crc32(f"{namespace}/{name}".encode())


def shard_of(name: ServicePortName, shards: int) -> int:
    """The shard of a service port: every port of a Service shares one, and it
    only changes when the number of shards does (which a full sync does)."""
    return 0 if shards <= 1 else _service_hash(name.namespace, name.name) % shards


@dataclass(frozen=True)
class ProxyConfig:
    """What a node's ruleset depends on besides its Services."""

    pod_cidr: str  # the cluster's pod CIDR: sources outside it are masqueraded
    # Addresses NodePorts answer on; None: every local address (``fib daddr type local``).
    node_ips: tuple[str, ...] | None = None
    # The Service CIDR, kept out of NodePort dispatch: ClusterIPs are local
    # addresses of the node (see ``hostnet``) and must not answer on NodePorts.
    service_cidr: str | None = None
    # This node's pod subnet. Only an endpoint in it can be its own client (a
    # pod's traffic is translated on its own node), so only those get the
    # hairpin rule; None gives every endpoint one.
    local_pod_cidr: str | None = None
    table: str = TABLE
    # How many tables the Services are spread over (see "Shards" above); the
    # Proxier picks it from the number of service ports at each full sync.
    shards: int = 1

    def shard_table(self, shard: int) -> str:
        return shard_table(self.table, shard)

    def shard_ref(self, shard: int) -> str:
        return f"{FAMILY} {self.shard_table(shard)}"

    def shard_of(self, name: ServicePortName) -> int:
        return shard_of(name, self.shards)

    def may_hairpin(self, ip: str) -> bool:
        return self.local_pod_cidr is None or _in_network(ip, self.local_pod_cidr)


@lru_cache(maxsize=4096)
def _network(cidr: str) -> tuple[int, int]:
    net = IPv4Network(cidr, strict=False)
    return int(net.network_address), int(net.netmask)


def _in_network(ip: str, cidr: str) -> bool:
    # inet_aton rather than IPv4Address: this runs once per endpoint of a full sync.
    base, mask = _network(cidr)
    return int.from_bytes(socket.inet_aton(ip), "big") & mask == base


# --- names --------------------------------------------------------------------------------------

def _hashed(visible: str, salt: str = "") -> str:
    # 5 bytes are exactly 8 base32 characters (and base32 is slow in pure Python).
    digest = hashlib.sha256((visible + salt).encode()).digest()
    return base64.b32encode(digest[:5]).decode() + "-" + visible


def _port_path(name: ServicePortName) -> str:
    # "/" never appears in Kubernetes names, so it separates the parts unambiguously.
    return f"{name.namespace}/{name.name}/{name.protocol}/{name.port}"


# Names are asked for again on every partial sync of the same port: remember them.
@lru_cache(maxsize=1 << 16)
def service_chain(name: ServicePortName) -> str:
    return SERVICE_PREFIX + _hashed(_port_path(name))


@lru_cache(maxsize=1 << 16)
def external_chain(name: ServicePortName) -> str:
    return EXTERNAL_PREFIX + _hashed(_port_path(name))


@lru_cache(maxsize=1 << 18)
def endpoint_chain(name: ServicePortName, ep: Endpoint) -> str:
    return ENDPOINT_PREFIX + _hashed(f"{_port_path(name)}__{ep.ip}/{ep.port}")


def affinity_set(name: ServicePortName, ep: Endpoint, timeout: int) -> str:
    # The timeout is part of the hash: a set's timeout cannot change once it exists.
    return AFFINITY_PREFIX + _hashed(f"{_port_path(name)}__{ep.ip}/{ep.port}", f"/{timeout}")


def dispatch_map(name: ServicePortName, eps: Iterable[Endpoint]) -> str:
    """Named after the endpoint list, so a new list is a new map, never an edit."""
    return DISPATCH_PREFIX + _hashed(_port_path(name), "|" + ",".join(map(str, eps)))


def dnat_map(name: ServicePortName, eps: Iterable[Endpoint]) -> str:
    """Like ``dispatch_map``, for a Service without affinity: index -> address . port."""
    return DNAT_PREFIX + _hashed(_port_path(name), "|" + ",".join(map(str, eps)))


# A DNAT map's element as ``nft list`` shows it, in the text between ``elements = {``
# and ``}``: ``INDEX [comment "…"] : IP . PORT``. Groups: the index, the element's text
# after it, the comment, the address, the port. For the readers of the table
# (``describe`` and ``netlab.trace``).
DNAT_ELEMENT = re.compile(r'(\d+)((?: comment "([^"]*)")? : ([\d.]+) \. (\d+))(?=, |\s*$)')


def _quote(text: str) -> str:
    # nft strings have no escapes; nft caps comments at 128 bytes.
    return '"' + text.replace('"', "'").replace("\\", "/")[:120] + '"'


def endpoint_label(sp: ServicePort, ep: Endpoint) -> str:
    where = f" on {ep.node}" if ep.node else ""
    pod = f" pod {ep.pod}{where}" if ep.pod else where
    return f"{sp.name} -> {ep}{pod}"


def cluster_key(sp: ServicePort) -> str:
    return f"{sp.cluster_ip} . {sp.protocol} . {sp.port}"


def node_port_key(sp: ServicePort) -> str | None:
    return f"{sp.protocol} . {sp.node_port}" if sp.node_port else None


def usable_endpoints(sp: ServicePort) -> tuple[Endpoint, ...]:
    return sp.endpoints[:MAX_ENDPOINTS]


# --- what a service port puts in the table ------------------------------------------------------

Element = tuple[str, str, str]  # (map, key, verdict)


@dataclass(frozen=True)
class PortObjects:
    """The table objects one service port owns; no two ports share any."""

    chains: frozenset[str]
    sets: frozenset[str]  # affinity sets and the dispatch map
    elements: frozenset[Element]  # its entries in the shared maps


def port_objects(sp: ServicePort) -> PortObjects:
    name, eps = sp.name, usable_endpoints(sp)
    svc = service_chain(name)
    chains = {svc}
    sets: set[str] = set()
    if eps and sp.affinity_timeout:
        chains.update(endpoint_chain(name, ep) for ep in eps)
        if len(eps) > 1:
            sets.add(dispatch_map(name, eps))
        sets.update(affinity_set(name, ep, sp.affinity_timeout) for ep in eps)
    elif len(eps) > 1:
        sets.add(dnat_map(name, eps))
    elements = {(SERVICE_IPS, cluster_key(sp), f"goto {svc}")}
    if sp.node_port:
        ext = external_chain(name)
        chains.add(ext)
        elements.add((SERVICE_NODEPORTS, f"{node_port_key(sp)}", f"goto {ext}"))
    return PortObjects(frozenset(chains), frozenset(sets), frozenset(elements))


_SHARED_DECL = {
    SERVICE_IPS: "type ipv4_addr . inet_proto . inet_service : verdict; "
                 'comment "ClusterIP dispatch"',
    SERVICE_NODEPORTS: 'type inet_proto . inet_service : verdict; comment "NodePort dispatch"',
}


SharedElements = dict[tuple[int, str], list[str]]  # (shard, shared map) -> its new elements


def _port_commands(cfg: ProxyConfig, sp: ServicePort, out: list[str],
                   elements: SharedElements) -> None:
    """Fill ``sp``'s chains (which must be empty or new) in its shard's table and
    declare its sets, in an order where everything exists before it is referred to."""
    name, proto = sp.name, sp.protocol
    shard = cfg.shard_of(name)
    t = cfg.shard_ref(shard)
    eps = usable_endpoints(sp)
    svc, label = service_chain(name), _quote(str(name))
    affinity = sp.affinity_timeout
    svc_rules = []
    if eps and affinity:
        # Affinity needs a place per endpoint to remember its clients: a chain and a set.
        for ep in eps:
            aff = affinity_set(name, ep, affinity)
            out.append(f"add set {t} {aff} {{ type ipv4_addr; flags dynamic,timeout; "
                       f"timeout {affinity}s; }}")
            out.append(_chain(t, endpoint_chain(name, ep), f"{name} endpoint {ep}", [
                f"update @{aff} {{ ip saddr }}",
                f"meta l4proto {proto} dnat to {ep} comment {_quote(endpoint_label(sp, ep))}"]))
        svc_rules += [f"ip saddr @{affinity_set(name, ep, affinity)} "
                      f"goto {endpoint_chain(name, ep)}" for ep in eps]
        if len(eps) == 1:  # nothing to choose: no map (every named set costs at scale)
            svc_rules.append(f'goto {endpoint_chain(name, eps[0])} comment "the only endpoint"')
        else:
            dispatch = dispatch_map(name, eps)
            targets = ", ".join(f"{i} comment {_quote(f'{name} -> {ep}')} : "
                                f"goto {endpoint_chain(name, ep)}" for i, ep in enumerate(eps))
            out.append(f"add map {t} {dispatch} {{ typeof numgen inc mod 2 : verdict; "
                       f"comment {_quote(f'{name} round-robin')}; elements = {{ {targets} }} }}")
            svc_rules.append(f"numgen inc mod {len(eps)} vmap @{dispatch} "
                             f"comment {_quote(f'round-robin over {len(eps)} endpoints')}")
    elif len(eps) == 1:
        svc_rules.append(f"meta l4proto {proto} dnat to {eps[0]} "
                         f"comment {_quote(endpoint_label(sp, eps[0]))}")
    elif eps:
        # No chain per endpoint: the DNAT takes its address and port from a data map.
        dnat = dnat_map(name, eps)
        targets = ", ".join(f"{i} comment {_quote(endpoint_label(sp, ep))} : {ep.ip} . {ep.port}"
                            for i, ep in enumerate(eps))
        out.append(f"add map {t} {dnat} {{ typeof numgen inc mod 2 : ip daddr . th dport; "
                   f"comment {_quote(f'{name} round-robin')}; elements = {{ {targets} }} }}")
        svc_rules.append(f"meta l4proto {proto} dnat to numgen inc mod {len(eps)} map @{dnat} "
                         f"comment {_quote(f'round-robin over {len(eps)} endpoints')}")
    else:
        svc_rules.append(f"meta mark set meta mark | 0x{REJECT_MARK:x} "
                         f'comment "no ready endpoints: rejected in filter"')
    out.append(_chain(t, svc, f"{name} {proto}", svc_rules))
    elements.setdefault((shard, SERVICE_IPS), []).append(
        f"{cluster_key(sp)} comment {label} : goto {svc}")
    if sp.node_port:
        ext = external_chain(name)
        out.append(_chain(t, ext, f"{name} {proto} NodePort",
                          [f"jump {MARK_CHAIN}", f"goto {svc}"]))
        elements.setdefault((shard, SERVICE_NODEPORTS), []).append(
            f"{node_port_key(sp)} comment {label} : goto {ext}")


def hairpin_pairs(cfg: ProxyConfig, eps: Iterable[Endpoint]) -> list[str]:
    """The ``hairpin`` set's elements for ``eps``: ``IP . IP`` of each endpoint that
    may be its own client."""
    return [f"{ip} . {ip}" for ip in sorted({ep.ip for ep in eps}) if cfg.may_hairpin(ip)]


def _hairpin_set(cfg: ProxyConfig, pairs: list[str]) -> str:
    items = f" elements = {{ {', '.join(pairs)} }};" if pairs else ""
    return (f"add set {cfg.shard_ref(0)} {HAIRPIN_SET} {{ type ipv4_addr . ipv4_addr; "
            f'comment "endpoint . itself: a pod reaching itself through a Service";{items} }}')


def _chain(t: str, name: str, comment: str, rules: list[str]) -> str:
    return f"add chain {t} {name} {{ comment {_quote(comment)}; {'; '.join(rules)}; }}"


def _shared_elements(cfg: ProxyConfig, elements: SharedElements) -> list[str]:
    # Re-declaring the map with elements adds them without nft's whole-table cache fetch.
    return [f"add map {cfg.shard_ref(shard)} {m} {{ {_SHARED_DECL[m]}; "
            f"elements = {{ {', '.join(items)} }} }}"
            for (shard, m), items in sorted(elements.items()) if items]


# --- the fixed skeleton -------------------------------------------------------------------------

def _skeleton(cfg: ProxyConfig, shard: int = 0) -> list[str]:
    """Table, hook chains, shared maps and helper chains: everything but the Services.

    Every shard has its own dispatch maps, ``services`` chain and ``nat`` hooks;
    the main table (shard 0) also holds what acts on marks, which every shard's
    packets share: masquerading and the rejects of Services without endpoints.
    """
    t = cfg.shard_ref(shard)
    masq, reject = f"0x{MASQUERADE_MARK:x}", f"0x{REJECT_MARK:x}"
    if cfg.node_ips is None:
        local = "ip daddr != 127.0.0.0/8"
        if cfg.service_cidr:
            local += f" ip daddr != {cfg.service_cidr}"
        node_match = f"{local} fib daddr type local"
    else:
        node_match = f"ip daddr @{NODEPORT_IPS}"
    what = "this node's Services" if cfg.shards == 1 else (
        f"this node's Services, shard {shard + 1} of {cfg.shards}")
    out = [f"add table {t} {{ comment {_quote('netlab kube-proxy: ' + what)}; }}",
           f"add map {t} {SERVICE_IPS} {{ {_SHARED_DECL[SERVICE_IPS]}; }}",
           f"add map {t} {SERVICE_NODEPORTS} {{ {_SHARED_DECL[SERVICE_NODEPORTS]}; }}"]
    if cfg.node_ips is not None:
        elements = f" elements = {{ {', '.join(cfg.node_ips)} }};" if cfg.node_ips else ""
        out.append(f"add set {t} {NODEPORT_IPS} {{ type ipv4_addr; "
                   f'comment "addresses NodePorts answer on";{elements} }}')
    out.append(_chain(t, MARK_CHAIN, "mark for masquerade",
                      [f"meta mark set meta mark | {masq}"]))
    if shard == 0:
        out += [
            _hairpin_set(cfg, []),
            _chain(t, MASQ_CHAIN, "masquerade what was marked", [
                # Hairpin: after DNAT the packet goes back to its own sender, which
                # would drop a packet from its own address as a martian.
                f"ct status dnat ip saddr . ip daddr @{HAIRPIN_SET} meta mark set meta mark | "
                f'{masq} comment "hairpin: a pod reaching itself through a Service"',
                f"meta mark & {masq} == 0 return", f"meta mark set meta mark ^ {masq}",
                "masquerade fully-random"]),
            _chain(t, NO_ENDPOINTS_CHAIN, "Services without ready endpoints: refuse at once", [
                "meta l4proto tcp reject with tcp reset", "reject"]),
        ]
    out += [
        # One rule marks every connection from outside the pod network, and the last
        # one unmarks it again when no Service matched: cheaper than a rule per Service.
        _chain(t, SERVICES_CHAIN, "ClusterIP, then NodePort dispatch", [
            f"ip saddr != {cfg.pod_cidr} jump {MARK_CHAIN} "
            f'comment "from outside the pod network: masquerade, if a Service matches"',
            f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}",
            f"{node_match} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}",
            f"meta mark set meta mark & 0x{0xFFFFFFFF ^ MASQUERADE_MARK:x} "
            f'comment "no Service matched"']),
    ]
    if shard == 0:
        for hook in ("input", "forward", "output"):
            out.append(f"add chain {t} filter-{hook} {{ type filter hook {hook} priority "
                       f"{FILTER_PRIORITY}; policy accept; ct state new meta mark & {reject} "
                       f"!= 0 goto {NO_ENDPOINTS_CHAIN}; }}")
    out += [
        f"add chain {t} nat-prerouting {{ type nat hook prerouting priority dstnat; "
        f"policy accept; jump {SERVICES_CHAIN}; }}",
        f"add chain {t} nat-output {{ type nat hook output priority {NAT_OUTPUT_PRIORITY}; "
        f"policy accept; jump {SERVICES_CHAIN}; }}",
    ]
    if shard == 0:
        out.append(f"add chain {t} nat-postrouting {{ type nat hook postrouting priority "
                   f"srcnat; policy accept; jump {MASQ_CHAIN}; }}")
    return out


# --- garbage: what the table still holds but nothing uses ---------------------------------------

@dataclass
class Garbage:
    """Objects emptied by earlier syncs and not yet deleted, each with its table.

    Chains in here are already empty and nothing refers to them, so their
    deletion can wait; ``collect_script`` deletes them all in one transaction.
    """

    chains: set[tuple[str, str]] = field(default_factory=set)  # (table, chain)
    sets: set[tuple[str, str]] = field(default_factory=set)  # (table, set or map)
    # (table, map, key) -> the verdict the key still has
    elements: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.chains) + len(self.sets) + len(self.elements)

    def copy(self) -> Garbage:
        return Garbage(set(self.chains), set(self.sets), dict(self.elements))

    def by_table(self) -> dict[str, TableGarbage]:
        """The same, grouped by table, in the order deletes must go."""
        out: dict[str, TableGarbage] = {}
        for (table, m, key) in sorted(self.elements):
            out.setdefault(table, TableGarbage()).elements.setdefault(m, []).append(key)
        for (table, name) in sorted(self.sets):
            out.setdefault(table, TableGarbage()).sets.append(name)
        for (table, name) in sorted(self.chains):
            out.setdefault(table, TableGarbage()).chains.append(name)
        return dict(sorted(out.items()))

    def collect_script(self) -> str:
        """Delete everything in here: map elements, then maps and sets (their users
        are gone), then chains (whatever pointed at them is gone by then)."""
        out = []
        for table, g in self.by_table().items():
            t = f"{FAMILY} {table}"
            out += [f"delete element {t} {m} {{ {', '.join(keys)} }}"
                    for m, keys in g.elements.items()]
            out += [f"delete set {t} {s}" if s.startswith(AFFINITY_PREFIX)
                    else f"delete map {t} {s}" for s in g.sets]
            out += [f"delete chain {t} {c}" for c in g.chains]
        return "\n".join(out) + "\n" if out else ""


@dataclass
class TableGarbage:
    """One table's share of :class:`Garbage`, as ``nft.delete_objects`` takes it."""

    elements: dict[str, list[str]] = field(default_factory=dict)  # map -> keys
    sets: list[str] = field(default_factory=list)
    chains: list[str] = field(default_factory=list)


Change = tuple[ServicePort | None, ServicePort | None]


def full_ruleset(cfg: ProxyConfig, ports: Iterable[ServicePort]) -> str:
    """Every shard table, replacing whatever is there, as one transaction.

    ``add`` then ``delete`` makes the delete safe when a table is missing; the
    kernel applies the batch atomically, so packets see the old tables or the
    new ones, never none. Shard tables a larger ``shards`` left behind (in this
    process or an earlier one) are deleted too. Affinity sets start empty.
    """
    out = []
    for shard in range(MAX_SHARDS):
        out += [f"add table {cfg.shard_ref(shard)}", f"delete table {cfg.shard_ref(shard)}"]
    for shard in range(cfg.shards):
        out += _skeleton(cfg, shard)
    elements: SharedElements = {}
    pairs: set[Endpoint] = set()
    for sp in sorted(ports, key=lambda p: p.name):
        _port_commands(cfg, sp, out, elements)
        pairs.update(usable_endpoints(sp))
    out += _shared_elements(cfg, elements)
    hairpin = hairpin_pairs(cfg, pairs)
    if hairpin:
        out.append(_hairpin_set(cfg, hairpin))
    return "\n".join(out) + "\n"


def partial_update(cfg: ProxyConfig, changes: Mapping[ServicePortName, Change],
                   garbage: Garbage) -> tuple[str, Garbage]:
    """One transaction rewriting only the changed service ports, and the garbage
    left once it has committed. Returns ``("", …)`` when nothing changes.

    ``changes`` maps each changed port to ``(programmed, wanted)``; either may be
    None (added, removed). ``programmed`` must be what the table holds now, with
    the same ``cfg.shards``. The chains of ``programmed`` are emptied and those
    of ``wanted`` filled; what only ``programmed`` used becomes garbage. A map
    key that garbage still holds with another verdict (a ClusterIP reused by
    another Service of the same shard before collection) is deleted in this
    transaction, the one slow case.
    """
    garbage = garbage.copy()
    flushes: list[str] = []
    early_deletes: list[str] = []
    body: list[str] = []
    elements: SharedElements = {}
    hairpin: set[Endpoint] = set()
    for name in sorted(changes):
        old, new = changes[name]
        if old == new:
            continue
        if new is not None:
            hairpin.update(set(usable_endpoints(new)) - set(old.endpoints if old else ()))
        table = cfg.shard_table(cfg.shard_of(name))
        t = f"{FAMILY} {table}"
        before = port_objects(old) if old is not None else None
        after = port_objects(new) if new is not None else None
        if before is not None:
            flushes += [f"flush chain {t} {c}" for c in sorted(before.chains)]
        if new is not None and after is not None:  # (after is what new needs)
            garbage.chains -= {(table, c) for c in after.chains}
            garbage.sets -= {(table, s) for s in after.sets}
            for (m, key, verdict) in after.elements:
                held = garbage.elements.pop((table, m, key), None)
                if held is not None and held != verdict:
                    early_deletes.append(f"delete element {t} {m} {{ {key} }}")
            _port_commands(cfg, new, body, elements)
        if before is not None:
            keep = after or PortObjects(frozenset(), frozenset(), frozenset())
            garbage.chains |= {(table, c) for c in before.chains - keep.chains}
            garbage.sets |= {(table, s) for s in before.sets - keep.sets}
            kept_keys = {(m, k) for (m, k, _) in keep.elements}
            garbage.elements.update({(table, m, k): v for (m, k, v) in before.elements
                                     if (m, k) not in kept_keys})
    body += _shared_elements(cfg, elements)
    pairs = hairpin_pairs(cfg, hairpin)
    if pairs:
        body.append(_hairpin_set(cfg, pairs))
    if not flushes and not body:
        return "", garbage
    return "\n".join(early_deletes + flushes + body) + "\n", garbage


def dedupe(ports: Iterable[ServicePort]) -> tuple[list[ServicePort], list[ServicePort]]:
    """Split ports into those that can be programmed together and those whose
    ClusterIP:port or NodePort another port already holds (first by name wins).

    The API server's allocators prevent such clashes; this keeps one bad object
    from failing every transaction if one ever happens.
    """
    kept, clashing = [], []
    taken: set[str] = set()
    for sp in sorted(ports, key=lambda p: p.name):
        keys = {k for k in (cluster_key(sp), node_port_key(sp)) if k}
        if keys & taken:
            clashing.append(sp)
            continue
        taken |= keys
        kept.append(sp)
    return kept, clashing
