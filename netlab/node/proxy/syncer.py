"""The proxy's sync engine: Services and EndpointSlices in, nftables tables out.

A :class:`Proxier` is told about Services and EndpointSlices (``update_service``,
``delete_service``, ``update_endpoint_slice``, ``delete_endpoint_slice``, in the
API's own dict shapes) and converges its node's table with ``sync()``. Slices
are kept by the Service they belong to (their ``kubernetes.io/service-name``
label) and merged when that Service is resolved (``endpointslices``), so a
slice change makes only its Service dirty. It does not
talk to the API: a watch loop feeds it and calls ``sync()`` when something
changed, and at least every few seconds (the way kube-proxy's informers and
its BoundedFrequencyRunner drive ``syncProxyRules``).

How a sync works:

- **Full** (the first sync, after any failure, or on ``force_full``): the whole
  table is rebuilt in one transaction (``ruleset.full_ruleset``), spread over
  one shard table per ``ruleset.SHARD_PORTS`` service ports.
- **Re-sharding**: when partial syncs have grown the Services to twice what
  the shards were sized for, the next sync is full, which sizes them again (a
  commit costs in proportion to the size of the shard it changes).
- **Partial** otherwise: only the Services touched since the last sync are
  rewritten (``ruleset.partial_update``), again as one transaction. What the
  table holds is known exactly (``programmed``), so a transaction that fails
  means the table is not what we think, and the next sync is full.
- **Rate-limited** as upstream's BoundedFrequencyRunner: one sync per
  ``min_interval`` on average, with a ``burst`` of 2 (upstream's ``burstSyncs``),
  so a change after a quiet spell is applied at once even right after another
  sync (a new Service, then its first ready endpoint); a sync beyond that does
  nothing and reports how long to wait, so changes arriving in a stream are
  applied together.
- **Stale UDP flows**: after a transaction commits, conntrack entries that a
  UDP Service DNATed to an endpoint it no longer has are deleted
  (``netlab.kernel.conntrack``); the endpoint's flows through other Services
  stay.
- **Garbage**: objects a partial sync emptied are deleted by a separate
  transaction (raw netlink, ``nft.delete_objects``), at once while the table
  is small and otherwise when the proxy has been idle for ``gc_delay``
  seconds (see ``ruleset`` for why deletes are deferred at all).
- **The node**: before the first sync, br_netfilter is turned on and the
  Service CIDR made local in the node namespace (see ``hostnet``). Hairpin mode
  on the bridge's ports is the pod network's (``netlab.node.cni``, set at ADD).

Every sync is logged with its kind, size and duration. ``cleanup()`` deletes
the tables (and the local route), which is what a clean exit does;
``netlab down`` deletes the namespaces, so nothing is left either way.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from netlab.node.proxy import endpointslices, model, ruleset
from netlab.node.proxy.model import ServicePort, ServicePortName
from netlab.node.proxy.ruleset import Garbage, ProxyConfig
from netlab.node.syncloop import RateLimited

log = logging.getLogger("netlab.proxy")

Key = tuple[str, str]  # (namespace, name) of a Service, which its slices are labelled with


def proxy_tables(netns: str, table: str = ruleset.TABLE, backend: str = "auto") -> list[str]:
    """The proxy's tables in ``netns``: the main one first, then its shards."""
    from netlab.kernel import nft

    shard = re.compile(re.escape(table) + r"(?:-(\d+))?")
    found = {}
    for name in nft.list_tables(netns, ruleset.FAMILY, backend):
        m = shard.fullmatch(name)
        if m:
            found[int(m.group(1) or 0)] = name
    return [found[k] for k in sorted(found)]


def list_proxy_tables(netns: str, table: str = ruleset.TABLE,
                      backend: str = "auto") -> str | None:
    """``nft list table`` of every proxy table, one after the other; None when
    there is none. ``describe`` reads the result as one table."""
    from netlab.kernel import nft

    texts = [nft.list_table(netns, name, ruleset.FAMILY, backend)
             for name in proxy_tables(netns, table, backend)]
    found = [text for text in texts if text is not None]
    return "".join(found) if found else None


class ProxyKernel(Protocol):
    """The side effects a Proxier needs; :class:`NodeKernel` is the real one."""

    def prepare(self) -> None: ...
    def apply(self, script: str) -> None: ...
    def list_table(self) -> str | None: ...
    def delete_table(self) -> bool: ...
    def flush_udp(self, pairs: list[tuple[tuple[str | None, int], tuple[str, int]]]) -> int: ...
    def collect(self, garbage: Garbage) -> int: ...
    def release(self) -> None: ...


