"""The policy agent's nftables table as text: one node's isolated pods and their rules.

One table, ``table ip netlab-policy``, per node namespace. ``full_script``
replaces it whole in one transaction (``add table; delete table; add …``, as
the proxy's full sync: the kernel commits the batch atomically, so packets
see the old rules or the new ones, never none); ``partial_script`` rewrites
only the objects whose declaration changed, again as one transaction.
``render_objects`` gives every object by name with its declaration, which is
what both are built from. Layout:

- Base chains on the ``filter`` hooks. ``egress-forward`` (forward, priority
  5) and ``egress-input`` (input, 5) judge packets *from* this node's pods
  (``ip saddr vmap @egress-pods``), ``ingress`` (forward, 10) packets *to*
  them (``ip daddr vmap @ingress-pods``). Both run after the proxy's DNAT
  (``nat`` prerouting, -100), so a connection to a ClusterIP is judged
  against the endpoint the proxy chose; a pod's packets to another pod on
  the same node are bridged, and br_netfilter (turned on by both agents)
  sends them through these hooks too. Egress is judged at the source's node
  and ingress at the destination's, each in its own base chain, so one's
  ``accept`` never skips the other. Traffic the node itself sends (kubelet
  probes) leaves by ``output``, which has no policy chain: the node always
  reaches its pods.
- Every base chain first accepts ``ct state established,related``: replies
  of an allowed connection pass, and so does every later packet of a
  connection that was allowed when it started, whatever policy says now.
- The maps hold only *isolated* pods, each pointing at its pod chain
  ``pod-HASH-<ns>/<pod>/<direction>``: the pod's exception for itself, a
  ``jump`` to the rule chain of every policy isolating it, and a final
  ``drop`` whose comment names those policies (``NetworkPolicy x/deny-all
  (ingress) isolates x/a``), which is what ``netlab trace`` reports.
- A rule chain ``rules-HASH-<ns>/<policy>/<direction>`` has one nft rule per
  allowed (peer set, port) pair, each ``accept`` commented with the policy,
  direction and rule number. Peers with more than one address are a named
  interval set ``peers-HASH-…/<n>``; named ports, resolved per destination
  pod, a set ``named-HASH-…/<n>`` of ``ip . protocol . port``. Rules with
  equal peers (or named-port targets) share the first one's set.
- When the cluster has any policy, ``known-pods`` lists this node's pods the
  agent has compiled, and packets to or from any other address of the
  node's pod subnet are dropped: a pod that has just got its address is
  isolated before the agent has seen it (see ``netlab.node.netpol``).

Family ``ip`` like the proxy's table: labs are IPv4 only. Pure text here;
``netlab.kernel.nft`` applies it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from netlab.node.netpol.model import (
    EGRESS,
    INGRESS,
    CompiledRule,
    NodeRules,
    PolicyKey,
    policy_ref,
)

FAMILY = "ip"
TABLE = "netlab-policy"
EGRESS_PRIORITY = 5  # after kube-proxy's filter chains (0): its rejects come first
INGRESS_PRIORITY = 10
KNOWN_PODS = "known-pods"
MAPS = {INGRESS: "ingress-pods", EGRESS: "egress-pods"}
POD_PREFIX, RULES_PREFIX = "pod-", "rules-"
PEERS_PREFIX, NAMED_PREFIX = "peers-", "named-"
UNKNOWN_COMMENT = "pod not yet known to the policy agent"
SELF_COMMENT = "a pod may always reach itself"
ESTABLISHED_COMMENT = "replies and established connections"


@dataclass(frozen=True)
class PolicyConfig:
    """What a node's table depends on besides the policies."""

    pod_cidr: str  # this node's pod subnet: its unknown addresses fail closed
    table: str = TABLE

    @property
    def ref(self) -> str:
        return f"{FAMILY} {self.table}"


def _hashed(visible: str) -> str:
    digest = hashlib.sha256(visible.encode()).digest()
    return base64.b32encode(digest[:5]).decode() + "-" + visible


# Names are asked for again on every sync (a pod chain names each policy it jumps to):
# remember them, as the proxy does.
@lru_cache(maxsize=1 << 16)
def pod_chain(namespace: str, name: str, direction: str) -> str:
    return POD_PREFIX + _hashed(f"{namespace}/{name}/{direction}")


@lru_cache(maxsize=1 << 16)
def rules_chain(policy: PolicyKey, direction: str) -> str:
    return RULES_PREFIX + _hashed(f"{policy_ref(policy)}/{direction}")


def peers_set(rule: CompiledRule) -> str:
    return PEERS_PREFIX + _hashed(f"{policy_ref(rule.policy)}/{rule.direction}/{rule.index + 1}")


