"""The kubelet's status reports, as upstream's: the Lease says the node lives, and
the Node's status is posted only when it changed or every report interval, since
every kubelet watches every Node (a post from each of N nodes every few seconds
would be N² events)."""

from __future__ import annotations

import asyncio
import copy
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from netlab.node.kubelet import node as node_module
from netlab.node.kubelet.config import KubeletConfig
from netlab.node.kubelet.node import NodeAgent

pytestmark = pytest.mark.unit


class Server:
    """The API as the heartbeat sees it: status patches land on one Node."""

    def __init__(self) -> None:
        self.node: dict[str, Any] = {"metadata": {"name": "w1"}, "status": {}}
        self.posts = 0

    async def patch(self, resource: str, name: str, body: dict, subresource: str = "") -> dict:
        assert (resource, name, subresource) == ("nodes", "w1", "status")
        self.node["status"] = copy.deepcopy(body["status"])
        self.posts += 1
        return self.node


class Events:
    def record(self, *args: Any) -> None:
        pass


def agent(server: Server) -> NodeAgent:
    cfg = KubeletConfig(lab="lab", node="w1", role="worker", api_server="https://x:6443",
                        token_file=Path("/nonexistent"), node_ip=IPv4Interface("10.0.0.2/24"),
                        pod_cidr=IPv4Network("10.244.1.0/24"), status_report_interval=60.0)
    return NodeAgent(cfg, server, Events())  # type: ignore[arg-type]


def test_status_is_posted_when_it_changed_or_the_report_interval_passed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(node_module.time, "monotonic", lambda: now[0])
    server = Server()
    heartbeat = agent(server)

    def beat(seconds: float) -> int:
        now[0] += seconds
        asyncio.run(heartbeat._post_status(copy.deepcopy(server.node), force=False))
        return server.posts

    assert beat(0) == 1  # the first heartbeat posts
    assert beat(5) == 1 and beat(5) == 1  # nothing changed: the Lease alone speaks
    # The node lifecycle controller marked the node Unknown: the kubelet corrects it.
    ready = next(c for c in server.node["status"]["conditions"] if c["type"] == "Ready")
    ready["status"] = "Unknown"
    assert beat(5) == 2
    assert next(c["status"] for c in server.node["status"]["conditions"]
                if c["type"] == "Ready") != "Unknown"
    assert beat(5) == 2
    # A new address (or image, capacity...) is a change too.
    server.node["status"]["addresses"] = []
    assert beat(5) == 3
    # Unchanged, the status is still reported once per interval, heartbeat times fresh.
    stamp = server.node["status"]["conditions"][0]["lastHeartbeatTime"]
    assert beat(30) == 3
    now[0] += 1  # the clock in the stamps moves on too
    assert beat(30) == 4
    assert server.node["status"]["conditions"][0]["lastHeartbeatTime"] >= stamp


def test_a_node_without_pods_reports_its_usage_on_a_change_or_each_interval() -> None:
    from netlab.node.kubelet.metrics import usage_is_news
    from netlab.node.runtime import NodeUsage, ResourceUsage

    def measured(cpu: int, memory: int) -> NodeUsage:
        return NodeUsage(node=ResourceUsage(cpu, memory, 1.0, "cgroup"))

    cpu, memory = 2000, 4 << 30  # capacity: 5 % is 100m and ~205 MiB
    last = measured(40, 300 << 20).node

    def news(now: NodeUsage, pods: bool = False, age: float = 10.0) -> bool:
        return usage_is_news(now, last, pods, age, cpu, memory, 60.0)

    assert usage_is_news(measured(40, 300 << 20), None, False, 0.0, cpu, memory, 60.0)
    assert not news(measured(90, 400 << 20))  # idle jitter: no Node update
    assert news(measured(150, 300 << 20))  # +110m
    assert news(measured(40, 600 << 20))  # +300 MiB
    assert news(measured(40, 300 << 20), age=60.0)  # once per report interval anyway
    assert news(measured(40, 300 << 20), pods=True)  # pods: the HPA's fresh samples


class Registry:
    """The API as registration sees it: one Node (or none yet), every call recorded."""

    def __init__(self, existing: dict[str, Any] | None = None) -> None:
        self.node = copy.deepcopy(existing)
        self.calls: list[str] = []

    async def create(self, obj: dict) -> dict:
        from netlab.client import APIError

        self.calls.append("create")
        if self.node is not None:
            raise APIError(409, {"reason": "AlreadyExists"})
        self.node = copy.deepcopy(obj) | {"metadata": obj["metadata"] | {"uid": "u1"}}
        return self.node

    async def get(self, resource: str, name: str) -> dict:
        from netlab.client import APIError

        self.calls.append("get")
        if self.node is None:
            raise APIError(404, {"reason": "NotFound"})
        return self.node

    async def patch(self, resource: str, name: str, body: dict, subresource: str = "") -> dict:
        self.calls.append(f"patch {subresource or 'node'}")
        assert self.node is not None
        return self.node

    async def request(self, method: str, path: str, body: Any = None) -> dict:
        self.calls.append(f"{method} {path.rsplit('/', 2)[-2]}")
        return body


def registering(api: Registry) -> NodeAgent:
    cfg = KubeletConfig(lab="lab", node="w1", role="worker", api_server="https://x:6443",
                        token_file=Path("/nonexistent"), node_ip=IPv4Interface("10.0.0.2/24"),
                        pod_cidr=IPv4Network("10.244.1.0/24"))
    return NodeAgent(cfg, api, Events())  # type: ignore[arg-type]


def test_a_new_node_is_registered_by_its_create_with_no_lookup_first() -> None:
    """A lab's nodes all register while the API server is busiest: a new Node costs
    its create (status included, so it can be Ready at once), then its status and
    Lease, and no GET that finds nothing."""
    api = Registry()
    kubelet = registering(api)
    asyncio.run(kubelet.register())
    assert api.calls[0] == "create" and "get" not in api.calls
    assert sorted(api.calls[1:]) == ["PUT leases", "patch status"]
    assert kubelet.uid == "u1" and kubelet.registered.is_set()
    assert any(c["type"] == "Ready" for c in api.node["status"]["conditions"])


def test_an_existing_node_is_updated_after_the_create_is_refused() -> None:
    api = Registry({"metadata": {"name": "w1", "uid": "u0"}, "spec": {}, "status": {}})
    kubelet = registering(api)
    asyncio.run(kubelet.register())
    assert api.calls[:3] == ["create", "get", "patch node"]
    assert sorted(api.calls[3:]) == ["PUT leases", "patch status"]
    assert kubelet.uid == "u0"
