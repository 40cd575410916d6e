"""The node's own object: registration, heartbeat and published usage.

``node_object`` is the Node this kubelet registers, built from its
configuration (the lab's address plan): labels (``kubernetes.io/hostname``,
os/arch, ``node-role.kubernetes.io/<role>``, the topology's), taints (the
control plane's ``NoSchedule`` plus the topology's), ``podCIDR``, flannel's
annotations with the VTEP MAC (``overlay.py``), and a status with capacity,
allocatable (cpu, memory, pods), addresses (InternalIP, Hostname), the
kubelet's port and version, and the conditions.

``NodeAgent`` keeps that object true:

- ``register`` creates it, or on a restart merges labels, annotations and
  podCIDR into the existing one (taints are only set at creation, as the
  kubelet's ``--register-with-taints``: an operator's ``kubectl taint``
  survives a restart);
- the heartbeat, every ``heartbeat_interval``: renew the Lease in
  ``kube-node-lease`` (the node lifecycle controller's liveness signal) and
  compute the status; Ready says whether the node can run pods (its ``cni0``
  bridge exists). As upstream's kubelet, the status is posted only when it
  differs from the server's (a condition, an address, the images...) or
  ``status_report_interval`` has passed, with a fresh ``lastHeartbeatTime``:
  every kubelet watches every Node (the overlay), so a post every few seconds
  from each of N nodes would cost N² events. A heartbeat answered 404 means the Node was
  deleted: the agent registers again at once (so does ``node_deleted``,
  called by the Node informer);
- ``publish_usage`` writes the usage annotation (``metrics.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import os
import platform
import socket
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

import aiohttp

from netlab.api.timefmt import format_micro_time, format_time
from netlab.api.usage import USAGE_ANNOTATION
from netlab.api.views import spec_of, uid_of
from netlab.client import APIError, Client
from netlab.images import BUILTIN_IMAGES
from netlab.images.store import ImageStore
from netlab.node.kubelet.config import KUBELET_VERSION, KubeletConfig
from netlab.node.kubelet.events import NORMAL, WARNING, EventRecorder, node_ref
from netlab.node.kubelet.status import merge_conditions
from netlab.node.overlay import flannel_annotations
from netlab.topology.plan import POD_BRIDGE

log = logging.getLogger("netlab.kubelet.node")

LEASE_NAMESPACE = "kube-node-lease"
ROLE_LABEL = "node-role.kubernetes.io/"
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
RETRY_START, RETRY_MAX = 0.2, 5.0
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x"}


def _arch() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


def node_labels(cfg: KubeletConfig) -> dict[str, str]:
    labels = {"kubernetes.io/hostname": cfg.node, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": _arch(), "beta.kubernetes.io/os": "linux",
              "beta.kubernetes.io/arch": _arch(), ROLE_LABEL + cfg.role: ""}
    labels.update(cfg.labels)
    return labels


def node_annotations(cfg: KubeletConfig) -> dict[str, str]:
    out = {"node.alpha.kubernetes.io/ttl": "0",
           "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
    if cfg.overlay == "vxlan" and cfg.vtep_mac:
        out.update(flannel_annotations(cfg.vni, cfg.vtep_mac, cfg.host_ip))
    return out


def node_taints(cfg: KubeletConfig) -> list[dict[str, str]]:
    taints = [dict(t) for t in cfg.taints]
    if cfg.role == "control-plane" and not any(
            t.get("key") == CONTROL_PLANE_TAINT["key"] for t in taints):
        taints.insert(0, dict(CONTROL_PLANE_TAINT))
    return taints


# The machine facts below cannot change while the kubelet runs (upstream reads them once,
# from cAdvisor's machine info); each heartbeat re-reading them cost more than the rest of
# the status: importlib.metadata parses every installed package's metadata.
@functools.cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


@functools.cache
def _os_image() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def node_info(cfg: KubeletConfig) -> dict[str, str]:
    digest = hashlib.sha256(f"netlab/{cfg.lab}/{cfg.node}".encode()).hexdigest()
    return {"machineID": digest[:32], "systemUUID": str(uuid.UUID(digest[:32])),
            "bootID": _boot_id(), "kernelVersion": os.uname().release,
            "osImage": _os_image(), "containerRuntimeVersion": "netlab://" + _version(),
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
            "operatingSystem": "linux", "architecture": _arch()}


@functools.cache
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("netlab")
    except Exception:
        return "dev"


def capacity(cfg: KubeletConfig) -> dict[str, str]:
    return {"cpu": f"{cfg.cpu_millis // 1000}" if cfg.cpu_millis % 1000 == 0
            else f"{cfg.cpu_millis}m",
            "memory": f"{cfg.memory_bytes // 1024}Ki", "pods": str(cfg.max_pods),
            "ephemeral-storage": "0", "hugepages-2Mi": "0"}


def network_ready() -> tuple[bool, str]:
    """Whether pods can be wired on this node: its cni0 bridge exists (here, in the
    node's network namespace)."""
    try:
        socket.if_nametoindex(POD_BRIDGE)
        return True, ""
    except OSError:
        return False, (f"container runtime network not ready: NetworkReady=false "
                       f"reason:NetworkPluginNotReady message:{POD_BRIDGE} is missing")


def node_conditions(ready: bool, message: str, now: str) -> list[dict[str, Any]]:
    def cond(kind: str, ok: bool, reason: str, msg: str) -> dict[str, Any]:
        return {"type": kind, "status": "True" if ok else "False", "reason": reason,
                "message": msg, "lastHeartbeatTime": now}

    return [
        cond("MemoryPressure", False, "KubeletHasSufficientMemory",
             "kubelet has sufficient memory available"),
        cond("DiskPressure", False, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", False, "KubeletHasSufficientPID",
             "kubelet has sufficient PID available"),
        cond("Ready", ready, "KubeletReady" if ready else "KubeletNotReady",
             "kubelet is posting ready status" if ready else message),
    ]


def node_status(cfg: KubeletConfig, old: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    ready, message = network_ready()
    stamp = format_time(now)
    conditions = merge_conditions((old or {}).get("conditions") or [],
                                  node_conditions(ready, message, stamp), stamp, order=())
    cap = capacity(cfg)
    return {
        "capacity": cap, "allocatable": dict(cap), "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": cfg.host_ip},
                      {"type": "Hostname", "address": cfg.node}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.port}},
        "nodeInfo": node_info(cfg),
        "images": node_images(),
    }


