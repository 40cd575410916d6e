#!/usr/bin/env python3
"""Node failure: time from ``netlab fault link-down`` to every replacement pod Ready.

Run, as root:  .venv/bin/python bench/node_failure.py [--runs 1]

A lab (control-plane + 3 workers, the default timings: node monitor grace 10 s,
pod eviction 20 s) runs a Deployment of 3 ``netlab/echo`` replicas, one per
worker. Each run cuts worker2 off the physical network and times, by probing
the API every 0.1 s:

- *detected*: worker2's Ready condition turns Unknown;
- *evicted*: its pod is marked for deletion (the NoExecute taint's toleration
  ran out);
- *replaced*: 3 pods Running and Ready again, none on worker2 (the figure;
  target <= 40 s);
- *back*: after ``link-up``, worker2 Ready again.

Baseline, same lab, same run: the time to replace a pod that is simply deleted
(``kubectl delete pod``): what the replacement itself costs (ReplicaSet,
scheduler, kubelet start-up), so the ratio shows what detection adds on top.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

import yaml

from netlab.client import SyncClient, lab_client
from netlab.lab import faults, lifecycle

VICTIM = "worker2"
REPLICAS = 3
PROBE = 0.1  # seconds between probes of the API

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                 "name": "web", "image": "netlab/echo",
                 "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]}}}}


def _ready(obj: dict) -> Optional[str]:
    return next((c["status"] for c in obj["status"].get("conditions") or []
                 if c["type"] == "Ready"), None)


def serving(client: SyncClient) -> list[dict]:
    return [p for p in client.list("pods", "default", label_selector="app=web")["items"]
            if p["status"].get("phase") == "Running" and _ready(p) == "True"
            and not p["metadata"].get("deletionTimestamp")]


def until(predicate: Callable[[], object], timeout: float, what: str) -> float:
    """Probe until true; return the time.monotonic() at which it was first seen true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(PROBE)  # probe interval


def replace_deleted(client: SyncClient) -> float:
    """Baseline: delete one serving pod, time until REPLICAS serve again."""
    victim = serving(client)[0]["metadata"]["name"]
    start = time.monotonic()
    client.delete("pods", victim, "default")
    done = until(lambda: len([p for p in serving(client) if p["metadata"]["name"] != victim])
                 == REPLICAS, 120, "a deleted pod's replacement")
    return done - start


def fail_node(lab: str, client: SyncClient) -> dict[str, float]:
    lost = {p["metadata"]["name"] for p in serving(client) if p["spec"]["nodeName"] == VICTIM}
    if not lost:
        raise SystemExit(f"no web pod runs on {VICTIM}; the scheduler did not spread them")
    start = time.monotonic()
    faults.link_down(lab, VICTIM)
    try:
        detected = until(lambda: _ready(client.get("nodes", VICTIM)) == "Unknown", 120,
                         f"{VICTIM} Ready=Unknown")
        evicted = until(lambda: all(client.get("pods", n, "default")["metadata"]
                                    .get("deletionTimestamp") for n in lost), 120,
                        "the lost pods evicted")
        replaced = until(lambda: len([p for p in serving(client)
                                      if p["spec"]["nodeName"] != VICTIM]) == REPLICAS, 120,
                         "the replacements Ready")
    finally:
        up_at = time.monotonic()
        faults.link_up(lab, VICTIM)
    back = until(lambda: _ready(client.get("nodes", VICTIM)) == "True", 180,
                 f"{VICTIM} Ready after link-up")
    until(lambda: not client.get("nodes", VICTIM)["spec"].get("taints"), 60,
          "the taints removed")
    until(lambda: len(client.list("pods", "default", label_selector="app=web")["items"])
          == REPLICAS, 120, "the evicted pods cleaned up")
    return {"detected": detected - start, "evicted": evicted - start,
            "replaced": replaced - start, "back": back - up_at}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    name = f"bnf{uuid.uuid4().hex[:6]}"
    nodes = [{"name": "control-plane", "role": "control-plane"}] + [
        {"name": f"worker{i}", "role": "worker"} for i in (1, 2, 3)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, "nodes": nodes}))
        try:
            lifecycle.up(path)
            with SyncClient(lab_client(name)) as client:
                until(lambda: sum(_ready(n) == "True" for n in client.list("nodes")["items"])
                      == 4, 120, "4 Ready nodes")
                client.create(DEPLOYMENT, namespace="default")
                until(lambda: len(serving(client)) == REPLICAS, 120, "the web pods")
                baselines, runs = [], []
                for i in range(args.runs):
                    baselines.append(replace_deleted(client))
                    runs.append(fail_node(name, client))
                    print(f"run {i + 1}: " + ", ".join(f"{k} {v:.1f}s"
                                                       for k, v in runs[-1].items()),
                          file=sys.stderr)
        finally:
            lifecycle.down(name)
    replaced = statistics.median(r["replaced"] for r in runs)
    base = statistics.median(baselines)
    print(f"node failure, {args.runs} run(s), grace 10s + eviction 20s (medians):")
    for key in ("detected", "evicted", "replaced", "back"):
        print(f"  {key:9s} {statistics.median(r[key] for r in runs):5.1f}s"
              + ("   (link-down -> replacements Ready; target <= 40 s)"
                 if key == "replaced" else "")
              + ("   (link-up -> node Ready)" if key == "back" else ""))
    print(f"  baseline: a deleted pod replaced in {base:.1f}s   "
          f"ratio replaced/baseline {replaced / base:.1f}   "
          f"(failure handling adds {replaced - base:.1f}s; grace + eviction = 30 s)")


if __name__ == "__main__":
    main()
