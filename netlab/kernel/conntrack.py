"""Connection-tracking entries in a lab namespace: find and delete stale UDP flows.

UDP has no connection to close, so when a Service's endpoint goes away the
conntrack entry that DNATs a client's flow to it lives on, and the client keeps
sending into the void until the entry times out (30 s or more for a flow that
keeps sending). The proxy deletes those entries itself, as kube-proxy does
with ``conntrack -D``.

This uses pyroute2's ctnetlink socket (``pyroute2.conntrack.Conntrack``)
opened inside the namespace, not the ``conntrack`` tool: one dump, which the
kernel filters by protocol (CTA_FILTER, kernels from 5.8), serves every
removed endpoint of a sync, with no process to start per endpoint. The match
is done here on both tuples, as kube-proxy's ``conntrack -D --orig-dst …
--reply-src …`` does: the original destination must be the Service's
ClusterIP:port (or its NodePort) and the reply must come from the removed
endpoint. The endpoint may still serve another Service, whose flows stay;
and the kernel's own reply-tuple filter was seen to miss entries when
several flows shared a reply source.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from pyroute2.conntrack import Conntrack, NFCTAttrTuple
from pyroute2.netlink.exceptions import NetlinkError

from netlab.kernel.netns import run_in_netns

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP}


@dataclass(frozen=True)
class Flow:
    """One conntrack entry, as the tests and ``describe`` want to see it."""

    protocol: int
    src: str
    dst: str
    sport: int | None
    dport: int | None
    reply_src: str
    reply_sport: int | None

    @property
    def translated(self) -> bool:
        return self.dst != self.reply_src or self.dport != self.reply_sport


def _flows(ct: Conntrack, reply: NFCTAttrTuple | None = None,
           orig: NFCTAttrTuple | None = None) -> list[tuple[Flow, object]]:
    out = []
    for entry in ct.dump_entries(tuple_reply=reply, tuple_orig=orig):
        o, r = entry.tuple_orig, entry.tuple_reply
        out.append((Flow(protocol=o.proto, src=o.saddr, dst=o.daddr, sport=o.sport,
                         dport=o.dport, reply_src=r.saddr, reply_sport=r.sport), o))
    return out


def flows(netns: str, protocol: str | None = None) -> list[Flow]:
    """Every conntrack entry of ``netns`` (optionally of one protocol)."""
    def dump() -> list[Flow]:
        with Conntrack() as ct:
            found = [flow for flow, _ in _flows(ct)]
        if protocol is not None:
            found = [f for f in found if f.protocol == PROTOCOLS[protocol]]
        return found

    return run_in_netns(netns, dump)


Frontend = tuple[Optional[str], int]  # (destination address or None for any, port)
Backend = tuple[str, int]  # (endpoint address, port)


def flush_translated(netns: str, pairs: Iterable[tuple[Frontend, Backend]],
                     protocol: str = "udp") -> int:
    """Delete the entries that translated a frontend to a backend, for any of
    ``pairs``; return how many went. Idempotent.

    A frontend is a ClusterIP and port, or ``(None, nodePort)`` for a NodePort
    on any address. Matching both sides keeps flows that reach the same
    endpoint through another Service, and the endpoint's own direct traffic.
    """
    wanted: dict[Backend, list[Frontend]] = {}
    for frontend, backend in pairs:
        wanted.setdefault(backend, []).append(frontend)
    if not wanted:
        return 0
    proto = PROTOCOLS[protocol]

    def matches(flow: Flow) -> bool:
        fronts = wanted.get((flow.reply_src, flow.reply_sport or 0)) or []
        return bool(fronts) and flow.translated and any(
            port == flow.dport and addr in (None, flow.dst) for addr, port in fronts)

    def flush() -> int:
        deleted = 0
        with Conntrack() as ct:
            # One dump for the whole sync, filtered by the kernel on the protocol
            # only and matched here on both tuples.
            for flow, orig in _flows(ct, None, NFCTAttrTuple(proto=proto)):
                if not matches(flow):
                    continue
                try:
                    ct.entry("del", tuple_orig=orig)
                    deleted += 1
                except NetlinkError as exc:
                    if exc.code != errno.ENOENT:  # it expired meanwhile
                        raise
        return deleted

    return run_in_netns(netns, flush)