def named_set(rule: CompiledRule) -> str:
    return NAMED_PREFIX + _hashed(f"{policy_ref(rule.policy)}/{rule.direction}/{rule.index + 1}")


def quote(text: str) -> str:
    # nft strings have no escapes; nft caps comments at 128 bytes.
    return '"' + text.replace('"', "'").replace("\\", "/")[:120] + '"'


def drop_comment(policies: tuple[PolicyKey, ...], direction: str, pod: str) -> str:
    """The pod chain's last rule's comment: what ``netlab trace`` names as the dropper."""
    names = [policy_ref(p) for p in policies]
    word, verb = ("NetworkPolicy", "isolates") if len(names) == 1 else \
        ("NetworkPolicies", "isolate")
    listed = ", ".join(names)
    if len(listed) > 70:  # keep the direction and pod within nft's comment limit
        listed = ", ".join(names[:2]) + f" and {len(names) - 2} more"
    return f"{word} {listed} ({direction}) {verb} {pod}"


def _chain(t: str, name: str, comment: str, rules: list[str]) -> str:
    body = "".join(f" {r};" for r in rules)
    return f"add chain {t} {name} {{ comment {quote(comment)};{body} }}"


Objects = dict[str, tuple[str, str]]  # name -> (kind: set, map, chain; its declaration)


def _rule_lines(t: str, rule: CompiledRule, objects: Objects,
                shared: dict[tuple[object, ...], str]) -> list[str]:
    """The nft rules of one compiled rule (declaring its sets into ``objects``).

    Rules with the same peers (``role: client`` in many policies of a
    namespace) share one set: ``shared`` maps a set's contents to the name of
    the first rule's set, whose comment names that rule.
    """
    remote = "ip saddr" if rule.direction == INGRESS else "ip daddr"
    if rule.peers is None:
        peer = ""
    elif not rule.peers:
        return []  # its peers select nothing now: it allows nothing
    elif len(rule.peers) == 1:
        peer = f"{remote} {rule.peers[0]} "
    else:
        name = shared.get(("peers", rule.peers))
        if name is None:
            name = shared[("peers", rule.peers)] = peers_set(rule)
            objects[name] = ("set", f"add set {t} {name} {{ type ipv4_addr; flags interval; "
                                    f"comment {quote(rule.label + ' peers')}; "
                                    f"elements = {{ {', '.join(rule.peers)} }} }}")
        peer = f"{remote} @{name} "
    label = rule.label
    if rule.any_port:
        return [f"{peer}accept comment {quote(label + ': every port')}"]
    lines = []
    for r in rule.ports:
        if r.first is None:
            port = ""
        elif r.last in (None, r.first):
            port = f" th dport {r.first}"
        else:
            port = f" th dport {r.first}-{r.last}"
        lines.append(f"{peer}meta l4proto {r.protocol}{port} accept "
                     f"comment {quote(f'{label}: {r}')}")
    if rule.named:
        what = f"{label}: named port {', '.join(rule.names)}"
        if len(rule.named) == 1:
            ip, proto, number = rule.named[0]
            lines.append(f"{peer}ip daddr {ip} meta l4proto {proto} th dport {number} accept "
                         f"comment {quote(what)}")
        else:
            name = shared.get(("named", rule.named))
            if name is None:
                # The set's comment is only the rule's label: it is fixed by the name,
                # since a set's comment cannot change once the set exists.
                name = shared[("named", rule.named)] = named_set(rule)
                items = ", ".join(f"{ip} . {proto} . {number}"
                                  for ip, proto, number in rule.named)
                objects[name] = ("set", f"add set {t} {name} {{ type ipv4_addr . inet_proto . "
                                        f"inet_service; comment {quote(label + ' named ports')};"
                                        f" elements = {{ {items} }} }}")
            lines.append(f"{peer}ip daddr . meta l4proto . th dport @{name} accept "
                         f"comment {quote(what)}")
    return lines


@dataclass(frozen=True)
class _Rendered:
    """One policy's rule chain as rendered, and the shared sets it named or created."""

    rules: list[CompiledRule]  # the compiled rules, by identity: the cluster caches them
    uses: tuple[tuple[tuple[object, ...], str], ...]  # (set contents, set name)
    created: tuple[tuple[tuple[object, ...], str], ...]  # (set contents, declaration)
    chain: str

    def replayable(self, rules: list[CompiledRule],
                   shared: Mapping[tuple[object, ...], str]) -> bool:
        """Whether rendering again would give the same text: the same compiled rules,
        and every shared set it names resolving to the same name now."""
        if rules is not self.rules:
            return False
        mine = {key for key, _ in self.created}
        return all((key not in shared) if key in mine else shared.get(key) == name
                   for key, name in self.uses)


