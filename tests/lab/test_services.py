"""Services end to end, as a user meets them: manifests in, traffic counted.

The whole stack is real: the Deployment and Endpoints controllers, the
scheduler, the kubelets running ``netlab/echo`` pods, and every node's
nftables kube-proxy watching the API. The echo server answers each request
with the pod's name and the client address it saw, so round-robin and
masquerade are measured, not assumed.
"""

from __future__ import annotations

import collections
import json
import socket
import textwrap
import time

import pytest
from labkit import wait_for

from netlab.client import APIError, SyncClient, lab_client
from netlab.kernel import netns

ECHO = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: echo}
    spec:
      replicas: 6
      selector: {matchLabels: {app: echo}}
      template:
        metadata: {labels: {app: echo}}
        spec:
          containers:
          - name: echo
            image: netlab/echo
            ports: [{containerPort: 8080}]
            readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: echo}
    spec:
      type: NodePort
      selector: {app: echo}
      ports:
      - {name: tcp, port: 80, targetPort: 8080, protocol: TCP, nodePort: 30080}
      - {name: udp, port: 80, targetPort: 8080, protocol: UDP}
    """)


@pytest.fixture(scope="module")
def echo(cluster_lab):
    import yaml

    from netlab.client.apply import apply_object

    with SyncClient(lab_client(cluster_lab.name)) as client:
        for doc in yaml.safe_load_all(ECHO):
            client.run(apply_object(client.client, doc))

        def ready_endpoints() -> int:
            try:
                ep = client.get("endpoints", "echo", "default")
            except APIError:  # the endpoints controller has not written it yet
                return 0
            return sum(len(s.get("addresses") or []) for s in ep.get("subsets") or [])

        wait_for(lambda: ready_endpoints() == 6, 90, interval=0.2,
                 what="6 ready echo endpoints")
        svc = client.get("services", "echo", "default")
        # The API is ahead of the proxies by a sync: wait until every node's proxy
        # answers the NodePort from outside, as a user would before testing.
        for node in ("control-plane", "worker1", "worker2"):
            node_ip = str(cluster_lab.plan.node(node).underlay.ip)

            def answers(ip: str = node_ip) -> bool:
                try:
                    return "pod=" in _tcp(cluster_lab.ns("client"), ip, 30080, timeout=1)
                except OSError:
                    return False
            wait_for(answers, 60, interval=0.2, what=f"NodePort 30080 on {node} to answer")
        pods = client.list("pods", "default", label_selector="app=echo")["items"]
        yield {"clusterIP": svc["spec"]["clusterIP"], "client": client,
               "pods": {p["metadata"]["name"]: p for p in pods}}


def _pod_ns(lab, pod: dict) -> str:
    """The pod's network namespace: the runtime names it <lab>-<node>.<pod>-<uid>."""
    node = pod["spec"]["nodeName"]
    prefix = f"{lab.name}-{node}."
    uid = pod["metadata"]["uid"][:8]
    found = [n for n in netns.list_netns() if n.startswith(prefix) and uid in n]
    assert found, f"no namespace for pod {pod['metadata']['name']}"
    return found[0]


def _tcp(ns: str, ip: str, port: int, timeout: float = 3.0) -> str:
    sock = netns.run_in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    with sock:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        sock.sendall(b"hi\n")
        return sock.makefile().readline().strip()


def _udp(ns: str, ip: str, port: int, sport: int = 0, timeout: float = 3.0) -> str:
    """One datagram and its answer. Give each of a series its own source port: a
    reused port would ride the previous flow's conntrack entry to the same endpoint."""
    sock = netns.run_in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with sock:
        sock.settimeout(timeout)
        sock.bind(("0.0.0.0", sport))
        sock.sendto(b"hi", (ip, port))
        return sock.recv(2048).decode().strip()


def _fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def _a_client_pod(lab, echo) -> str:
    """A pod's namespace to connect from, once its node's proxy has all six endpoints
    (the API's Endpoints lead the proxies' tables by a sync)."""
    client_pod = next(iter(echo["pods"].values()))
    ns = _pod_ns(lab, client_pod)

    def all_six() -> bool:
        try:
            seen = {_fields(_tcp(ns, echo["clusterIP"], 80, timeout=1))["pod"]
                    for _ in range(12)}
        except OSError:  # refused until this node's proxy has synced the Service
            return False
        return len(seen) == 6
    wait_for(all_six, 30, interval=0.2, what="the proxy to spread over 6 endpoints")
    return ns