def node_images() -> list[dict[str, Any]]:
    """``status.images``: the store's images (names and id, as containerd lists them)
    and the built-in ones, which take no space of their own."""
    stored = [{"names": [*image.names, image.id], "sizeBytes": image.size}
              for image in ImageStore().images() if image.names]
    return stored + [{"names": [name], "sizeBytes": 0} for name in BUILTIN_IMAGES]


def node_object(cfg: KubeletConfig, now: datetime) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": cfg.node, "labels": node_labels(cfg),
                         "annotations": node_annotations(cfg)},
            "spec": {"podCIDR": str(cfg.pod_cidr), "podCIDRs": [str(cfg.pod_cidr)],
                     "taints": node_taints(cfg)},
            "status": node_status(cfg, None, now)}


def lease_object(cfg: KubeletConfig, node_uid: str, now: datetime) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": cfg.node, "namespace": LEASE_NAMESPACE,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                              "name": cfg.node, "uid": node_uid}]},
            "spec": {"holderIdentity": cfg.node, "leaseDurationSeconds": cfg.lease_duration,
                     "renewTime": format_micro_time(now)}}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _without_heartbeats(status: dict[str, Any] | None,
                        keys: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Node status as compared for a change: the fields in ``keys`` (the ones the
    kubelet posts; default all), without the conditions' heartbeat times."""
    status = status or {}
    fields = {k: status.get(k) for k in (keys if keys is not None else status)}
    fields["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                            for c in status.get("conditions") or []]
    return fields


class NodeAgent:
    def __init__(self, cfg: KubeletConfig, client: Client, events: EventRecorder,
                 cached: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self.cfg = cfg
        self.cached = cached  # our Node as the Node informer has it (or None)
        self.client = client
        self.events = events
        self.uid = ""
        self.registered = asyncio.Event()
        self._wake = asyncio.Event()
        self._was_ready: bool | None = None
        self._last_status: dict[str, Any] | None = None
        self._posted_at = -math.inf  # monotonic time of the last status post
        self._unsure = False  # a heartbeat failed since the last one that worked
        self.heartbeats = 0

    async def register(self) -> None:
        """Create or update our Node; retry until the API answers."""
        delay = RETRY_START
        while True:
            try:
                await self._register_once()
                return
            except (APIError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
                log.info("registering node %s: %s; retrying in %.1fs", self.cfg.node, err, delay)
                await asyncio.sleep(delay)  # retry backoff while the API server starts
                delay = min(delay * 2, RETRY_MAX)

    async def _register_once(self) -> None:
        cfg = self.cfg
        # Create first, as upstream's kubelet does: a new node (every node of a lab
        # coming up) is registered, status included, in one request rather than a GET
        # that finds nothing and then the create; an existing one answers 409.
        existing = None
        try:
            node = await self.client.create(node_object(cfg, _now()))
        except APIError as err:
            if not err.conflict:
                raise
            existing = await self.client.get("nodes", cfg.node)
        else:
            self.events.record(node_ref(cfg.node), NORMAL, "RegisteredNode",
                               f"Node {cfg.node} registered with the API server")
        if existing is not None:
            spec = spec_of(existing)
            patch: dict[str, Any] = {"metadata": {"labels": node_labels(cfg),
                                                  "annotations": node_annotations(cfg)}}
            if not spec.get("podCIDR"):
                patch["spec"] = {"podCIDR": str(cfg.pod_cidr), "podCIDRs": [str(cfg.pod_cidr)]}
            node = await self.client.patch("nodes", cfg.node, patch)
        self.uid = uid_of(node)
        # Independent writes: the status (its Ready event) and the Lease, side by side.
        await asyncio.gather(self._post_status(node), self._renew_lease())
        self.registered.set()
        log.info("node %s registered (uid %s)", cfg.node, self.uid)

    async def _post_status(self, node: dict[str, Any] | None = None,
                           force: bool = True) -> None:
        """Post the status; unless ``force``, only when it differs from ``node``'s
        beyond the heartbeat times, or the report interval has passed."""
        old = (node or {}).get("status")
        if old is None:
            old = (await self.client.get("nodes", self.cfg.node)).get("status")
        status = node_status(self.cfg, old, _now())
        if (not force and time.monotonic() - self._posted_at < self.cfg.status_report_interval
                and _without_heartbeats(status) == _without_heartbeats(old, keys=status)):
            return
        await self.client.patch("nodes", self.cfg.node, {"status": status},
                                subresource="status")
        self._posted_at = time.monotonic()
        self._last_status = status
        ready = next(c["status"] == "True" for c in status["conditions"] if c["type"] == "Ready")
        if ready != self._was_ready:
            self.events.record(node_ref(self.cfg.node), NORMAL if ready else WARNING,
                               "NodeReady" if ready else "NodeNotReady",
                               f"Node {self.cfg.node} status is now: "
                               f"{'NodeReady' if ready else 'NodeNotReady'}")
            self._was_ready = ready

    async def _renew_lease(self) -> None:
        lease = lease_object(self.cfg, self.uid, _now())
        await self.client.request(
            "PUT", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/"
                   f"{self.cfg.node}", body=lease)

    def node_deleted(self) -> None:
        """The Node informer saw our Node go: register again without waiting."""
        self.registered.clear()
        self._wake.set()

    async def run(self) -> None:
        """The heartbeat."""
        delay = RETRY_START
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                # Heartbeat period; a deleted Node wakes us early.
                await asyncio.wait_for(self._wake.wait(), self.cfg.heartbeat_interval)
            self._wake.clear()
            try:
                if not self.registered.is_set():
                    await self._register_once()
                    continue
                # Transitions are judged against the server's conditions (the node
                # lifecycle controller may have set them Unknown while we were away).
                if self._unsure:
                    # After a failed heartbeat the informer may not have seen what the
                    # controller wrote meanwhile (a cut link leaves its watch hanging):
                    # read the Node from the server and post whatever it says.
                    await self._post_status(None)
                else:
                    current = self.cached()
                    await self._post_status(current if current and current.get("status") else
                                            {"status": self._last_status} if self._last_status
                                            else None, force=False)
                await self._renew_lease()
                self._unsure = False
                self.heartbeats += 1
                delay = RETRY_START
            except APIError as err:
                if err.not_found:
                    log.warning("node %s is gone from the API; registering again", self.cfg.node)
                    self.registered.clear()
                    self._wake.set()
                    continue
                log.warning("heartbeat failed: %s", err)
                self._unsure = True
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
                log.info("heartbeat failed (%s); retrying in %.1fs", err, delay)
                self._unsure = True
                await asyncio.sleep(delay)  # retry backoff while the API is away
                delay = min(delay * 2, RETRY_MAX)
                self._wake.set()

    async def publish_usage(self, annotation: str) -> None:
        await self.client.patch("nodes", self.cfg.node,
                                {"metadata": {"annotations": {USAGE_ANNOTATION: annotation}}})
