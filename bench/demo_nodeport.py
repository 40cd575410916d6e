#!/usr/bin/env python3
"""The demo from nothing to a NodePort answer (issue 16's target: <= 2 s).

Run as root:  .venv/bin/python bench/demo_nodeport.py [--runs 5] [--node worker1]

Each run starts with no lab and does what the README's demo does, in-process:
``lifecycle.up`` of ``topologies/demo.yaml`` (under a unique name), then a
2-replica Deployment of ``netlab/echo`` and a NodePort Service in front of it
(what ``kubectl create deployment`` and ``kubectl expose --type NodePort`` make),
then connects from the external ``client`` node's namespace to ``--node``'s
address at the NodePort until the first answer from a pod. Then ``down``.

It prints, per run, when each milestone was reached, in seconds since the run
started (the ``Δ`` column is the time since the milestone before it):

- ``up``'s own steps, stamped as its progress callback reports them (network,
  supervisor started, API server ready, every Node Ready, ``up`` returned);
- Deployment and Service created (their create requests answered);
- the first and the last pod scheduled, containers started, Ready: stamped on
  arrival of the events of a watch on the pods opened before the create;
- the EndpointSlice with a ready endpoint (the same, on EndpointSlices);
- the rules programmed on the node the client hits: the first sync logged by that
  node's kube-proxy after the slice arrived (its log's millisecond timestamp);
- the first answer through the NodePort;
- from the components' logs: the API server listening, the controller manager's
  and the scheduler's caches synced, that node's kube-proxy's first sync;
- the CPU time the lab's processes had used when ``up`` returned and at the answer,
  by kind (all kubelets together, ...): on 2 cores, half of it is a floor on the
  wall time.

Baseline, same run: ``up`` of the same topology's network alone
(``lifecycle.up(..., control_plane=False)``, no process), as bench/scale_lab.py
takes it; the ratio total / network is the figure to compare across machines.
The medians and ranges over the runs come last, with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import re
import socket
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import yaml

from netlab.client import Client, lab_client
from netlab.kernel import netns
from netlab.lab import lifecycle
from netlab.lab.state import components_path, log_dir, read_json
from netlab.topology import load_topology, plan_lab

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 2.0
NODE_PORT = 30080
REPLICAS = 2
PROBE_INTERVAL = 0.005  # between refused connects: a probe interval, not a readiness guess

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "echo", "namespace": "default", "labels": {"app": "echo"}},
    "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "echo"}},
             "template": {"metadata": {"labels": {"app": "echo"}},
                          "spec": {"containers": [{"name": "echo", "image": "netlab/echo"}]}}}}
SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "echo", "namespace": "default", "labels": {"app": "echo"}},
    "spec": {"type": "NodePort", "selector": {"app": "echo"},
             "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP",
                        "nodePort": NODE_PORT}]}}

# up's progress messages that start a step: the milestone is the end of the step before.
UP_MARKS = [("starting the supervisor", "network built"),
            ("waiting for the nodes", "API server ready")]
LOG_TIME = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
SYNC_LINE = re.compile(LOG_TIME + r"\S+ INFO (full|partial) sync")
# Components' own readiness, from their logs: (log, line, milestone).
LOG_MARKS = [("apiserver", r"netlab.apiserver INFO lab \S+: serving", "API server listening"),
             ("controller-manager", r"\S+ INFO caches synced", "controller manager synced"),
             ("scheduler", r"\S+ INFO \S+: caches synced", "scheduler synced"),
             ("proxy-{node}", r"\S+ INFO full sync", "kube-proxy on {node}: first sync")]


class Stamps:
    """Milestones in seconds since the run's start (time.monotonic), first one wins;
    also converts the components' wall-clock log times to that scale."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.wall_start = time.time()
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()

    def mark(self, name: str, when: float | None = None) -> None:
        with self.lock:
            self.at.setdefault(name, (time.monotonic() if when is None else when) - self.start)

    def from_wall(self, wall: float) -> float:
        return wall - self.wall_start


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _started(pod: dict) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and all("running" in (s.get("state") or {}) for s in statuses)


