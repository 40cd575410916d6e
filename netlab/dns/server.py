"""The cluster DNS server: :class:`~netlab.dns.records.ClusterRecords` on UDP and TCP port 53.

:func:`start_dns_server` binds one UDP socket and one TCP listener (same port,
also when asked for port 0) on the asyncio loop it is awaited in. Each query is
parsed with dnspython and answered by ``records.answer``; names it returns
``None`` for (outside the zone, unknown reverse addresses) are forwarded to the
``upstream`` resolver when one is configured, else refused. Nothing is ever
sent anywhere but to the client and that upstream. The component
(``netlab/dns/__main__.py``) runs this next to the informers that feed the
records, and exports the counters kept here (modelled on CoreDNS's
``coredns_dns_requests_total`` and ``coredns_dns_responses_total``) as metrics.

What a DNS server owes its clients on the wire, and how it is met here:

- UDP answers fit 512 bytes, or the client's EDNS payload size (capped at
  ``MAX_UDP_PAYLOAD``). Too big: the additional section goes first (no TC, as
  RFC 2181 allows); still too big: header and question only, with TC, so the
  client retries over TCP.
- TCP: 2-byte length framing, any number of queries per connection, an idle
  timeout, and a cap on connections (beyond it, new ones are closed at once).
- Garbage is never fatal: fewer than 12 bytes, or a message with QR set
  (someone's response, which must not be answered or we could loop with
  another server), is dropped; an unparsable message with a readable header
  gets FORMERR, a non-QUERY opcode NOTIMP. Every callback catches and logs
  (``netlab.dns``) instead of raising into the loop.
- Forwarding: UDP, then TCP if the upstream truncated, within
  ``forward_timeout`` overall (SERVFAIL past it); at most ``max_forwards`` in
  flight, beyond that REFUSED (CoreDNS's ``max_concurrent``).

Answers from the records are a pure function of the query's bytes (its id
aside) and the records' state, so they are cached by those bytes and dropped
whenever ``records.serial`` moves: a burst of the same few names costs a dict
lookup each. Forwarded answers are never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
from collections import Counter
from typing import Optional, Union

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype

from netlab.dns.records import OUR_PAYLOAD, ClusterRecords

log = logging.getLogger("netlab.dns")

UDP_PAYLOAD = 512  # without EDNS (RFC 1035)
MAX_UDP_PAYLOAD = 4096  # the most we send over UDP whatever the client advertises
TCP_PAYLOAD = 65535
HEADER = 12
CACHE_ENTRIES = 10_000  # cleared when full: a flood of distinct names cannot grow memory
MAX_SEND_BUFFER = 1 << 20  # UDP bytes queued in asyncio before we drop answers
# The UDP socket's receive buffer: a burst waits there while the loop catches up. The
# default (~200 KiB) holds a few hundred small datagrams; this holds thousands.
RECEIVE_BUFFER = 4 << 20
# Query types counted by name; others count as "other" so a fuzzer cannot mint labels.
COUNTED_TYPES = frozenset(dns.rdatatype.from_text(t) for t in (
    "A", "AAAA", "ANY", "AXFR", "CNAME", "DNSKEY", "DS", "HTTPS", "IXFR", "MX", "NS", "NSEC",
    "NSEC3", "PTR", "RRSIG", "SOA", "SRV", "SVCB", "TXT"))

Reply = Union[bytes, dns.message.Message, None]  # answer now, forward this query, drop


def parse_upstream(upstream: str) -> tuple[str, int]:
    """``"10.0.0.2"``, ``"10.0.0.2:5353"`` or ``"[fd00::1]:53"`` as (address, port);
    ValueError for anything else (a host name would need a resolver of its own)."""
    text = upstream.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    ipaddress.ip_address(host)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad upstream port in {upstream!r}")
    return host, int(port)


def _type_label(rdtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype)) \
        if rdtype in COUNTED_TYPES else "other"


def _header_reply(data: bytes, rcode: int) -> bytes:
    """A bare response to a message we will not parse: its id, opcode and RD, no sections."""
    flags = int.from_bytes(data[2:4], "big")
    flags = dns.flags.QR | (flags & (0xF << 11)) | (flags & dns.flags.RD) | rcode
    return data[:2] + flags.to_bytes(2, "big") + bytes(8)


def _udp_limit(query: dns.message.Message) -> int:
    if query.edns < 0:
        return UDP_PAYLOAD
    return max(UDP_PAYLOAD, min(query.payload, MAX_UDP_PAYLOAD))


def to_wire_within(response: dns.message.Message, limit: int) -> bytes:
    """``response`` in at most ``limit`` bytes: without its additional section if it
    must, else as header and question with TC set."""
    with contextlib.suppress(dns.exception.TooBig):
        return response.to_wire(max_size=limit)
    if response.additional:
        response.additional = []
        with contextlib.suppress(dns.exception.TooBig):
            return response.to_wire(max_size=limit)
    response.answer, response.authority, response.additional = [], [], []
    response.flags |= dns.flags.TC
    return response.to_wire(max_size=limit)


class DNSServer:
    """A running server: its address, its counters, and how to stop it.

    ``requests_total[(proto, qtype)]``, ``responses_total[rcode]`` (both for
    every parsed query, like CoreDNS's), ``dropped_total[reason]`` for
    messages given no answer, ``forwards_total[outcome]`` for forwarded ones.
    """

    def __init__(self, records: ClusterRecords, *, upstream: Optional[str] = None,
                 forward_timeout: float = 2.0, tcp_idle_timeout: float = 10.0,
                 max_tcp_connections: int = 128, max_forwards: int = 256) -> None:
        self.records = records
        self.upstream = parse_upstream(upstream) if upstream else None
        self.forward_timeout = forward_timeout
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.max_forwards = max_forwards
        self.host = ""
        self.port = 0
        self.requests_total: Counter[tuple[str, str]] = Counter()
        self.responses_total: Counter[str] = Counter()
        self.dropped_total: Counter[str] = Counter()
        self.forwards_total: Counter[str] = Counter()
        self.cache_hits_total = 0
        self._cache: dict[tuple[str, bytes], tuple[bytes, str, str]] = {}
        self._cache_serial = records.serial
        self._udp: Optional[asyncio.DatagramTransport] = None
        self._tcp: Optional[asyncio.Server] = None
        self._tasks: set[asyncio.Task] = set()  # TCP connections and forwards, for close()
        self._tcp_connections = 0
        self._forwards = 0
        self._closed = False

    # --- one message in, one out ---------------------------------------------------------------

    def handle(self, data: bytes, proto: str) -> Reply:
        """What to do with one message received over ``proto`` ("udp" or "tcp"):
        the response's bytes, a parsed query to forward, or None to drop it."""
        if len(data) < HEADER:
            self.dropped_total["short"] += 1
            return None
        flags = int.from_bytes(data[2:4], "big")
        if flags & dns.flags.QR:
            self.dropped_total["not a query"] += 1
            return None
        if self.records.serial != self._cache_serial:
            self._cache.clear()
            self._cache_serial = self.records.serial
        cached = self._cache.get((proto, data[2:]))
        if cached is not None:
            wire, qtype, rcode = cached
            self.cache_hits_total += 1
            self._count(proto, qtype, rcode)
            return data[:2] + wire
        if (flags >> 11) & 0xF != dns.opcode.QUERY:
            self._count(proto, "other", "NOTIMP")
            return _header_reply(data, dns.rcode.NOTIMP)
        try:
            query = dns.message.from_wire(data)
        except Exception as exc:  # every way a message can be malformed
            log.debug("FORMERR for a %d-byte message over %s: %s", len(data), proto, exc)
            self._count(proto, "other", "FORMERR")
            return _header_reply(data, dns.rcode.FORMERR)
        qtype = _type_label(query.question[0].rdtype) if query.question else "other"
        try:
            response = self.records.answer(query)
        except Exception:
            log.exception("answering %s failed", query.question[:1])
            self._count(proto, qtype, "SERVFAIL")
            return _header_reply(data, dns.rcode.SERVFAIL)
        if response is None:
            if self.upstream is not None:
                self.requests_total[(proto, qtype)] += 1  # its rcode is counted on return
                return query
            response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
            response.set_rcode(dns.rcode.REFUSED)
        try:
            wire = to_wire_within(response, self._limit(query, proto))
        except Exception:
            log.exception("rendering the answer to %s failed", query.question[:1])
            self._count(proto, qtype, "SERVFAIL")
            return _header_reply(data, dns.rcode.SERVFAIL)
        rcode = dns.rcode.to_text(response.rcode())
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        self._cache[(proto, data[2:])] = (wire[2:], qtype, rcode)
        self._count(proto, qtype, rcode)
        return wire

    def _count(self, proto: str, qtype: str, rcode: str) -> None:
        self.requests_total[(proto, qtype)] += 1
        self.responses_total[rcode] += 1

    @staticmethod
    def _limit(query: dns.message.Message, proto: str) -> int:
        return _udp_limit(query) if proto == "udp" else TCP_PAYLOAD

    async def forward(self, query: dns.message.Message, proto: str) -> bytes:
        """The upstream's answer to ``query``, or SERVFAIL (REFUSED when too many are
        in flight), as bytes for the client."""
        assert self.upstream is not None
        host, port = self.upstream
        client_id = query.id
        response: Optional[dns.message.Message] = None
        if self._forwards >= self.max_forwards:
            outcome, rcode = "over limit", dns.rcode.REFUSED
        else:
            self._forwards += 1
            # A fresh id upstream: the client's is guessable by whoever sent the query.
            query.id = random.getrandbits(16)
            try:
                response = await asyncio.wait_for(self._ask(query, host, port),
                                                  self.forward_timeout)
                outcome, rcode = "answered", response.rcode()
            except (asyncio.TimeoutError, dns.exception.Timeout):
                outcome, rcode = "timeout", dns.rcode.SERVFAIL
            except Exception as exc:  # unreachable, reset, an unparsable answer
                log.debug("forwarding to %s:%d failed: %r", host, port, exc)
                outcome, rcode = "error", dns.rcode.SERVFAIL
            finally:
                self._forwards -= 1
                query.id = client_id
        self.forwards_total[outcome] += 1
        self.responses_total[dns.rcode.to_text(rcode)] += 1
        if response is not None:
            response.id = client_id
            try:
                return to_wire_within(response, self._limit(query, proto))
            except Exception:  # e.g. a TSIG we cannot re-sign: SERVFAIL rather than nothing
                log.debug("relaying the upstream's answer failed", exc_info=True)
                self.responses_total[dns.rcode.to_text(rcode)] -= 1
                self.responses_total["SERVFAIL"] += 1
        failed = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        failed.set_rcode(rcode if response is None else dns.rcode.SERVFAIL)
        return to_wire_within(failed, self._limit(query, proto))

    async def _ask(self, query: dns.message.Message, host: str, port: int) -> dns.message.Message:
        response = await dns.asyncquery.udp(query, host, port=port, ignore_unexpected=True)
        if response.flags & dns.flags.TC:
            response = await dns.asyncquery.tcp(query, host, port=port)
        return response

    # --- transports ----------------------------------------------------------------------------

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _udp_received(self, data: bytes, addr: tuple) -> None:
        try:
            reply = self.handle(data, "udp")
        except Exception:
            log.exception("handling a UDP message from %s failed", addr)
            return
        if isinstance(reply, dns.message.Message):
            self._spawn(self._udp_forward(reply, addr))
        elif reply is not None:
            self._udp_send(reply, addr)

    async def _udp_forward(self, query: dns.message.Message, addr: tuple) -> None:
        try:
            self._udp_send(await self.forward(query, "udp"), addr)
        except Exception:
            log.exception("forwarding for %s failed", addr)

    def _udp_send(self, wire: bytes, addr: tuple) -> None:
        transport = self._udp
        if transport is None or transport.is_closing():
            return
        # asyncio's UDP transport has it (``_SelectorDatagramTransport``); the abstract
        # DatagramTransport of the stubs does not declare it.
        buffered = getattr(transport, "get_write_buffer_size", lambda: 0)()
        if buffered > MAX_SEND_BUFFER:
            self.dropped_total["send buffer full"] += 1
            return
        transport.sendto(wire, addr)

    async def _tcp_connection(self, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        if self._closed or self._tcp_connections >= self.max_tcp_connections:
            self.dropped_total["closing" if self._closed else "tcp connection limit"] += 1
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._tcp_connections += 1
        try:
            await self._tcp_serve(reader, writer)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, OSError):
            pass  # the client left, stalled or sent a short frame: just close
        except asyncio.CancelledError:
            pass  # close(): connections end with the server
        except Exception:
            log.exception("a TCP connection failed")
        finally:
            self._tcp_connections -= 1
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _tcp_serve(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        idle = self.tcp_idle_timeout
        while True:
            try:
                head = await asyncio.wait_for(reader.readexactly(2), idle)
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    self.dropped_total["truncated frame"] += 1
                return
            data = await asyncio.wait_for(reader.readexactly(int.from_bytes(head, "big")), idle)
            reply = self.handle(data, "tcp")
            if isinstance(reply, dns.message.Message):
                reply = await self.forward(reply, "tcp")
            if reply is None:
                continue
            writer.write(len(reply).to_bytes(2, "big") + reply)
            await asyncio.wait_for(writer.drain(), idle)

    # --- life cycle ----------------------------------------------------------------------------

    async def _bind(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        # Port 0: the UDP socket picks a port and TCP takes the same one, retrying
        # with another if something already holds that port over TCP.
        for attempt in range(20):
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UDPProtocol(self), local_addr=(host, port))
            _grow_receive_buffer(self._udp.get_extra_info("socket"))
            bound = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._tcp_connection, host, bound)
            except OSError:
                self._udp.close()
                self._udp = None
                if port or attempt == 19:
                    raise
                continue
            self.host, self.port = host, bound
            return

    def close(self) -> None:
        """Stop listening and end open connections and forwards."""
        self._closed = True
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` has finished: sockets and tasks are gone."""
        if self._tcp is not None:
            await self._tcp.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _grow_receive_buffer(sock: socket.socket) -> None:
    # SO_RCVBUFFORCE passes net.core.rmem_max with CAP_NET_ADMIN (netlab's components
    # have it); without, SO_RCVBUF gets as much as rmem_max allows. Either may fail.
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
            return
        except OSError:
            continue


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.server._udp_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier answers (a client that went away): nothing to do.
        log.debug("UDP socket error: %s", exc)


async def start_dns_server(records: ClusterRecords, host: str, port: int, *,
                           upstream: Optional[str] = None, forward_timeout: float = 2.0,
                           tcp_idle_timeout: float = 10.0, max_tcp_connections: int = 128,
                           max_forwards: int = 256) -> DNSServer:
    """Serve ``records`` on ``host``:``port`` over UDP and TCP (``port`` 0: a free
    one, the same for both; read it from ``.port``). ``upstream`` ("ip" or
    "ip:port") answers names outside the zone; without it they are REFUSED."""
    server = DNSServer(records, upstream=upstream, forward_timeout=forward_timeout,
                       tcp_idle_timeout=tcp_idle_timeout,
                       max_tcp_connections=max_tcp_connections, max_forwards=max_forwards)
    await server._bind(host, port)
    log.info("serving %s on %s port %d (udp, tcp), upstream %s", records.zone, server.host,
             server.port, upstream or "none")
    return server