@dataclass
class RenderCache:
    """Text from the last render, reused where its inputs are unchanged (the agent
    keeps one): policy chains by (policy, direction), pod chains by (pod, direction)
    with the address and policies they were rendered for."""

    chains: dict[tuple[PolicyKey, str], _Rendered] = field(default_factory=dict)
    pods: dict[tuple[str, str, str], tuple[tuple[object, ...], str, str]] = \
        field(default_factory=dict)


def _uses(rules: list[CompiledRule],
          shared: Mapping[tuple[object, ...], str]) -> list[tuple[tuple[object, ...], str]]:
    out: list[tuple[tuple[object, ...], str]] = []
    for rule in rules:
        if rule.peers and len(rule.peers) > 1:
            out.append((("peers", rule.peers), shared[("peers", rule.peers)]))
        if len(rule.named) > 1:
            out.append((("named", rule.named), shared[("named", rule.named)]))
    return out


def _set_name(decl: str) -> str:
    return decl.split()[4]  # "add set ip netlab-policy NAME { ..."


def render_objects(cfg: PolicyConfig, compiled: NodeRules,
                   cache: RenderCache | None = None) -> Objects:
    """Every object of the table, each with its declaration, in an order where
    everything exists before anything refers to it.

    ``cache`` (the agent keeps one) holds the text of the last render: a
    policy chain whose compiled rules are the same objects (the cluster keeps
    them until pods or namespaces change) and whose shared sets resolve the
    same way, or a pod chain with the same address and policies, is not
    rendered again.
    """
    t = cfg.ref
    objects: Objects = {}
    known = [p.ip for p in compiled.local_pods if p.ip]
    elements = f" elements = {{ {', '.join(known)} }};" if known else ""
    objects[KNOWN_PODS] = ("set", f"add set {t} {KNOWN_PODS} {{ type ipv4_addr; "
                                  f'comment "this node\'s pods the agent has compiled";'
                                  f"{elements} }}")
    shared: dict[tuple[object, ...], str] = {}
    used: dict[tuple[PolicyKey, str], _Rendered] = {}
    for (policy, direction), rules in sorted(compiled.rules.items()):
        name = rules_chain(policy, direction)
        done = cache.chains.get((policy, direction)) if cache is not None else None
        if done is None or not done.replayable(rules, shared):
            earlier = set(shared)
            lines: list[str] = []
            for rule in rules:
                lines += _rule_lines(t, rule, objects, shared)
            what = f"NetworkPolicy {policy_ref(policy)} {direction} rules"
            created = tuple((key, objects[shared[key]][1]) for key in shared
                            if key not in earlier)
            done = _Rendered(rules, tuple(_uses(rules, shared)), created,
                             _chain(t, name, what, lines))
        else:
            for key, decl in done.created:
                shared[key] = _set_name(decl)
                objects[shared[key]] = ("set", decl)
        objects[name] = ("chain", done.chain)
        used[(policy, direction)] = done
    if cache is not None:
        cache.chains = used  # only what this table uses: a deleted policy's text goes
    entries: dict[str, list[str]] = {INGRESS: [], EGRESS: []}
    pods_done: dict[tuple[str, str, str], tuple[tuple[object, ...], str, str]] = {}
    for iso in compiled.isolated:
        pod, direction = iso.pod, iso.direction
        chain = pod_chain(pod.namespace, pod.name, direction)
        key, signature = (pod.namespace, pod.name, direction), (pod.ip, iso.policies)
        hit = cache.pods.get(key) if cache is not None else None
        if hit is None or hit[0] != signature:
            self_rule = f"ip saddr {pod.ip}" if direction == INGRESS else f"ip daddr {pod.ip}"
            lines = [f"{self_rule} accept comment {quote(SELF_COMMENT)}"]
            lines += [f"jump {rules_chain(p, direction)}" for p in iso.policies]
            lines.append(f"drop comment {quote(drop_comment(iso.policies, direction, pod.ref))}")
            hit = (signature, _chain(t, chain, f"{direction} of pod {pod.ref}", lines),
                   f"{pod.ip} comment {quote(pod.ref)} : goto {chain}")
        pods_done[key] = hit
        objects[chain] = ("chain", hit[1])
        entries[direction].append(hit[2])
    if cache is not None:
        cache.pods = pods_done
    for direction, name in MAPS.items():
        items = entries[direction]
        elements = f" elements = {{ {', '.join(items)} }};" if items else ""
        objects[name] = ("map", f"add map {t} {name} {{ type ipv4_addr : verdict; "
                                f'comment "pods isolated for {direction}";{elements} }}')
    established = f"ct state established,related accept comment {quote(ESTABLISHED_COMMENT)}"
    unknown_src = unknown_dst = ""
    if compiled.fail_closed:
        unknown_src = (f"ip saddr {cfg.pod_cidr} ip saddr != @{KNOWN_PODS} drop "
                       f"comment {quote(UNKNOWN_COMMENT + ' (egress)')}")
        unknown_dst = (f"ip daddr {cfg.pod_cidr} ip daddr != @{KNOWN_PODS} drop "
                       f"comment {quote(UNKNOWN_COMMENT + ' (ingress)')}")
    for name, hook in (("egress-forward", "forward"), ("egress-input", "input")):
        body = [established, f"ip saddr vmap @{MAPS[EGRESS]}"] + ([unknown_src] if unknown_src
                                                                 else [])
        objects[name] = ("chain", f"add chain {t} {name} {{ type filter hook {hook} priority "
                                  f"{EGRESS_PRIORITY}; policy accept; "
                                  f"comment \"egress of this node's pods\";"
                                  + "".join(f" {r};" for r in body) + " }")
    body = [established, f"ip daddr vmap @{MAPS[INGRESS]}"] + ([unknown_dst] if unknown_dst
                                                              else [])
    objects["ingress"] = ("chain", f"add chain {t} ingress {{ type filter hook forward priority "
                                   f"{INGRESS_PRIORITY}; policy accept; "
                                   f"comment \"ingress of this node's pods\";"
                                   + "".join(f" {r};" for r in body) + " }")
    return objects