async def _watch_pods(client: Client, stamps: Stamps, rv: str) -> None:
    seen: dict[str, set[str]] = {"scheduled": set(), "started": set(), "Ready": set()}
    async for event in client.watch("pods", "default", resource_version=rv,
                                    label_selector="app=echo"):
        pod = event.get("object") or {}
        name = (pod.get("metadata") or {}).get("name")
        if event.get("type") not in ("ADDED", "MODIFIED") or not name:
            continue
        for what, test in (("scheduled", lambda p: bool((p.get("spec") or {}).get("nodeName"))),
                           ("started", _started), ("Ready", _ready)):
            if test(pod) and name not in seen[what]:
                seen[what].add(name)
                if len(seen[what]) == 1:
                    stamps.mark(f"first pod {what}")
                if len(seen[what]) == REPLICAS:
                    stamps.mark(f"all pods {what}")


async def _watch_slices(client: Client, stamps: Stamps, rv: str) -> None:
    async for event in client.watch("endpointslices.discovery.k8s.io", "default",
                                    resource_version=rv,
                                    label_selector="kubernetes.io/service-name=echo"):
        eps = (event.get("object") or {}).get("endpoints") or []
        if any((e.get("conditions") or {}).get("ready") for e in eps):
            stamps.mark("EndpointSlice with a ready endpoint")


def _connect(namespace: str, ip: str) -> str | None:
    """One TCP connect and request from the client's namespace: None on a pod's
    answer, else what went wrong (refused, timed out, ...)."""
    sock = netns.run_in_netns(namespace, lambda: socket.socket(socket.AF_INET,
                                                               socket.SOCK_STREAM))
    with sock:
        sock.settimeout(1.0)
        try:
            sock.connect((ip, NODE_PORT))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
            answer = sock.recv(4096)
        except OSError as exc:
            return type(exc).__name__
        return None if b"podIP" in answer else f"answer {answer[:40]!r}"


def _logged(lab: str, component: str, pattern: re.Pattern[str], stamps: Stamps,
            after: float = -1e9) -> float | None:
    """When ``component`` first logged a line matching ``pattern`` at or after
    ``after`` (run time), from the log's millisecond wall-clock timestamps."""
    path = log_dir(lab) / f"{component}.log"
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            m = pattern.match(line)
            if not m:
                continue
            wall = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            # Milliseconds: what a stamp on arrival saw may be logged up to 1 ms "before".
            if stamps.from_wall(wall) >= after - 0.001:
                return stamps.from_wall(wall)
    return None


async def _workload(lab: str, stamps: Stamps, target_ip: str, client_ns: str,
                    timeout: float) -> None:
    async with lab_client(lab) as client:
        rv_pods = (await client.list("pods", "default"))["metadata"]["resourceVersion"]
        rv_slices = (await client.list("endpointslices.discovery.k8s.io", "default")
                     )["metadata"]["resourceVersion"]
        watches = [asyncio.create_task(_watch_pods(client, stamps, rv_pods)),
                   asyncio.create_task(_watch_slices(client, stamps, rv_slices))]
        try:
            await client.create(DEPLOYMENT, "default")
            stamps.mark("Deployment created")
            await client.create(SERVICE, "default")
            stamps.mark("Service created")
            deadline = time.monotonic() + timeout
            while True:
                began = time.monotonic()
                failure = await asyncio.to_thread(_connect, client_ns, target_ip)
                if failure is None:
                    break
                # The last failure of each kind: a late one says what the answer waited for.
                stamps.at[f"last probe {failure} (its start)"] = began - stamps.start
                if time.monotonic() > deadline:
                    raise SystemExit(f"no answer through the NodePort after {timeout:.0f} s")
                await asyncio.sleep(PROBE_INTERVAL)
            stamps.mark("first answer through the NodePort")
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)


def cpu_by_kind(lab: str, state: lifecycle.LabState) -> dict[str, float]:
    """CPU seconds (user + system, reaped children included) the lab's processes have
    used so far, by kind: kubelet-worker1 and kubelet-worker2 count as kubelet."""
    pids = {name: row.get("pid") for name, row in (read_json(components_path(lab)) or {}).items()}
    pids["supervisor"] = state.processes.get("supervisor", {}).get("pid")
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
        except (psutil.Error, TypeError, ValueError):
            continue
        kind = name.split("-")[0] if name.startswith(("kubelet-", "proxy-", "netpol-")) else name
        out[kind] = out.get(kind, 0.0) + t.user + t.system + t.children_user + t.children_system
    return out


