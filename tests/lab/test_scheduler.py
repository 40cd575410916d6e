"""The scheduler in a real lab (control-plane + 3 workers, kubelets registering the
nodes), watched the way a user watches it: where pods land, what ``describe`` and the
events say when they cannot land, and what a ``kill -9`` mid-way leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from labkit import topology, unique_lab, wait_for, write_topology

from netlab.api.timefmt import format_micro_time, format_time
from netlab.client import SyncClient, lab_client
from netlab.lab import faults, lifecycle
from netlab.lab.state import components_path, read_json

WORKERS = ("worker1", "worker2", "worker3")
FAKE_LABEL = "netlab.test/fake-node"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A lab with a control plane and three workers, up until the module ends."""
    data = topology(unique_lab(), workers=3, external=False)
    path = write_topology(tmp_path_factory.mktemp("sched"), data)
    try:
        lifecycle.up(path)
        with SyncClient(lab_client(data["name"])) as client:
            wait_for(lambda: _ready_nodes(client) >= 4, 60, interval=0.2,
                     what="4 Ready nodes registered by the kubelets")
        yield data["name"]
    finally:
        lifecycle.down(data["name"])


@pytest.fixture
def client(lab) -> Iterator[SyncClient]:
    with SyncClient(lab_client(lab)) as c:
        yield c


def _ready_nodes(client: SyncClient) -> int:
    return sum(1 for n in client.list("nodes")["items"]
               if any(c["type"] == "Ready" and c["status"] == "True"
                      for c in n["status"].get("conditions") or []))


def _pod(name: str, cpu: str = "", labels: dict | None = None, **spec: Any) -> dict:
    container: dict[str, Any] = {"name": "c", "image": "netlab/echo"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [container], **spec}}


def _events(client: SyncClient, name: str, reason: str) -> list[dict]:
    return [e for e in client.list("events", "default")["items"]
            if e["involvedObject"]["name"] == name and e["reason"] == reason]


def test_a_pod_that_fits_no_node_stays_pending_and_says_why(client):
    client.create(_pod("too-big", cpu="3"), namespace="default")
    expected = ("0/4 nodes are available: 1 node(s) had untolerated taint "
                "{node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu.")
    events = wait_for(lambda: _events(client, "too-big", "FailedScheduling"), 30,
                      what="a FailedScheduling event")
    assert events[0]["message"] == expected and events[0]["type"] == "Warning"
    assert events[0]["source"]["component"] == "default-scheduler"
    pod = client.get("pods", "too-big", "default")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable",
                                                                 expected)
    # It waits for a change instead of retrying in a loop: every Node is updated in a
    # way that cannot make it fit (as the kubelets' reports do), and over a few seconds'
    # window no new attempt is made.
    for node in client.list("nodes")["items"]:
        client.patch("nodes", node["metadata"]["name"],
                     {"metadata": {"annotations": {"netlab.test/poke": pod["metadata"]["uid"]}}})
    window = time.monotonic() + 3.0
    while time.monotonic() < window:  # an observation window, not a wait for readiness
        repeats = sum(e.get("count", 1) for e in _events(client, "too-big", "FailedScheduling"))
        assert repeats == 1, f"{repeats} attempts while nothing relevant changed"
        time.sleep(0.2)
    client.delete("pods", "too-big", "default", grace_period=0)


def test_pods_spread_over_the_workers_and_never_land_on_the_control_plane(client):
    names = [f"spread-{i}" for i in range(6)]
    for name in names:
        client.create(_pod(name, cpu="100m", labels={"test": "spread"}), namespace="default")

    def placement() -> Counter | None:
        pods = client.list("pods", "default", label_selector="test=spread")["items"]
        nodes = [p["spec"].get("nodeName") for p in pods]
        return Counter(nodes) if len(nodes) == 6 and all(nodes) else None

    where = wait_for(placement, 30, interval=0.1, what="6 pods bound")
    assert "control-plane" not in where
    assert set(where) == set(WORKERS), f"not spread: {dict(where)}"
    def scheduled_events() -> dict[str, str] | None:
        # The scheduler records the event after the binding, as upstream's does.
        found = {e["involvedObject"]["name"]: e["message"]
                 for e in client.list("events", "default")["items"]
                 if e["reason"] == "Scheduled"}
        return found if all(n in found for n in names) else None

    scheduled = wait_for(scheduled_events, 30, interval=0.1, what="6 Scheduled events")
    for pod in client.list("pods", "default", label_selector="test=spread")["items"]:
        name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
        assert scheduled.get(name) == f"Successfully assigned default/{name} to {node}"
    for name in names:
        client.delete("pods", name, "default", grace_period=0)


