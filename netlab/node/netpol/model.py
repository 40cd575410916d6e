"""NetworkPolicy semantics, pure: API objects in, per-node rules and single decisions out.

This is the one place upstream's semantics live (the API's shapes are plain
dicts, as ``GET /apis/networking.k8s.io/v1/networkpolicies`` returns them):

- A pod is *isolated* for a direction only when some policy whose
  ``policyTypes`` holds that direction selects it (``spec.podSelector`` in the
  policy's namespace; ``{}`` selects every pod there). A pod nothing selects
  is open in that direction.
- The traffic an isolated pod allows is the union of the rules of every
  policy selecting it for that direction: policies only ever add.
- ``policyTypes`` defaults to ``[Ingress]``, plus ``Egress`` when the policy
  has egress rules (the API server defaults it too; this copes without).
- A rule allows a connection when one of its peers matches the remote end
  *and* one of its ports matches the destination port. A missing or empty
  ``from``/``to`` matches every peer, missing or empty ``ports`` every port
  and protocol (ICMP included), so ``ingress: [{}]`` allows everything.
- A peer is an ``ipBlock`` (``cidr`` less its ``except`` ranges), or pods: a
  ``podSelector`` alone means pods of the policy's namespace, a
  ``namespaceSelector`` alone every pod of the matching namespaces, both in
  one peer the pods matching the one *in* namespaces matching the other (AND);
  separate peers are alternatives (OR). Namespaces always carry
  ``kubernetes.io/metadata.name``.
- A port is ``protocol`` (TCP unless given; UDP, SCTP) with a number, a
  number and ``endPort`` (a range), or a name. A name is resolved against the
  *destination* pod's container ports (name and protocol): for ingress the
  selected pod, for egress the peer pod. A name no pod resolves allows nothing.

What netlab adds, being the implementation (upstream leaves these open):
a pod can always reach itself, and its own node can always reach it (kubelet
probes); replies of allowed connections pass (conntrack), and established
connections outlive a policy change that would now refuse them.

Pods that hold no IP (pending, host-network, finished) are no peer of
anything. ``compile_node`` builds what one node enforces (its own pods:
ingress and egress, see ``ruleset``), and ``decide`` answers one
"may SRC reach DST on PORT/PROTO" question from the same compiled rules,
for ``netlab policy check``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from netlab.api.selectors import LabelSelector, SelectorError, label_selector_from_object
from netlab.api.views import (
    labels_of,
    name_of,
    namespace_of,
    pod_spec,
    pod_status,
    spec_of,
    uid_of,
)

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PROTOCOLS = ("tcp", "udp", "sctp")
INGRESS, EGRESS = "ingress", "egress"
DIRECTIONS = (INGRESS, EGRESS)
TERMINAL_PHASES = ("Succeeded", "Failed")

PolicyKey = tuple[str, str]  # (namespace, name)


def policy_ref(key: PolicyKey) -> str:
    return f"{key[0]}/{key[1]}"


# --- the API's objects, parsed once -------------------------------------------------------------

@dataclass(frozen=True)
class ContainerPort:
    name: str
    port: int
    protocol: str  # tcp, udp, sctp


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    uid: str
    node: str
    ip: str | None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    ports: tuple[ContainerPort, ...] = ()
    host_network: bool = False
    phase: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def addressable(self) -> bool:
        """Whether the pod has a pod-network address policy can match on."""
        return bool(self.ip) and not self.host_network and self.phase not in TERMINAL_PHASES

    def named_port(self, name: str, protocol: str) -> int | None:
        for p in self.ports:
            if p.name == name and p.protocol == protocol:
                return p.port
        return None


def _proto(value: Any) -> str | None:
    proto = str(value or "TCP").lower()
    return proto if proto in PROTOCOLS else None


def parse_pod(obj: Mapping[str, Any], ip: str | None = None) -> Pod:
    """A Pod object as policy needs it; ``ip`` overrides ``status.podIP`` (the agent
    learns a local pod's address from the node's IPAM before the kubelet reports it)."""
    spec, status = pod_spec(obj), pod_status(obj)
    ports = []
    for container in spec.get("containers") or []:
        for p in container.get("ports") or []:
            proto = _proto(p.get("protocol"))
            name, number = p.get("name"), p.get("containerPort")
            if name and number and proto:
                ports.append(ContainerPort(name, int(number), proto))
    return Pod(namespace=namespace_of(obj) or "default", name=name_of(obj), uid=uid_of(obj),
               node=spec.get("nodeName") or "", ip=ip or status.get("podIP") or None,
               labels=dict(labels_of(obj)), ports=tuple(ports),
               host_network=bool(spec.get("hostNetwork")), phase=status.get("phase") or "")


@dataclass(frozen=True)
class PortSpec:
    protocol: str
    port: int | str | None  # None: every port of the protocol
    end_port: int | None = None


@dataclass(frozen=True)
class PeerSpec:
    pods: LabelSelector | None = None  # None: not given
    namespaces: LabelSelector | None = None
    cidr: str | None = None
    excepts: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleSpec:
    peers: tuple[PeerSpec, ...] | None  # None: every peer
    ports: tuple[PortSpec, ...]  # empty: every port and protocol


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    selector: LabelSelector
    types: frozenset[str]
    ingress: tuple[RuleSpec, ...] = ()
    egress: tuple[RuleSpec, ...] = ()

    @cached_property
    def key(self) -> PolicyKey:
        return (self.namespace, self.name)

    def rules(self, direction: str) -> tuple[RuleSpec, ...]:
        return self.ingress if direction == INGRESS else self.egress


def _selector(obj: Any) -> LabelSelector | None:
    if obj is None:
        return None
    try:
        return label_selector_from_object(obj)
    except SelectorError:
        # The API server validated it; a selector it accepted but we cannot read
        # must not open anything up: it selects nothing.
        return LabelSelector.match_nothing()


def _rule(raw: Mapping[str, Any], peers_key: str) -> RuleSpec:
    peers: list[PeerSpec] = []
    for peer in raw.get(peers_key) or []:
        block = peer.get("ipBlock")
        if block:
            peers.append(PeerSpec(cidr=str(block.get("cidr")),
                                  excepts=tuple(str(e) for e in block.get("except") or ())))
        else:
            peers.append(PeerSpec(pods=_selector(peer.get("podSelector")),
                                  namespaces=_selector(peer.get("namespaceSelector"))))
    ports = []
    for p in raw.get("ports") or []:
        proto = _proto(p.get("protocol"))
        if proto is None:
            continue  # a protocol nftables cannot match on: the port allows nothing
        port = p.get("port")
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        end = p.get("endPort")
        ports.append(PortSpec(proto, port, int(end) if end and isinstance(port, int) else None))
    if raw.get("ports") and not ports:
        ports.append(PortSpec("none", None))  # only unusable ports: matches nothing
    return RuleSpec(tuple(peers) if peers else None, tuple(ports))


def parse_policy(obj: Mapping[str, Any]) -> Policy:
    spec = spec_of(obj)
    types = spec.get("policyTypes")
    if not types:
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    selector = _selector(spec.get("podSelector") or {}) or LabelSelector.everything()
    return Policy(namespace=namespace_of(obj) or "default", name=name_of(obj),
                  selector=selector, types=frozenset(str(t).lower() for t in types),
                  ingress=tuple(_rule(r, "from") for r in spec.get("ingress") or []),
                  egress=tuple(_rule(r, "to") for r in spec.get("egress") or []))


def namespace_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = dict(labels_of(obj))
    labels[NAMESPACE_NAME_LABEL] = name_of(obj)
    return labels


# --- compiled rules -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PortRange:
    protocol: str
    first: int | None = None  # None: every port of the protocol
    last: int | None = None

    def matches(self, protocol: str, port: int) -> bool:
        if protocol != self.protocol:
            return False
        if self.first is None:
            return True
        return self.first <= port <= (self.last if self.last is not None else self.first)

    def __str__(self) -> str:
        if self.first is None:
            return self.protocol
        span = f"{self.first}-{self.last}" if self.last not in (None, self.first) else \
            str(self.first)
        return f"{span}/{self.protocol}"


@dataclass(frozen=True)
class CompiledRule:
    """One rule of one policy, resolved: who may, and on which ports.

    ``peers`` are collapsed CIDRs (a pod is a /32), or None for every peer.
    A connection matches when its remote end is in ``peers`` and, unless
    ``any_port``, its protocol and port are in ``ports`` or its
    ``(destination IP, protocol, port)`` is in ``named`` (named ports,
    resolved on the destination pods).
    """

    policy: PolicyKey
    direction: str
    index: int  # 0-based within the policy's rules of this direction
    peers: tuple[str, ...] | None
    any_port: bool
    ports: tuple[PortRange, ...] = ()
    named: tuple[tuple[str, str, int], ...] = ()
    names: tuple[str, ...] = ()  # the named ports asked for, for labels

    @property
    def label(self) -> str:
        return f"{policy_ref(self.policy)} {self.direction} rule {self.index + 1}"

    def allows(self, remote: str, dst: str, protocol: str, port: int | None) -> bool:
        if self.peers is not None and not _in_cidrs(remote, self.peers):
            return False
        if self.any_port:
            return True
        if port is None:
            return False
        return any(r.matches(protocol, port) for r in self.ports) or \
            (dst, protocol, port) in self.named


def ip_int(ip: str) -> int:
    # inet_aton rather than IPv4Address: this runs for every peer of every rule.
    return int.from_bytes(socket.inet_aton(ip), "big")


def _peer_list(blocks: list[ipaddress.IPv4Network], pod_ips: set[str]) -> tuple[str, ...]:
    """Blocks (collapsed) and pod addresses, none inside another: an nft interval
    set refuses overlapping elements."""
    if blocks:
        blocks = list(ipaddress.collapse_addresses(blocks))
        spans = [(int(n.network_address), int(n.broadcast_address)) for n in blocks]
        pod_ips = {ip for ip in pod_ips
                   if not any(lo <= ip_int(ip) <= hi for lo, hi in spans)}
    return tuple([str(n) for n in blocks] + sorted(pod_ips, key=ip_int))


def _in_cidrs(ip: str, cidrs: Iterable[str]) -> bool:
    address = ipaddress.IPv4Address(ip)
    return any(address in ipaddress.IPv4Network(c) for c in cidrs)


def block_cidrs(cidr: str, excepts: Iterable[str]) -> list[ipaddress.IPv4Network]:
    """``cidr`` less every ``except`` range, as disjoint networks."""
    try:
        nets = [ipaddress.IPv4Network(cidr, strict=False)]
    except ValueError:
        return []  # an IPv6 block: labs are IPv4 only, it matches nothing here
    for raw in excepts:
        try:
            hole = ipaddress.IPv4Network(raw, strict=False)
        except ValueError:
            continue
        out: list[ipaddress.IPv4Network] = []
        for net in nets:
            if hole.subnet_of(net):
                out.extend(net.address_exclude(hole))
            elif not net.subnet_of(hole):
                out.append(net)
        nets = out
    return nets


class Cluster:
    """Every policy, pod and namespace of the cluster, indexed for selection.

    It caches what it resolves (selections, peers, compiled rules, which
    policies isolate which pod), so build it once per state of the pods and
    namespaces; a policy change only drops that policy's entries
    (``set_policy``), which is what makes a policy create cheap at scale.
    ``compile_node`` and ``decide`` read it.
    """

    def __init__(self, policies: Iterable[Policy], pods: Iterable[Pod],
                 namespaces: Mapping[str, Mapping[str, str]]):
        self.by_key = {p.key: p for p in policies}
        self.pods = [p for p in pods if p.name]
        self.namespaces = dict(namespaces)
        self.by_namespace: dict[str, list[Pod]] = {}
        for pod in self.pods:
            self.by_namespace.setdefault(pod.namespace, []).append(pod)
        self.by_ip = {p.ip: p for p in self.pods if p.addressable}
        self._pod_by_name = {(p.namespace, p.name): p for p in self.pods}
        self.policies_by_ns: dict[str, list[Policy]] = {}
        for policy in sorted(self.by_key.values(), key=lambda p: p.key):
            self.policies_by_ns.setdefault(policy.namespace, []).append(policy)
        self._peer_cache: dict[tuple[object, ...], tuple[Pod, ...]] = {}
        self._selected: dict[PolicyKey, tuple[Pod, ...]] = {}
        self._compiled: dict[tuple[PolicyKey, str], list[CompiledRule]] = {}
        self._isolating: dict[tuple[str, str, str], list[Policy]] = {}
        self._isolating_keys: dict[tuple[str, str, str], tuple[PolicyKey, ...]] = {}

    @property
    def policies(self) -> list[Policy]:
        return [p for ns in sorted(self.policies_by_ns) for p in self.policies_by_ns[ns]]

    def set_policy(self, key: PolicyKey, policy: Policy | None) -> None:
        """Add, replace (``policy``) or remove (None) one policy, keeping every cache
        that does not depend on it."""
        if policy is None:
            if self.by_key.pop(key, None) is None:
                return
        else:
            self.by_key[key] = policy
        namespace = key[0]
        listed = [p for p in self.policies_by_ns.get(namespace, ()) if p.key != key]
        if policy is not None:
            listed = sorted([*listed, policy], key=lambda p: p.key)
        if listed:
            self.policies_by_ns[namespace] = listed
        else:
            self.policies_by_ns.pop(namespace, None)
        self._selected.pop(key, None)
        for direction in DIRECTIONS:
            self._compiled.pop((key, direction), None)
        # Patch the namespace's cached isolation lists rather than recompute them:
        # one selector match per pod instead of one per pod and policy.
        order = {p.key: i for i, p in enumerate(listed)}
        self._isolating_keys = {k: v for k, v in self._isolating_keys.items()
                                if k[0] != namespace}
        for (ns, name, direction), found in self._isolating.items():
            if ns != namespace:
                continue
            kept = [p for p in found if p.key != key]
            pod = self._pod_by_name.get((ns, name))
            if policy is not None and pod is not None and direction in policy.types \
                    and policy.selector.matches(pod.labels):
                kept = sorted([*kept, policy], key=lambda p: order[p.key])
            self._isolating[(ns, name, direction)] = kept

    def ns_labels(self, namespace: str) -> Mapping[str, str]:
        return self.namespaces.get(namespace) or {NAMESPACE_NAME_LABEL: namespace}

    def selected(self, policy: Policy) -> tuple[Pod, ...]:
        """The pods ``policy`` applies to (addressable or not: a pending pod is isolated too)."""
        found = self._selected.get(policy.key)
        if found is None:
            found = tuple(p for p in self.by_namespace.get(policy.namespace, ())
                          if not p.host_network and p.phase not in TERMINAL_PHASES
                          and policy.selector.matches(p.labels))
            self._selected[policy.key] = found
        return found

    def isolating(self, pod: Pod, direction: str) -> list[Policy]:
        """The policies isolating ``pod`` for ``direction``, by namespace/name."""
        if pod.host_network:
            return []
        key = (pod.namespace, pod.name, direction)
        found = self._isolating.get(key)
        if found is None:
            found = self._isolating[key] = [
                pol for pol in self.policies_by_ns.get(pod.namespace, ())
                if direction in pol.types and pol.selector.matches(pod.labels)]
        return found

    def isolating_keys(self, pod: Pod, direction: str) -> tuple[PolicyKey, ...]:
        """``isolating`` as policy keys, remembered (``compile_node`` asks per pod and sync)."""
        key = (pod.namespace, pod.name, direction)
        found = self._isolating_keys.get(key)
        if found is None:
            found = self._isolating_keys[key] = tuple(
                p.key for p in self.isolating(pod, direction))
        return found

    def peer_pods(self, peer: PeerSpec, namespace: str) -> tuple[Pod, ...]:
        key = (str(peer.pods) if peer.pods is not None else None, peer.pods is None,
               peer.pods.nothing if peer.pods is not None else False,
               str(peer.namespaces) if peer.namespaces is not None else None,
               peer.namespaces.nothing if peer.namespaces is not None else False,
               None if peer.namespaces is not None else namespace)
        found = self._peer_cache.get(key)
        if found is not None:
            return found
        if peer.namespaces is None:
            spaces = [namespace]
        else:
            spaces = [ns for ns in sorted(set(self.by_namespace) | set(self.namespaces))
                      if peer.namespaces.matches(self.ns_labels(ns))]
        out = []
        for ns in spaces:
            for pod in self.by_namespace.get(ns, ()):
                if pod.addressable and (peer.pods is None or peer.pods.matches(pod.labels)):
                    out.append(pod)
        found = self._peer_cache[key] = tuple(out)
        return found

    def compiled(self, policy: Policy, direction: str) -> list[CompiledRule]:
        """``policy``'s rules for ``direction``, resolved against the cluster."""
        cached = self._compiled.get((policy.key, direction))
        if cached is not None:
            return cached
        out = []
        for index, rule in enumerate(policy.rules(direction)):
            peers: tuple[str, ...] | None = None
            peer_pods: list[Pod] | None = None
            if rule.peers is not None:
                peer_pods = []
                blocks: list[ipaddress.IPv4Network] = []
                for peer in rule.peers:
                    if peer.cidr is not None:
                        blocks.extend(block_cidrs(peer.cidr, peer.excepts))
                    else:
                        peer_pods.extend(self.peer_pods(peer, policy.namespace))
                peers = _peer_list(blocks, {p.ip for p in peer_pods if p.ip})
            ranges: list[PortRange] = []
            names: list[tuple[str, str]] = []
            for port in rule.ports:
                if port.protocol not in PROTOCOLS:
                    continue
                if port.port is None:
                    ranges.append(PortRange(port.protocol))
                elif isinstance(port.port, int):
                    ranges.append(PortRange(port.protocol, port.port, port.end_port or port.port))
                else:
                    names.append((port.port, port.protocol))
            named: set[tuple[str, str, int]] = set()
            if names:
                # Named ports resolve on the destination: the selected pods for
                # ingress, the peer pods (every pod, without peers) for egress.
                targets: Iterable[Pod]
                if direction == INGRESS:
                    targets = self.selected(policy)
                else:
                    targets = peer_pods if peer_pods is not None else self.pods
                for pod in targets:
                    if not pod.addressable:
                        continue
                    for name, proto in names:
                        number = pod.named_port(name, proto)
                        if number is not None:
                            named.add((str(pod.ip), proto, number))
            out.append(CompiledRule(policy=policy.key, direction=direction, index=index,
                                    peers=peers, any_port=not rule.ports,
                                    ports=tuple(dict.fromkeys(ranges)),
                                    named=tuple(sorted(named)),
                                    names=tuple(f"{n}/{p}" for n, p in names)))
        self._compiled[(policy.key, direction)] = out
        return out