def one_run(path: Path, lab: str, node: str
            ) -> tuple[dict[str, float], float, dict[str, dict[str, float]]]:
    """(milestones, network-only up, CPU by kind at up's return and at the answer) of
    one run from no lab."""
    plan = plan_lab(load_topology(path))
    target_ip = str(plan.node(node).underlay.ip)
    client_ns = plan.node("client").netns
    started = time.perf_counter()
    try:
        lifecycle.up(path, control_plane=False)
        network = time.perf_counter() - started
    finally:
        lifecycle.down(lab)
    stamps = Stamps()

    def progress(message: str) -> None:
        for prefix, milestone in UP_MARKS:
            if message.startswith(prefix):
                stamps.mark(milestone)
    cpu: dict[str, dict[str, float]] = {}
    try:
        state = lifecycle.up(path, progress=progress)
        stamps.mark("every Node Ready, up returned")
        cpu["up returned"] = cpu_by_kind(lab, state)
        asyncio.run(_workload(lab, stamps, target_ip, client_ns, timeout=60))
        cpu["first answer"] = cpu_by_kind(lab, state)
        slice_at = stamps.at.get("EndpointSlice with a ready endpoint")
        if slice_at is not None:
            synced = _logged(lab, f"proxy-{node}", SYNC_LINE, stamps, slice_at)
            if synced is not None:
                stamps.at[f"rules programmed on {node} (its log)"] = synced
        for component, line, milestone in LOG_MARKS:
            when = _logged(lab, component.format(node=node),
                           re.compile(LOG_TIME + line), stamps)
            if when is not None:
                stamps.at[f"{milestone.format(node=node)} (its log)"] = when
    finally:
        lifecycle.down(lab)
    return stamps.at, network, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--node", default="worker1", help="the node the client connects to")
    args = parser.parse_args()
    load = psutil.getloadavg()
    print(f"demo: up, a {REPLICAS}-replica Deployment and a NodePort Service, until the "
          f"client gets an answer through {args.node}:{NODE_PORT}; load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    data = yaml.safe_load((REPO / "topologies" / "demo.yaml").read_text())
    totals: list[float] = []
    networks: list[float] = []
    phases: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            lab = f"dn{uuid.uuid4().hex[:6]}"
            data["name"] = lab
            path = Path(tmp) / f"{lab}.yaml"
            path.write_text(yaml.safe_dump(data))
            at, network, cpu = one_run(path, lab, args.node)
            total = at["first answer through the NodePort"]
            totals.append(total)
            networks.append(network)
            print(f"\nrun {run}: {total:.2f} s to the first answer; network alone "
                  f"{network:.3f} s (ratio {total / network:.1f})")
            before = 0.0
            for name, when in sorted(at.items(), key=lambda kv: kv[1]):
                print(f"  {when:6.3f} s  Δ {when - before:6.3f}  {name}")
                phases.setdefault(name, []).append(when)
                before = when
            for when, used in cpu.items():
                top = sorted(used.items(), key=lambda kv: -kv[1])
                print(f"  CPU at {when}: {sum(used.values()):.2f} s in all ("
                      + ", ".join(f"{k} {v:.2f}" for k, v in top) + ")")
                cpus.setdefault(when, []).append(sum(used.values()))
    load = psutil.getloadavg()
    print(f"\nmedians over {args.runs} runs (min-max), load average now "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}:")
    for name, values in sorted(phases.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"  {statistics.median(values):6.3f} s  ({min(values):.3f}-{max(values):.3f})  "
              f"{name}")
    for when, values in cpus.items():
        print(f"  CPU of the lab's processes at {when}: {statistics.median(values):.2f} s "
              f"({min(values):.2f}-{max(values):.2f}); on 2 cores at least "
              f"{statistics.median(values) / 2:.2f} s of wall time")
    total, network = statistics.median(totals), statistics.median(networks)
    print(f"first answer {total:.2f} s (median; {min(totals):.2f}-{max(totals):.2f}), "
          f"network alone {network:.3f} s, ratio {total / network:.1f}; "
          f"target <= {TARGET_S:.0f} s")


if __name__ == "__main__":
    main()
