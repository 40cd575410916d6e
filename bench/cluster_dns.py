#!/usr/bin/env python3
"""Cluster DNS from a pod: queries per second, latency, and how soon a new Service
resolves.

Run as root:  .venv/bin/python bench/cluster_dns.py [--queries 2000] [--services 50]

One lab in the demo's shape (control plane + 2 workers). From a pod on worker1, over
UDP, through kube-proxy to the kube-dns Service (the DNS component listens on the
control-plane node):

* **latency and rate**: ``--queries`` A queries for ``web.default.svc.cluster.local``
  one at a time (p50, p99, queries/s), then with 32 in flight (queries/s).
  Baseline, same run, same pod: the same number of UDP round trips to a
  ``netlab/echo`` Service whose one endpoint is on worker2 (a cross-node hop through
  kube-proxy, like the DNS query's), with the same payload size. Ratio DNS/echo.
* **propagation**: ``--services`` times, create a Service and query its name every
  2 ms until it resolves; the figure is the time from the create request to the
  first answer that resolves it (the issue's target: p99 <= 100 ms). Baseline, same
  iterations: the time from the same request until the bench's own watch on
  Services delivers the ADDED event, which is the floor for anything driven by a
  watch. Ratio DNS/watch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import time
import uuid
from ipaddress import IPv4Network

import dns.message
import dns.rcode
from kubelet_pods import running_lab  # bench/ is on sys.path: scripts share helpers

from netlab.client import Client, lab_client
from netlab.dns.addon import cluster_dns_ip
from netlab.kernel import netns
from netlab.topology.model import DEFAULT_SERVICE_SUBNET

ZONE = "cluster.local"
WINDOW = 32  # queries in flight for the rate figure


def topology(name: str) -> dict:
    return {"name": name, "nodes": [{"name": "control-plane", "role": "control-plane"},
                                    {"name": "worker1", "role": "worker"},
                                    {"name": "worker2", "role": "worker"}]}


def pod(name: str, node: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "netlab/echo"}]}}


def service(name: str, selector: dict | None, port: int = 80, target: int = 8080,
            protocol: str = "TCP") -> dict:
    spec: dict = {"ports": [{"port": port, "targetPort": target, "protocol": protocol}]}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def _running(client: Client, names: list[str], timeout: float = 120) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = {p["metadata"]["name"]: p for p in
                (await client.list("pods", "default"))["items"]}
        if all((pods.get(n) or {}).get("status", {}).get("podIP") and
               pods[n]["status"].get("phase") == "Running" for n in names):
            return pods
        await asyncio.sleep(0.1)  # probe interval
    raise SystemExit(f"pods {names} did not start within {timeout:.0f}s")


def _pod_netns(lab: str, p: dict) -> str:
    prefix = f"{lab}-{p['spec']['nodeName']}."
    uid = p["metadata"]["uid"][:8]
    return next(n for n in netns.list_netns() if n.startswith(prefix) and uid in n)


def _udp_socket(ns: str, server: tuple[str, int]) -> socket.socket:
    sock = netns.run_in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.settimeout(2)
    sock.connect(server)
    return sock


def round_trips(sock: socket.socket, payloads: list[bytes]) -> list[float]:
    """One at a time: the round-trip seconds of each payload."""
    out = []
    for payload in payloads:
        t0 = time.perf_counter()
        sock.send(payload)
        sock.recv(4096)
        out.append(time.perf_counter() - t0)
    return out


def windowed_rate(sock: socket.socket, payloads: list[bytes]) -> float:
    """Answers per second with WINDOW requests in flight."""
    sent = received = 0
    t0 = time.perf_counter()
    while received < len(payloads):
        while sent < len(payloads) and sent - received < WINDOW:
            sock.send(payloads[sent])
            sent += 1
        with contextlib.suppress(TimeoutError):  # a datagram lost: count it and go on
            sock.recv(4096)
        received += 1
    return len(payloads) / (time.perf_counter() - t0)


def _queries(name: str, count: int) -> list[bytes]:
    return [dns.message.make_query(name, "A").to_wire() for _ in range(count)]


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] \
        if len(values) > 1 else values[0]


def _resolves(sock: socket.socket, name: str) -> bool:
    sock.send(dns.message.make_query(name, "A").to_wire())
    answer = dns.message.from_wire(sock.recv(4096))
    return answer.rcode() == dns.rcode.NOERROR and bool(answer.answer)


def _echoes(sock: socket.socket) -> bool:
    try:
        sock.send(b"ping")
        return bool(sock.recv(4096))
    except OSError:  # refused until kube-proxy has the endpoint; a timeout if lost
        return False


async def propagation(client: Client, sock: socket.socket, count: int
                      ) -> tuple[list[float], list[float]]:
    """(create -> first resolving answer, create -> own watch event) seconds, per Service."""
    loop = asyncio.get_running_loop()
    arrived: dict[str, asyncio.Future] = {}
    rv = (await client.list("services", "default"))["metadata"]["resourceVersion"]

    async def watch() -> None:  # one watch for the whole run: connected before any create
        async for event in client.watch("services", "default", resource_version=rv):
            name = (event.get("object") or {}).get("metadata", {}).get("name")
            if event.get("type") == "ADDED" and name in arrived and not arrived[name].done():
                arrived[name].set_result(time.perf_counter())

    def poll(fqdn: str) -> float:
        while not _resolves(sock, fqdn):
            time.sleep(0.002)  # the query interval, not a readiness wait
        return time.perf_counter()

    watcher = asyncio.ensure_future(watch())
    dns_times, watch_times = [], []
    try:
        # A first Service whose event proves the watch is connected before any timing.
        arrived["prop-warm"] = loop.create_future()
        await client.create(service("prop-warm", None))
        await asyncio.wait_for(arrived["prop-warm"], 30)
        for i in range(count):
            name = f"prop-{i}"
            arrived[name] = loop.create_future()
            t0 = time.perf_counter()
            await client.create(service(name, None))
            polling = loop.run_in_executor(None, poll, f"{name}.default.svc.{ZONE}")
            watch_times.append(await asyncio.wait_for(arrived[name], 30) - t0)
            dns_times.append(await asyncio.wait_for(polling, 30) - t0)
            await client.delete("services", name, "default")
    finally:
        watcher.cancel()
    return dns_times, watch_times


async def bench(lab: str, queries: int, services: int) -> None:
    async with lab_client(lab) as client:
        await client.create(pod("bench-client", "worker1"))
        await client.create(pod("bench-echo", "worker2", {"app": "bench-echo"}))
        await client.create(service("web", {"app": "bench-echo"}))
        await client.create(service("udp-echo", {"app": "bench-echo"}, 7, 8080, "UDP"))
        pods = await _running(client, ["bench-client", "bench-echo"])
        echo_ip = (await client.get("services", "udp-echo", "default"))["spec"]["clusterIP"]
        ns = _pod_netns(lab, pods["bench-client"])
        dns_ip = cluster_dns_ip(IPv4Network(DEFAULT_SERVICE_SUBNET))
        dns_sock = _udp_socket(ns, (dns_ip, 53))
        echo_sock = _udp_socket(ns, (echo_ip, 7))
        fqdn = f"web.default.svc.{ZONE}"
        deadline = time.monotonic() + 120
        while not (_resolves(dns_sock, fqdn) and _echoes(echo_sock)):
            if time.monotonic() > deadline:
                raise SystemExit(f"after 120 s: {fqdn} resolves: {_resolves(dns_sock, fqdn)}, "
                                 f"udp-echo answers: {_echoes(echo_sock)}")
            await asyncio.sleep(0.05)  # probe interval
        payloads = _queries(fqdn, queries)
        echo_payloads = [b"x" * len(p) for p in payloads]
        round_trips(dns_sock, payloads[:100])  # warm both paths (conntrack, ARP, caches)
        round_trips(echo_sock, echo_payloads[:100])
        d_rtt, e_rtt = round_trips(dns_sock, payloads), round_trips(echo_sock, echo_payloads)
        d_rate, e_rate = windowed_rate(dns_sock, payloads), windowed_rate(echo_sock,
                                                                          echo_payloads)
        d_prop, w_prop = await propagation(client, dns_sock, services)
    ms = 1000
    print(f"from a pod on worker1, {queries} UDP queries (DNS on control-plane, "
          f"echo endpoint on worker2)")
    print(f"  one at a time   DNS p50 {_p(d_rtt, 50) * ms:6.3f} ms  p99 "
          f"{_p(d_rtt, 99) * ms:6.3f} ms  {queries / sum(d_rtt):7.0f} q/s")
    print(f"                  echo p50 {_p(e_rtt, 50) * ms:5.3f} ms  p99 "
          f"{_p(e_rtt, 99) * ms:6.3f} ms  {queries / sum(e_rtt):7.0f} q/s")
    print(f"  ratio DNS/echo  p50 {_p(d_rtt, 50) / _p(e_rtt, 50):.2f}  p99 "
          f"{_p(d_rtt, 99) / _p(e_rtt, 99):.2f}")
    print(f"  {WINDOW} in flight    DNS {d_rate:7.0f} q/s  echo {e_rate:7.0f} q/s  "
          f"ratio {d_rate / e_rate:.2f}")
    print(f"{services} new Services, create -> first answer that resolves it")
    print(f"  DNS   p50 {_p(d_prop, 50) * ms:6.1f} ms  p99 {_p(d_prop, 99) * ms:6.1f} ms  "
          f"max {max(d_prop) * ms:6.1f} ms")
    print(f"  watch p50 {_p(w_prop, 50) * ms:6.1f} ms  p99 {_p(w_prop, 99) * ms:6.1f} ms "
          "(the bench's own watch: the floor)")
    print(f"  ratio DNS/watch p99 {_p(d_prop, 99) / _p(w_prop, 99):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--services", type=int, default=50)
    args = parser.parse_args()
    lab = f"dn{uuid.uuid4().hex[:6]}"
    with running_lab(topology(lab), 3):
        asyncio.run(bench(lab, args.queries, args.services))


if __name__ == "__main__":
    main()