class NodeKernel:
    """The proxy's side effects in one node namespace: nft, conntrack, route, bridge."""

    def __init__(self, netns: str, cfg: ProxyConfig, bridge: str | None = "cni0",
                 backend: str = "auto"):
        self.netns, self.cfg, self.bridge, self.backend = netns, cfg, bridge, backend

    def _in_netns(self, fn: Callable[[], Any]) -> Any:
        from netlab.kernel.netns import run_in_netns

        return run_in_netns(self.netns, fn)

    def prepare(self) -> None:
        from netlab.node.proxy import hostnet

        def setup() -> None:
            if self.bridge:
                hostnet.enable_bridge_netfilter()
            if self.cfg.service_cidr:
                hostnet.ensure_local_route(self.cfg.service_cidr)

        self._in_netns(setup)

    def apply(self, script: str) -> None:
        from netlab.kernel import nft

        nft.apply(self.netns, script, self.backend)

    def list_table(self) -> str | None:
        return list_proxy_tables(self.netns, self.cfg.table, self.backend)

    def delete_table(self) -> bool:
        from netlab.kernel import nft
        from netlab.node.proxy import hostnet

        tables = proxy_tables(self.netns, self.cfg.table, self.backend)
        nft.apply(self.netns, "".join(f"delete table {ruleset.FAMILY} {t}\n" for t in tables),
                  self.backend)
        deleted = bool(tables)
        if self.cfg.service_cidr:
            cidr = self.cfg.service_cidr
            self._in_netns(lambda: hostnet.remove_local_route(cidr))
        return deleted

    def flush_udp(self, pairs: list[tuple[tuple[str | None, int], tuple[str, int]]]) -> int:
        from netlab.kernel import conntrack

        return conntrack.flush_translated(self.netns, pairs, "udp")

    def collect(self, garbage: Garbage) -> int:
        from netlab.kernel import nft

        return nft.delete_objects_in(self.netns, {
            table: nft.TableObjects(g.elements, g.sets, g.chains)
            for table, g in garbage.by_table().items()}, ruleset.FAMILY)

    def release(self) -> None:
        from netlab.kernel import nft

        nft.forget(self.netns)


@dataclass
class SyncResult:
    kind: str  # "full", "partial", "none" (nothing to do) or "deferred" (rate limit)
    ok: bool = True
    ports: int = 0  # service ports written
    bytes: int = 0  # size of the transaction
    seconds: float = 0.0
    retry_in: float = 0.0  # for "deferred": when a sync will be allowed
    flushed: int = 0  # stale UDP conntrack entries deleted
    collected: int = 0  # garbage objects deleted
    error: str = ""
    skipped: list[str] = field(default_factory=list)  # ports clashing with others


