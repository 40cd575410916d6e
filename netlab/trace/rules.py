"""What the nftables trace of one packet at one node means, in Service terms.

kube-proxy's table (``netlab.node.proxy.ruleset``) names its chains after
what they serve: ``service-HASH-ns/name/proto/port``, ``external-HASH-…``
for a NodePort, ``endpoint-HASH-ns/name/proto/port__ip/port`` for one
backend of a Service with session affinity, ``no-endpoints`` for refusals and
``masquerading`` for SNAT. So the chains a traced packet went through say
which Service decided its fate. The endpoint is in the DNAT rule: a literal
``dnat to IP:PORT`` whose comment adds the pod and node (a lone endpoint, or
an endpoint chain), or ``dnat to numgen … map @dnat-…``, a round-robin pick
the trace does not report: the caller learns it from the packet's new
destination (:func:`with_endpoint`), and the map's element comments, listed
with the rules (``nftrace.parse_table_listing``), name its pod. The policy
agent's table (``netlab.node.netpol.ruleset``) ends each isolated pod's chain
with a ``drop`` whose comment names the policies that isolate it, so a drop
there reads ``dropped: NetworkPolicy x/deny-all (ingress)``. This module turns
one packet's trace events at one node (one trace id) into a
:class:`RuleMatch`, and each event into a one-line step.

Pure: events and rule texts in, labels out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from netlab.node.netpol import ruleset as policy_ruleset
from netlab.node.proxy import ruleset
from netlab.trace.model import RuleMatch, TraceEvent

RuleTexts = Mapping[tuple[str, str, str, str], Mapping[int, str]]

_PORT_PATH = re.compile(r"^(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<proto>[^/]+)/(?P<port>[^_]*)"
                        r"(?:__(?P<ip>[\d.]+)/(?P<epport>\d+))?$")
_DNAT_COMMENT = re.compile(r'comment "([^"]*)"')
_DNAT_TO = re.compile(r"dnat (?:ip )?to (\d+\.\d+\.\d+\.\d+:\d+)")
_DNAT_MAP = re.compile(r"dnat (?:ip )?to numgen inc mod \d+ map @(\S+)")
_POD_ON = re.compile(r" pod (\S+)(?: on (\S+))?")
_POLICY_DROP = re.compile(r"^(NetworkPolic(?:y|ies) .*? \((?:ingress|egress)\))")


def policy_drop_label(rule_text: str) -> str | None:
    """``dropped: NetworkPolicy x/deny-all (ingress)`` for a drop rule of the policy
    agent's table (its comment names the policies), None for any other rule."""
    m = _DNAT_COMMENT.search(rule_text)
    if not m:
        return None
    comment = m.group(1)
    named = _POLICY_DROP.match(comment)
    if named:
        return f"dropped: {named.group(1)}"
    if comment.startswith(policy_ruleset.UNKNOWN_COMMENT):
        return f"dropped: {comment}"
    return None


def chain_service(chain: str) -> tuple[str, str | None] | None:
    """(``ns/name[:port]``, ``ip:port`` of the endpoint or None) for a proxy chain."""
    for prefix in (ruleset.SERVICE_PREFIX, ruleset.EXTERNAL_PREFIX, ruleset.ENDPOINT_PREFIX):
        if chain.startswith(prefix):
            rest = chain[len(prefix):]
            visible = rest.split("-", 1)[1] if "-" in rest else rest
            m = _PORT_PATH.match(visible)
            if not m:
                return None
            label = f"{m['ns']}/{m['name']}" + (f":{m['port']}" if m["port"] else "")
            endpoint = f"{m['ip']}:{m['epport']}" if m["ip"] else None
            return label, endpoint
    return None


def _text(texts: RuleTexts, e: TraceEvent) -> str:
    if e.handle is None:
        return ""
    return texts.get((e.netns, e.family, e.table, e.chain), {}).get(e.handle, "")


def step_text(e: TraceEvent, texts: RuleTexts) -> str:
    """One event as a line: ``ip netlab-proxy services: rule 12 … -> goto service-…``."""
    where = f"{e.family} {e.table} {e.chain}"
    if e.type == "policy":
        return f"{where}: policy {e.policy or '?'}"
    if e.type == "return":
        return f"{where}: return"
    verdict = e.verdict or "?"
    if e.target:
        verdict += f" {e.target}"
    rule = _text(texts, e)
    return f"{where}: rule {e.handle}{' ' + rule if rule else ''} -> {verdict}"


