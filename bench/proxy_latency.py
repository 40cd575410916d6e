#!/usr/bin/env python3
"""Per-connection latency to a Service with 10 Services present and with 10,000.

Run as root:  .venv/bin/python bench/proxy_latency.py [--connections 2000] [--services 10000]

A network-only lab (one worker, no overlay) with two hand-made pods on the
worker's bridge: a server process answering every TCP connection with one
byte, and a client process that opens connections to the target Service one
after another and reports each one's connect-to-answer time. Only a new
connection's first packet walks the nat rules, so this is where a ruleset's
per-packet cost shows.

- **netlab-proxy**: the proxy's own table (a Proxier), where ClusterIP dispatch
  is one verdict-map lookup, with the target among 10 Services, then among
  ``--services`` (the others have one endpoint each: their size does not
  matter to the lookup, only their number).
- **netlab-proxy, one table**: the same with every Service in one table, the
  layout before shard tables (issue 16): with ``--services`` above
  ``ruleset.SHARD_PORTS`` the proxy spreads them over shard tables, which a
  new connection walks one after the other until one DNATs it.
- **netlab-proxy, endpoint chains**: the same shard tables in the layout
  before DNAT maps (a chain per endpoint behind a verdict map, a hairpin rule
  per local endpoint; ``bench/proxy_layout_before.py`` swapped in for the
  Proxier's ``ruleset``).
- **baseline, linear**: what iptables-mode kube-proxy's KUBE-SERVICES chain
  amounts to, measured in the same run: one rule per Service
  (``ip daddr … tcp dport … dnat to …``), the target last.

Printed: the median and 90th percentile per configuration and the ratio
many/few for each layout (target for the proxy's: <= 1.1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Interface
from pathlib import Path

import proxy_layout_before  # bench/ is on sys.path: scripts share helpers
import yaml
from pyroute2 import IPRoute

from netlab.kernel import links, netns, nft
from netlab.kernel.processes import kill_in_netns
from netlab.lab import lifecycle
from netlab.node.proxy import ruleset, syncer
from netlab.node.proxy.syncer import Proxier
from netlab.topology import load_topology, plan_lab

TARGET_IP, PORT = "10.96.0.10", 80
ROUNDS = 4

SERVER = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(512)
while True:
    c, _ = s.accept(); c.sendall(b"x"); c.close()
"""

CLIENT = r"""
import json, socket, sys, time
ip, port, n, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = []
for i in range(n + warm):
    t = time.perf_counter()
    s = socket.create_connection((ip, port), timeout=5); s.recv(1); s.close()
    if i >= warm:
        out.append(time.perf_counter() - t)
print(json.dumps(out))
"""


def make_pod(lab: str, node_ns: str, pod_ns: str, address: str, gateway: str) -> None:
    netns.create_netns(pod_ns)

    def inside_pod() -> None:
        with IPRoute() as ipr:
            links.tag_owner(ipr, lab)
            links.ensure_up(ipr, "lo")

    netns.run_in_netns(pod_ns, inside_pod)
    host_if = "vb" + uuid.uuid4().hex[:10]

    def inside_node() -> None:
        with IPRoute() as ipr:
            index = links.ensure_veth(ipr, host_if, "eth0", pod_ns)
            links.converge(ipr, index, master=links.link_index(ipr, "cni0"))

    netns.run_in_netns(node_ns, inside_node)

    def address_pod() -> None:
        with IPRoute() as ipr:
            eth0 = links.ensure_up(ipr, "eth0")
            links.ensure_addresses(ipr, eth0, [IPv4Interface(address)])
            links.ensure_default_route(ipr, IPv4Interface(gateway).ip)

    netns.run_in_netns(pod_ns, address_pod)


def service(i: int, ip: str) -> tuple[dict, dict]:
    name = f"svc{i}"
    meta = {"name": name, "namespace": "bench"}
    svc = {"kind": "Service", "metadata": meta,
           "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": PORT,
                                                "targetPort": 8080}]}}
    return svc, meta


def cluster_ip(i: int) -> str:
    return TARGET_IP if i == 0 else f"10.96.{1 + i // 250}.{i % 250 + 1}"


