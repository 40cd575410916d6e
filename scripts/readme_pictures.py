#!/usr/bin/env python3
"""Regenerate the README's pictures from a real lab, so they stay true.

Run as root from the repository (``sudo .venv/bin/python scripts/readme_pictures.py``):

1. brings up ``topologies/demo.yaml`` (refuses if a lab of that name is already up:
   it is someone's, and this script takes down what it brought up);
2. creates the README's example: Deployment ``echo`` (6 replicas of ``netlab/echo``)
   and its NodePort Service (``kubectl create deployment`` / ``kubectl expose``);
3. waits, with a deadline, for every replica to be Ready and behind the Service;
4. draws the lab (``netlab graph demo``) to ``docs/images/demo-lab.svg``, and a trace
   from a pod on worker1 to the Service that the round robin sends to another node
   (``netlab trace POD svc/echo:80``) to ``docs/images/demo-trace.svg``;
5. takes the lab down, in ``finally``.

All traffic stays inside the lab's namespaces (the trace's one probe and its answer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOPOLOGY = REPO / "topologies" / "demo.yaml"
IMAGES = REPO / "docs" / "images"
REPLICAS = 6
# What the README's `kubectl create deployment echo --image netlab/echo --replicas 6`
# and `kubectl expose deployment echo --port 80 --target-port 8080 --type NodePort` make.
MANIFEST = {"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "echo", "labels": {"app": "echo"}},
     "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "echo"}},
              "template": {"metadata": {"labels": {"app": "echo"}},
                           "spec": {"containers": [{"name": "echo", "image": "netlab/echo"}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "labels": {"app": "echo"}},
     "spec": {"type": "NodePort", "selector": {"app": "echo"},
              "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}},
]}


def netlab(*args: str, stdin: str | None = None) -> str:
    # This checkout's netlab, whichever one the interpreter has installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-m", "netlab.cli.main", *args], input=stdin,
                          capture_output=True, text=True, check=False, timeout=300, env=env)
    if done.returncode != 0:
        raise SystemExit(f"netlab {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def wait_for(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)  # a probe interval with a deadline, not a readiness guess


def ready_pods(lab: str) -> list[dict[str, Any]] | None:
    pods = json.loads(netlab("get", "--lab", lab, "pods", "-l", "app=echo", "-o", "json"))
    items = pods["items"]
    ok = len(items) == REPLICAS and all(
        p["status"].get("podIP") and any(c.get("type") == "Ready" and c.get("status") == "True"
                                         for c in p["status"].get("conditions") or [])
        for p in items)
    return items if ok else None


def ready_endpoints(lab: str) -> bool:
    slices = json.loads(netlab("get", "--lab", lab, "endpointslices", "-l",
                               "kubernetes.io/service-name=echo", "-o", "json"))["items"]
    return sum(1 for s in slices for e in s.get("endpoints") or []
               if (e.get("conditions") or {}).get("ready")) == REPLICAS


def cross_node_trace(lab: str, src: str) -> dict[str, Any]:
    """A trace from ``src`` to the Service whose endpoint is on another node (round robin
    picks each endpoint in turn, so a few tries reach one)."""
    from netlab.trace import report
    from netlab.trace.engine import run_trace

    for _ in range(3 * REPLICAS):
        doc = report.to_json(run_trace(lab, src, "svc/echo:80"))
        encapsulated = any(c["kind"] == "encap" for h in doc["hops"] for c in h["changes"])
        if doc["verdict"]["result"] == "delivered" and encapsulated:
            return doc
    raise SystemExit("no trace to svc/echo reached a pod on another node")


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("run as root: labs need network namespaces")
    sys.path.insert(0, str(REPO))
    from netlab.graph.labpic import lab_scene
    from netlab.graph.output import render
    from netlab.graph.source import snapshot
    from netlab.graph.tracepic import trace_scene
    from netlab.lab import lifecycle
    from netlab.lab.state import load_state
    from netlab.topology import load_topology

    topology = load_topology(TOPOLOGY)
    lab = topology.name
    if load_state(lab) is not None:
        raise SystemExit(f"lab {lab} is already up; take it down first (netlab down {lab})")
    IMAGES.mkdir(parents=True, exist_ok=True)
    try:
        print(f"bringing up {TOPOLOGY.relative_to(REPO)}", flush=True)
        lifecycle.up(topology)
        netlab("apply", "--lab", lab, "-f", "-", stdin=json.dumps(MANIFEST))
        pods = wait_for(f"{REPLICAS} Ready echo pods", lambda: ready_pods(lab), 180)
        wait_for("the Service's endpoints", lambda: ready_endpoints(lab), 60)
        snap = snapshot(lab)
        lab_svg = IMAGES / "demo-lab.svg"
        lab_svg.write_bytes(render(lab_scene(snap.plan, snap.pods, snap.services,
                                             snap.caption), "svg"))
        print(f"wrote {lab_svg.relative_to(REPO)}")
        on_worker1 = [p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == "worker1"]
        if not on_worker1:
            raise SystemExit("no echo pod was scheduled on worker1")
        src = on_worker1[0]
        trace_svg = IMAGES / "demo-trace.svg"
        trace_svg.write_bytes(render(trace_scene(cross_node_trace(lab, src)), "svg"))
        print(f"wrote {trace_svg.relative_to(REPO)}")
    finally:
        lifecycle.down(lab)
        print(f"lab {lab} is down")


if __name__ == "__main__":
    main()