class Proxier(RateLimited):
    """kube-proxy's sync engine for one node namespace; see the module docstring."""

    def __init__(self, netns: str, node_ips: Iterable[str] | None, pod_cidr: str, *,
                 service_cidr: str | None = None, local_pod_cidr: str | None = None,
                 min_interval: float = 1.0, burst: int = 2, gc_delay: float = 10.0,
                 gc_inline_objects: int = 5000, bridge: str | None = "cni0",
                 table: str = ruleset.TABLE, backend: str = "auto",
                 kernel: ProxyKernel | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.cfg = ProxyConfig(pod_cidr=pod_cidr,
                               node_ips=tuple(node_ips) if node_ips is not None else None,
                               service_cidr=service_cidr, local_pod_cidr=local_pod_cidr,
                               table=table)
        self.netns = netns
        self.kernel: ProxyKernel = kernel or NodeKernel(netns, self.cfg, bridge, backend)
        self.min_interval, self.burst, self.gc_delay = min_interval, burst, gc_delay
        self.gc_inline_objects = gc_inline_objects
        self.clock = clock
        self.services: dict[Key, Mapping[str, Any]] = {}
        self.slices = endpointslices.SliceCache()
        self.dirty: set[Key] = set()
        self.programmed: dict[ServicePortName, ServicePort] = {}
        self.garbage = Garbage()
        self.need_full = True
        self._owner: dict[str, ServicePortName] = {}  # map key -> port holding it
        self._objects = 0  # chains and sets the table holds for Services
        self._last_change = clock()
        self._prepared = False

    # --- input: the API's objects --------------------------------------------------------------

    def update_service(self, service: Mapping[str, Any]) -> None:
        key = model.service_key(service)
        self.services[key] = service
        self._touch(key)

    def delete_service(self, service: Mapping[str, Any] | Key) -> None:
        key = service if isinstance(service, tuple) else model.service_key(service)
        if self.services.pop(key, None) is not None:
            self._touch(key)

    def update_endpoint_slice(self, slice_: Mapping[str, Any]) -> None:
        for key in self.slices.update(slice_):
            self._touch(key)

    def delete_endpoint_slice(self, slice_: Mapping[str, Any]) -> None:
        for key in self.slices.delete(slice_):
            self._touch(key)

    def _touch(self, key: Key) -> None:
        self.dirty.add(key)
        self._last_change = self.clock()

    @property
    def pending(self) -> bool:
        return bool(self.dirty) or self.need_full

    # --- sync ----------------------------------------------------------------------------------

    def sync(self, force: bool = False) -> SyncResult:
        """Converge the table with what the proxy was told; see the module docstring."""
        wait = 0.0 if force else self.due_in()
        if wait > 0 and self.pending:
            return SyncResult(kind="deferred", retry_in=wait)
        if not self._prepared:
            self.kernel.prepare()
            self._prepared = True
        if self.need_full:
            result = self._full()
        elif self.dirty:
            result = self._partial()
        else:
            result = SyncResult(kind="none")
        if result.kind != "none":
            self._count_sync()
        if result.ok and self.garbage and self._gc_due(result):
            result.collected = self.collect_garbage()
        return result

    def force_full(self) -> None:
        self.need_full = True

    def _desired(self, keys: Iterable[Key]) -> dict[ServicePortName, ServicePort]:
        out: dict[ServicePortName, ServicePort] = {}
        for key in keys:
            service = self.services.get(key)
            if service is not None:
                for sp in self._resolve(key, service):
                    out[sp.name] = sp
        return out

    def _resolve(self, key: Key, service: Mapping[str, Any]) -> list[ServicePort]:
        """A Service's ports with their endpoints (the one place the source is read)."""
        return endpointslices.resolve_slices(service, self.slices.slices(key))

    def _full(self) -> SyncResult:
        started = self.clock()
        wanted, clashing = ruleset.dedupe(self._desired(self.services).values())
        cfg = dataclasses.replace(self.cfg, shards=ruleset.shard_count(len(wanted)))
        script = ruleset.full_ruleset(cfg, wanted)
        previous = self.programmed
        try:
            self.kernel.apply(script)
        except Exception as exc:  # nft refused it; retried as a full sync
            return self._failed("full", script, started, exc)
        self.cfg = cfg
        self.programmed = {sp.name: sp for sp in wanted}
        self._owner = {k: sp.name for sp in wanted for k in _keys(sp)}
        self._objects = sum(_object_count(sp) for sp in wanted)
        self.garbage = Garbage()
        self.need_full = False
        self.dirty.clear()
        flushed = self._after_commit(previous, self.programmed)
        return self._done("full", script, started, len(wanted), flushed,
                          [str(sp.name) for sp in clashing])

    def _partial(self) -> SyncResult:
        started = self.clock()
        keys = set(self.dirty)
        wanted = self._desired(keys)
        changes: dict[ServicePortName, ruleset.Change] = {}
        for name, sp in self.programmed.items():
            if name.service in keys and name not in wanted:
                changes[name] = (sp, None)
        taken: set[str] = set()
        skipped = []
        for name, sp in sorted(wanted.items()):
            old = self.programmed.get(name)
            # Keys held by ports of the Services being rewritten are free to move.
            clash = [k for k in _keys(sp) if k in taken or (
                k in self._owner and self._owner[k].service not in keys)]
            if clash:  # another Service holds its ClusterIP:port or NodePort
                skipped.append(str(name))
                if old is not None:
                    changes[name] = (old, None)
                continue
            taken.update(_keys(sp))
            if old != sp:
                changes[name] = (old, sp)
        script, garbage = ruleset.partial_update(self.cfg, changes, self.garbage)
        if not script:
            self.dirty -= keys
            return SyncResult(kind="none", skipped=skipped)
        try:
            self.kernel.apply(script)
        except Exception as exc:
            return self._failed("partial", script, started, exc)
        before = {name: old for name, (old, _) in changes.items() if old is not None}
        after = {name: new for name, (_, new) in changes.items() if new is not None}
        for name, old in before.items():
            self._objects -= _object_count(old)
            for k in _keys(old):
                if self._owner.get(k) == name:
                    del self._owner[k]
            del self.programmed[name]
        for name, new in after.items():
            self.programmed[name] = new
            self._objects += _object_count(new)
            self._owner.update({k: name for k in _keys(new)})
        self.garbage = garbage
        self.dirty -= keys
        if (self.cfg.shards < ruleset.MAX_SHARDS
                and ruleset.shard_count(len(self.programmed)) >= 2 * self.cfg.shards):
            log.info("%d service ports on %d shard tables: the next sync re-shards them",
                     len(self.programmed), self.cfg.shards)
            self.need_full = True
        flushed = self._after_commit(before, after)
        return self._done("partial", script, started, len(changes), flushed, skipped)

    def _after_commit(self, before: Mapping[ServicePortName, ServicePort],
                      after: Mapping[ServicePortName, ServicePort]) -> int:
        """Side effects that must follow a committed transaction: stale UDP flows go."""
        stale: set[tuple[tuple[str | None, int], tuple[str, int]]] = set()
        for name, old in before.items():
            if old.protocol != "udp":
                continue
            new = after.get(name)
            kept = set(new.endpoints) if new is not None else set()
            for ep in old.endpoints:
                if ep in kept:
                    continue
                stale.add(((old.cluster_ip, old.port), (ep.ip, ep.port)))
                if old.node_port:
                    stale.add(((None, old.node_port), (ep.ip, ep.port)))
        flushed = 0
        if stale:
            try:
                flushed = self.kernel.flush_udp(sorted(stale, key=str))
            except Exception as exc:  # stale flows time out on their own eventually
                log.warning("could not flush conntrack entries of removed endpoints: %s", exc)
        return flushed

    def _failed(self, kind: str, script: str, started: float, exc: Exception) -> SyncResult:
        self.need_full = True
        seconds = self.clock() - started
        log.error("%s sync failed after %.1f ms (%d bytes); the next sync is full: %s",
                  kind, seconds * 1000, len(script), exc)
        return SyncResult(kind=kind, ok=False, bytes=len(script), seconds=seconds,
                          error=str(exc))

    def _done(self, kind: str, script: str, started: float, ports: int, flushed: int,
              skipped: list[str]) -> SyncResult:
        seconds = self.clock() - started
        for name in skipped:
            log.warning("service port %s not programmed: its ClusterIP:port or NodePort is "
                        "already taken by another Service", name)
        log.info("%s sync: %d service ports, %d lines, %d bytes, %.1f ms; %d programmed%s",
                 kind, ports, script.count("\n"), len(script), seconds * 1000,
                 len(self.programmed), f"; flushed {flushed} UDP flows" if flushed else "")
        return SyncResult(kind=kind, ports=ports, bytes=len(script), seconds=seconds,
                          flushed=flushed, skipped=skipped)

    # --- garbage -------------------------------------------------------------------------------

    def _gc_due(self, result: SyncResult) -> bool:
        if self._objects + len(self.garbage) <= self.gc_inline_objects:
            return True  # small table: deleting costs little, do it now
        return not self.pending and self.clock() - self._last_change >= self.gc_delay

    def collect_garbage(self) -> int:
        """Delete what earlier partial syncs emptied; return how many objects went."""
        if not self.garbage:
            return 0
        started = self.clock()
        try:
            count = self.kernel.collect(self.garbage)
        except Exception as exc:
            self.need_full = True  # the table is not what we think: rebuild it
            log.error("garbage collection failed; the next sync is full: %s", exc)
            return 0
        self.garbage = Garbage()
        log.info("collected %d unused objects in %.1f ms", count, (self.clock() - started) * 1000)
        return count

    # --- the end -------------------------------------------------------------------------------

    def cleanup(self) -> bool:
        """Delete the table: what the proxy does when it exits cleanly."""
        try:
            deleted = self.kernel.delete_table()
        finally:
            self.kernel.release()
        self.programmed, self.garbage, self.need_full = {}, Garbage(), True
        self._owner, self._objects, self._prepared = {}, 0, False
        return deleted

    def ruleset_text(self) -> str | None:
        return self.kernel.list_table()


def _keys(sp: ServicePort) -> list[str]:
    keys = [ruleset.cluster_key(sp)]
    node_key = ruleset.node_port_key(sp)
    if node_key:
        keys.append(node_key)
    return keys


def _object_count(sp: ServicePort) -> int:
    """The chains and sets of ``ruleset.port_objects(sp)``, without naming them: the
    Service chain, the NodePort chain, a DNAT or dispatch map for several endpoints,
    and with affinity a chain and a set per endpoint."""
    eps = len(ruleset.usable_endpoints(sp))
    return 1 + (1 if sp.node_port else 0) + (2 * eps if sp.affinity_timeout else 0) \
        + (1 if eps > 1 else 0)