class FakeNodes:
    """Node objects no kubelet runs, kept Ready by renewing their Leases (kwok-style):
    they let the scheduler place hundreds of pods without starting any process."""

    def __init__(self, lab: str, names: list[str]) -> None:
        self.lab, self.names = lab, names
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def create(self, client: SyncClient) -> None:
        now = format_time(datetime.now(timezone.utc))
        for name in self.names:
            client.create({"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": name, "labels": {FAKE_LABEL: "true", "kubernetes.io/hostname": name}}})
            client.patch("nodes", name, {"status": {
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "lastHeartbeatTime": now, "lastTransitionTime": now}]}},
                subresource="status")
            self._renew(client, name, create=True)
        self._thread.start()

    @staticmethod
    def _renew(client: SyncClient, name: str, create: bool = False) -> None:
        spec = {"holderIdentity": name, "leaseDurationSeconds": 40,
                "renewTime": format_micro_time(datetime.now(timezone.utc))}
        if create:
            client.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": name, "namespace": "kube-node-lease"},
                           "spec": spec})
        else:
            client.patch("leases", name, {"spec": spec}, "kube-node-lease")

    def _beat(self) -> None:
        with SyncClient(lab_client(self.lab)) as client:
            while not self._stop.wait(2.0):  # the heartbeat period of these fake nodes
                for name in self.names:
                    # The API busy or restarting: the next beat renews it.
                    with contextlib.suppress(Exception):
                        self._renew(client, name)

    def delete(self, client: SyncClient) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for name in self.names:
            client.delete("nodes", name)


class PodWatch(threading.Thread):
    """Every nodeName each matching pod was ever given, from one watch."""

    def __init__(self, lab: str, selector: str, resource_version: str) -> None:
        super().__init__(daemon=True)
        self.lab, self.selector, self.rv = lab, selector, resource_version
        self.nodes: dict[str, set[str]] = {}
        self.error: Exception | None = None
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task | None = None

    def run(self) -> None:
        async def watch() -> None:
            async with lab_client(self.lab, timeout=300) as client:
                async for event in client.watch("pods", "default", resource_version=self.rv,
                                                label_selector=self.selector):
                    obj = event["object"]
                    if event["type"] != "BOOKMARK" and obj["spec"].get("nodeName"):
                        self.nodes.setdefault(obj["metadata"]["name"], set()).add(
                            obj["spec"]["nodeName"])
        self.task = self.loop.create_task(watch())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # reported by the test: the watch is its witness
            self.error = exc

    def stop(self) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.join(timeout=10)


def test_kill_9_of_the_scheduler_mid_way_binds_every_pod_exactly_once(lab, client):
    count = 300
    fake = FakeNodes(lab, [f"fake{i}" for i in range(5)])
    rv = client.list("pods", "default")["metadata"]["resourceVersion"]
    watch = PodWatch(lab, "test=kill9", rv)
    watch.start()
    try:
        # The pods wait for nodes that do not exist yet, so all of them are pending
        # when the nodes appear, and the scheduler is busy with them when it is killed.
        names = [f"k9-{i}" for i in range(count)]
        for name in names:
            client.create(_pod(name, labels={"test": "kill9"},
                               nodeSelector={FAKE_LABEL: "true"}), namespace="default")
        fake.create(client)
        wait_for(lambda: len(watch.nodes) >= 20, 60, interval=0.01, what="20 pods bound")
        killed = faults.kill_component(lab, "scheduler")
        at_kill = len(watch.nodes)
        assert at_kill < count, "all pods were bound before the kill: make the test bigger"
        wait_for(lambda: (read_json(components_path(lab)) or {}).get("scheduler", {})
                 .get("pid") not in (None, killed.pid), 30, what="the scheduler restarted")

        def all_bound() -> bool:
            pods = client.list("pods", "default", label_selector="test=kill9")["items"]
            return len(pods) == count and all(p["spec"].get("nodeName") for p in pods)

        wait_for(all_bound, 120, interval=0.2, what=f"all {count} pods bound after the restart")
        wait_for(lambda: len(watch.nodes) == count or watch.error, 30,
                 what="the watch to see every binding")
        assert watch.error is None, f"the watch failed: {watch.error}"
        moved = {name: nodes for name, nodes in watch.nodes.items() if len(nodes) != 1}
        assert not moved, f"pods bound more than once: {moved}"
        assert set(watch.nodes) == set(names)
        scheduled = Counter(e["involvedObject"]["name"]
                            for e in client.list("events", "default")["items"]
                            if e["reason"] == "Scheduled" and e["involvedObject"]["name"]
                            .startswith("k9-"))
        assert max(scheduled.values()) == 1  # one Scheduled event per binding, at most
    finally:
        watch.stop()
        for pod in client.list("pods", "default", label_selector="test=kill9")["items"]:
            client.delete("pods", pod["metadata"]["name"], "default", grace_period=0)
        fake.delete(client)
