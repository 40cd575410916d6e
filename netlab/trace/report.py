"""Rendering a trace: a table for people, JSON for programs.

JSON schema (``-o json``), version ``netlab.trace/v1``. Keys are never
renamed or removed within a version; new keys may be added. Absent values
are ``null``, never missing.

.. code-block:: text

    {
      "apiVersion": "netlab.trace/v1",
      "lab": str,
      "src": Place, "dst": Place,
      "probe": {"proto": "tcp"|"udp"|"icmp", "src": ip, "sport": int|null,
                "dst": ip, "dport": int|null, "ipId": int, "seq": int,
                "tag": str, "ttl": int},
      "hops": [Hop, ...],          # forward hops, then reply hops, each in time order
      "verdict": Verdict,
      "captured": [netns, ...],    # namespaces a capture socket ran in
      "nftrace": [netns, ...],     # node namespaces whose nftables were traced
      "pcaps": [{"file": str, "netns": str, "interface": str, "packets": int}],
      "durationMs": float,
      "warnings": [str, ...]
    }

    Place = {"kind": "pod"|"node"|"external"|"service"|"nodeport"|"ip",
             "name": str,            # "default/web-1", "worker1", "default/web", "10.0.0.1"
             "ip": str|null, "port": int|null, "node": str|null,
             "namespace": str|null,  # the network namespace (a source's)
             "service": str|null}    # "ns/name[:port]" a DST reaches, when known

    Hop = {"path": "forward"|"reply",
           "hop": int,               # 1-based within its path ("lost after hop N")
           "offsetUs": float,        # µs since the first sighting of the probe
           "timestampNs": int,       # the kernel's timestamp (ns since the epoch)
           "node": str|null,         # null on the physical network's bridge
           "pod": str|null,          # "ns/name" for a pod's eth0 or its host-side veth
           "netns": str, "interface": str,
           "direction": "ingress"|"egress"|"forward",
           "point": "sent"|"received"|"from-pod"|"to-pod"|"bridged"|"to-stack"|
                    "from-stack"|"to-overlay"|"from-overlay"|"to-network"|
                    "from-network"|"underlay"|"host",
           "source": "capture"|"nftrace",   # nftrace: the bridge hop, seen by the trace only
           "packet": {"proto": str, "src": ip, "sport": int|null, "dst": ip,
                      "dport": int|null, "ttl": int, "ipId": int, "length": int,
                      "summary": str,       # "SYN", "SYN-ACK", "echo-reply", "port-unreachable"
                      "quoted": {...}},     # only on ICMP errors: the header they quote
           "changes": [{"kind": "dnat"|"snat"|"un-dnat"|"un-snat"|"ttl"|"encap"|"decap",
                        "from": str, "to": str}],
           "outer": {"src": ip, "dst": ip, "sport": int, "dport": int, "vni": int}|null,
           "rule": {"action": "dnat"|"reject"|"drop"|"masquerade"|"accept",
                    "label": str,          # "service default/web:http -> endpoint ..."
                    "table": str, "chain": str, "handle": int|null, "text": str,
                    "service": str|null, "endpoint": str|null, "pod": str|null,
                    "masquerade": bool, "nodePort": bool}|null,
           "nftrace": [str],        # every nftables step of this packet at this node
           "pcap": str|null}        # the file (under --pcap DIR) holding this frame

    Verdict = {"result": "delivered"|"answered"|"lost",
               "reason": str,        # plain words: "no route: overlay is none, ..."
               "lastHop": int|null,  # the last forward hop seen
               "node": str|null, "netns": str|null,  # where it was answered or lost
               "answer": str|null,   # "syn-ack", "echo-reply", "udp-reply", "tcp-rst",
                                     # "port-unreachable", "net-unreachable", ...
               "answeredBy": "destination"|"rule"|"node"|null,
               "rttUs": float|null}

The table shows the same rows, with the outer headers, changes and rules in
their own columns, and the verdict under them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netlab.trace.model import Hop, TraceResult

API_VERSION = "netlab.trace/v1"


def to_json(result: TraceResult, reply: bool = True) -> dict[str, Any]:
    hops = [h for h in result.hops if h.path == "forward"]
    if reply:
        hops += [h for h in result.hops if h.path == "reply"]
    return {
        "apiVersion": API_VERSION, "lab": result.lab,
        "src": result.src.to_json(), "dst": result.dst.to_json(),
        "probe": result.probe.to_json(),
        "hops": [h.to_json() for h in hops],
        "verdict": result.verdict.to_json(),
        "captured": list(result.namespaces), "nftrace": list(result.nftrace),
        "pcaps": list(result.pcaps), "durationMs": round(result.duration_ms, 1),
        "warnings": list(result.warnings),
        **({"dnsAnswer": {"rcode": answer[0], "records": answer[1:]}}
           if (answer := dns_answer(result)) is not None else {}),
    }


def dns_answer(result: TraceResult) -> list[str] | None:
    """For a DNS probe: the answer code and records of the reply the source received."""
    if not result.dst.query:
        return None
    received = [h for h in result.hops if h.path == "reply" and h.packet.payload]
    if not received:
        return None
    import dns.exception
    import dns.message
    import dns.rcode

    try:
        message = dns.message.from_wire(received[-1].packet.payload)
    except dns.exception.DNSException:
        return None
    return [dns.rcode.to_text(message.rcode()),
            *(line for rrset in message.answer for line in rrset.to_text().splitlines())]


def _packet(hop: Hop) -> str:
    p = hop.packet
    arrow = f"{p.endpoint('src')} → {p.endpoint('dst')}"
    return f"{arrow} {p.summary} ttl {p.ttl}"


def _outer(hop: Hop) -> str:
    o = hop.outer
    return f"{o.src} → {o.dst} udp/{o.dport} vni {o.vni}" if o else ""


def _rule(hop: Hop) -> str:
    return hop.rule.label if hop.rule else ""


def _where(hop: Hop) -> str:
    if hop.pod and hop.point in ("sent", "received"):
        return hop.pod
    return hop.node or "network"


HEADERS = ["#", "OFFSET(µs)", "WHERE", "IFACE", "DIR", "POINT", "PACKET", "CHANGE", "OUTER",
           "RULE"]


def _rows(hops: Sequence[Hop]) -> list[list[str]]:
    return [[str(h.index), f"{h.offset_us:.1f}", _where(h), h.iface,
             {"ingress": "in", "egress": "out", "forward": "fwd"}[h.direction], h.point,
             _packet(h), ", ".join(str(c) for c in h.changes), _outer(h), _rule(h)]
            for h in hops]


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {0, 1}
    out = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
    return out


def verdict_line(result: TraceResult) -> str:
    v = result.verdict
    if v.result == "lost":
        where = f" at {v.node}" if v.node else ""
        head = f"lost after hop {v.last_hop}{where}"
    else:
        head = v.result
    rtt = f" (round trip {v.rtt_us:.0f} µs)" if v.rtt_us is not None else ""
    return f"verdict: {head}: {v.reason}{rtt}"


def to_table(result: TraceResult, reply: bool = True) -> str:
    p = result.probe
    tag = f"ip id {p.ip_id}" + (f", seq {p.seq}" if p.proto == "tcp" else "")
    lines = [f"trace {p.proto} from {result.src.describe()} to {result.dst.describe()} "
             f"[{tag}]"]
    for path in ("forward", "reply") if reply else ("forward",):
        hops = [h for h in result.hops if h.path == path]
        lines.append("")
        lines.append(f"{path} path:" if hops else f"{path} path: nothing seen")
        if hops:
            lines += ["  " + line for line in _columns([HEADERS, *_rows(hops)])]
    lines.append("")
    lines.append(verdict_line(result))
    answer = dns_answer(result)
    if answer is not None:
        lines.append(f"dns answer: {answer[0]}" + "".join(f"\n  {r}" for r in answer[1:]))
    lines += [f"warning: {w}" for w in result.warnings]
    if result.pcaps:
        lines.append(f"pcaps: {', '.join(f['file'] for f in result.pcaps)}")
    return "\n".join(lines)