# --- what one node enforces ---------------------------------------------------------------------

@dataclass(frozen=True)
class Isolation:
    """One local pod isolated for one direction, and the policies that isolate it."""

    pod: Pod
    direction: str
    policies: tuple[PolicyKey, ...]


@dataclass
class NodeRules:
    """Everything ``ruleset.render`` turns into the node's table."""

    node: str
    local_pods: list[Pod]  # addressable pods on this node (what the agent knows)
    isolated: list[Isolation]
    rules: dict[tuple[PolicyKey, str], list[CompiledRule]]
    fail_closed: bool  # unknown addresses of the node's pod subnet are dropped
    policies: int = 0  # policies in the cluster


def compile_node(cluster: Cluster, node: str) -> NodeRules:
    """What ``node`` enforces: ingress and egress of its own addressable pods.

    ``fail_closed`` is set when the cluster has any policy: then a pod of this
    node that the agent does not know yet (no address learnt, so it may be
    one an existing policy selects) gets no traffic until it is compiled.
    """
    local = sorted((p for p in cluster.pods if p.node == node and p.addressable),
                   key=lambda p: (p.namespace, p.name))
    isolated: list[Isolation] = []
    needed: dict[str, set[PolicyKey]] = {INGRESS: set(), EGRESS: set()}
    for pod in local:
        for direction in DIRECTIONS:
            keys = cluster.isolating_keys(pod, direction)
            if keys:
                isolated.append(Isolation(pod, direction, keys))
                needed[direction].update(keys)
    rules = {(key, direction): cluster.compiled(cluster.by_key[key], direction)
             for direction, keys in needed.items() for key in keys}
    return NodeRules(node=node, local_pods=local, isolated=isolated, rules=rules,
                     fail_closed=bool(cluster.by_key), policies=len(cluster.by_key))


