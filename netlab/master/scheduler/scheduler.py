"""The scheduler: pending pods in, bindings out. kube-scheduler's loop in asyncio.

Informers feed it: all Pods (pending ones become queue keys; bound ones
fill the cache's per-node accounting), all Nodes (the cache's node facts), and the
PersistentVolumeClaims, PersistentVolumes and StorageClasses the VolumeBinding rules read
(``volumebinding.py``; a change to any of them lets parked pods try again).
One worker takes a key at a time, the highest ``spec.priority`` first (``queue.py``),
and runs the *scheduling cycle*, which is pure computation over the cache and never
waits on the network:

    the pod's claims (VolumeBinding's PreFilter) -> filter every node -> score the
    feasible ones -> pick (ties spread by owner) -> assume the pod onto that node

then hands the *binding cycle* to a background task (the chosen node written on each
unbound WaitForFirstConsumer claim as ``volume.kubernetes.io/selected-node``, then
``POST pods/<name>/binding``, then a ``Scheduled`` event), at most ``bind_concurrency``
at a time, so many
bindings share the API server's group commit while the next pod is already
being placed. A pod that fits nowhere gets a ``FailedScheduling`` event with
kube-scheduler's message and the ``PodScheduled=False`` condition, and waits,
parked, until a node or pod change could help (``queue.py``), whatever its priority:
there is no preemption (kube-scheduler's DefaultPreemption would evict lower-priority
pods to make room).

Restart safety: binding is the API server's compare-and-set (a pod is bound
once; a second binding gets 409), the only state is the API's, and the
informers list everything again at start. ``kill -9`` at any moment therefore
ends, after the restart, with every pod bound exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional

import aiohttp

from netlab.api import persistentvolumes as pvs
from netlab.api.objects import timestamp
from netlab.api.views import (
    PodCondition,
    annotations_of,
    meta_of,
    name_of,
    pod_spec,
    pod_status,
)
from netlab.client import APIError, Client, resource_path
from netlab.client.events import NORMAL, WARNING, EventRecorder
from netlab.client.workqueue import SharedInformers, run_workers
from netlab.master.scheduler import volumebinding
from netlab.master.scheduler.cache import TERMINAL_PHASES, SchedulerCache, pod_key
from netlab.master.scheduler.filters import find_feasible, fit_error
from netlab.master.scheduler.nodeinfo import NodeInfo, pod_info, pod_priority
from netlab.master.scheduler.queue import SchedulingQueue
from netlab.master.scheduler.scoring import DEFAULT_USAGE_WEIGHT, select_node

log = logging.getLogger("netlab.scheduler")

DEFAULT_SCHEDULER = "default-scheduler"
DEFAULT_BIND_CONCURRENCY = 32


class Scheduler:
    def __init__(self, client: Client, informers: SharedInformers, *,
                 name: str = DEFAULT_SCHEDULER, usage_weight: float = DEFAULT_USAGE_WEIGHT,
                 bind_concurrency: int = DEFAULT_BIND_CONCURRENCY,
                 recorder: Optional[EventRecorder] = None,
                 queue: Optional[SchedulingQueue] = None) -> None:
        self.client = client
        self.informers = informers
        self.name = name
        self.usage_weight = usage_weight
        self.bind_concurrency = bind_concurrency
        self.recorder = recorder or EventRecorder(client, name)
        self.cache = SchedulerCache()
        self.queue = queue or SchedulingQueue()
        self.pods = informers.get("pods")
        self.nodes = informers.get("nodes")
        self.claims = informers.get("persistentvolumeclaims")
        self.volumes = informers.get("persistentvolumes")
        self.classes = informers.get("storageclasses")
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)
        for informer in (self.claims, self.volumes, self.classes):
            informer.add_handler(self._on_storage)
        self._binding: set[str] = set()  # keys whose binding is in flight
        self._tasks: set[asyncio.Task] = set()
        self._slots: Optional[asyncio.Semaphore] = None
        self.scheduled = 0  # bindings that succeeded, for logs and benchmarks

    # --- informer handlers ---------------------------------------------------------------------

    def responsible_for(self, pod: dict[str, Any]) -> bool:
        """A pending pod of ours: unbound, not being deleted, not finished."""
        spec = pod_spec(pod)
        return not spec.get("nodeName") and spec.get("schedulerName", self.name) in (
            self.name, "", None) and not meta_of(pod).get(
            "deletionTimestamp") and pod_status(pod).get("phase") not in \
            TERMINAL_PHASES

    def _on_node(self, kind: str, node: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        if kind == "DELETED":
            self.cache.remove_node(name_of(node))
        elif self.cache.update_node(node):
            self.queue.move_all()

    def _on_storage(self, kind: str, obj: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        # A claim made or bound, a volume or class added: a pod parked on them may fit.
        self.queue.move_all()

    def _pod_claims(self, pod: dict[str, Any]) -> volumebinding.PodClaims:
        if not volumebinding.claim_names(pod):
            return volumebinding.PodClaims()
        return volumebinding.pod_claims(pod, self.claims.cache, self.volumes.cache,
                                        {name_of(c): c for c in self.classes.items()})

    def _on_pod(self, kind: str, pod: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
        key = pod_key(pod)
        if kind == "DELETED":
            if self.cache.remove_pod(pod):
                self.queue.move_all()
            self.queue.forget(key)
            return
        if self.cache.update_pod(pod):
            self.queue.move_all()
        if not self.responsible_for(pod):
            if key not in self._binding:
                self.queue.forget(key)
            return
        if kind == "MODIFIED" and old is not None and self.responsible_for(old) and \
                pod_info(old) == pod_info(pod):
            return  # a status change (ours, say): queued, parked or binding already
        self.queue.add(key, pod_priority(pod))

    # --- the scheduling cycle ------------------------------------------------------------------

    async def schedule_one(self, key: Any) -> None:
        pod = self.pods.get(key)
        if pod is None or not self.responsible_for(pod):
            self.queue.forget(key)
            return
        if key in self._binding or self.cache.node_of(key) is not None:
            return  # its binding is in flight, or it is bound already
        self.queue.attempted(key)
        moves = self.queue.moves
        info = pod_info(pod)
        nodes = self.cache.node_list()
        claims = self._pod_claims(pod)
        feasible: list[NodeInfo] = []
        failed: dict[str, list[str]] = {}
        if not claims.error:
            feasible, failed = find_feasible(info, nodes)
        if not claims.empty and not claims.error:
            # VolumeBinding comes after the other filters: a node's verdict is its first
            # failing filter, so only nodes that passed them need asking.
            volumes = self.volumes.items()
            classes = {name_of(c): c for c in self.classes.items()}
            kept = []
            for candidate in feasible:
                reasons = volumebinding.filter_node(claims, candidate.name, candidate.labels,
                                                    volumes, classes)
                if reasons:
                    failed[candidate.name] = reasons
                else:
                    kept.append(candidate)
            feasible = kept
        choice = select_node(info, feasible, time.time(), self.usage_weight)
        if choice is None:
            message = volumebinding.prefilter_error(len(nodes), claims.error) \
                if claims.error else fit_error(len(nodes), failed)
            log.info("%s: %s", key, message)
            self.queue.park(key, moves)
            self._spawn(self._unschedulable(pod, message))
            return
        node = choice.node.name
        log.debug("%s -> %s (score %d, %d tied)", key, node, choice.score, choice.candidates)
        self.cache.assume(info, node)
        self._binding.add(key)
        assert self._slots is not None
        await self._slots.acquire()  # back-pressure: at most bind_concurrency in flight
        self._spawn(self._bind(pod, key, node, claims.delayed))
        await asyncio.sleep(0)  # let bindings and informer events in between pods

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the binding cycle ---------------------------------------------------------------------

    async def _select_node(self, claims: list[Any], node: str) -> None:
        """VolumeBinding's PreBind, for claims whose class waits for a first consumer:
        the chosen node, for the provisioner (the kubelet waits for the binding)."""
        for claim in claims:
            if annotations_of(claim).get(pvs.SELECTED_NODE_ANNOTATION) == node:
                continue
            cmeta = meta_of(claim)
            await self.client.patch("persistentvolumeclaims", cmeta.get("name", ""),
                                    {"metadata": {"annotations": {
                                        pvs.SELECTED_NODE_ANNOTATION: node}}},
                                    cmeta.get("namespace") or "default")

    async def _bind(self, pod: dict[str, Any], key: str, node: str,
                    claims: Optional[list[Any]] = None) -> None:
        meta = meta_of(pod)
        namespace, name = meta.get("namespace") or "default", meta.get("name", "")
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": name, "namespace": namespace, "uid": meta.get("uid")},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        claims_done = False
        try:
            if claims:
                await self._select_node(claims, node)
            claims_done = True
            await self.client.request("POST", resource_path("pods", namespace, name, "binding"),
                                      body=binding)
        except APIError as err:
            self._binding.discard(key)
            self.cache.forget(key)
            if claims_done and (err.not_found or err.conflict):
                # Gone, being deleted, or bound by someone else: the informer will say.
                log.info("%s: binding to %s refused: %s", key, node, err)
                self.queue.forget(key)
            else:
                # (A claim that went or changed meanwhile: the next try sees it.)
                log.warning("%s: binding to %s failed: %s", key, node, err)
                self.queue.retry(key)
            return
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            # Perhaps bound after all: the retry finds it bound, or gets a 409.
            self._binding.discard(key)
            self.cache.forget(key)
            log.warning("%s: binding to %s failed: %s", key, node, err)
            self.queue.retry(key)
            return
        finally:
            assert self._slots is not None
            self._slots.release()
        self._binding.discard(key)
        self.queue.forget(key)
        self.scheduled += 1
        self.recorder.event(pod, NORMAL, "Scheduled",
                            f"Successfully assigned {namespace}/{name} to {node}",
                            aggregate=False)

    async def _unschedulable(self, pod: dict[str, Any], message: str) -> None:
        """Tell the user: a FailedScheduling event, and PodScheduled=False on the pod."""
        self.recorder.event(pod, WARNING, "FailedScheduling", message)
        meta = meta_of(pod)
        current: PodCondition = next(
            (c for c in pod_status(pod).get("conditions") or []
             if isinstance(c, dict) and c.get("type") == "PodScheduled"), PodCondition())
        if current.get("status") == "False" and current.get("message") == message:
            return
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": message, "lastProbeTime": None,
                     "lastTransitionTime": current.get("lastTransitionTime")
                     if current.get("status") == "False" else timestamp()}
        try:
            await self.client.patch("pods", meta.get("name", ""),
                                    {"status": {"conditions": [condition]}},
                                    meta.get("namespace") or "default",
                                    patch_type="strategic", subresource="status")
        except (APIError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            log.info("%s: cannot set PodScheduled=False: %s", pod_key(pod), err)

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Schedule until cancelled."""
        self._slots = asyncio.Semaphore(self.bind_concurrency)
        self.recorder.start()
        self.informers.start()
        await asyncio.gather(*(i.synced.wait() for i in (
            self.pods, self.nodes, self.claims, self.volumes, self.classes)))
        log.info("%s: caches synced: %d nodes, %d pods pending", self.name,
                 len(self.cache.node_list()), len(self.queue))
        try:
            await run_workers(self.name, self.queue.work, self.schedule_one, workers=1)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await self.recorder.stop()
