"""The policy agent's sync engine: policies, pods and namespaces in, one node's table out.

A :class:`PolicyAgent` is told about NetworkPolicies, Pods and Namespaces (in
the API's dict shapes, as informers deliver them) and about the addresses
the node's IPAM has handed out, and converges its node's table with
``sync()``. It does not talk to the API: ``python -m netlab.node.netpol``
feeds it.

How a sync works: the cluster is compiled for this node (``model``; the
compiled cluster is kept between syncs, and a policy change only recompiles
that policy) and the table rendered as named objects (``ruleset``).

- **Full** (the first sync, and after any failure): one transaction replaces
  the whole table. A restarted agent starts so, replacing the table its
  predecessor left in one step: the old rules stay in force until the new
  ones are in, so there is no window of open access.
- **Partial** otherwise: one transaction rewrites only the objects whose
  declaration changed (``ruleset.partial_script``: flushed chains refilled,
  sets and maps re-declared with their elements, as the proxy does), and
  objects no longer wanted are deleted right after by a second, raw-netlink
  transaction (until then they are empty and unreferenced).

Every change is atomic, and a failed transaction changes nothing; the agent
then forgets what it believes the kernel holds, and the next sync (after
``retry_interval``) is full, whatever state the kernel is in.

Syncs are rate-limited (``min_interval``) so a burst of events is applied
together. ``cleanup()`` deletes the table (a clean exit: SIGTERM);
``kill -9`` leaves it, and its rules, in force.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from netlab.api.views import name_of, namespace_of, pod_spec, pod_status, uid_of
from netlab.node.netpol import model, ruleset
from netlab.node.netpol.ruleset import PolicyConfig
from netlab.node.syncloop import RateLimited

log = logging.getLogger("netlab.netpol")


class PolicyKernel(Protocol):
    """The side effects the agent needs; :class:`NodeKernel` is the real one."""

    def prepare(self) -> None: ...
    def apply(self, script: str) -> None: ...
    def collect(self, garbage: Mapping[str, str]) -> int: ...
    def delete_table(self) -> bool: ...
    def release(self) -> None: ...


class NodeKernel:
    """The agent's side effects in one node namespace: nft and br_netfilter."""

    def __init__(self, netns: str, cfg: PolicyConfig, backend: str = "auto"):
        self.netns, self.cfg, self.backend = netns, cfg, backend

    def prepare(self) -> None:
        # Same-node pod-to-pod traffic is bridged: without br_netfilter it would
        # never meet the forward hook (the proxy turns it on too; either may start first).
        from netlab.kernel.netns import run_in_netns
        from netlab.node.proxy import hostnet

        run_in_netns(self.netns, hostnet.enable_bridge_netfilter)

    def apply(self, script: str) -> None:
        from netlab.kernel import nft

        nft.apply(self.netns, script, self.backend)

    def collect(self, garbage: Mapping[str, str]) -> int:
        # Raw netlink: nft 1.0.6 would download the whole table before any delete.
        from netlab.kernel import nft

        return nft.delete_objects(self.netns, self.cfg.table, ruleset.FAMILY,
                                  sets=sorted(n for n, k in garbage.items() if k != "chain"),
                                  chains=sorted(n for n, k in garbage.items() if k == "chain"))

    def delete_table(self) -> bool:
        from netlab.kernel import nft

        return nft.delete_table(self.netns, self.cfg.table, ruleset.FAMILY, self.backend)

    def release(self) -> None:
        from netlab.kernel import nft

        nft.forget(self.netns)


@dataclass
class SyncResult:
    kind: str  # "full", "partial", "none" (nothing changed) or "deferred" (rate limit)
    ok: bool = True
    bytes: int = 0
    seconds: float = 0.0
    compile_seconds: float = 0.0
    retry_in: float = 0.0
    isolated: int = 0  # (pod, direction) pairs isolated on this node
    policies: int = 0  # policies in the cluster
    collected: int = 0  # unused objects deleted after a partial sync
    error: str = ""


def _same_pod(a: model.Pod | None, b: model.Pod) -> bool:
    # Pod objects change all the time (status, conditions); policy only cares about these.
    return a is not None and (a.ip, a.node, dict(a.labels), a.ports, a.host_network,
                              a.phase in model.TERMINAL_PHASES) == \
        (b.ip, b.node, dict(b.labels), b.ports, b.host_network, b.phase in model.TERMINAL_PHASES)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return (namespace_of(obj), name_of(obj))


