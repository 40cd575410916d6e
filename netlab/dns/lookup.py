"""What a pod's resolver does with a name: the search-path expansion of glibc and musl,
then one query per candidate until one answers.

``candidates`` is the pure part: with ``options ndots:5`` (what the kubelet writes for
``ClusterFirst``) a name with fewer than five dots tries every search domain first,
``web`` → ``web.default.svc.cluster.local``, ``web.svc.cluster.local``, ...; then the
name as it is. A name ending in a dot is absolute and tried alone. ``lookup`` sends the
queries (dnspython, UDP with a retry over TCP on truncation) from wherever it is called,
so ``netlab dns lookup`` runs it inside a node's namespace, against the kube-dns Service
as a pod there would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

NDOTS = 5


def candidates(name: str, searches: tuple[str, ...], ndots: int = NDOTS) -> list[str]:
    """The absolute names a resolver tries for ``name``, in order."""
    if name.endswith("."):
        return [name]
    qualified = [f"{name}.{domain.strip('.')}." for domain in searches]
    if name.count(".") >= ndots:
        return [f"{name}.", *qualified]
    return [*qualified, f"{name}."]


def cluster_searches(namespace: str, zone: str) -> tuple[str, ...]:
    """The search path the kubelet writes for a ClusterFirst pod in ``namespace``."""
    return (f"{namespace}.svc.{zone}", f"svc.{zone}", zone)


@dataclass
class Attempt:
    name: str
    rcode: str  # NOERROR, NXDOMAIN, REFUSED ... or TIMEOUT
    answers: list[str] = field(default_factory=list)  # records as text
    tcp: bool = False  # retried over TCP after a truncated UDP answer


def query(server: str, name: str, rdtype: str = "A", port: int = 53,
          timeout: float = 2.0) -> Attempt:
    """One query for ``name``; over TCP again when the UDP answer is truncated."""
    request = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
    tcp = False
    try:
        response = dns.query.udp(request, server, port=port, timeout=timeout)
        if response.flags & dns.flags.TC:
            tcp = True
            response = dns.query.tcp(request, server, port=port, timeout=timeout)
    except (dns.exception.Timeout, OSError):
        return Attempt(name, "TIMEOUT", tcp=tcp)
    answers = [line for rrset in response.answer for line in rrset.to_text().splitlines()]
    return Attempt(name, dns.rcode.to_text(response.rcode()), answers, tcp)


def lookup(server: str, name: str, searches: tuple[str, ...], rdtype: str = "A",
           ndots: int = NDOTS, port: int = 53) -> list[Attempt]:
    """Every attempt the resolver makes, ending at the first that has an answer
    (NOERROR with records) or a hard failure other than NXDOMAIN/NODATA."""
    attempts = []
    for candidate in candidates(name, searches, ndots):
        attempt = query(server, candidate, rdtype, port)
        attempts.append(attempt)
        if attempt.answers or attempt.rcode not in ("NXDOMAIN", "NOERROR"):
            break
    return attempts
