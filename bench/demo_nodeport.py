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
- the first answer through the NodePort.

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
from netlab.lab.state import log_dir
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
SYNC_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ INFO (full|partial) sync")


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


def _connect(namespace: str, ip: str) -> bool:
    """One TCP connect and request from the client's namespace; True on a pod's answer."""
    sock = netns.run_in_netns(namespace, lambda: socket.socket(socket.AF_INET,
                                                               socket.SOCK_STREAM))
    with sock:
        sock.settimeout(1.0)
        try:
            sock.connect((ip, NODE_PORT))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
            return b"podIP" in sock.recv(4096)
        except OSError:
            return False


def _proxy_synced_after(lab: str, node: str, stamps: Stamps, after: float) -> float | None:
    """The first sync that node's kube-proxy logged at or after ``after`` (run time)."""
    path = log_dir(lab) / f"proxy-{node}.log"
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            m = SYNC_LINE.match(line)
            if not m:
                continue
            wall = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            # The log has milliseconds: the sync that took the slice may be logged up to
            # a millisecond "before" the stamp.
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
            while not await asyncio.to_thread(_connect, client_ns, target_ip):
                if time.monotonic() > deadline:
                    raise SystemExit(f"no answer through the NodePort after {timeout:.0f} s")
                await asyncio.sleep(PROBE_INTERVAL)
            stamps.mark("first answer through the NodePort")
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)


def one_run(path: Path, lab: str, node: str) -> tuple[dict[str, float], float]:
    """(milestones, network-only up) of one run from no lab."""
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
    try:
        lifecycle.up(path, progress=progress)
        stamps.mark("every Node Ready, up returned")
        asyncio.run(_workload(lab, stamps, target_ip, client_ns, timeout=60))
        slice_at = stamps.at.get("EndpointSlice with a ready endpoint")
        if slice_at is not None:
            synced = _proxy_synced_after(lab, node, stamps, slice_at)
            if synced is not None:
                stamps.at[f"rules programmed on {node} (its log)"] = synced
    finally:
        lifecycle.down(lab)
    return stamps.at, network


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
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            lab = f"dn{uuid.uuid4().hex[:6]}"
            data["name"] = lab
            path = Path(tmp) / f"{lab}.yaml"
            path.write_text(yaml.safe_dump(data))
            at, network = one_run(path, lab, args.node)
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
    load = psutil.getloadavg()
    print(f"\nmedians over {args.runs} runs (min-max), load average now "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}:")
    for name, values in sorted(phases.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"  {statistics.median(values):6.3f} s  ({min(values):.3f}-{max(values):.3f})  "
              f"{name}")
    total, network = statistics.median(totals), statistics.median(networks)
    print(f"first answer {total:.2f} s (median; {min(totals):.2f}-{max(totals):.2f}), "
          f"network alone {network:.3f} s, ratio {total / network:.1f}; "
          f"target <= {TARGET_S:.0f} s")


if __name__ == "__main__":
    main()
