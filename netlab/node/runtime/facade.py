"""``Runtime``: the container runtime one kubelet drives, and ``cleanup_lab`` for ``down``.

This is the CRI of netlab, as a library: the kubelet (a process in its node's
network namespace) holds one ``Runtime(lab, node_plan)`` and calls it from
worker threads. Every call is safe to repeat, and the state lives in files
(see ``paths``), so a kubelet that restarts calls ``adopt()`` and carries on
with the same pods, IPs, processes and restart counts.

Calls for one pod are serialised by a per-pod lock; calls for different pods
run concurrently. Kernel work happens on throwaway threads inside the node's
or the pod's namespace (``netlab.kernel.netns.run_in_netns``), so the
caller's own thread may be anywhere.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from netlab.kernel import links, mounts, netns
from netlab.kernel import namespaces as nsutil
from netlab.kernel.processes import kill_in_netns
from netlab.node.cni.ipam import HostLocalIpam
from netlab.node.runtime import cgroups, containers, oci_runtime, sandbox
from netlab.node.runtime.containers import ContainerState, ExecSpec
from netlab.node.runtime.paths import (
    DATA_ROOT,
    SANDBOX_FILE,
    UTS_PIN,
    is_pod_netns,
    lab_state_dir,
    pods_dir,
    read_json,
    runtime_dir,
)
from netlab.node.runtime.sandbox import PodSpec, Sandbox
from netlab.node.runtime.spec import ContainerSpec
from netlab.node.runtime.usage import (
    ResourceUsage,
    Sample,
    UsageMeter,
    sample_cgroup,
    sample_processes,
)
from netlab.topology.plan import NodePlan, node_netns

PodRef = Union[PodSpec, Sandbox, str]  # a pod, its sandbox, or its uid
NODE_KEY = "node"  # the usage meter's key for the node itself (pod keys are uids)


@dataclass
class AdoptedPod:
    sandbox: Sandbox
    containers: list[ContainerState]
    problems: list[str]  # what is broken in the sandbox (empty: whole)


@dataclass
class NodeUsage:
    node: ResourceUsage  # the node's own processes plus all its pods
    pods: dict[str, ResourceUsage] = field(default_factory=dict)  # by pod uid
    # pod uid -> container name -> usage, for running containers in a cgroup of their own
    containers: dict[str, dict[str, ResourceUsage]] = field(default_factory=dict)
    # uids of the pods with a running container; None where the host has no cgroups
    # (containers are then not looked at one by one)
    running: set[str] | None = None


class Runtime:
    """The container runtime of one node of one lab."""

    def __init__(self, lab: str, node: NodePlan, pod_mtu: int | None = None,
                 cgroup_host: cgroups.CgroupHost | None = None):
        if node.pod_subnet is None:
            raise ValueError(f"node {node.name} runs no pods: it has no pod subnet")
        self.lab, self.node, self.pod_mtu = lab, node, pod_mtu
        self.cgroups = cgroup_host or cgroups.detect()
        self.ipam = HostLocalIpam.for_node(lab, node.name, node.pod_subnet)
        self.meter = UsageMeter()
        self._node_processes = netns.NetnsMembers(node.netns)
        self._pods: dict[str, Sandbox] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    # -- bookkeeping -------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, uid: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(uid, threading.RLock())
        with lock:
            yield

    def _find(self, pod: PodRef) -> Sandbox | None:
        uid = pod if isinstance(pod, str) else pod.uid
        cached = self._pods.get(uid)
        if cached is not None:
            fresh = sandbox.load_sandbox(cached.path)  # another process may have changed it
            if fresh is not None:
                self._pods[uid] = fresh
                return fresh
        sb = sandbox.find_sandbox(self.lab, uid)
        if sb is not None and sb.node == self.node.name:
            self._pods[uid] = sb
            return sb
        self._pods.pop(uid, None)
        return None

    def _require(self, pod: PodRef) -> Sandbox:
        sb = self._find(pod)
        if sb is None:
            uid = pod if isinstance(pod, str) else pod.uid
            raise sandbox.SandboxError(f"no sandbox for pod uid {uid} on node {self.node.name}")
        return sb

    # -- sandboxes -----------------------------------------------------------------

    def run_pod_sandbox(self, pod: PodSpec) -> Sandbox:
        """Create (or converge) the pod's sandbox: netns, veth, IP, UTS, /etc files."""
        with self._locked(pod.uid):
            sb = sandbox.create_sandbox(self.lab, self.node, pod, self.pod_mtu)
            self._pods[pod.uid] = sb
            return sb

    def check_pod_sandbox(self, pod: PodRef) -> list[str]:
        """What is broken in the pod's sandbox; empty when it is whole."""
        sb = self._find(pod)
        if sb is None:
            return ["no sandbox"]
        return sandbox.check_sandbox(sb, self.node.netns)

    def stop_pod_sandbox(self, pod: PodRef, grace_seconds: float) -> list[ContainerState]:
        """Stop every container of the pod (graceful, in parallel); keep the sandbox."""
        sb = self._find(pod)
        if sb is None:
            return []
        with self._locked(sb.uid):
            return containers.stop_all(sb, grace_seconds)

    def remove_pod_sandbox(self, pod: PodRef, grace_seconds: float = 0.0) -> None:
        """Stop the containers (SIGTERM, grace, SIGKILL), then remove the cgroups,
        the veth, the netns, the UTS namespace, the IP and the pod's files.
        Idempotent: removing an unknown pod does nothing."""
        sb = self._find(pod)
        if sb is None:
            return
        with self._locked(sb.uid):
            containers.stop_all(sb, grace_seconds)
            # Let the conmons finish their exit files and leave on their own,
            # before anything left in the namespace is killed.
            containers.wait_conmons(sb, timeout=5.0)
            containers.forget_all(self.lab, sb)
            cgroups.remove(cgroups.group(self.cgroups, self.lab, sb.uid))
            sandbox.remove_sandbox(self.lab, self.node.netns, sb)
            self._pods.pop(sb.uid, None)
            self.meter.forget([*self._pods, NODE_KEY])

    def list_pods(self) -> list[Sandbox]:
        """Every sandbox of this node, from the files."""
        pods = sandbox.list_sandboxes(self.lab, self.node.name)
        self._pods = {sb.uid: sb for sb in pods}
        return pods

    # -- containers ----------------------------------------------------------------

    def start_container(self, pod: PodRef, spec: ContainerSpec,
                        restart_count: int = 0) -> ContainerState:
        """Start attempt ``restart_count`` of a container; returns once it runs or
        failed to start. ``warnings`` lists limits that could not be enforced."""
        sb = self._require(pod)
        with self._locked(sb.uid):
            return containers.start_container(self.lab, sb, spec, restart_count, self.cgroups)

    def stop_container(self, pod: PodRef, name: str,
                       grace_seconds: float = 30.0) -> ContainerState | None:
        sb = self._find(pod)
        return containers.stop_container(sb, name, grace_seconds) if sb else None

    def container_status(self, pod: PodRef, name: str,
                         restart_count: int | None = None) -> ContainerState | None:
        sb = self._find(pod)
        return containers.container_state(sb, name, restart_count) if sb else None

    def list_containers(self, pod: PodRef) -> list[ContainerState]:
        sb = self._find(pod)
        return containers.list_containers(sb) if sb else []

    def exec_in_container(self, pod: PodRef, name: str, argv: list[str]) -> ExecSpec:
        return containers.exec_spec(self._require(pod), name, argv)

    def attach_info(self, pod: PodRef, name: str) -> containers.AttachInfo | None:
        sb = self._find(pod)
        return containers.attach_info(sb, name) if sb else None

    def log_path(self, pod: PodRef, name: str, previous: bool = False) -> Path | None:
        sb = self._find(pod)
        return containers.log_path(sb, name, previous) if sb else None

    # -- restart safety ------------------------------------------------------------

    def adopt(self) -> list[AdoptedPod]:
        """Rebuild the view after a kubelet restart: every sandbox of this node with
        its containers' states, from the files and verified pids. Starts nothing,
        so nothing runs twice. Frees IPs that no recorded sandbox holds (a
        kubelet killed between allocating and recording)."""
        adopted = []
        for sb in self.list_pods():
            adopted.append(AdoptedPod(sb, containers.list_containers(sb),
                                      sandbox.check_sandbox(sb, self.node.netns)))
        self.ipam.release_unknown(self._recorded)
        return adopted

    def _recorded(self, uid: str) -> bool:
        return any(p.name.endswith(f"_{uid}") for p in pods_dir(self.lab).glob(f"*_{uid}")
                   if (p / SANDBOX_FILE).exists())

    # -- usage ---------------------------------------------------------------------

    def _pod_sample(self, sb: Sandbox) -> Sample:
        host = self.cgroups
        if host.version != "none" and (host.has("cpuacct") or host.version == "v2") \
                and "memory" not in host.missing:
            sample = sample_cgroup(cgroups.group(host, self.lab, sb.uid))
            if sample is not None:
                return sample
        return sample_processes(self._pod_pids(sb))

    def _pod_pids(self, sb: Sandbox) -> set[int]:
        """The pod's processes, without the conmons (they are the runtime's overhead:
        cAdvisor does not count conmon in the pod either)."""
        pids = set(netns.pids_in_netns([sb.netns]))
        for name in containers.container_names(sb):
            for n in containers.attempts(sb, name):
                conmon = read_json(sb.path / name / f"{n}.conmon.json") or {}
                pids.discard(conmon.get("pid"))
        return pids

    def _container_samples(self, sb: Sandbox, running: set[str]) -> dict[str, Sample]:
        """Each running container's counters, from its own cgroup (as cAdvisor reads
        them), keyed ``<pod uid>/<name>``; none where the host has no cgroups. Adds the
        pod's uid to ``running`` if one of its containers runs."""
        if self.cgroups.version == "none":
            return {}
        out = {}
        for name in containers.container_names(sb):
            st = containers.container_state(sb, name, settle=0)
            if st is not None and st.running:
                running.add(sb.uid)
            cg = containers.container_cgroup(sb, name, st) if st is not None and st.running \
                else None
            sample = sample_cgroup(cg) if cg is not None else None
            if sample is not None:
                out[f"{sb.uid}/{name}"] = sample
        return out

    def _samples(self, pods: list[Sandbox], running: set[str]) -> dict[str, Sample]:
        out = {sb.uid: self._pod_sample(sb) for sb in pods}
        for sb in pods:
            out.update(self._container_samples(sb, running))
        out[NODE_KEY] = sample_processes(self._node_processes.pids())
        return out

    def usage(self, window: float = 1.0) -> NodeUsage:
        """CPU (millicores over the window since the last call, or over ``window``
        seconds on the first) and memory working set, per pod and for the node."""
        pods = self.list_pods()
        running: set[str] = set()
        samples = self._samples(pods, running)
        if not all(self.meter.has_recent(k) for k in samples):
            for key, sample in samples.items():
                self.meter.update(key, sample)
            time.sleep(window)  # the measurement window itself, not a readiness wait
            running.clear()
            samples = self._samples(pods, running)
        rates = {k: self.meter.update(k, s) for k, s in samples.items()}
        self.meter.forget(samples)
        pod_usage = {k: r for k, r in rates.items()
                     if k != NODE_KEY and "/" not in k and r is not None}
        per_container: dict[str, dict[str, ResourceUsage]] = {}
        for key, r in rates.items():
            uid, _, name = key.partition("/")
            if name and r is not None and uid in pod_usage:
                per_container.setdefault(uid, {})[name] = r
        total = rates[NODE_KEY] or ResourceUsage(0, 0, 0.0, "psutil")
        for r in pod_usage.values():
            total = total + r
        return NodeUsage(node=total, pods=pod_usage, containers=per_container,
                         running=None if self.cgroups.version == "none" else running)

    @staticmethod
    def cleanup_lab(lab: str) -> CleanupReport:
        """See the module-level ``cleanup_lab``: for ``netlab down``."""
        return cleanup_lab(lab)