# --- one question: may SRC reach DST? -----------------------------------------------------------

@dataclass
class Side:
    """The verdict of one direction: ``isolated`` by ``policies``; ``allowed_by`` the rules
    that let the connection through (empty and isolated: refused)."""

    direction: str
    pod: str | None
    isolated: bool = False
    policies: list[str] = field(default_factory=list)
    allowed_by: list[str] = field(default_factory=list)
    note: str = ""
    unknown: str = ""  # why the address is dropped though no pod has it (fail closed)

    @property
    def allowed(self) -> bool:
        if self.unknown:
            return False
        return not self.isolated or bool(self.allowed_by) or bool(self.note)

    def why_denied(self) -> str:
        if self.unknown:
            return f"denied: {self.unknown}"
        word, verb = ("NetworkPolicy", "isolates") if len(self.policies) == 1 else \
            ("NetworkPolicies", "isolate")
        return (f"denied: {word} {', '.join(self.policies)} ({self.direction}) {verb} "
                f"{self.pod}; no rule allows this")


@dataclass
class Decision:
    src: str
    dst: str
    protocol: str
    port: int | None
    egress: Side
    ingress: Side

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed

    def summary(self) -> str:
        """One line: ``allowed``, or ``denied: NetworkPolicy x/deny (ingress) at ...``."""
        if self.allowed:
            parts = []
            for side in (self.egress, self.ingress):
                if side.note:
                    parts.append(f"{side.direction}: {side.note}")
                elif side.isolated:
                    parts.append(f"{side.direction} allowed by {', '.join(side.allowed_by)}")
                else:
                    parts.append(f"{side.direction}: {side.pod or 'destination'} not isolated"
                                 if side.direction == INGRESS else
                                 f"{side.direction}: {side.pod or 'source'} not isolated")
            return "allowed (" + "; ".join(parts) + ")"
        side = self.egress if not self.egress.allowed else self.ingress
        return side.why_denied()


