"""A network-only lab with hand-made pods and a Proxier in every cluster node.

Pods are made here (see ``proxykit``), not by the pod runtime. Everything is
torn down in ``finally``: the proxies' tables, the pods' server processes and
namespaces, then the lab.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import topology, unique_lab, wait_for, write_topology
from proxykit import CLUSTER, POD_CIDR, PODS, SERVICE_CIDR, Pod, ProxyLab, make_pod, tcp_request

from netlab.kernel import netns
from netlab.kernel.processes import kill_in_netns
from netlab.lab import lifecycle
from netlab.node.proxy.syncer import Proxier
from netlab.topology import load_topology, plan_lab


@pytest.fixture(scope="module")
def proxy_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyLab]:
    name = unique_lab()
    path = write_topology(Path(tmp_path_factory.mktemp("proxy")), topology(name))
    pods: dict[str, Pod] = {}
    lab: ProxyLab | None = None
    try:
        lifecycle.up(path, control_plane=False)
        plan = plan_lab(load_topology(path))
        for pod, (node, host) in PODS.items():
            pods[pod] = make_pod(name, plan, node, pod, host)
        lab = ProxyLab(name=name, plan=plan, pods=pods)
        for node in CLUSTER:
            node_plan = plan.node(node)
            # The control plane restricts NodePorts to its underlay address (a
            # nodeport-ips set); the workers answer on every local address (fib).
            node_ips = [str(node_plan.underlay.ip)] if node == "control-plane" else None
            lab.proxiers[node] = Proxier(
                node_plan.netns, node_ips, POD_CIDR, service_cidr=SERVICE_CIDR,
                local_pod_cidr=str(node_plan.pod_subnet), min_interval=0.0)
        deadline = time.monotonic() + 15
        for pod in pods.values():  # servers answer on the pod address, straight from the node
            wait_for(lambda p=pod: tcp_request(lab.ns(p.node), p.ip, 8080, timeout=0.5),
                     max(0.5, deadline - time.monotonic()), what=f"the server in {pod.name}")
        yield lab
    finally:
        if lab is not None:
            for proxier in lab.proxiers.values():
                proxier.cleanup()
        kill_in_netns([p.netns for p in pods.values()])
        for pod in pods.values():
            netns.delete_netns(pod.netns)
        lifecycle.down(name)