def program_proxy(node_ns: str, count: int, server_ip: str, other_ip: str) -> Proxier:
    proxier = Proxier(node_ns, None, "10.244.0.0/16", service_cidr="10.96.0.0/16",
                      local_pod_cidr="10.244.1.0/24", min_interval=0)
    for i in range(count):
        svc, meta = service(i, cluster_ip(i))
        proxier.update_service(svc)
        address = server_ip if i == 0 else other_ip
        proxier.update_endpoint_slice({
            "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{meta['name']}-1", "namespace": meta["namespace"],
                         "labels": {"kubernetes.io/service-name": meta["name"]}},
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    result = proxier.sync()
    assert result.ok, result.error
    return proxier


@contextlib.contextmanager
def endpoint_chains() -> Iterator[None]:
    """Proxiers made and synced in here program the layout before DNAT maps."""
    saved = syncer.ruleset
    syncer.ruleset = proxy_layout_before
    try:
        yield
    finally:
        syncer.ruleset = saved


def program_linear(node_ns: str, count: int, server_ip: str, other_ip: str) -> None:
    t = "ip netlab-linear"
    lines = [f"add table {t}",
             f"add chain {t} pre {{ type nat hook prerouting priority dstnat; policy accept; }}"]
    for i in [*range(1, count), 0]:  # the target last, as the worst case of a list
        address = server_ip if i == 0 else other_ip
        lines.append(f"add rule {t} pre ip daddr {cluster_ip(i)} tcp dport {PORT} "
                     f"dnat to {address}:8080")
    nft.apply(node_ns, "\n".join(lines) + "\n")


def measure(client_ns: str, connections: int, target: tuple[str, int] = (TARGET_IP, PORT)
            ) -> list[float]:
    out = subprocess.run(["ip", "netns", "exec", client_ns, sys.executable, "-c", CLIENT,
                          target[0], str(target[1]), str(connections), "200"],
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def wait_for_server(client_ns: str, server_ip: str, timeout: float = 10.0) -> None:
    """Probe the server straight from the client pod until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        sock = netns.run_in_netns(client_ns, socket.socket)
        try:
            sock.settimeout(0.5)
            sock.connect((server_ip, 8080))
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # a probe interval
        finally:
            sock.close()


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9)]


@contextlib.contextmanager
def server_and_client(server_ip: str, client_ip: str) -> Iterator[tuple[str, str]]:
    """A network-only lab with one worker whose bridge holds two bare pods: a server
    answering every TCP connection on 8080 and a client; yields (node netns, client
    netns) once the server answers, and removes it all afterwards."""
    lab = f"nlb{uuid.uuid4().hex[:7]}"
    tmp = Path(tempfile.mkdtemp(prefix="netlab-bench-"))
    path = tmp / f"{lab}.yaml"
    path.write_text(yaml.safe_dump({"name": lab, "cluster": {"overlay": "none"}, "nodes": [
        {"name": "control-plane", "role": "control-plane"},
        {"name": "worker1", "role": "worker"}]}))
    pods: list[str] = []
    try:
        lifecycle.up(path, control_plane=False)
        plan = plan_lab(load_topology(path)).node("worker1")
        node_ns, gateway = plan.netns, str(plan.gateway)
        for name, address in (("server", server_ip), ("client", client_ip)):
            pods.append(f"{lab}-worker1-{name}")
            make_pod(lab, node_ns, pods[-1], f"{address}/24", gateway)
        subprocess.Popen(["ip", "netns", "exec", pods[0], sys.executable, "-c", SERVER],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        wait_for_server(pods[1], server_ip)
        yield node_ns, pods[1]
    finally:
        kill_in_netns(pods)
        for pod in pods:
            netns.delete_netns(pod)
        lifecycle.down(lab)
        nft.forget(f"{lab}-worker1")
        shutil.rmtree(tmp, ignore_errors=True)  # the topology file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--services", type=int, default=10000)
    args = parser.parse_args()
    server_ip, client_ip = "10.244.1.10", "10.244.1.20"
    other_ip = "10.244.1.30"  # the other Services' endpoint: never reached
    with server_and_client(server_ip, client_ip) as (node_ns, client_ns):
        samples: dict[tuple[str, int], list[float]] = {}
        # Rounds in alternating order, pooled: the machine's load drifts.
        per_round = max(1, args.connections // ROUNDS)
        for r in range(ROUNDS):
            counts = (10, args.services) if r % 2 == 0 else (args.services, 10)
            for count in counts:
                started = time.perf_counter()
                proxier = program_proxy(node_ns, count, server_ip, other_ip)
                setup = time.perf_counter() - started
                samples.setdefault(("netlab-proxy", count), []).extend(
                    measure(client_ns, per_round))
                shards = proxier.cfg.shards
                proxier.cleanup()
                if r == 0:
                    print(f"  (netlab-proxy with {count} Services on {shards} shard tables "
                          f"programmed in {setup:.1f} s)")
                one_table = ruleset.SHARD_PORTS
                ruleset.SHARD_PORTS = 1 << 30
                try:
                    proxier = program_proxy(node_ns, count, server_ip, other_ip)
                finally:
                    ruleset.SHARD_PORTS = one_table
                samples.setdefault(("one-table", count), []).extend(
                    measure(client_ns, per_round))
                proxier.cleanup()
                with endpoint_chains():
                    proxier = program_proxy(node_ns, count, server_ip, other_ip)
                    if count == 10 and r == 0:  # the swap took: endpoint chains
                        assert "chain endpoint-" in (proxier.ruleset_text() or "")
                    samples.setdefault(("endpoint-chains", count), []).extend(
                        measure(client_ns, per_round))
                    proxier.cleanup()
                program_linear(node_ns, count, server_ip, other_ip)
                samples.setdefault(("linear", count), []).extend(measure(client_ns, per_round))
                nft.delete_table(node_ns, "netlab-linear")
        results = {key: summary(values) for key, values in samples.items()}
        print(f"\nper-connection latency to a ClusterIP, {args.connections} connections each "
              f"({ROUNDS} rounds, alternating order):")
        labels = {"netlab-proxy": "netlab-proxy (shard tables)",
                  "one-table": "netlab-proxy, one table",
                  "endpoint-chains": "netlab-proxy, endpoint chains",
                  "linear": "baseline: one rule per Service"}
        for layout, label in labels.items():
            few, many = results[(layout, 10)], results[(layout, args.services)]
            print(f"  {label:<31} 10: median {few[0] * 1e6:6.0f} us  p90 {few[1] * 1e6:6.0f} us"
                  f"   {args.services}: median {many[0] * 1e6:6.0f} us  p90 {many[1] * 1e6:6.0f}"
                  f" us   ratio {many[0] / few[0]:5.2f}")
        print("  target: netlab-proxy ratio <= 1.1 while the linear baseline grows")


if __name__ == "__main__":
    main()
