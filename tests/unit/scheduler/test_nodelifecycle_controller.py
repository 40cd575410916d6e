"""The node lifecycle controller against a real (in-process) API server, with fake
kubelets: heartbeats stop -> Unknown, tainted, pods NotReady, then evicted; heartbeats
resume -> taints gone. Timings are shrunk (grace 0.6 s, eviction after 1 s: the
API server's DefaultTolerationSeconds, which a lab sets to its eviction timeout)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timezone

from schedkit import eventually, node, pod

from netlab.api.timefmt import format_micro_time, format_time
from netlab.client import APIError, Client
from netlab.client.workqueue import SharedInformers
from netlab.master.apiserver import strategy
from netlab.master.nodelifecycle import NodeLifecycleController
from netlab.master.nodelifecycle.health import UNREACHABLE_TAINT

GRACE, EVICTION = 0.6, 1


class FakeKubelet:
    """Renews a node's Lease and posts Ready=True, as a kubelet's heartbeat does."""

    def __init__(self, client: Client, name: str) -> None:
        self.client, self.name = client, name
        self.alive = True
        self.task: asyncio.Task | None = None

    async def register(self, **kwargs) -> None:
        n = node(self.name, **kwargs)
        status = n.pop("status")
        created = await self.client.create(n)
        created["status"] = status
        await self.client.update(created, subresource="status")
        await self.client.create({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40,
                     "renewTime": format_micro_time(datetime.now(timezone.utc))}})
        self.task = asyncio.ensure_future(self._beat())

    async def post_ready(self) -> None:
        now = format_time(datetime.now(timezone.utc))
        await self.client.patch("nodes", self.name, {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "lastHeartbeatTime": now, "lastTransitionTime": now}]}},
            patch_type="strategic", subresource="status")

    async def _beat(self) -> None:
        while True:
            if self.alive:
                await self.client.patch("leases", self.name, {"spec": {
                    "renewTime": format_micro_time(datetime.now(timezone.utc))}},
                    "kube-node-lease")
            await asyncio.sleep(0.1)  # the heartbeat period of this fake kubelet

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def bound_pod(client: Client, name: str, node_name: str, **kwargs) -> None:
    p = pod(name, node_name=node_name, **kwargs)
    p["metadata"].pop("uid")
    created = await client.create(p)
    created["status"] = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}
    await client.update(created, subresource="status")


def condition(obj: dict, kind: str) -> dict:
    return next((c for c in obj["status"].get("conditions") or [] if c["type"] == kind), {})


async def test_silent_node_goes_unknown_is_tainted_and_its_pods_are_evicted(api_server,
                                                                            monkeypatch):
    # What the lab's API server is started with (--default-unreachable-toleration-seconds).
    monkeypatch.setattr(strategy, "DEFAULT_TOLERATION_SECONDS", EVICTION)
    async with api_server() as client:
        kubelets = {n: FakeKubelet(client, n) for n in ("control-plane", "worker1", "worker2")}
        for k in kubelets.values():
            await k.register()
        await bound_pod(client, "lost", "worker2")
        await bound_pod(client, "stays", "worker2", tolerations=[
            {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute"}])
        await bound_pod(client, "safe", "worker1")
        informers = SharedInformers(client)
        controller = NodeLifecycleController(client, informers, GRACE, EVICTION)
        task = asyncio.ensure_future(controller.run())
        try:
            await asyncio.sleep(GRACE * 2)  # healthy nodes stay Ready past the grace period
            for name in kubelets:
                assert condition(await client.get("nodes", name), "Ready")["status"] == "True"

            kubelets["worker2"].alive = False

            async def unknown():
                n = await client.get("nodes", "worker2")
                return condition(n, "Ready").get("status") == "Unknown" and n
            w2 = await eventually(unknown, what="worker2 Ready=Unknown")
            assert condition(w2, "Ready")["reason"] == "NodeStatusUnknown"

            async def tainted():
                n = await client.get("nodes", "worker2")
                return {(t["key"], t["effect"]) for t in n["spec"].get("taints") or []} == {
                    (UNREACHABLE_TAINT, "NoSchedule"), (UNREACHABLE_TAINT, "NoExecute")}
            await eventually(tainted, what="the unreachable taints")

            async def not_ready():
                p = await client.get("pods", "lost", "default")
                return condition(p, "Ready").get("status") == "False"
            await eventually(not_ready, what="the lost pod marked NotReady")

            async def evicted():
                try:
                    p = await client.get("pods", "lost", "default")
                except APIError as err:
                    return err.not_found
                return p["metadata"].get("deletionTimestamp")
            await eventually(evicted, what="the lost pod evicted")
            stays = await client.get("pods", "stays", "default")
            assert not stays["metadata"].get("deletionTimestamp")  # tolerates it for ever
            safe = await client.get("pods", "safe", "default")
            assert condition(safe, "Ready")["status"] == "True"
            events = {e["reason"] for e in (await client.list("events"))["items"]}
            assert {"NodeNotReady", "TaintManagerEviction"} <= events

            # The kubelet is back: Ready again, and the taints go.
            kubelets["worker2"].alive = True
            await kubelets["worker2"].post_ready()

            async def untainted():
                n = await client.get("nodes", "worker2")
                return not n["spec"].get("taints")
            await eventually(untainted, what="the taints removed")
            assert condition(await client.get("nodes", "worker1"), "Ready")["status"] == "True"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await informers.stop()
            for k in kubelets.values():
                await k.stop()


async def test_no_evictions_when_most_nodes_look_dead(api_server, monkeypatch):
    """The API server (or this controller) was cut off, not the nodes: hold fire."""
    monkeypatch.setattr(strategy, "DEFAULT_TOLERATION_SECONDS", EVICTION)
    async with api_server() as client:
        kubelets = {n: FakeKubelet(client, n) for n in ("a", "b", "c")}
        for k in kubelets.values():
            await k.register()
        await bound_pod(client, "p", "a")
        informers = SharedInformers(client)
        controller = NodeLifecycleController(client, informers, GRACE, EVICTION)
        task = asyncio.ensure_future(controller.run())
        try:
            for k in kubelets.values():
                k.alive = False

            async def all_unknown():
                nodes = (await client.list("nodes"))["items"]
                return all(condition(n, "Ready").get("status") == "Unknown" for n in nodes)
            await eventually(all_unknown, what="every node Unknown")
            await asyncio.sleep(GRACE + EVICTION + 0.5)  # past when an eviction would happen
            p = await client.get("pods", "p", "default")
            assert not p["metadata"].get("deletionTimestamp")
            for name in kubelets:
                effects = {t["effect"] for t in
                           (await client.get("nodes", name))["spec"].get("taints") or []}
                assert effects == {"NoSchedule"}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await informers.stop()
            for k in kubelets.values():
                await k.stop()
