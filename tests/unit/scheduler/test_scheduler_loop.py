"""The scheduler's loop against a real (in-process) API server: bindings, events, the
retry of unschedulable pods on cluster changes, and restarts mid-way."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from schedkit import CONTROL_PLANE_TAINT, eventually, node, pod

from netlab.client import Client
from netlab.client.workqueue import SharedInformers
from netlab.master.scheduler import Scheduler


@contextlib.asynccontextmanager
async def running_scheduler(client: Client, **kwargs):
    informers = SharedInformers(client)
    scheduler = Scheduler(client, informers, **kwargs)
    task = asyncio.ensure_future(scheduler.run())
    try:
        yield scheduler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await informers.stop()


async def create_nodes(client: Client, *nodes: dict) -> None:
    for n in nodes:
        status = n.pop("status")
        created = await client.create(n)
        created["status"] = status
        await client.update(created, subresource="status")


async def pods_by_name(client: Client) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in (await client.list("pods", "default"))["items"]}


async def events(client: Client, reason: str) -> list[dict]:
    return [e for e in (await client.list("events", "default"))["items"] if e["reason"] == reason]


async def test_pods_are_bound_spread_and_announced(api_server):
    async with api_server() as client:
        await create_nodes(client, node("control-plane", taints=[CONTROL_PLANE_TAINT]),
                           node("worker1"), node("worker2"))
        for i in range(6):
            await client.create(pod(f"web-{i}", "100m", "64Mi", owner="web"))
        async with running_scheduler(client):
            async def all_bound():
                pods = await pods_by_name(client)
                return all(p["spec"].get("nodeName") for p in pods.values()) and pods
            pods = await eventually(all_bound, what="every pod to be bound")
            placement = Counter(p["spec"]["nodeName"] for p in pods.values())
            assert placement == {"worker1": 3, "worker2": 3}
            for p in pods.values():
                cond = {c["type"]: c for c in p["status"]["conditions"]}
                assert cond["PodScheduled"]["status"] == "True"
            scheduled = await eventually(
                lambda: _with_count(events(client, "Scheduled"), 6), what="6 Scheduled events")
            messages = {e["message"] for e in scheduled}
            assert f"Successfully assigned default/web-0 to {pods['web-0']['spec']['nodeName']}" \
                in messages
            assert all(e["source"]["component"] == "default-scheduler" for e in scheduled)


async def _with_count(coro, count: int):
    items = await coro
    return items if len(items) >= count else None


async def test_unschedulable_pod_explains_waits_and_is_retried_when_a_node_appears(api_server):
    async with api_server() as client:
        await create_nodes(client, node("control-plane", cpu="2", taints=[CONTROL_PLANE_TAINT]),
                           node("worker1", cpu="2"), node("worker2", cpu="2"),
                           node("worker3", cpu="2"))
        await client.create(pod("big", cpu="3"))
        async with running_scheduler(client) as scheduler:
            message = ("0/4 nodes are available: 1 node(s) had untolerated taint "
                       "{node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu.")
            failed = await eventually(lambda: events(client, "FailedScheduling"),
                                      what="a FailedScheduling event")
            assert failed[0]["message"] == message and failed[0]["type"] == "Warning"

            async def condition():
                p = (await pods_by_name(client))["big"]
                return next((c for c in p["status"].get("conditions") or []
                             if c["type"] == "PodScheduled"), None)
            cond = await eventually(condition, what="PodScheduled=False")
            assert (cond["status"], cond["reason"], cond["message"]) == \
                ("False", "Unschedulable", message)
            # Parked, not retried in a loop: a second of quiet costs no attempt.
            attempts = scheduler.queue._attempts.get("default/big")
            await asyncio.sleep(1.0)  # deliberately idle: nothing may happen meanwhile
            assert scheduler.queue._attempts.get("default/big") == attempts
            assert scheduler.queue.parked() == 1
            # A heartbeat-only node update does not wake it either.
            w1 = await client.get("nodes", "worker1")
            w1["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-01-01T00:00:05Z"
            await client.update(w1, subresource="status")
            await asyncio.sleep(0.3)  # give a wrong wake-up the chance to happen
            assert scheduler.queue._attempts.get("default/big") == attempts
            # A node that fits: the pod is retried (after its backoff) and bound there.
            await create_nodes(client, node("large", cpu="8"))

            async def bound():
                return (await pods_by_name(client))["big"]["spec"].get("nodeName")
            assert await eventually(bound, what="the big pod to be bound") == "large"


async def test_a_deleted_pod_frees_room_for_a_waiting_one(api_server):
    async with api_server() as client:
        await create_nodes(client, node("worker1", cpu="1"))
        await client.create(pod("first", cpu="800m"))
        async with running_scheduler(client):
            async def bound(name):
                return (await pods_by_name(client)).get(name, {}).get("spec", {}).get("nodeName")
            await eventually(lambda: bound("first"), what="first bound")
            await client.create(pod("second", cpu="800m"))
            await eventually(lambda: events(client, "FailedScheduling"), what="second waits")
            assert not await bound("second")
            await client.delete("pods", "first", "default", grace_period=0)
            assert await eventually(lambda: bound("second"), what="second bound") == "worker1"


async def test_the_higher_priority_pod_gets_the_last_place(api_server):
    async with api_server() as client:
        await create_nodes(client, node("worker1", cpu="1"))
        await client.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                             "metadata": {"name": "high"}, "value": 1000})
        # Queued in name order, low first; kube-scheduler's PrioritySort takes high first.
        await client.create(pod("a-low", cpu="800m"))
        high = pod("b-high", cpu="800m")
        high["spec"]["priorityClassName"] = "high"
        await client.create(high)
        async with running_scheduler(client):
            async def bound(name):
                return (await pods_by_name(client)).get(name, {}).get("spec", {}).get("nodeName")
            assert await eventually(lambda: bound("b-high"), what="b-high bound") == "worker1"
            failed = await eventually(lambda: events(client, "FailedScheduling"),
                                      what="a-low waits")
            assert failed[0]["involvedObject"]["name"] == "a-low"
            assert not await bound("a-low")  # no preemption either way


async def test_a_restarted_scheduler_binds_every_pod_exactly_once(api_server):
    async with api_server() as client:
        await create_nodes(client, *(node(f"n{i}", cpu="64", memory="64Gi") for i in range(5)))
        rv = (await client.list("pods", "default"))["metadata"]["resourceVersion"]
        nodes_seen: dict[str, set[str]] = {}  # pod -> every nodeName it was ever given

        async def watch() -> None:
            async for event in client.watch("pods", "default", resource_version=rv):
                obj = event["object"]
                if obj["spec"].get("nodeName"):
                    nodes_seen.setdefault(obj["metadata"]["name"], set()).add(
                        obj["spec"]["nodeName"])
        watcher = asyncio.ensure_future(watch())
        names = [f"p{i}" for i in range(150)]
        await asyncio.gather(*(client.create(pod(n, "100m", owner="rs")) for n in names))
        async with running_scheduler(client) as first:
            await eventually(lambda: first.scheduled >= 30, what="some pods bound")
        # "Killed" mid-way: bindings in flight were cut off. A new one takes over.
        async with running_scheduler(client):
            async def all_bound():
                pods = await pods_by_name(client)
                return len(pods) == 150 and all(p["spec"].get("nodeName") for p in pods.values())
            await eventually(all_bound, what="all 150 pods bound")
        await eventually(lambda: len(nodes_seen) == 150, what="the watch to see every binding")
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        assert set(nodes_seen) == set(names)
        assert all(len(seen) == 1 for seen in nodes_seen.values())  # never moved
