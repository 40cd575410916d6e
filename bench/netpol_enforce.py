#!/usr/bin/env python3
"""Time from a NetworkPolicy write to enforcement, end to end, against kube-proxy.

Run as root:  .venv/bin/python bench/netpol_enforce.py [--changes 50] [--background 1000]

A lab (control plane + 2 workers): a server pod (``netlab/echo`` on 8080) on
worker2 and a client pod on worker1, in namespace ``bench`` under a
default-deny policy; ``--background`` more policies in 10 other namespaces
(the cluster of ``bench/netpol_sync.py``, policies only: they select no pod
here but every agent compiles and watches them).

- **policy**: create ``allow-client`` (server, from the client, on 8080),
  and time from the API's answer to the first connection from the client
  that completes; delete it and wait until connections fail again. Every
  step the agents do is in it: the watch event, the sync, the transaction.
- **baseline, kube-proxy**: the same kind of change through the proxy in the
  same run: a Service (selecting the server, the client allowed) gets a new
  port, alternately 80 and 81, and the time from the API's answer to the
  first connection to ``ClusterIP:new port`` that completes.

Each change comes 1.2 s after the previous one, so kube-proxy's 1 s minimum
sync interval (its rate limit, upstream's default too) is not what is
measured. Connections are attempted every 2 ms, each given 50 ms, so a
change is seen within a few milliseconds of the kernel having it. Printed:
p50 and p99 of each, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import selectors
import socket
import statistics
import time
import uuid

from kubelet_pods import running_lab
from netpol_sync import NAMESPACES, policy

from netlab.client import lab_client
from netlab.kernel.netns import run_in_netns
from netlab.node.runtime.paths import pod_netns

ATTEMPT_EVERY, ATTEMPT_FOR = 0.002, 0.05
IDLE = 1.2  # seconds before each change: longer than kube-proxy's minimum sync interval


def first_connect(netns: str, ip: str, port: int, timeout: float = 30.0) -> float:
    """Start a connection every 2 ms until one completes; the monotonic time it did."""
    sel = selectors.DefaultSelector()
    started: dict[socket.socket, float] = {}
    deadline = time.monotonic() + timeout
    next_at = 0.0
    try:
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_at:
                sock = run_in_netns(netns, socket.socket)
                sock.setblocking(False)
                sock.connect_ex((ip, port))
                sel.register(sock, selectors.EVENT_WRITE)
                started[sock] = now
                next_at = now + ATTEMPT_EVERY
            for key, _ in sel.select(max(0.0, next_at - time.monotonic())):
                sock = key.fileobj
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    return time.monotonic()
                sel.unregister(sock)
                sock.close()
                started.pop(sock, None)
            for sock, at in list(started.items()):
                if time.monotonic() - at > ATTEMPT_FOR:
                    sel.unregister(sock)
                    sock.close()
                    del started[sock]
        raise TimeoutError(f"{ip}:{port} never answered")
    finally:
        for sock in started:
            sock.close()
        sel.close()


def blocked(netns: str, ip: str, port: int, tries: int = 3) -> bool:
    for _ in range(tries):
        sock = run_in_netns(netns, socket.socket)
        with sock:
            sock.settimeout(0.1)
            try:
                sock.connect((ip, port))
                return False
            except OSError:
                pass
    return True


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def echo_pod(name: str, node: str, role: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "bench", "labels": {"role": role}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "echo", "image": "netlab/echo",
                                     "ports": [{"containerPort": 8080}]}]}}


ALLOW = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "allow-client", "namespace": "bench"},
         "spec": {"podSelector": {"matchLabels": {"role": "server"}},
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                               "ports": [{"port": 8080}]}]}}


async def run(lab: str, changes: int, background: int) -> None:
    loop = asyncio.get_running_loop()
    async with lab_client(lab) as client:
        await client.create({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "bench"}})
        for n in range(NAMESPACES):
            await client.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": f"ns{n}", "labels": {"tier": f"t{n % 4}"}}})
        for i in range(background):
            await client.create({"apiVersion": "networking.k8s.io/v1",
                                 "kind": "NetworkPolicy", **policy(i)})
        await client.create(echo_pod("server", "worker2", "server"))
        await client.create(echo_pod("client", "worker1", "client"))
        pods: dict[str, dict] = {}
        while len(pods) < 2:
            pods = {p["metadata"]["name"]: p
                    for p in (await client.list("pods", "bench"))["items"]
                    if (p.get("status") or {}).get("podIP")
                    and (p["status"].get("phase") == "Running")}
            await asyncio.sleep(0.1)  # probe interval
        server_ip = pods["server"]["status"]["podIP"]
        client_ns = pod_netns(lab, "worker1", "client", pods["client"]["metadata"]["uid"])
        await loop.run_in_executor(None, first_connect, client_ns, server_ip, 8080)
        await client.create({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny-all", "namespace": "bench"},
            "spec": {"podSelector": {}}})
        while not await loop.run_in_executor(None, blocked, client_ns, server_ip, 8080):
            await asyncio.sleep(0.05)  # probe interval
        policy_times = []
        for _ in range(changes):
            await asyncio.sleep(IDLE)  # pacing, the same for both (see the docstring)
            await client.create(ALLOW)
            acked = time.monotonic()
            done = await loop.run_in_executor(None, first_connect, client_ns, server_ip, 8080)
            policy_times.append(done - acked)
            await client.delete("networkpolicies", "allow-client", "bench")
            while not await loop.run_in_executor(None, blocked, client_ns, server_ip, 8080):
                await asyncio.sleep(0.05)  # probe interval
        await client.create(ALLOW)
        svc = await client.create({"apiVersion": "v1", "kind": "Service",
                                   "metadata": {"name": "web", "namespace": "bench"},
                                   "spec": {"selector": {"role": "server"},
                                            "ports": [{"port": 80, "targetPort": 8080}]}})
        cluster_ip = svc["spec"]["clusterIP"]
        await loop.run_in_executor(None, first_connect, client_ns, cluster_ip, 80)
        proxy_times = []
        port = 80
        for _ in range(changes):
            await asyncio.sleep(IDLE)  # pacing: kube-proxy's 1 s rate limit is not measured
            port = 81 if port == 80 else 80
            await client.patch("services", "web", {"spec": {"ports": [
                {"port": port, "targetPort": 8080}]}}, "bench", patch_type="merge")
            acked = time.monotonic()
            done = await loop.run_in_executor(None, first_connect, client_ns, cluster_ip, port)
            proxy_times.append(done - acked)
    print(f"policy write to enforced, {changes} changes, {background} background policies:")
    print(f"  NetworkPolicy allow created -> first connection: p50 "
          f"{statistics.median(policy_times) * 1000:7.1f} ms   p99 "
          f"{pct(policy_times, 0.99) * 1000:7.1f} ms")
    print(f"  baseline, Service port changed -> first connection through kube-proxy: p50 "
          f"{statistics.median(proxy_times) * 1000:7.1f} ms   p99 "
          f"{pct(proxy_times, 0.99) * 1000:7.1f} ms")
    print(f"  ratio policy / kube-proxy: p50 "
          f"{statistics.median(policy_times) / statistics.median(proxy_times):5.2f}   p99 "
          f"{pct(policy_times, 0.99) / pct(proxy_times, 0.99):5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--background", type=int, default=1000)
    args = parser.parse_args()
    lab = f"nlb{uuid.uuid4().hex[:7]}"
    data = {"name": lab, "nodes": [{"name": "control-plane", "role": "control-plane"},
                                   {"name": "worker1", "role": "worker"},
                                   {"name": "worker2", "role": "worker"}]}
    with running_lab(data, ready_nodes=3):
        asyncio.run(run(lab, args.changes, args.background))


if __name__ == "__main__":
    main()
