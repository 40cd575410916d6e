"""A 60-node lab, as a user who wants "a rack of nodes" brings it up: every Node
registers Ready, a Service whose two pods run on the first and the last worker
answers an external client through the overlay, and ``down`` leaves nothing.

One lab for the module; it is the biggest the suite runs (about 180 node agents),
so it shows what per-node cost the whole machine carries."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labkit import (
    KUBECTL,
    kubectl,
    lab_namespaces,
    topology,
    unique_lab,
    wait_for,
    write_kubeconfig,
    write_topology,
)

from netlab.kernel import netns
from netlab.lab import lifecycle
from netlab.lab.state import lab_dir, load_state
from netlab.topology import LabPlan, load_topology, plan_lab

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

WORKERS = 59  # and the control plane: 60 cluster nodes, plus the external client
NODE_PORT = 30090


@dataclass
class BigLab:
    name: str
    kubeconfig: Path
    plan: LabPlan


@pytest.fixture(scope="module")
def big_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigLab]:
    directory = tmp_path_factory.mktemp("scale")
    data = topology(unique_lab(), workers=WORKERS)
    path = write_topology(directory, data)
    try:
        lifecycle.up(path, ready_timeout=300)
        yield BigLab(data["name"], write_kubeconfig(data["name"], directory),
                     plan_lab(load_topology(path)))
    finally:
        lifecycle.down(data["name"])


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return result.stdout


def echo_pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "ends"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "echo", "image": "netlab/echo",
                                     "ports": [{"containerPort": 8080}],
                                     "readinessProbe": {"tcpSocket": {"port": 8080},
                                                        "periodSeconds": 1}}]}}


def ask(lab: BigLab, address: str) -> str:
    """One request from the external client, as the echo server answers it."""
    sock = netns.run_in_netns(lab.plan.node("client").netns,
                              lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    with sock:
        sock.settimeout(1.0)
        sock.connect((address, NODE_PORT))
        sock.sendall(b"hi\n")
        return sock.makefile().readline().strip()


def test_every_node_registers_ready(big_lab: BigLab) -> None:
    nodes = json.loads(ok(kubectl(big_lab.kubeconfig, "get", "nodes", "-o", "json")))["items"]
    ready = [n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True"
                    for c in n["status"]["conditions"])]
    assert len(ready) == WORKERS + 1, sorted(set(n["metadata"]["name"] for n in nodes) - set(ready))


def test_a_service_answers_from_the_first_and_the_last_node(big_lab: BigLab) -> None:
    first, last = "worker1", f"worker{WORKERS}"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ends"},
               "spec": {"type": "NodePort", "selector": {"app": "ends"},
                        "ports": [{"port": 80, "targetPort": 8080, "nodePort": NODE_PORT}]}}
    manifests = {"apiVersion": "v1", "kind": "List",
                 "items": [echo_pod("ends-first", first), echo_pod("ends-last", last), service]}
    ok(kubectl(big_lab.kubeconfig, "apply", "-f", "-", stdin=json.dumps(manifests)))
    # The control-plane node's proxy, in front of pods at both ends of the overlay.
    address = str(big_lab.plan.node("control-plane").underlay.ip)
    seen: set[str] = set()

    def both_answer() -> bool:
        try:
            line = ask(big_lab, address)
        except OSError:
            return False
        seen.update(part.split("=", 1)[1] for part in line.split() if part.startswith("pod="))
        return seen == {"ends-first", "ends-last"}

    wait_for(both_answer, 120, interval=0.2, what="answers from the pods on both end nodes")


def test_down_leaves_nothing(big_lab: BigLab) -> None:
    lifecycle.down(big_lab.name)
    assert load_state(big_lab.name) is None and not lab_dir(big_lab.name).exists()
    assert not lab_namespaces(big_lab.name)
