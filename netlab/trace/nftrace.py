"""nftables tracing of the probe's flow in every node namespace, read over netlink.

For the duration of one trace, each node namespace gets two small tables of
its own, ``ip netlab-trace-<pid>-<token>`` and ``bridge netlab-trace-…``:

- ``ip``: chains on ``prerouting`` and ``output`` at priority -150 (after
  conntrack at -200, before the proxy's DNAT at -100) mark the connection of
  the tagged probe (``ip id`` and protocol) with a ct mark bit and set
  ``meta nftrace`` on every packet of a connection carrying that bit. The
  ct mark is what catches the replies, whose IP ID is not ours, and the ICMP
  errors and TCP resets that conntrack relates to the probe's connection.
- ``bridge``: ``prerouting`` sets nftrace on the tagged probe (and on the
  reversed address pair, for a reply that is bridged too), and an empty
  ``forward`` chain makes the kernel report the bridging itself, with its
  in and out ports: the hop from one veth to another through ``cni0`` that
  no capture socket can see.

The trace flag lives on the skb and is cleared whenever a packet crosses
into another namespace (veth, VXLAN), which is why every node is traced on
its own. Events are read from a ``NETLINK_NETFILTER`` socket subscribed to
``NFNLGRP_NFTRACE``, opened inside each namespace (``run_in_netns``) before
the rules go in, so no event is missed; ``parse_messages`` decodes them
(pure, unit-tested on synthetic messages). Rule texts are read afterwards
with ``nft -a list chain`` for the few chains that appeared.

Cleanup deletes exactly the tables this trace made, on every exit path; the
pid in their names lets a later trace remove tables whose process was
killed before it could (``sweep_stale``).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from netlab.kernel import netns as nsmod
from netlab.kernel import nft
from netlab.node.proxy.ruleset import DNAT_ELEMENT, DNAT_PREFIX
from netlab.trace.model import Probe, TraceEvent
from netlab.trace.threads import run_all

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NFNLGRP_NFTRACE = 9
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_TRACE = 17
TRACE_MSG_TYPE = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE
NLMSG_HDR = struct.Struct("=IHHII")

# enum nft_trace_attributes
A_TABLE, A_CHAIN, A_RULE_HANDLE, A_TYPE, A_VERDICT, A_ID = 1, 2, 3, 4, 5, 6
A_NETWORK_HEADER, A_TRANSPORT_HEADER, A_IIF, A_OIF, A_MARK, A_POLICY = 8, 9, 10, 12, 14, 16
A_VERDICT_CODE, A_VERDICT_CHAIN = 1, 2
TRACE_TYPES = {1: "policy", 2: "return", 3: "rule"}
VERDICTS = {0: "drop", 1: "accept", 2: "stolen", 3: "queue", 4: "repeat", 5: "stop",
            -1: "continue", -2: "break", -3: "jump", -4: "goto", -5: "return"}
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}

TABLE_PREFIX = "netlab-trace-"
CT_MARK_BIT = 0x00100000  # netlab uses no ct mark elsewhere; one bit, or'ed in
PRIORITY_IP = -150  # after conntrack (-200), before DNAT (-100)
PRIORITY_BRIDGE = -300
RCVBUF = 4 << 20
BRIDGE_FORWARD_CHAIN = "trace_fwd"


def table_name(pid: int | None = None, token: str | None = None) -> str:
    return f"{TABLE_PREFIX}{pid or os.getpid()}-{token or secrets.token_hex(3)}"


def rules_script(table: str, probe: Probe, reply_pair: tuple[str, str] | None) -> str:
    """The two tables as one nft transaction (pure).

    ``reply_pair`` (the reply's source and destination as a bridge would see
    them) traces a bridged reply, which carries no tag and meets no conntrack
    in the bridge family.
    """
    mark = f"0x{CT_MARK_BIT:08x}"
    tagged = f"ip id {probe.ip_id} ip protocol {probe.proto}"
    lines = [f'add table ip {table} {{ comment "netlab trace, pid {os.getpid()}"; }}']
    for chain, hook in (("trace_pre", "prerouting"), ("trace_out", "output")):
        lines += [
            f"add chain ip {table} {chain} {{ type filter hook {hook} priority {PRIORITY_IP}; "
            "policy accept; }",
            f"add rule ip {table} {chain} {tagged} ct mark set ct mark or {mark}",
            f"add rule ip {table} {chain} ct mark and {mark} != 0 meta nftrace set 1",
        ]
    lines += [
        f'add table bridge {table} {{ comment "netlab trace, pid {os.getpid()}"; }}',
        f"add chain bridge {table} trace_pre {{ type filter hook prerouting priority "
        f"{PRIORITY_BRIDGE}; policy accept; }}",
        f"add chain bridge {table} {BRIDGE_FORWARD_CHAIN} {{ type filter hook forward "
        f"priority {PRIORITY_BRIDGE}; policy accept; }}",
        f"add rule bridge {table} trace_pre ether type ip {tagged} meta nftrace set 1",
    ]
    if reply_pair is not None:
        src, dst = reply_pair
        lines.append(f"add rule bridge {table} trace_pre ether type ip ip saddr {src} "
                     f"ip daddr {dst} meta nftrace set 1")
    return "\n".join(lines) + "\n"


# --- decoding ---------------------------------------------------------------------------------

def _attrs(buf: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 0
    while i + 4 <= len(buf):
        length, kind = struct.unpack_from("=HH", buf, i)
        if length < 4:
            break
        out[kind & 0x3FFF] = buf[i + 4:i + length]  # strip NLA_F_NESTED / byte-order flags
        i += (length + 3) & ~3
    return out


def _u32(raw: bytes | None) -> int | None:
    return struct.unpack("!I", raw[:4])[0] if raw and len(raw) >= 4 else None


def _s32(raw: bytes | None) -> int | None:
    return struct.unpack("!i", raw[:4])[0] if raw and len(raw) >= 4 else None


def _str(raw: bytes | None) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace") if raw else ""


def parse_messages(data: bytes, netns: str, seq: int = 0) -> list[TraceEvent]:
    """Decode the NFT_MSG_TRACE messages in one netlink datagram (others are skipped)."""
    events = []
    i = 0
    while i + NLMSG_HDR.size <= len(data):
        length, kind, _, _, _ = NLMSG_HDR.unpack_from(data, i)
        if length < NLMSG_HDR.size:
            break
        body = data[i + NLMSG_HDR.size:i + length]
        i += (length + 3) & ~3
        if kind != TRACE_MSG_TYPE or len(body) < 4:
            continue
        family = FAMILIES.get(body[0], str(body[0]))
        a = _attrs(body[4:])
        verdict = target = None
        if A_VERDICT in a:
            v = _attrs(a[A_VERDICT])
            code = _s32(v.get(A_VERDICT_CODE))
            verdict = VERDICTS.get(code, str(code)) if code is not None else None
            target = _str(v.get(A_VERDICT_CHAIN)) or None
        policy = _u32(a.get(A_POLICY))
        handle = struct.unpack("!Q", a[A_RULE_HANDLE][:8])[0] \
            if len(a.get(A_RULE_HANDLE, b"")) >= 8 else None
        seq += 1
        events.append(TraceEvent(
            netns=netns, trace_id=_u32(a.get(A_ID)) or 0, family=family,
            table=_str(a.get(A_TABLE)), chain=_str(a.get(A_CHAIN)),
            type=TRACE_TYPES.get(_u32(a.get(A_TYPE)) or 0, "unknown"), handle=handle,
            verdict=verdict, target=target,
            policy=VERDICTS.get(policy, str(policy)) if policy is not None else None,
            iif=_u32(a.get(A_IIF)), oif=_u32(a.get(A_OIF)), mark=_u32(a.get(A_MARK)),
            network=a.get(A_NETWORK_HEADER, b""), transport=a.get(A_TRANSPORT_HEADER, b""),
            seq=seq))
    return events


_HANDLE = re.compile(r"^\s*(.*?)\s+# handle (\d+)$")
_CHAIN = re.compile(r"^\tchain (\S+) \{")
_MAP = re.compile(r"^\tmap (\S+) \{")
_ELEMENTS = re.compile(r"elements = \{ (.*?) \}")


def parse_table_listing(text: str) -> dict[str, dict[int, str]]:
    """``nft -a list table`` output -> {chain: {handle: rule text}}, and for each
    of the proxy's DNAT maps (``numgen`` index -> address . port, whose pick a
    trace does not report) {map: {index: 'comment "…" : IP . PORT'}}."""
    out: dict[str, dict[int, str]] = {}
    chain: str | None = None
    map_name = ""
    map_lines: list[str] = []
    for line in text.splitlines():
        if map_name:
            if not line.startswith("\t}"):
                map_lines.append(line.strip())
                continue
            body = _ELEMENTS.search(" ".join(map_lines))
            for element in DNAT_ELEMENT.finditer(body.group(1) if body else ""):
                out[map_name][int(element.group(1))] = element.group(2).strip()
            map_name = ""
            continue
        dnat = _MAP.match(line)
        if dnat and dnat.group(1).startswith(DNAT_PREFIX):
            map_name, map_lines = dnat.group(1), []
            out[map_name] = {}
            continue
        m = _CHAIN.match(line)
        if m:
            chain = m.group(1)
            out[chain] = {}
            continue
        if line == "\t}":
            chain = None
            continue
        m = _HANDLE.match(line)
        if chain is not None and m and line.startswith("\t\t"):
            out[chain][int(m.group(2))] = m.group(1)
    return out


# --- the live side ------------------------------------------------------------------------------

def _open_trace_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE
        sock.bind((0, 0))
        sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTRACE)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(netns: str) -> list[str]:
    """Delete trace tables left in ``netns`` by traces whose process is gone."""
    removed = []
    listing = nft.run(netns, "list tables")
    for family, name in re.findall(r"^table (\S+) (\S+)$", listing, re.M):
        m = re.match(re.escape(TABLE_PREFIX) + r"(\d+)-", name)
        if m and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(nft.NftError):
                nft.run(netns, f"delete table {family} {name}")
                removed.append(f"{family} {name}")
    return removed


@dataclass
class _Node:
    netns: str
    sock: socket.socket
    installed: bool = False


class NfTrace:
    """Trace rules and event sockets in a set of node namespaces."""

    def __init__(self, namespaces: Iterable[str], probe: Probe,
                 reply_pair: tuple[str, str] | None = None):
        self.table = table_name()
        self.script = rules_script(self.table, probe, reply_pair)
        self.nodes: list[_Node] = []
        self.errors: dict[str, str] = {}
        self.events: list[TraceEvent] = []
        self._seq = 0
        self._names = list(dict.fromkeys(namespaces))

    def start(self) -> None:
        """Subscribe first, then install: events of the first packet are never missed."""
        results: dict[str, _Node] = {}

        def setup(name: str):
            def task() -> None:
                try:
                    with contextlib.suppress(nft.NftError, OSError):
                        sweep_stale(name)
                    node = _Node(name, nsmod.run_in_netns(name, _open_trace_socket))
                    results[name] = node
                    nft.apply(name, self.script)
                    node.installed = True
                except Exception as exc:  # this node goes untraced; the trace says so
                    self.errors[name] = str(exc)
            return task

        try:
            run_all([setup(n) for n in self._names])
        finally:
            self.nodes = [results[n] for n in self._names if n in results]

    @property
    def traced(self) -> list[str]:
        return [n.netns for n in self.nodes if n.installed]

    def drain(self) -> list[TraceEvent]:
        for node in self.nodes:
            while True:
                try:
                    data = node.sock.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # ENOBUFS: events were lost; say so
                    self.errors.setdefault(node.netns, f"trace events lost: {exc}")
                    continue
                new = parse_messages(data, node.netns, self._seq)
                self._seq += len(new)
                self.events.extend(new)
        return self.events

    def rule_texts(self) -> dict[tuple[str, str, str, str], dict[int, str]]:
        """{(netns, family, table, chain): {handle: text}} for the tables events named
        (one listing per node and table)."""
        wanted = {(e.netns, e.family, e.table) for e in self.events
                  if e.handle and e.table != self.table}
        out: dict[tuple[str, str, str, str], dict[int, str]] = {}
        for netns, family, table in sorted(wanted):
            try:
                listing = _list_with_handles(netns, family, table)
            except (nft.NftError, OSError):
                continue  # the table went away meanwhile: events still name the chains
            for chain, rules in parse_table_listing(listing).items():
                out[(netns, family, table, chain)] = rules
        return out

    def interface_names(self) -> dict[str, dict[int, str]]:
        out = {}
        for node in self.nodes:
            with contextlib.suppress(OSError):
                out[node.netns] = nsmod.run_in_netns(
                    node.netns, lambda: {i: n for i, n in socket.if_nameindex()})
        return out

    def close(self) -> None:
        """Remove the tables and close the sockets; safe to call twice."""
        for node in self.nodes:
            if node.installed:
                for family in ("ip", "bridge"):
                    with contextlib.suppress(nft.NftError, OSError):
                        nft.delete_table(node.netns, self.table, family)
                node.installed = False
            with contextlib.suppress(OSError):
                node.sock.close()
            nft.forget(node.netns)  # netlab.kernel.nft's cached context pins the namespace
        self.nodes = []

    def __enter__(self) -> NfTrace:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _list_with_handles(netns: str, family: str, table: str) -> str:
    """``nft -a list table``: handles are what trace events name rules by. The
    library context in ``netlab.kernel.nft`` prints no handles, so this runs
    the command, joining the namespace between fork and exec as that module does."""
    import shutil
    import subprocess

    binary = shutil.which("nft") or "/usr/sbin/nft"
    proc = subprocess.run([binary, "-a", "list", "table", family, table],
                          capture_output=True, text=True, check=False, timeout=10,
                          preexec_fn=lambda: nsmod.join_netns(netns))
    if proc.returncode != 0:
        raise nft.NftError(netns, proc.stderr)
    return proc.stdout