def summarize(events: Sequence[TraceEvent], texts: RuleTexts,
              own_table: str | None = None) -> RuleMatch | None:
    """The deciding rule among one packet's events at one node, or None when no
    table but the trace's own had anything to say."""
    own = own_table or ""
    mine = [e for e in events if e.table != own and not e.table.startswith("netlab-trace-")]
    if not mine:
        return None
    service = endpoint = pod = None
    nodeport = masquerade = False
    decisive: TraceEvent | None = None
    action = "accept"
    for e in mine:
        named = chain_service(e.chain) or (chain_service(e.target) if e.target else None)
        if named:
            service = named[0]
            endpoint = named[1] or endpoint
        if e.chain.startswith(ruleset.EXTERNAL_PREFIX):
            nodeport = True
        if e.chain == ruleset.MASQ_CHAIN and e.type == "rule" and e.verdict == "accept":
            masquerade = True
            if action == "accept":
                decisive, action = e, "masquerade"
        dnat_chain = e.chain.startswith((ruleset.ENDPOINT_PREFIX, ruleset.SERVICE_PREFIX))
        if dnat_chain and e.type == "rule" \
                and e.verdict in ("accept", "stop", "continue") and "dnat" in _text(texts, e):
            decisive, action = e, "dnat"
            literal = _DNAT_TO.search(_text(texts, e))
            endpoint = literal.group(1) if literal else endpoint
            m = _DNAT_COMMENT.search(_text(texts, e))
            if m and literal:
                pod = _pod_on(m.group(1)) or pod
        elif dnat_chain and e.type == "rule" and e.verdict == "accept" and action != "dnat":
            # The rule's text is unknown, but only a DNAT accepts in these chains.
            decisive, action = e, "dnat"
        if e.chain == ruleset.NO_ENDPOINTS_CHAIN and e.type == "rule":
            decisive, action = e, "reject"
        elif action not in ("reject", "drop") and (
                (e.type == "rule" and e.verdict == "drop")
                or (e.type == "policy" and e.policy == "drop")):
            decisive, action = e, "drop"
    if decisive is None:
        if service is None:
            return None  # accepted by tables with nothing to say about this packet
        decisive = mine[-1]
    label = _label(action, service, endpoint, pod, nodeport, masquerade, decisive, texts)
    return RuleMatch(action=action, label=label, table=decisive.table, chain=decisive.chain,
                     handle=decisive.handle, text=_text(texts, decisive), service=service,
                     endpoint=endpoint, pod=pod, masquerade=masquerade, nodeport=nodeport)


def _pod_on(comment: str) -> str | None:
    pm = _POD_ON.search(comment)
    return pm.group(1) + (f" on {pm.group(2)}" if pm.group(2) else "") if pm else None


def with_endpoint(match: RuleMatch, endpoint: str, netns: str, family: str,
                  texts: RuleTexts) -> RuleMatch:
    """``match`` (a DNAT through a map, whose pick the trace does not report) with the
    endpoint the packet was seen going to, and its pod from the map's element comments."""
    pod = match.pod
    m = _DNAT_MAP.search(match.text)
    if m:
        ip, _, port = endpoint.partition(":")
        for element in texts.get((netns, family, match.table, m.group(1)), {}).values():
            if element.endswith(f": {ip} . {port}"):
                c = _DNAT_COMMENT.search(element)
                pod = (_pod_on(c.group(1)) if c else None) or pod
    label = _label(match.action, match.service, endpoint, pod, match.nodeport,
                   match.masquerade, TraceEvent(netns, 0, family, match.table, match.chain,
                                                "rule", match.handle), texts)
    return replace(match, endpoint=endpoint, pod=pod, label=label)


def _label(action: str, service: str | None, endpoint: str | None, pod: str | None,
           nodeport: bool, masquerade: bool, e: TraceEvent, texts: RuleTexts) -> str:
    kind = "NodePort of " if nodeport else "service "
    if action == "reject":
        return f"rejected: {kind}{service or '?'} has no endpoints"
    if action == "dnat" or (service and endpoint):
        to = f"endpoint {endpoint or '?'}" + (f" (pod {pod})" if pod else "")
        masq = ", masquerade" if masquerade else ""
        return f"{kind}{service or '?'} -> {to}{masq}"
    if action == "drop":
        rule = _text(texts, e)
        if e.table == policy_ruleset.TABLE:
            label = policy_drop_label(rule)
            if label:
                return label
        what = f"rule {e.handle}" + (f" '{rule}'" if rule else "") if e.type == "rule" \
            else "chain policy"
        return f"dropped by {e.family} {e.table} {e.chain} {what}"
    if action == "masquerade":
        return "masquerade (SNAT to the node's address)"
    if service:
        return f"{kind}{service}"
    return f"accepted ({e.family} {e.table} {e.chain})"
