"""The scheduler's cache (assumed and bound pods, which node changes matter) and its
queue (parked pods come back on cluster events, after their backoff)."""

from __future__ import annotations

import asyncio

from schedkit import node, pod

from netlab.lab.faults import _base_name
from netlab.master.scheduler.cache import SchedulerCache
from netlab.master.scheduler.nodeinfo import pod_info
from netlab.master.scheduler.queue import SchedulingQueue


def test_assumed_pods_count_until_bound_or_forgotten():
    cache = SchedulerCache()
    cache.update_node(node("w", cpu="1"))
    p = pod("p", cpu="600m")
    cache.assume(pod_info(p), "w")
    assert cache.nodes["w"].cpu == 600 and cache.is_assumed("default/p")
    # The API still shows it pending while its binding is in flight: keep it.
    assert cache.update_pod(p) is False and cache.nodes["w"].cpu == 600
    bound = pod("p", cpu="600m", node_name="w")
    assert cache.update_pod(bound) is False
    assert not cache.is_assumed("default/p") and cache.nodes["w"].cpu == 600
    cache.forget("default/p")  # a late failure report must not drop a bound pod
    assert cache.nodes["w"].cpu == 600
    cache.assume(pod_info(pod("q", cpu="100m")), "w")
    cache.forget("default/q")
    assert cache.nodes["w"].cpu == 600 and cache.node_of("default/q") is None


def test_finished_and_deleted_pods_free_their_node():
    cache = SchedulerCache()
    cache.update_node(node("w"))
    cache.update_pod(pod("a", cpu="1", node_name="w"))
    cache.update_pod(pod("b", cpu="500m", node_name="w"))
    assert cache.nodes["w"].cpu == 1500
    assert cache.update_pod(pod("a", cpu="1", node_name="w", phase="Succeeded")) is True
    assert cache.remove_pod(pod("b", node_name="w")) is True
    assert cache.nodes["w"].cpu == 0 and not cache.nodes["w"].pods


def test_only_changes_filters_read_count_as_node_news():
    cache = SchedulerCache()
    assert cache.update_node(node("w")) is True  # a new node
    assert cache.update_node(node("w", heartbeat="2026-01-01T00:00:05Z")) is False
    assert cache.update_node(node("w", usage=("1", "1Gi"))) is False  # usage: scores only
    assert cache.update_node(node("w", taints=[{"key": "k", "effect": "NoSchedule"}])) is True
    assert cache.update_node(node("w", ready="False")) is True
    cache.update_pod(pod("p", node_name="gone"))  # a pod seen before its node
    assert [n.name for n in cache.node_list()] == ["w"]
    cache.remove_node("w")
    assert cache.node_list() == []


async def test_parked_pods_wait_for_an_event_then_their_backoff():
    queue = SchedulingQueue(backoff_initial=0.2, backoff_max=1.0, flush_after=60)
    queue.add("ns/p")
    key = await queue.work.get()
    queue.attempted(key)
    queue.park(key, queue.moves)
    queue.work.done(key)
    assert queue.parked() == 1 and len(queue) == 0
    await asyncio.sleep(0.3)  # past the backoff: still nothing without an event
    assert len(queue) == 0
    queue.move_all()
    assert queue.parked() == 0
    assert await asyncio.wait_for(queue.work.get(), 1) == "ns/p"


async def test_a_pod_that_failed_during_an_event_is_retried_not_parked():
    queue = SchedulingQueue(backoff_initial=0.05, backoff_max=1.0)
    queue.add("ns/p")
    key = await queue.work.get()
    queue.attempted(key)
    moves = queue.moves
    queue.move_all()  # e.g. a node arrived while the attempt was computing
    queue.park(key, moves)
    queue.work.done(key)
    assert queue.parked() == 0
    assert await asyncio.wait_for(queue.work.get(), 1) == "ns/p"


async def test_the_highest_priority_comes_first_then_the_first_queued():
    queue = SchedulingQueue(backoff_initial=0.05, backoff_max=1.0)
    for key, priority in (("ns/low", 0), ("ns/high", 1000), ("ns/mid", 10),
                          ("ns/high2", 1000), ("ns/negative", -5)):
        queue.add(key, priority)
    assert [await queue.work.get() for _ in range(5)] == [
        "ns/high", "ns/high2", "ns/mid", "ns/low", "ns/negative"]
    for key in ("ns/high", "ns/high2", "ns/mid", "ns/low", "ns/negative"):
        queue.work.done(key)
    # A retried pod keeps its place by priority when its backoff is over.
    queue.attempted("ns/high")
    queue.retry("ns/high")
    queue.add("ns/low", 0)
    await asyncio.sleep(0.1)
    assert [await queue.work.get() for _ in range(2)] == ["ns/high", "ns/low"]


def test_backoff_doubles_to_its_cap():
    queue = SchedulingQueue(backoff_initial=1.0, backoff_max=10.0)
    delays = []
    for _ in range(6):
        queue.attempted("k")
        delays.append(queue.backoff("k"))
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    queue.forget("k")
    queue.attempted("k")
    assert queue.backoff("k") == 1.0


def test_component_names_for_netlab_fault_kill():
    assert _base_name("kubelet-worker2", "worker2") == "kubelet"
    assert _base_name("worker2/proxy", "worker2") == "proxy"
    assert _base_name("scheduler", "control-plane") == "scheduler"
    assert _base_name("kubelet-worker20", "worker2") == "kubelet-worker20"
