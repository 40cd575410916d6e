#!/usr/bin/env python3
"""Create-then-delete churn: a Deployment of built-in-image pods, deleted as soon as
its rollout is done, round after round.

Run as root:  .venv/bin/python bench/pod_churn.py [--replicas 20] [--rounds 10]
              [--image netlab/echo]

Each round creates a Deployment in the demo's shape (control plane + 2 workers),
waits until every replica is Ready (what ``kubectl rollout status`` waits for),
deletes the Deployment at once and waits until its last pod object is gone. The
figure is the time per round, and the *delete* part of it: before the images
honoured SIGTERM from their first instant, a delete that caught a container still
starting waited out the 30 s grace period.

Baseline, in the same run on the same lab: the same churn with a 3 s pause
between the rollout and the delete, which gives every image time to install its
handler. The ratio churn/baseline of the delete part is what is left of the
start-up window (1.0: none).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from kubelet_pods import running_lab  # bench/ is on sys.path: scripts share helpers

from netlab.client import Client, lab_client

SETTLE_SECONDS = 3.0  # the baseline's pause before each delete (the workaround)


def topology(name: str) -> dict:
    return {"name": name, "nodes": [{"name": "control-plane", "role": "control-plane"},
                                    {"name": "worker1", "role": "worker", "maxPods": 110},
                                    {"name": "worker2", "role": "worker", "maxPods": 110}]}


def deployment(name: str, replicas: int, image: str) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def _wait(client: Client, selector: str, done, timeout: float = 180) -> None:
    """Poll the pods of ``selector`` until ``done(pods)``; the deadline guards a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = (await client.list("pods", "default", label_selector=selector))["items"]
        if done(pods):
            return
        await asyncio.sleep(0.05)  # probe interval
    raise SystemExit(f"pods {selector} did not converge within {timeout:.0f}s")


def _all_ready(replicas: int):
    def check(pods: list[dict]) -> bool:
        ready = [p for p in pods if not p["metadata"].get("deletionTimestamp") and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or [])]
        return len(ready) >= replicas
    return check


async def churn(lab: str, replicas: int, rounds: int, image: str,
                pause: float) -> list[tuple[float, float]]:
    """(round seconds, delete-to-gone seconds) per round."""
    out = []
    async with lab_client(lab) as client:
        for i in range(rounds):
            name = f"churn-{'p' if pause else 'n'}{i}"
            selector = f"app={name}"
            t0 = time.monotonic()
            await client.create(deployment(name, replicas, image))
            await _wait(client, selector, _all_ready(replicas))
            if pause:
                await asyncio.sleep(pause)
            t_delete = time.monotonic()
            await client.delete("deployments", name, "default")
            await _wait(client, selector, lambda pods: not pods)
            t_end = time.monotonic()
            out.append((t_end - t0 - pause, t_end - t_delete))
    return out


def summary(rows: list[tuple[float, float]]) -> tuple[float, float, float]:
    deletes = [d for _, d in rows]
    return statistics.median(r for r, _ in rows), statistics.median(deletes), max(deletes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--image", default="netlab/echo")
    args = parser.parse_args()
    lab = f"ch{uuid.uuid4().hex[:6]}"
    with running_lab(topology(lab), 3):
        now = asyncio.run(churn(lab, args.replicas, args.rounds, args.image, 0.0))
        base = asyncio.run(churn(lab, args.replicas, args.rounds, args.image, SETTLE_SECONDS))
    (r_now, d_now, worst_now), (r_base, d_base, worst_base) = summary(now), summary(base)
    print(f"{args.replicas} replicas of {args.image} x {args.rounds} rounds (medians)")
    print(f"  delete at once     : round {r_now:6.2f} s, delete->gone {d_now:5.2f} s "
          f"(worst {worst_now:.2f} s)")
    print(f"  {SETTLE_SECONDS:.0f} s pause first   : round {r_base:6.2f} s (pause excluded), "
          f"delete->gone {d_base:5.2f} s (worst {worst_base:.2f} s)")
    print(f"  ratio delete->gone at once / after pause: {d_now / d_base:.2f}")


if __name__ == "__main__":
    main()