def test_sixty_tcp_connections_reach_each_of_six_endpoints_ten_times(cluster_lab, echo):
    ns = _a_client_pod(cluster_lab, echo)
    counts = collections.Counter(_fields(_tcp(ns, echo["clusterIP"], 80))["pod"]
                                 for _ in range(60))
    assert set(counts) == set(echo["pods"]), counts
    assert set(counts.values()) == {10}, counts


def test_sixty_udp_datagrams_reach_each_endpoint_ten_times(cluster_lab, echo):
    ns = _a_client_pod(cluster_lab, echo)
    counts = collections.Counter(_fields(_udp(ns, echo["clusterIP"], 80, 41000 + i))["pod"]
                                 for i in range(60))
    assert set(counts.values()) == {10}, counts


def test_the_external_node_reaches_the_nodeport_on_every_node_masqueraded(cluster_lab, echo):
    client_ns = cluster_lab.ns("client")
    client_ip = str(cluster_lab.plan.node("client").underlay.ip)
    landed = set()
    for node in ("control-plane", "worker1", "worker2"):
        node_ip = str(cluster_lab.plan.node(node).underlay.ip)
        for _ in range(6):
            seen = _fields(_tcp(client_ns, node_ip, 30080))
            landed.add(echo["pods"][seen["pod"]]["spec"]["nodeName"])
            assert not seen["client"].startswith(client_ip + ":"), \
                "the echo server saw the external client: no masquerade"
    assert landed == {"worker1", "worker2"}


def test_the_proxy_table_is_labelled_and_a_scale_down_stops_traffic_to_removed_pods(
        cluster_lab, echo):
    import subprocess
    import sys

    shown = subprocess.run([sys.executable, "-m", "netlab.cli.main", "proxy", "show",
                            "--lab", cluster_lab.name, "worker1"],
                           capture_output=True, text=True, check=False)
    assert "default/echo" in shown.stdout and "NodePort 30080" in shown.stdout
    as_json = subprocess.run([sys.executable, "-m", "netlab.cli.main", "proxy", "show",
                              "--lab", cluster_lab.name, "worker1", "-o", "json"],
                             capture_output=True, text=True, check=False)
    [port] = [p for p in json.loads(as_json.stdout)["servicePorts"]
              if p["service"].startswith("default/echo") and p["nodePort"] == 30080]
    assert port["protocol"] == "tcp" and len(port["endpoints"]) >= 1
    client = echo["client"]
    client.patch("deployments.apps", "echo", {"spec": {"replicas": 2}}, "default")

    def two_left() -> list[str] | None:
        ep = client.get("endpoints", "echo", "default")
        ips = [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
        return ips if len(ips) == 2 else None

    ips = wait_for(two_left, 60, interval=0.2, what="endpoints to shrink to 2")
    pods = client.list("pods", "default", label_selector="app=echo")["items"]
    survivors = [p for p in pods if p.get("status", {}).get("podIP") in ips]
    ns = _pod_ns(cluster_lab, survivors[0])

    last: list[object] = []

    def only_survivors() -> bool:
        try:
            seen = {_fields(_tcp(ns, echo["clusterIP"], 80, timeout=1))["ip"]
                    for _ in range(8)}
        except OSError as err:  # a removed pod still in a table for one more sync
            last[:] = [err]
            return False
        last[:] = [seen]
        return seen <= set(ips)
    try:
        wait_for(only_survivors, 60, interval=0.2,
                 what="the proxies to drop removed endpoints")
    except AssertionError as err:
        raise AssertionError(f"{err}; last seen: {last}, wanted only {ips}") from None
    seen = {_fields(_tcp(ns, echo["clusterIP"], 80))["ip"] for _ in range(20)}
    assert seen == set(ips)

    client.patch("deployments.apps", "echo", {"spec": {"replicas": 0}}, "default")
    wait_for(lambda: not any(s.get("addresses") for s in
                             client.get("endpoints", "echo", "default").get("subsets") or []),
             60, interval=0.2, what="no ready endpoints")
    node_ns = cluster_lab.ns("worker1")

    def refused_fast() -> bool:
        start = time.monotonic()
        try:
            _tcp(node_ns, echo["clusterIP"], 80, timeout=1)
        except ConnectionRefusedError:
            return time.monotonic() - start < 0.1
        except OSError:
            return False
        return False
    wait_for(refused_fast, 20, interval=0.2, what="a connect to be refused within 100 ms")