# -- netlab down -----------------------------------------------------------------------


@dataclass
class CleanupReport:
    processes: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)


def _owner() -> str | None:
    with links.netlink() as ipr:
        return links.read_owner(ipr)


def _delete_link(name: str) -> None:
    with links.netlink() as ipr:
        links.delete_link(ipr, name)


def pod_namespaces(lab: str) -> list[str]:
    """The lab's pod namespaces that exist: recorded ones, and any carrying the lab's
    prefix, a pod-style name and the lab's owner tag (records lost)."""
    present = set(netns.list_netns())
    found = {sb.netns for sb in sandbox.list_sandboxes(lab) if sb.netns in present}
    for name in present - found:
        if is_pod_netns(lab, name):
            with contextlib.suppress(OSError):
                if netns.run_in_netns(name, _owner) == lab:
                    found.add(name)
    return sorted(found)


def cleanup_lab(lab: str) -> CleanupReport:
    """Remove every trace of the lab's pods, from any process, after any crash:
    kill the conmons and containers (by recorded, verified pid, then whatever is
    left in the pod namespaces), delete pod veths and namespaces, unpin the UTS
    namespaces, delete the lab's cgroups, IPAM and pod state. Idempotent.
    ``netlab down`` calls this before it tears the network down."""
    report = CleanupReport()
    recorded = sandbox.list_sandboxes(lab)
    for sb in recorded:
        report.processes += containers.kill_recorded(sb)
    names = pod_namespaces(lab)
    report.processes += kill_in_netns(names, timeout=2.0)
    for cid in oci_runtime.list_ids(lab):  # crun's records, before its directory goes
        oci_runtime.delete(lab, cid)
    for sb in recorded:
        node_ns = node_netns(lab, sb.node)
        if netns.exists(node_ns):
            with contextlib.suppress(OSError):
                netns.run_in_netns(node_ns, functools.partial(_delete_link, sb.veth))
    for name in names:
        netns.delete_netns(name)
    report.namespaces = names
    with contextlib.suppress(FileNotFoundError):
        for entry in pods_dir(lab).iterdir():
            nsutil.unpin(str(entry / UTS_PIN))
    mounts.unmount_below(str(pods_dir(lab)))  # memory emptyDirs of pods left behind
    mounts.unmount_below(str(runtime_dir(lab)))  # the read-only crun (oci_runtime.crun_binary)
    report.cgroups = cgroups.cleanup_lab(lab)
    for directory in (pods_dir(lab), runtime_dir(lab), DATA_ROOT / lab / "ipam"):
        shutil.rmtree(directory, ignore_errors=True)
    # After a `down` that ran first, the lab's directories may be left empty
    # (its rmtree could not remove the mounted UTS pins): only empty ones go.
    for directory in (lab_state_dir(lab), DATA_ROOT / lab):
        with contextlib.suppress(OSError):
            directory.rmdir()
    return report
