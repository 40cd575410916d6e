#!/usr/bin/env python3
"""Time ``netlab trace`` on the demo lab, scapy's import included (target: ≤ 3 s).

Run as root:  .venv/bin/python bench/trace_demo.py [--runs 5]

Brings up the demo topology's network under a unique name, with three pods
made by the container runtime (a listener in one) and kube-proxy's library
programmed with one Service in every cluster node, then prints the median of
several runs of:

- *command*: ``python -m netlab.cli.trace trace … -o json`` end to end, in a
  fresh interpreter, so Python's start-up, netlab's imports and scapy's
  import are all paid, for pod → pod across nodes (TCP), pod → ClusterIP,
  and pod → pod under the same node (ICMP);
- *library*: ``run_trace`` in-process once scapy is loaded: the trace itself
  (sockets in every namespace, nftables tracing in every node, probe, wait,
  cleanup, correlation);
- baselines measured in the same run: ``ip netns exec POD ping -c 1`` (one
  probe with no tracing at all: the process start-up any per-probe tool pays)
  and the bare scapy import, with the ratio command / ping.

The lab is removed in ``finally``.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from netlab.kernel import netns
from netlab.lab import lifecycle
from netlab.node.proxy.syncer import Proxier
from netlab.node.runtime import PodSpec, Runtime
from netlab.topology import load_topology, plan_lab

REPO = Path(__file__).resolve().parents[1]
PODS = {"a": "worker1", "b": "worker1", "c": "worker2"}


def _median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _command(lab: str, *args: str) -> None:
    out = subprocess.run([sys.executable, "-m", "netlab.cli.trace", "trace", "--lab", lab,
                          *args, "-o", "json"], capture_output=True, text=True, check=False,
                         cwd=REPO)
    verdict = json.loads(out.stdout)["verdict"]["result"]
    if verdict != "delivered":
        raise SystemExit(f"trace {args} was not delivered: {out.stdout[-400:]}")


def _setup(lab: str, directory: Path):
    data = yaml.safe_load((REPO / "topologies" / "demo.yaml").read_text())
    data["name"] = lab
    path = directory / f"{lab}.yaml"
    path.write_text(yaml.safe_dump(data))
    lifecycle.up(path, control_plane=False)
    plan = plan_lab(load_topology(path))
    pods = {pod: Runtime(lab, plan.node(node)).run_pod_sandbox(
        PodSpec("default", pod, f"bench-{pod}")) for pod, node in PODS.items()}

    def listen() -> socket.socket:
        sock = socket.socket()
        sock.bind(("0.0.0.0", 8080))
        sock.listen(64)
        return sock

    listener = netns.run_in_netns(pods["c"].netns, listen)
    c = pods["c"]
    objects = [
        {"kind": "Service", "metadata": {"name": "web", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.10", "ports": [
             {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}},
        {"kind": "EndpointSlice", "addressType": "IPv4",
         "metadata": {"name": "web-1", "namespace": "default",
                      "labels": {"kubernetes.io/service-name": "web"}},
         "endpoints": [{"addresses": [c.ip], "nodeName": c.node,
                        "conditions": {"ready": True}}],
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]
    proxiers = []
    for node in ("control-plane", "worker1", "worker2"):
        n = plan.node(node)
        proxier = Proxier(n.netns, None, "10.244.0.0/16", service_cidr="10.96.0.0/16",
                          local_pod_cidr=str(n.pod_subnet), min_interval=0.0)
        proxier.update_service(objects[0])
        proxier.update_endpoint_slice(objects[1])
        proxier.sync(force=True)
        proxiers.append(proxier)
    return pods, listener, proxiers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    lab = f"btr{uuid.uuid4().hex[:6]}"
    listener = None
    proxiers: list[Proxier] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pods, listener, proxiers = _setup(lab, Path(tmp))
        from netlab.trace.engine import run_trace

        run_trace(lab, "a", "c", port=8080)  # warm: scapy loaded, caches filled
        rows = [
            ("command: pod → pod across nodes (tcp)",
             _median(lambda: _command(lab, "a", "c", "--port", "8080"), args.runs)),
            ("command: pod → ClusterIP (tcp)",
             _median(lambda: _command(lab, "a", "svc/web"), args.runs)),
            ("command: pod → pod, same node (icmp)",
             _median(lambda: _command(lab, "a", "b"), args.runs)),
            ("library: pod → ClusterIP, scapy loaded",
             _median(lambda: run_trace(lab, "a", "svc/web"), args.runs)),
        ]
        ping = _median(lambda: subprocess.run(
            ["ip", "netns", "exec", pods["a"].netns, "ping", "-c", "1", "-W", "1", "-n",
             pods["c"].ip], capture_output=True, check=True), args.runs)
        scapy = _median(lambda: subprocess.run(
            [sys.executable, "-c", "import scapy.layers.inet"], check=True), args.runs)
        print(f"netlab trace on the demo lab, median of {args.runs} runs")
        for name, seconds in rows:
            ratio = f"{seconds / ping:6.1f}x ping" if name.startswith("command") else ""
            target = ("  ≤ 3 s " + ("✔" if seconds <= 3.0 else "✘")
                      if name.startswith("command") else "")
            print(f"  {name:42s} {seconds:7.3f} s  {ratio}{target}")
        print(f"  {'baseline: ip netns exec … ping -c 1':42s} {ping:7.3f} s")
        print(f"  {'baseline: python -c import scapy.layers.inet':42s} {scapy:7.3f} s")
    finally:
        if listener is not None:
            listener.close()
        for proxier in proxiers:
            proxier.cleanup()
        lifecycle.down(lab)


if __name__ == "__main__":
    main()
