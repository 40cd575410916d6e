"""The cluster's DNS records, answered the way CoreDNS's ``kubernetes`` plugin answers them.

:class:`ClusterRecords` holds the Services, EndpointSlices and Pods the API serves
(plain dicts, as ``GET /api/v1/services`` and friends return them) and turns one
parsed query into one response. It does no I/O: the feeder
(``netlab/dns/__main__.py``, watching the API server) calls :meth:`upsert`,
:meth:`delete` and :meth:`replace`; the server (``server.py``) parses the wire,
calls :meth:`answer` and forwards or refuses what it returns ``None`` for. So
every naming rule here is unit-tested without sockets.

The names, after the Kubernetes DNS specification and CoreDNS (``pods
insecure``, ``fallthrough in-addr.arpa ip6.arpa``):

- ``<svc>.<ns>.svc.<zone>``: A per ClusterIP; for a headless Service one A per
  ready endpoint address (no ready endpoint: NXDOMAIN); ExternalName: a CNAME,
  not chased outside the zone.
- ``<endpoint>.<svc>.<ns>.svc.<zone>``: an endpoint's A, named by its
  ``hostname`` or else its dashed IP (``10-244-1-5``), for any Service.
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` (and ``<svc>.<ns>.svc.<zone>``):
  SRV per named port, targets' addresses in the additional section.
- ``<a-b-c-d>.<ns>.pod.<zone>``: A a.b.c.d for any well-formed address.
- PTR for ClusterIPs and ready endpoint addresses; other reverse names return
  ``None`` (the caller forwards them), as do names outside the zone.
- ``dns-version.<zone>`` TXT ``1.1.0``; SOA and NS at the apex.

A name that exists with no record of the asked type is NODATA (NOERROR, SOA in
authority); a name that does not exist is NXDOMAIN (SOA in authority). Every
record carries the configured TTL. Lookups go through dicts keyed by
(namespace, name) and by IP, so one answer costs the records it returns, not
the cluster's size. Not thread-safe: mutate and answer from one thread (the
server's event loop).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Optional

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.reversename
import dns.rrset

KINDS = ("Service", "EndpointSlice", "Pod")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DNS_SCHEMA_VERSION = "1.1.0"  # the version of the Kubernetes DNS specification served
DNS_VERSION_TTL = 28800  # what CoreDNS gives the dns-version TXT record
MAX_CNAME_CHAIN = 10  # ExternalName -> ExternalName chains inside the zone, as CoreDNS
OUR_PAYLOAD = 1232  # the EDNS size we advertise (the 2020 DNS flag day's value)

IN = dns.rdataclass.IN
A, AAAA, CNAME, NS, PTR = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME,
                           dns.rdatatype.NS, dns.rdatatype.PTR)
SOA, SRV, TXT = dns.rdatatype.SOA, dns.rdatatype.SRV, dns.rdatatype.TXT
NO_PORT = -1  # an entry without a port (a portless slice or Service): A yes, SRV no


class _Port(NamedTuple):
    name: str  # lowercase, "" when unnamed
    protocol: str  # lowercase: tcp, udp, sctp
    port: int


class _Endpoint(NamedTuple):
    ip: str  # normalised
    hostname: str  # its label under the Service: spec hostname, else the dashed IP


class _Slice(NamedTuple):
    service: str  # the kubernetes.io/service-name label, "" without one
    ports: tuple[_Port, ...]
    endpoints: tuple[_Endpoint, ...]  # ready ones only: the others have no record


class _Service(NamedTuple):
    type: str
    cluster_ips: tuple[str, ...]  # normalised, empty for headless and ExternalName
    headless: bool
    external_name: str  # absolute ("host.example.") for a valid ExternalName, else ""
    ports: tuple[_Port, ...]


class _Entry(NamedTuple):
    """One thing a name resolves to: CoreDNS's ``msg.Service``."""

    rdtype: int  # A, AAAA or CNAME: what ``host`` is
    host: str  # an address, or an absolute name for CNAME
    port: int
    target: str  # the absolute name of this entry: an SRV target, the owner of its A


