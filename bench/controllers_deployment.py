#!/usr/bin/env python3
"""Time a 100-replica Deployment from ``create`` until every pod is Ready.

Run as root:  .venv/bin/python bench/controllers_deployment.py [--runs 3] [--replicas 100]

It brings up a lab (control plane, two workers: API server, scheduler,
controller manager, three kubelets), then for each run creates a Deployment
of ``sleep`` pods in a fresh namespace and follows its pods through one watch,
timestamping three milestones:

- *created*: every pod object exists (the Deployment and ReplicaSet
  controllers' part);
- *bound*: every pod has a node (the scheduler's part);
- *ready*: every pod is Running and Ready (the kubelets' part) — the figure;
- *cm-cpu*: the CPU time the controller manager used meanwhile (all of its
  controllers react to every pod update).

The baseline, measured in the same run on the same lab, is a 10-replica
Deployment; the ratio compares the time *per pod*, so 1.0 means a large
Deployment costs no more per pod than a small one. The namespace is deleted
(and waited for) between runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import psutil  # noqa: E402
from labkit import topology, unique_lab, write_topology  # noqa: E402

from netlab.client import APIError, SyncClient, lab_client  # noqa: E402
from netlab.lab import lifecycle  # noqa: E402
from netlab.lab.state import components_path, read_json  # noqa: E402


def deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "bench"}},
                     "template": {"metadata": {"labels": {"app": "bench"}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "c", "image": "netlab/echo",
                                         "command": ["sleep", "3600"]}]}}}}


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def cpu_seconds(lab: str, component: str) -> float:
    """CPU time (user + system) a component has used so far."""
    pid = (read_json(components_path(lab)) or {}).get(component, {}).get("pid")
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.Error, TypeError, ValueError):
        return 0.0
    return times.user + times.system


def one_run(c: SyncClient, replicas: int, namespace: str, timeout: float) -> dict[str, float]:
    c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    rv = c.list("pods", namespace)["metadata"]["resourceVersion"]
    pods: dict[str, dict[str, Any]] = {}
    marks: dict[str, float] = {}
    start = time.perf_counter()
    c.create(deployment(replicas), namespace=namespace)
    deadline = start + timeout
    while "ready" not in marks and time.perf_counter() < deadline:
        for event in c.watch("pods", namespace, resource_version=rv, timeout_seconds=5):
            obj = event["object"]
            rv = obj["metadata"].get("resourceVersion", rv)
            if event["type"] == "DELETED":
                pods.pop(obj["metadata"]["name"], None)
            elif event["type"] in ("ADDED", "MODIFIED"):
                pods[obj["metadata"]["name"]] = obj
            live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
            now = time.perf_counter() - start
            if len(live) >= replicas:
                marks.setdefault("created", now)
                if all(p["spec"].get("nodeName") for p in live):
                    marks.setdefault("bound", now)
                if all(p["status"].get("phase") == "Running" and ready(p) for p in live):
                    marks.setdefault("ready", now)
                    break
    if "ready" not in marks:
        raise SystemExit(f"{replicas} replicas not ready within {timeout:.0f}s: {marks}")
    return marks


def remove(c: SyncClient, namespace: str, timeout: float = 180.0) -> None:
    c.delete("namespaces", namespace)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c.get("namespaces", namespace)
        except APIError as err:
            if err.not_found:
                return
            raise
        time.sleep(0.5)  # a probe interval while the kubelets stop the pods
    raise SystemExit(f"namespace {namespace} was not deleted within {timeout:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    name = unique_lab()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_topology(Path(tmp), topology(name, workers=2, external=False))
        lifecycle.up(path, control_plane=True)
        try:
            with SyncClient(lab_client(name)) as c:
                while len(c.list("nodes")["items"]) < 3:  # every kubelet registered
                    time.sleep(0.2)
                results: dict[int, list[dict[str, float]]] = {args.replicas: [],
                                                              args.baseline: []}
                for run in range(args.runs):
                    for replicas in (args.baseline, args.replicas):
                        ns = f"bench-{replicas}-{run}"
                        cpu = cpu_seconds(name, "controller-manager")
                        marks = one_run(c, replicas, ns, args.timeout)
                        marks["cm-cpu"] = cpu_seconds(name, "controller-manager") - cpu
                        results[replicas].append(marks)
                        print(f"run {run + 1}: {replicas:>4} replicas  " + "  ".join(
                            f"{k} {v:6.2f}s" for k, v in marks.items()), flush=True)
                        remove(c, ns)
        finally:
            lifecycle.down(name)
    print()
    print(f"median of {args.runs} runs (lab: control plane + 2 workers, "
          f"pods run 'sleep'):")
    print(f"{'milestone':<10} {args.replicas:>5} replicas {args.baseline:>5} replicas "
          f"{'per pod (big)':>14} {'per pod (base)':>15} {'ratio':>6}")
    for key in ("created", "bound", "ready", "cm-cpu"):
        big = statistics.median(m[key] for m in results[args.replicas])
        base = statistics.median(m[key] for m in results[args.baseline])
        per_big, per_base = big / args.replicas, base / args.baseline
        print(f"{key:<10} {big:13.2f}s {base:13.2f}s {per_big * 1000:12.1f}ms "
              f"{per_base * 1000:13.1f}ms {per_big / per_base:6.2f}")


if __name__ == "__main__":
    main()