def _unknown_pod_address(ip: str, pod_subnets: Mapping[str, str]) -> str | None:
    """The node whose pod subnet holds ``ip`` (not its gateway, the node's own)."""
    address = ipaddress.IPv4Address(ip)
    for node, cidr in pod_subnets.items():
        net = ipaddress.IPv4Network(cidr)
        if address in net and address not in (net.network_address + 1, net.network_address,
                                               net.broadcast_address):
            return node
    return None


def _side(cluster: Cluster, pod: Pod | None, direction: str, remote: str, dst_ip: str,
          protocol: str, port: int | None) -> Side:
    side = Side(direction, pod.ref if pod else None)
    if pod is None:
        return side
    policies = cluster.isolating(pod, direction)
    if not policies:
        return side
    side.isolated = True
    side.policies = [policy_ref(p.key) for p in policies]
    for policy in policies:
        for rule in cluster.compiled(policy, direction):
            if rule.allows(remote, dst_ip, protocol, port):
                side.allowed_by.append(rule.label)
    return side


def decide(cluster: Cluster, src_ip: str, dst_ip: str, protocol: str, port: int | None,
           node_ips: Mapping[str, str] | None = None,
           pod_subnets: Mapping[str, str] | None = None) -> Decision:
    """May ``src_ip`` open a connection to ``dst_ip`` on ``port``/``protocol``?

    Evaluated as the kernel does (egress at the source's node, ingress at the
    destination's, after any Service DNAT: give the endpoint's address), from
    the same compiled rules. ``node_ips`` maps a node's addresses to its name,
    so a node reaching its own pods is recognised; ``pod_subnets`` (node ->
    CIDR) lets an address of a pod subnet that no pod holds fail closed, as
    the node's table does once the cluster has a policy.
    """
    src = cluster.by_ip.get(src_ip)
    dst = cluster.by_ip.get(dst_ip)
    egress = _side(cluster, src, EGRESS, dst_ip, dst_ip, protocol, port)
    ingress = _side(cluster, dst, INGRESS, src_ip, dst_ip, protocol, port)
    if cluster.by_key and pod_subnets:
        for side, ip, pod in ((egress, src_ip, src), (ingress, dst_ip, dst)):
            node = _unknown_pod_address(ip, pod_subnets) if pod is None else None
            if node:
                side.unknown = (f"no pod the agent knows has {ip} in {node}'s pod subnet "
                                f"({side.direction}: dropped until one does)")
    if src is not None and dst is not None and src.ip == dst.ip:
        egress.note = ingress.note = "a pod may always reach itself"
    elif dst is not None and node_ips and node_ips.get(src_ip) == dst.node:
        ingress.note = f"its own node {dst.node} may always reach it"
    return Decision(src_ip, dst_ip, protocol, port, egress, ingress)