Key = tuple[str, str]  # (namespace, name)


def _meta(obj: Mapping[str, Any]) -> Key | None:
    meta = obj.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name or not isinstance(namespace, str) or not namespace:
        return None
    return namespace.lower(), name.lower()


def _ip(text: Any) -> str:
    """The normalised address, "" when ``text`` is not one (nor a scoped one: fe80::1%eth0)."""
    if not isinstance(text, str) or "%" in text:
        return ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _dashed(ip: str) -> str:
    """An address as one label, as CoreDNS names endpoints: ``10-0-0-1``, ``fd00--1``."""
    if "." in ip:
        return ip.replace(".", "-")
    label = ip.replace(":", "-")
    return label + "0" if label.endswith("-") else label


def _ports(raw: Any) -> tuple[_Port, ...]:
    out = []
    for p in raw or ():
        number = p.get("port") if isinstance(p, Mapping) else None
        if not isinstance(number, int) or not 0 <= number <= 0xFFFF:
            continue
        out.append(_Port(str(p.get("name") or "").lower(),
                         str(p.get("protocol") or "TCP").lower(), number))
    return tuple(out)


def _absolute(text: Any) -> str:
    """``text`` as an absolute DNS name in lowercase, "" when it is not a valid one."""
    if not isinstance(text, str) or not text.strip(". ") or _ip(text.rstrip(".")):
        return ""
    try:
        return dns.name.from_text(text.rstrip(".") + ".").to_text().lower()
    except Exception:  # any dnspython syntax error: no CNAME for an invalid name
        return ""


@functools.lru_cache(maxsize=8192)
def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


@functools.lru_cache(maxsize=8192)
def _address(ip: str) -> dns.rdata.Rdata:
    if ":" in ip:
        return dns.rdtypes.IN.AAAA.AAAA(IN, AAAA, ip)
    return dns.rdtypes.IN.A.A(IN, A, ip)


def _entry_for(ip: str, port: int, target: str) -> _Entry:
    return _Entry(AAAA if ":" in ip else A, ip, port, target)