def full_script(cfg: PolicyConfig, node: str, objects: Objects) -> str:
    """The whole table as one transaction replacing whatever is there."""
    t = cfg.ref
    title = quote(f"netlab NetworkPolicy: pods of {node}")
    out = [f"add table {t}", f"delete table {t}", f"add table {t} {{ comment {title}; }}"]
    out += [decl for _, decl in objects.values()]
    return "\n".join(out) + "\n"


def render(cfg: PolicyConfig, compiled: NodeRules) -> str:
    """The whole table as one transaction (``full_script`` of ``render_objects``)."""
    return full_script(cfg, compiled.node, render_objects(cfg, compiled))


_REFERENCE = re.compile(r"@([^\s;,}]+)")
_HEADER = re.compile(r"^(add (?:set|map) \S+ \S+ \S+ \{ type [^;]*;(?: flags interval;)?)")


def _bare(decl: str) -> str:
    """A set's or map's declaration without comment or elements: re-declaring it so
    changes nothing in the kernel."""
    m = _HEADER.match(decl)
    assert m, decl
    return m.group(1) + " }"


def partial_script(cfg: PolicyConfig, before: Objects, after: Objects,
                   garbage: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """One transaction taking the table from ``before`` to ``after``, and the
    objects left unused once it has committed (to delete later, ``garbage``).

    As the proxy's partial sync, only commands that do not make nft 1.0.6 fetch
    the whole table: a changed chain is flushed and refilled (``add chain NAME
    { rules }``), a changed set or map flushed and re-declared with its
    elements; a new object is declared. An object no longer wanted is flushed
    here (a chain then refers to nothing) and deleted afterwards over raw
    netlink; until then it is unused. ``garbage`` holds objects an earlier sync
    left for deletion (name -> kind): they exist, empty, and are refilled if
    wanted again.
    Returns ``("", garbage)`` when nothing changes.
    """
    t = cfg.ref
    out: list[str] = []
    declared: set[str] = set()
    for name, (kind, decl) in after.items():
        if before.get(name) == (kind, decl) and name not in garbage:
            continue
        if kind == "chain":
            # nft 1.0.6 resolves ``@set`` in a rule only against sets this batch
            # declares (it does not fetch the table's sets for ``add chain``): an
            # unchanged set a rewritten chain uses is re-declared bare, a no-op.
            for ref in _REFERENCE.findall(decl):
                if ref not in declared and ref in after:
                    out.append(_bare(after[ref][1]))
                    declared.add(ref)
        if name in before or name in garbage:
            out.append(f"flush {kind} {t} {name}")
        out.append(decl)
        declared.add(name)
    removed = {name: before[name][0] for name in before if name not in after}
    for name in sorted(removed):
        out.append(f"flush {removed[name]} {t} {name}")
    left = {name: kind for name, kind in garbage.items() if name not in after} | removed
    return ("\n".join(out) + "\n" if out else ""), left
