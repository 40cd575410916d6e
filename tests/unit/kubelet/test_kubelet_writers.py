"""The status manager and the event recorder against a fake API: what they write, and how
little (coalescing, merge patches with nulls, event aggregation)."""

from __future__ import annotations

import asyncio
from typing import Any

from netlab.node.kubelet.events import NORMAL, WARNING, EventRecorder, pod_ref
from netlab.node.kubelet.statussync import StatusManager


class FakeAPI:
    """Records calls; answers a status patch with the pod as the server would store it."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.delay = delay
        self.rv = 10
        self.status: dict[str, Any] = {}

    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None,
                    patch_type: str = "merge", subresource: str | None = None) -> dict:
        self.calls.append(("patch", (resource, name, subresource, patch)))
        await asyncio.sleep(self.delay)
        if subresource == "status":
            for key, value in patch["status"].items():
                if value is None:
                    self.status.pop(key, None)
                else:
                    self.status[key] = value
        self.rv += 1
        return {"metadata": {"name": name, "uid": "uid-1", "resourceVersion": str(self.rv)},
                "status": dict(self.status)}

    async def create(self, obj: dict) -> dict:
        self.calls.append(("create", obj))
        return obj


def pod(status: dict[str, Any], rv: int = 5) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1",
                         "resourceVersion": str(rv)}, "status": status}


def test_status_writes_coalesce_and_remove_keys_with_nulls():
    async def scenario() -> FakeAPI:
        api = FakeAPI(delay=0.05)
        api.status = {"phase": "Pending", "message": "old"}
        manager = StatusManager(api)  # type: ignore[arg-type]
        current = pod(dict(api.status))
        manager.set(current, {"phase": "Running", "podIP": "10.0.0.0"})
        await asyncio.sleep(0.01)  # that write is now in flight
        for i in range(1, 10):  # nine recomputations meanwhile
            manager.set(current, {"phase": "Running", "podIP": f"10.0.0.{i}"})
        await manager.flush("uid-1")
        manager.set(current, {"phase": "Running", "podIP": "10.0.0.9"})  # already written
        await manager.flush("uid-1")
        return api

    api = asyncio.run(scenario())
    patches = [c[1][3]["status"] for c in api.calls]
    assert len(patches) == 2, patches  # the first value, then the latest: never all ten
    assert patches[0] == {"phase": "Running", "podIP": "10.0.0.0", "message": None}
    assert patches[1] == {"podIP": "10.0.0.9"}
    assert api.status == {"phase": "Running", "podIP": "10.0.0.9"}


def test_an_unchanged_status_is_not_written():
    async def scenario() -> FakeAPI:
        api = FakeAPI()
        manager = StatusManager(api)  # type: ignore[arg-type]
        manager.set(pod({"phase": "Running"}), {"phase": "Running"})
        await manager.flush("uid-1")
        return api

    assert asyncio.run(scenario()).calls == []


def test_repeated_events_are_aggregated_into_a_count():
    async def scenario() -> FakeAPI:
        api = FakeAPI()
        recorder = EventRecorder(api, "worker1")  # type: ignore[arg-type]
        recorder.start()
        target = pod({})
        for _ in range(3):
            recorder.record(pod_ref(target, "app"), WARNING, "BackOff", "Back-off restarting")
        recorder.record(pod_ref(target, "app"), NORMAL, "Started", "Started container app")
        await recorder.drain()
        await recorder.stop()
        return api

    api = asyncio.run(scenario())
    created = [c[1] for c in api.calls if c[0] == "create"]
    patched = [c[1] for c in api.calls if c[0] == "patch"]
    assert sorted(e["reason"] for e in created) == ["BackOff", "Started"]
    backoff = next(e for e in created if e["reason"] == "BackOff")
    assert backoff["type"] == "Warning" and backoff["count"] == 1
    assert backoff["involvedObject"] == {"kind": "Pod", "name": "p", "namespace": "default",
                                         "uid": "uid-1", "apiVersion": "v1",
                                         "fieldPath": "spec.containers{app}"}
    assert backoff["source"] == {"component": "kubelet", "host": "worker1"}
    assert backoff["firstTimestamp"] == backoff["lastTimestamp"]
    assert [p[3]["count"] for p in patched] == [2, 3]
    assert all(p[1] == backoff["metadata"]["name"] for p in patched)


def test_events_yield_to_pods_queued_for_a_start_slot():
    """While every start slot is taken and pods wait, events wait (the API's CPU goes to
    what the pods wait on), at most ``max_defer`` after they were recorded; with room
    again they go at once."""
    from netlab.node.kubelet.startgate import StartGate

    async def posted(api: FakeAPI, count: int, timeout: float = 5.0) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while len([c for c in api.calls if c[0] == "create"]) < count:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)  # probe interval
        return True

    async def scenario() -> None:
        api = FakeAPI()
        gate = StartGate(2)
        recorder = EventRecorder(api, "worker1")  # type: ignore[arg-type]
        recorder.defer = gate.has_room
        recorder.max_defer = 30.0
        recorder.start()
        target = pod({})
        async with gate:
            assert not gate.saturated  # a slot left: events go at once
            recorder.record(pod_ref(target, "a"), NORMAL, "Pulled", "already present")
            assert await posted(api, 1)
            await gate.__aenter__()  # a second pod takes the last slot
            third = asyncio.ensure_future(gate.__aenter__())  # and a third one waits
            await asyncio.sleep(0)
            assert gate.saturated
            recorder.record(pod_ref(target, "a"), NORMAL, "Created", "Created container a")
            assert not await posted(api, 2, timeout=0.3), "posted while pods wait to start"
        await third  # the first pod is done, the third has its slot: still no room
        assert gate.saturated and not await posted(api, 2, timeout=0.1)
        await gate.__aexit__(None, None, None)  # the second is done: a slot is free
        assert not gate.saturated and await posted(api, 2)
        await gate.__aenter__()  # full again, for good this time
        assert gate.saturated
        recorder.max_defer = 0.2  # the event goes at its deadline all the same
        recorder.record(pod_ref(target, "a"), NORMAL, "Started", "Started container a")
        assert await posted(api, 3)
        await recorder.stop()

    asyncio.run(asyncio.wait_for(scenario(), 30))
