"""The node lifecycle controller: notices silent nodes, taints them, evicts their pods.

It runs inside the controller manager (``NodeLifecycleController(client,
informers, grace, eviction_timeout)``, then ``await run()``), on three shared
informers: Nodes, Leases in ``kube-node-lease`` and Pods. Each kubelet renews
its Lease and posts its Ready condition every few seconds. The controller
notes, on its own monotonic clock, the last moment it *saw* either change (as
Kubernetes does: the kubelet's timestamps are not trusted, clocks may skew),
and reconciles each node:

1. silent for longer than ``grace`` (lab default 10 s): Ready and the pressure
   conditions become ``Unknown``; the node's pods are marked ``Ready=False``
   at once, so Services stop sending them traffic;
2. taints follow Ready: ``node.kubernetes.io/unreachable`` (Unknown) or
   ``not-ready`` (False), NoSchedule and NoExecute; removed when the kubelet
   is back and reports Ready;
3. pods on a NoExecute-tainted node are evicted (``DisruptionTarget``
   condition, then a normal delete) when their toleration runs out, counted
   from the taint's ``timeAdded`` (lab default 20 s, ``health.eviction_time``).
   Their ReplicaSets then replace them on healthy nodes.

Nothing polls: each reconcile that finds a deadline ahead schedules the node's
key for that moment (``WorkQueue.add_after``), and every heartbeat re-queues it.

When most nodes (``DISRUPTION_THRESHOLD``) look dead at once, the likelier
culprit is the control plane's own view (the API server was down, say), so,
like Kubernetes in a disrupted zone, no NoExecute taints are placed and no
pod is evicted until the picture clears.

Restart safety: the conditions, the taints and their ``timeAdded`` live in the
API; a restarted controller grants every node a fresh grace period (it has not
seen any heartbeat yet), and evicts at the deadlines the taints record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional, Protocol

from netlab.api.objects import timestamp
from netlab.api.views import (
    is_terminating,
    meta_of,
    name_of,
    node_spec,
    pod_spec,
    pod_status,
    spec_of,
)
from netlab.client import APIError, Client
from netlab.client.events import EventRecorder
from netlab.client.workqueue import SharedInformers, WorkQueue, run_workers
from netlab.master.nodelifecycle import health

log = logging.getLogger("netlab.nodelifecycle")

DEFAULT_GRACE = 10.0
DEFAULT_EVICTION_TIMEOUT = 20.0
DEFAULT_STARTUP_GRACE = 60.0  # Kubernetes' --node-startup-grace-period
DISRUPTION_THRESHOLD = 0.55  # Kubernetes' --unhealthy-zone-threshold
LEASE_NAMESPACE = "kube-node-lease"
COMPONENT = "node-controller"
TERMINAL_PHASES = ("Succeeded", "Failed")
SLACK = 0.05  # seconds past a deadline before re-checking, so it has surely passed


class Recorder(Protocol):
    """Where events go: this package's ``EventRecorder``, or the controller manager's
    per-component recorder (both have these two methods)."""

    def normal(self, obj: dict[str, Any], reason: str, message: str) -> None: ...

    def warning(self, obj: dict[str, Any], reason: str, message: str) -> None: ...


class _Seen:
    """The last heartbeat the controller observed for one node, on its own clock."""

    __slots__ = ("heartbeat", "probe_at", "renew")

    def __init__(self, now: float) -> None:
        self.probe_at = now
        self.heartbeat: Any = None
        self.renew: Any = None


class NodeLifecycleController:
    def __init__(self, client: Client, informers: SharedInformers,
                 grace: float = DEFAULT_GRACE,
                 eviction_timeout: float = DEFAULT_EVICTION_TIMEOUT, *,
                 startup_grace: float = DEFAULT_STARTUP_GRACE,
                 recorder: Optional[Recorder] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.informers = informers
        self.grace = grace
        self.eviction_timeout = eviction_timeout
        self.startup_grace = max(startup_grace, grace)
        # Events go through the manager's recorder when it passes one; alone, we own one.
        self._own_recorder: Optional[EventRecorder] = None
        if recorder is None:
            recorder = self._own_recorder = EventRecorder(client, COMPONENT)
        self.recorder: Recorder = recorder
        self.clock = clock
        self.queue = WorkQueue()
        self.nodes = informers.get("nodes")
        self.leases = informers.get("leases", LEASE_NAMESPACE)
        self.pods = informers.get("pods")
        self.nodes.add_handler(self._on_node)
        self.leases.add_handler(self._on_lease)
        self.pods.add_handler(self._on_pod)
        self._seen: dict[str, _Seen] = {}
        self._pods_on: dict[str, set[str]] = {}  # node -> pod keys
        self._disrupted = False

    # --- observations --------------------------------------------------------------------------

    def _observe(self, name: str) -> _Seen:
        seen = self._seen.get(name)
        if seen is None:
            seen = self._seen[name] = _Seen(self.clock())
        return seen

    def _on_node(self, kind: str, node: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        name = name_of(node)
        if kind == "DELETED":
            self._seen.pop(name, None)
            self._check_disruption()
            return
        seen = self._observe(name)
        beat = health.heartbeat_of(node)
        if beat != seen.heartbeat and beat[0] != "Unknown":
            # A kubelet post. (Our own write of Unknown is no sign of life.)
            seen.probe_at = self.clock()
            seen.heartbeat = beat
        self.queue.add(name)
        self._check_disruption()

    def _on_lease(self, kind: str, lease: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        if kind == "DELETED":
            return
        name = name_of(lease)
        renew = spec_of(lease).get("renewTime")
        seen = self._observe(name)
        if renew != seen.renew:
            seen.probe_at = self.clock()
            seen.renew = renew
            self.queue.add(name)

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        meta = meta_of(pod)
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"
        node = pod_spec(pod).get("nodeName")
        before = spec_of(old or {}).get("nodeName")
        if before and before != node:
            self._pods_on.get(before, set()).discard(key)
        if kind == "DELETED" or not node:
            if node:
                self._pods_on.get(node, set()).discard(key)
            return
        self._pods_on.setdefault(node, set()).add(key)
        if ready_or_unknown(self.nodes.get(node)) != "True":
            self.queue.add(node)  # a pod on a failing node may need marking or evicting

    def _check_disruption(self) -> None:
        if not self.nodes.synced.is_set():
            return  # mid-listing, the ratio means nothing yet
        nodes = self.nodes.items()
        bad = sum(1 for n in nodes if health.ready_status(n) != "True")
        disrupted = len(nodes) > 0 and bad / len(nodes) >= DISRUPTION_THRESHOLD
        if disrupted != self._disrupted:
            self._disrupted = disrupted
            log.warning("%d of %d nodes are not ready: %s", bad, len(nodes),
                        "pausing evictions (the control plane may be the one cut off)"
                        if disrupted else "evictions resume")
            for n in nodes:
                self.queue.add(name_of(n))

    # --- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, name: Any) -> None:
        node = self.nodes.get(name)
        if node is None:
            self._seen.pop(name, None)
            return
        seen = self._observe(name)
        status = health.ready_status(node)
        grace = self.grace if status is not None else self.startup_grace
        silent = self.clock() - seen.probe_at
        if silent > grace and status != "Unknown":
            await self._mark_unknown(node, silent)
            return  # the update comes back through the informer and is reconciled then
        if status != "Unknown":
            self.queue.add_after(name, grace - silent + SLACK)
        await self._sync_taints(node)
        if status in ("Unknown", "False"):
            await self._sync_pods(name, node)

    async def _mark_unknown(self, node: dict[str, Any], silent: float) -> None:
        meta = meta_of(node)
        name = meta.get("name", "")
        log.warning("node %s: no heartbeat for %.1fs: Ready=Unknown", name, silent)
        await self.client.patch(
            "nodes", name, {"metadata": {"resourceVersion": meta.get("resourceVersion")},
                            "status": {"conditions": health.unknown_conditions(
                                node, timestamp())}},
            patch_type="strategic", subresource="status")
        self.recorder.normal(node, "NodeNotReady", f"Node {name} status is now: NodeNotReady")

    async def _sync_taints(self, node: dict[str, Any]) -> None:
        meta, spec = meta_of(node), node_spec(node)
        wanted = health.desired_taints(node, not self._disrupted, timestamp())
        if health.same_taints(wanted, spec.get("taints") or []):
            return
        log.info("node %s: taints -> %s", meta.get("name"),
                 ", ".join(f"{t['key']}:{t['effect']}" for t in wanted) or "none")
        # The resourceVersion makes it a compare-and-set: a taint someone else added
        # meanwhile is never overwritten (409, and the retry sees it).
        await self.client.patch("nodes", meta.get("name", ""), {
            "metadata": {"resourceVersion": meta.get("resourceVersion")},
            "spec": {"taints": wanted or None}})

    async def _sync_pods(self, name: str, node: dict[str, Any]) -> None:
        taints = [t for t in node_spec(node).get("taints") or []
                  if isinstance(t, dict) and t.get("effect") == "NoExecute"]
        now = time.time()
        next_due: Optional[float] = None
        for key in sorted(self._pods_on.get(name, ())):
            pod = self.pods.get(key)
            if pod is None or pod_spec(pod).get("nodeName") != name or \
                    pod_status(pod).get("phase") in TERMINAL_PHASES:
                continue
            if is_terminating(pod):
                continue  # already on its way out
            await self._mark_not_ready(pod)
            if self._disrupted:
                continue  # its NoExecute taint is on its way out: evict nothing meanwhile
            due = health.eviction_time(pod, taints, self.eviction_timeout, now)
            if due is None:
                continue
            if due <= now:
                await self._evict(pod, name)
            else:
                next_due = due if next_due is None else min(next_due, due)
        if next_due is not None:
            self.queue.add_after(name, next_due - now + SLACK)

    async def _mark_not_ready(self, pod: dict[str, Any]) -> None:
        """``MarkPodsNotReady``: endpoints drop a pod whose node went silent."""
        ready = next((c for c in pod_status(pod).get("conditions") or []
                      if isinstance(c, dict) and c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") == "False":
            return
        meta = meta_of(pod)
        await self.client.patch("pods", meta.get("name", ""), {"status": {"conditions": [
            {**ready, "status": "False", "reason": "NodeNotReady",
             "lastTransitionTime": timestamp()}]}}, meta.get("namespace") or "default",
            patch_type="strategic", subresource="status")
        self.recorder.warning(pod, "NodeNotReady", "Node is not ready")

    async def _evict(self, pod: dict[str, Any], node: str) -> None:
        meta = meta_of(pod)
        name, namespace = meta.get("name", ""), meta.get("namespace") or "default"
        log.warning("evicting %s/%s from node %s", namespace, name, node)
        try:
            await self.client.patch("pods", name, {"status": {"conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": timestamp()}]}}, namespace, patch_type="strategic",
                subresource="status")
            # A uid precondition: a pod recreated under the same name is not ours to evict.
            await self.client.request(
                "DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}",
                body={"kind": "DeleteOptions", "apiVersion": "v1",
                      "preconditions": {"uid": meta.get("uid")}})
        except APIError as err:
            if err.not_found or err.conflict:
                return  # gone already, or replaced by a namesake
            raise
        self.recorder.normal(pod, "TaintManagerEviction",
                             f"Marking for deletion Pod {namespace}/{name}")

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile until cancelled. Starts the shared informers it needs if nobody has."""
        if self._own_recorder is not None:
            self._own_recorder.start()
        self.informers.start()
        await asyncio.gather(self.nodes.synced.wait(), self.leases.synced.wait(),
                             self.pods.synced.wait())
        self._check_disruption()
        log.info("node lifecycle: watching %d nodes (grace %.0fs, eviction after %.0fs)",
                 len(self.nodes.items()), self.grace, self.eviction_timeout)
        try:
            await run_workers("node-lifecycle", self.queue, self.reconcile, workers=2)
        finally:
            if self._own_recorder is not None:
                await self._own_recorder.stop()


def ready_or_unknown(node: Optional[dict[str, Any]]) -> Optional[str]:
    return health.ready_status(node) if node is not None else None