class PolicyAgent(RateLimited):
    """NetworkPolicy enforcement for one node; see the module docstring."""

    def __init__(self, node: str, netns: str, pod_cidr: str, *, min_interval: float = 0.05,
                 retry_interval: float = 1.0, table: str = ruleset.TABLE,
                 backend: str = "auto", kernel: PolicyKernel | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.node, self.netns = node, netns
        self.cfg = PolicyConfig(pod_cidr=pod_cidr, table=table)
        self.kernel: PolicyKernel = kernel or NodeKernel(netns, self.cfg, backend)
        self.min_interval, self.retry_interval = min_interval, retry_interval
        self.clock = clock
        self.policies: dict[tuple[str, str], model.Policy] = {}
        self.pods: dict[tuple[str, str], Mapping[str, Any]] = {}
        # Whether ``pods`` holds the cluster's pods: the agent's feeder watches pods
        # only once a policy exists (``pods_known``), and no policy is compiled
        # against pods it has not been told about yet.
        self.pods_synced = True
        self.parsed: dict[tuple[str, str], model.Pod] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.ipam: dict[str, str] = {}  # uid -> address, this node's allocations
        # What the kernel holds, as far as we know (None: unknown, the next sync is full).
        self.applied: ruleset.Objects | None = None
        self.garbage: dict[str, str] = {}  # emptied objects awaiting deletion: name -> kind
        self._cluster: model.Cluster | None = None
        self._rendered = ruleset.RenderCache()  # text of the last render, reused where it can
        self.dirty = True
        self._prepared = False
        self.last_compiled: model.NodeRules | None = None

    # --- input ---------------------------------------------------------------------------------

    def update_policy(self, obj: Mapping[str, Any]) -> None:
        policy = model.parse_policy(obj)
        if self.policies.get(policy.key) == policy:
            return  # a status or metadata-only change: nothing to enforce differently
        self.policies[policy.key] = policy
        if self._cluster is not None:
            self._cluster.set_policy(policy.key, policy)
        self.dirty = True

    def delete_policy(self, obj: Mapping[str, Any]) -> None:
        key = _key(obj)
        if self.policies.pop(key, None) is not None:
            if self._cluster is not None:
                self._cluster.set_policy(key, None)
            self.dirty = True

    def update_pod(self, obj: Mapping[str, Any]) -> None:
        key = _key(obj)
        self.pods[key] = obj
        before = self.parsed.get(key)
        self._parse_pod(key)
        if not _same_pod(before, self.parsed[key]):
            self._changed()

    def delete_pod(self, obj: Mapping[str, Any]) -> None:
        key = _key(obj)
        if self.pods.pop(key, None) is not None:
            self.parsed.pop(key, None)
            self._changed()

    def pods_known(self) -> None:
        """The feeder has told every pod of the cluster (its first list is in)."""
        self.pods_synced = True
        self._changed()

    def update_namespace(self, obj: Mapping[str, Any]) -> None:
        name = name_of(obj)
        labels = model.namespace_labels(obj)
        if self.namespaces.get(name) != labels:
            self.namespaces[name] = labels
            self._changed()

    def delete_namespace(self, obj: Mapping[str, Any]) -> None:
        if self.namespaces.pop(name_of(obj), None) is not None:
            self._changed()

    def _changed(self) -> None:
        # Pods and namespaces feed every selection: the compiled cluster is rebuilt.
        self._cluster = None
        self.dirty = True

    def learn_addresses(self, allocations: Mapping[str, str]) -> bool:
        """This node's IPAM records (``{ip: pod uid}``); True when something changed."""
        by_uid = {uid: ip for ip, uid in allocations.items() if uid}
        if by_uid == self.ipam:
            return False
        self.ipam = by_uid
        for key, obj in self.pods.items():
            if pod_spec(obj).get("nodeName") == self.node:
                self._parse_pod(key)
        self._changed()
        return True

    def _parse_pod(self, key: tuple[str, str]) -> None:
        obj = self.pods[key]
        ip = None
        if pod_spec(obj).get("nodeName") == self.node and self.ipam:
            # The IPAM record is the truth for a local pod: it exists from CNI ADD on,
            # before the kubelet reports the address, and is gone once the sandbox is.
            ip = self.ipam.get(uid_of(obj))
            reported = pod_status(obj).get("podIP")
            if ip is None and reported and reported not in self.ipam.values():
                ip = reported
            self.parsed[key] = dataclasses.replace(model.parse_pod(obj), ip=ip)
            return
        self.parsed[key] = model.parse_pod(obj)

    def pending_local(self) -> bool:
        """Whether a pod of this node is waiting for an address (worth polling IPAM for).
        Never while no NetworkPolicy exists: no rule names any pod's address then."""
        return bool(self.policies) and any(p.node == self.node and not p.ip and not p.host_network
                   and p.phase not in model.TERMINAL_PHASES for p in self.parsed.values())

    # --- sync ----------------------------------------------------------------------------------

    def cluster(self) -> model.Cluster:
        if self._cluster is None:
            self._cluster = model.Cluster(self.policies.values(), self.parsed.values(),
                                          self.namespaces)
        return self._cluster

    def compile(self) -> tuple[model.NodeRules, ruleset.Objects]:
        compiled = model.compile_node(self.cluster(), self.node)
        return compiled, ruleset.render_objects(self.cfg, compiled, self._rendered)

    def sync(self, force: bool = False) -> SyncResult:
        """Converge the table with what the agent was told (see the module docstring)."""
        wait = 0.0 if force else self.due_in()
        if wait > 0 and self.dirty:
            return SyncResult(kind="deferred", retry_in=wait)
        if not self.dirty and self.applied is not None:
            return SyncResult(kind="none")
        if self.policies and not self.pods_synced:
            # Compiled without the pods, a policy would isolate its pods and admit
            # none of their peers: wait for the list (``pods_known`` wakes the loop).
            return SyncResult(kind="deferred", retry_in=self.retry_interval)
        if not self.policies and self.applied is not None and self.last_compiled is not None \
                and self.last_compiled.policies == 0:
            # No policy before or now: pods and namespaces select nothing, the table stays
            # as it is. Compiling for each pod event cost 99 agents 40 % of a core while a
            # 100-node lab started 1,000 pods.
            self.dirty = False
            return SyncResult(kind="none")
        if not self._prepared:
            self.kernel.prepare()
            self._prepared = True
        started = self.clock()
        self.dirty = False
        compiled, objects = self.compile()
        compiled_at = self.clock()
        self.last_compiled = compiled
        isolated, policies = len(compiled.isolated), compiled.policies
        if self.applied is None:
            kind, script = "full", ruleset.full_script(self.cfg, self.node, objects)
            garbage: dict[str, str] = {}
        else:
            kind = "partial"
            script, garbage = ruleset.partial_script(self.cfg, self.applied, objects,
                                                     self.garbage)
            if not script:
                return SyncResult(kind="none", isolated=isolated, policies=policies,
                                  compile_seconds=compiled_at - started)
        self._count_sync()
        try:
            self.kernel.apply(script)
        except Exception as exc:  # nft refused it: nothing changed; rewrite it all later
            self.force_full()
            seconds = self.clock() - started
            log.error("%s sync failed after %.1f ms (%d bytes); the next sync is full: %s",
                      kind, seconds * 1000, len(script), exc)
            return SyncResult(kind=kind, ok=False, bytes=len(script), seconds=seconds,
                              compile_seconds=compiled_at - started,
                              retry_in=self.retry_interval, error=str(exc),
                              isolated=isolated, policies=policies)
        self.applied, self.garbage = objects, garbage
        collected = 0
        if garbage:
            try:
                collected = self.kernel.collect(garbage)
                self.garbage = {}
            except Exception as exc:  # the table is not what we think: rebuild it
                log.error("deleting %d unused objects failed; the next sync is full: %s",
                          len(garbage), exc)
                self.force_full()
        return SyncResult(kind=kind, bytes=len(script), seconds=self.clock() - started,
                          compile_seconds=compiled_at - started, isolated=isolated,
                          policies=policies, collected=collected)

    def force_full(self) -> None:
        """Forget what the kernel holds: the next sync rewrites the table."""
        self.applied, self.garbage = None, {}
        self.dirty = True

    # --- the end -------------------------------------------------------------------------------

    def cleanup(self) -> bool:
        """Delete the table: what the agent does when it exits cleanly."""
        try:
            deleted = self.kernel.delete_table()
        finally:
            self.kernel.release()
        self.applied, self.garbage, self.dirty, self._prepared = None, {}, True, False
        return deleted