class ClusterRecords:
    """Services, EndpointSlices and Pods, indexed to answer cluster DNS queries.

    ``ns_ips`` are the server's own addresses: the zone's NS record points at the
    Service whose endpoint has one of them (else at ``ns.dns.<zone>``), as
    CoreDNS does with its local IPs. The zone, TTL and ``ns_ips`` are fixed once
    serving: the server caches answers until ``serial`` moves, which only the
    objects' changes do.
    """

    def __init__(self, zone: str = "cluster.local", ttl: int = 30, *,
                 ns_ips: Iterable[str] = ()) -> None:
        self.zone = zone.strip(".").lower()
        self.ttl = ttl
        self.ns_ips = [ip for ip in map(_ip, ns_ips) if ip]
        self.origin = dns.name.from_text(self.zone + ".")
        self.serial = int(time.time()) & 0xFFFFFFFF
        self._services: dict[Key, _Service] = {}
        self._service_by_ip: dict[str, dict[Key, None]] = {}
        self._slices: dict[Key, _Slice] = {}
        self._slices_by_service: dict[Key, dict[Key, None]] = {}
        self._slices_by_ip: dict[str, dict[Key, None]] = {}
        self._pods: dict[Key, None] = {}
        self._namespaces: dict[str, int] = {}  # objects held per namespace: does it exist

    # --- the objects ---------------------------------------------------------------------------

    def upsert(self, kind: str, obj: Mapping[str, Any]) -> None:
        """Add or update one object (an informer's ADDED or MODIFIED)."""
        key = _meta(obj)
        if key is None:
            return
        self._remove(kind, key)
        if kind == "Service":
            self._add_service(key, obj)
        elif kind == "EndpointSlice":
            self._add_slice(key, obj)
        else:
            # ``pods insecure`` answers without looking pods up: they only tell
            # which namespaces exist.
            self._pods[key] = None
        self._namespaces[key[0]] = self._namespaces.get(key[0], 0) + 1
        self._changed()

    def delete(self, kind: str, obj: Mapping[str, Any]) -> None:
        """Forget one object (an informer's DELETED); only its namespace and name matter."""
        key = _meta(obj)
        if key is not None and self._remove(kind, key):
            self._changed()

    def replace(self, kind: str, objs: Iterable[Mapping[str, Any]]) -> None:
        """Hold exactly ``objs`` of this kind (a relist): the others are dropped."""
        objs = list(objs)
        keep = {key for key in map(_meta, objs) if key is not None}
        for key in [k for k in self._held(kind) if k not in keep]:
            self._remove(kind, key)
        for obj in objs:
            self.upsert(kind, obj)
        self._changed()

    def _held(self, kind: str) -> dict[Key, Any]:
        if kind == "Service":
            return self._services
        if kind == "EndpointSlice":
            return self._slices
        if kind == "Pod":
            return self._pods
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")

    def _changed(self) -> None:
        # The SOA serial only ever grows, as secondaries and caches expect.
        self.serial = max(self.serial + 1, int(time.time())) & 0xFFFFFFFF

    def _add_service(self, key: Key, obj: Mapping[str, Any]) -> None:
        spec = obj.get("spec") or {}
        kind = str(spec.get("type") or "ClusterIP")
        raw_ips = spec.get("clusterIPs")
        if not isinstance(raw_ips, list) or not raw_ips:
            raw_ips = [spec.get("clusterIP")]
        headless = kind != "ExternalName" and raw_ips[0] == "None"
        ips: tuple[str, ...] = ()
        if kind != "ExternalName" and not headless:
            ips = tuple(ip for ip in map(_ip, raw_ips) if ip)
        external = _absolute(spec.get("externalName")) if kind == "ExternalName" else ""
        self._services[key] = _Service(kind, ips, headless, external, _ports(spec.get("ports")))
        for ip in ips:
            self._service_by_ip.setdefault(ip, {})[key] = None

    def _add_slice(self, key: Key, obj: Mapping[str, Any]) -> None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        service = str(labels.get(SERVICE_NAME_LABEL) or "").lower()
        endpoints = []
        if obj.get("addressType") in ("IPv4", "IPv6"):  # FQDN slices name no address
            for ep in obj.get("endpoints") or ():
                if not isinstance(ep, Mapping):
                    continue
                # A missing ready condition means unknown, which consumers treat as ready.
                if (ep.get("conditions") or {}).get("ready", True) is False:
                    continue
                hostname = str(ep.get("hostname") or "").lower()
                for ip in map(_ip, ep.get("addresses") or ()):
                    if ip:
                        endpoints.append(_Endpoint(ip, hostname or _dashed(ip)))
        self._slices[key] = _Slice(service, _ports(obj.get("ports")), tuple(endpoints))
        if service:
            self._slices_by_service.setdefault((key[0], service), {})[key] = None
        for ep in endpoints:
            self._slices_by_ip.setdefault(ep.ip, {})[key] = None

    def _remove(self, kind: str, key: Key) -> bool:
        """Drop one object and its index entries; whether it was held."""
        held = self._held(kind)
        if key not in held:
            return False
        old = held.pop(key)
        if isinstance(old, _Service):
            for ip in old.cluster_ips:
                _unindex(self._service_by_ip, ip, key)
        elif isinstance(old, _Slice):
            if old.service:
                _unindex(self._slices_by_service, (key[0], old.service), key)
            for ep in old.endpoints:
                _unindex(self._slices_by_ip, ep.ip, key)
        left = self._namespaces[key[0]] - 1
        if left:
            self._namespaces[key[0]] = left
        else:
            del self._namespaces[key[0]]
        return True

    # --- what a name resolves to ---------------------------------------------------------------

    def _lookup(self, labels: list[str]) -> Optional[list[_Entry]]:
        """What a name in the zone resolves to; ``None`` when it does not exist.

        ``labels`` are the name's labels under the zone, lowercase, leftmost first
        (CoreDNS's ``parseRequest`` then ``findServices``/``findPods``). An empty
        list is a name that exists without addresses (the apex, ``svc``, a
        namespace).
        """
        if len(labels) <= 1:
            return [] if not labels or labels[0] in ("svc", "pod") else None
        kind = labels[-1]
        if kind not in ("svc", "pod"):
            return None
        if len(labels) == 2:
            return [] if labels[0] in self._namespaces else None
        namespace, name, rest = labels[-2], labels[-3], labels[:-3]
        if kind == "pod":
            return self._pod(namespace, name) if not rest else None
        if len(rest) > 2:
            return None
        endpoint = rest[0] if len(rest) == 1 else ""
        port, protocol = (rest[0].removeprefix("_"), rest[1].removeprefix("_")) \
            if len(rest) == 2 else ("", "")
        return self._service(namespace, name, endpoint, port, protocol)

    def _pod(self, namespace: str, name: str) -> Optional[list[_Entry]]:
        # ``pods insecure``: any well-formed dashed address answers, pod or not.
        if name.count("-") == 3 and "--" not in name:
            ip = name.replace("-", ".")
        else:
            ip = name.replace("-", ":")
        normal = _ip(ip)
        # Only the canonical spelling: 010-0-0-1 is not a pod name.
        if not normal or (":" not in normal and normal != ip):
            return None
        return [_entry_for(normal, NO_PORT, f"{name}.{namespace}.pod.{self.zone}.")]

    def _service(self, namespace: str, name: str, endpoint: str, port: str,
                 protocol: str) -> Optional[list[_Entry]]:
        svc = self._services.get((namespace, name))
        if svc is None:
            return None
        target = f"{name}.{namespace}.svc.{self.zone}."
        if svc.type == "ExternalName":
            if endpoint or port or protocol or not svc.external_name:
                return None
            return [_Entry(CNAME, svc.external_name, NO_PORT, target)]

        def wanted(p: _Port) -> bool:
            return (not port or port == p.name) and (not protocol or protocol == p.protocol)

        out: list[_Entry] = []
        if svc.headless or endpoint:
            for slice_key in self._slices_by_service.get((namespace, name), ()):
                slice_ = self._slices[slice_key]
                ports = [p for p in slice_.ports or (_Port("", "", NO_PORT),) if wanted(p)]
                for ep in slice_.endpoints:
                    if endpoint and ep.hostname != endpoint:
                        continue
                    out.extend(_entry_for(ep.ip, p.port, f"{ep.hostname}.{target}")
                               for p in ports)
        else:
            for p in svc.ports or (_Port("", "", NO_PORT),):
                if wanted(p):
                    out.extend(_entry_for(ip, p.port, target) for ip in svc.cluster_ips)
        return out or None

    def reverse(self, ip: str) -> list[str]:
        """The names an address's PTR record points at (absolute), [] when unknown.

        A ClusterIP names its Service; otherwise every ready endpoint with that
        address names itself under its Service (CoreDNS's ``serviceRecordForIP``).
        """
        for namespace, name in self._service_by_ip.get(ip, ()):
            return [f"{name}.{namespace}.svc.{self.zone}."]
        names: dict[str, None] = {}
        for slice_key in self._slices_by_ip.get(ip, ()):
            slice_ = self._slices[slice_key]
            # Only names that resolve forward: the Service must still exist.
            if (slice_key[0], slice_.service) not in self._services:
                continue
            for ep in slice_.endpoints:
                if ep.ip == ip:
                    names[f"{ep.hostname}.{slice_.service}.{slice_key[0]}.svc.{self.zone}."] = None
        return list(names)

    # --- answering -----------------------------------------------------------------------------

    def answer(self, query: dns.message.Message) -> Optional[dns.message.Message]:
        """The response to ``query``, or ``None`` when the name is not ours to answer.

        ``None`` covers names outside the zone and reverse names of addresses
        not held (and non-PTR reverse queries): the caller forwards or refuses
        them. Queries that are not a single IN-class QUERY get an error response.
        ``query`` must not have QR set (dnspython's FormError): the server drops
        such messages before they get here.
        """
        response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        response.flags |= query.flags & dns.flags.CD
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if query.edns > 0:  # RFC 6891: we speak EDNS version 0 only
            response.set_rcode(dns.rcode.BADVERS)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        if question.rdclass != IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if question.name.is_subdomain(self.origin):
            return self._answer_zone(response, question.name, question.rdtype)
        if question.rdtype == PTR:  # in-addr.arpa or ip6.arpa, else None
            return self._answer_reverse(response, question.name)
        return None

    def _answer_reverse(self, response: dns.message.Message,
                        qname: dns.name.Name) -> Optional[dns.message.Message]:
        try:
            ip = _ip(dns.reversename.to_address(qname))
        except Exception:  # not a reverse name, or not a full address: 10.in-addr.arpa
            return None
        names = self.reverse(ip) if ip else []
        if not names:
            return None
        response.flags |= dns.flags.AA
        rrset = self._rrset(response.answer, qname, PTR)
        for name in names:
            rrset.add(dns.rdtypes.ANY.PTR.PTR(IN, PTR, _name(name)))
        return response

    def _labels(self, qname: dns.name.Name) -> list[str]:
        # bytes.lower() folds ASCII only, which is what DNS names compare by.
        return [label.lower().decode("latin-1") for label in qname.relativize(self.origin).labels]

    def _answer_zone(self, response: dns.message.Message, qname: dns.name.Name,
                     qtype: int) -> dns.message.Message:
        response.flags |= dns.flags.AA
        labels = self._labels(qname)
        if qtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            response.flags &= ~dns.flags.AA  # no zone transfers, as CoreDNS without "transfer"
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if labels == ["dns-version"]:
            if qtype == TXT:
                self._rrset(response.answer, qname, TXT, DNS_VERSION_TTL).add(
                    dns.rdtypes.ANY.TXT.TXT(IN, TXT, [DNS_SCHEMA_VERSION]))
            return self._nodata_if_empty(response)
        if labels == ["ns", "dns"]:
            if qtype in (A, AAAA):
                self._add_addresses(response.answer, qname, qtype, self.ns_ips)
            return self._nodata_if_empty(response)
        if not labels and qtype == SOA:
            response.answer.append(self._soa())
            return response
        if not labels and qtype == NS:
            self._add_ns(response, qname)
            return self._nodata_if_empty(response)
        entries = self._lookup(labels)
        if entries is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa())
            return response
        if qtype in (A, AAAA):
            self._add_chased(response.answer, qname, qtype, entries, [qname])
        elif qtype == SRV:
            self._add_srv(response, qname, entries)
        elif qtype == CNAME and entries and entries[0].rdtype == CNAME:
            self._rrset(response.answer, qname, CNAME).add(
                dns.rdtypes.ANY.CNAME.CNAME(IN, CNAME, _name(entries[0].host)))
        return self._nodata_if_empty(response)

    def _nodata_if_empty(self, response: dns.message.Message) -> dns.message.Message:
        if not response.answer:
            response.authority.append(self._soa())
        return response

    def _rrset(self, section: list[dns.rrset.RRset], owner: dns.name.Name, rdtype: int,
               ttl: int | None = None) -> dns.rrset.RRset:
        for rrset in section:
            if rrset.rdtype == rdtype and rrset.name == owner:
                return rrset
        rrset = dns.rrset.RRset(owner, IN, dns.rdatatype.RdataType.make(rdtype))
        rrset.update_ttl(self.ttl if ttl is None else ttl)
        section.append(rrset)
        return rrset

    def _soa(self) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(self.origin, IN, SOA)
        rrset.update_ttl(min(self.ttl, 300))
        # CoreDNS's values: the negative-caching TTL (minimum) is the record TTL.
        rrset.add(dns.rdtypes.ANY.SOA.SOA(
            IN, SOA, _name(f"ns.dns.{self.zone}."), _name(f"hostmaster.{self.zone}."),
            self.serial, 7200, 1800, 86400, self.ttl))
        return rrset

    def _add_addresses(self, section: list[dns.rrset.RRset], owner: dns.name.Name, qtype: int,
                       ips: Iterable[str]) -> None:
        for ip in ips:
            if (AAAA if ":" in ip else A) == qtype:
                self._rrset(section, owner, qtype).add(_address(ip))

    def _add_chased(self, section: list[dns.rrset.RRset], owner: dns.name.Name, qtype: int,
                    entries: list[_Entry], chain: list[dns.name.Name]) -> None:
        """A/AAAA records of ``entries``; an ExternalName's CNAME is followed inside the zone."""
        self._add_addresses(section, owner, qtype, (e.host for e in entries if e.rdtype != CNAME))
        for entry in entries:
            if entry.rdtype != CNAME:
                continue
            target = _name(entry.host)
            if target in chain or len(chain) > MAX_CNAME_CHAIN:
                continue  # a loop or an overlong chain: CoreDNS drops the CNAME too
            self._rrset(section, owner, CNAME).add(
                dns.rdtypes.ANY.CNAME.CNAME(IN, CNAME, target))
            if target.is_subdomain(self.origin):
                found = self._lookup(self._labels(target))
                if found:
                    self._add_chased(section, target, qtype, found, [*chain, target])

    def _add_srv(self, response: dns.message.Message, qname: dns.name.Name,
                 entries: list[_Entry]) -> None:
        entries = [e for e in entries if e.rdtype != CNAME]  # SRV never points at ExternalName
        if not entries:
            return
        # CoreDNS spreads a weight of 100 evenly over what the name resolved to.
        weight = max(1, math.floor(100.0 / (100 * len(entries)) * 100))
        rrset = None
        extra: dict[tuple[str, int], dns.rrset.RRset] = {}  # not _rrset's scan: 100s of targets
        seen: set[tuple[str, int | str]] = set()
        for entry in entries:
            if entry.port == NO_PORT:
                continue
            if (entry.target, entry.port) not in seen:
                seen.add((entry.target, entry.port))
                rrset = rrset or self._rrset(response.answer, qname, SRV)
                rrset.add(dns.rdtypes.IN.SRV.SRV(IN, SRV, 0, weight, entry.port,
                                                 _name(entry.target)))
            if (entry.target, entry.host) not in seen:
                seen.add((entry.target, entry.host))
                owner = (entry.target, entry.rdtype)
                if owner not in extra:
                    extra[owner] = dns.rrset.RRset(_name(entry.target), IN,
                                                   dns.rdatatype.RdataType.make(entry.rdtype))
                    extra[owner].update_ttl(self.ttl)
                    response.additional.append(extra[owner])
                extra[owner].add(_address(entry.host))

    def _add_ns(self, response: dns.message.Message, qname: dns.name.Name) -> None:
        """NS: the Service fronting our own addresses (CoreDNS's ``nsAddrs``)."""
        found: dict[str, list[str]] = {}
        for ip in self.ns_ips:
            for slice_key in self._slices_by_ip.get(ip, ()):
                service_key = (slice_key[0], self._slices[slice_key].service)
                svc = self._services.get(service_key)
                if svc is None or svc.type == "ExternalName":
                    continue
                base = f"{service_key[1]}.{service_key[0]}.svc.{self.zone}."
                if svc.headless:
                    for ep in self._slices[slice_key].endpoints:
                        if ep.ip == ip:
                            found.setdefault(f"{ep.hostname}.{base}", []).append(ip)
                else:
                    found.setdefault(base, []).extend(svc.cluster_ips)
        if not found and self.ns_ips:
            found[f"ns.dns.{self.zone}."] = list(self.ns_ips)
        for name, ips in found.items():
            self._rrset(response.answer, qname, NS).add(
                dns.rdtypes.ANY.NS.NS(IN, NS, _name(name)))
            for ip in dict.fromkeys(ips):
                self._rrset(response.additional, _name(name), AAAA if ":" in ip else A).add(
                    _address(ip))


def _unindex(index: dict[Any, dict[Key, None]], at: Any, key: Key) -> None:
    keys = index.get(at)
    if keys is not None:
        keys.pop(key, None)
        if not keys:
            del index[at]
