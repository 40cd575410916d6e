"""LIST and WATCH: selectors, paging, resourceVersion semantics, event streams."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

from apiserver_kit import DEPLOYMENTS, PODS, TOKEN, Client, deployment, pod

from netlab.master.apiserver.app import CONTEXT
from netlab.master.store import MemoryStore

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def names(listing: dict) -> list[str]:
    return [i["metadata"]["name"] for i in listing["items"]]


async def test_list_selectors_and_cluster_wide(api, any_store):
    async with api(any_store) as c:
        await c.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
        await c.ok("POST", PODS, pod("a", {"tier": "web", "env": "prod"}))
        await c.ok("POST", PODS, pod("b", {"tier": "db", "env": "prod"}, nodeName="n1"))
        await c.ok("POST", "/api/v1/namespaces/other/pods", pod("c", {"tier": "web"}))
        listing = await c.ok("GET", PODS)
        assert listing["kind"] == "PodList" and listing["apiVersion"] == "v1"
        assert names(listing) == ["a", "b"]
        assert listing["metadata"]["resourceVersion"] == str(any_store.current_revision())
        assert names(await c.ok("GET", "/api/v1/pods")) == ["a", "b", "c"]
        assert names(await c.ok("GET", "/api/v1/pods", labelSelector="tier=web")) == ["a", "c"]
        assert names(await c.ok("GET", PODS, labelSelector="tier in (db,cache),env")) == ["b"]
        assert names(await c.ok("GET", PODS, labelSelector="!env")) == []
        assert names(await c.ok("GET", "/api/v1/pods", fieldSelector="spec.nodeName=n1")) == \
            ["b"]
        assert names(await c.ok("GET", "/api/v1/pods",
                                fieldSelector="metadata.namespace!=default")) == ["c"]
        status, err = await c.get(PODS, labelSelector="a in (")
        assert status == 400 and err["message"].startswith(
            'Unable to find "/v1, Resource=pods" that match label selector "a in ("')
        status, err = await c.get(PODS, fieldSelector="spec.foo=x")
        assert status == 400 and err["message"].endswith("field label not supported: spec.foo")


async def test_event_field_selectors(api, memory_store):
    async with api(memory_store) as c:
        for i, target in enumerate(["web", "db"]):
            await c.ok("POST", "/api/v1/namespaces/default/events", {
                "metadata": {"name": f"e{i}"}, "reason": "Started", "message": "m",
                "involvedObject": {"kind": "Pod", "name": target, "namespace": "default"}})
        out = await c.ok("GET", "/api/v1/namespaces/default/events",
                         fieldSelector="involvedObject.name=web,involvedObject.kind=Pod")
        assert names(out) == ["e0"]


async def test_limit_and_continue(api, any_store):
    async with api(any_store) as c:
        for i in range(7):
            await c.ok("POST", PODS, pod(f"p{i}", {"odd": str(i % 2)}))
        first = await c.ok("GET", PODS, limit=3)
        assert names(first) == ["p0", "p1", "p2"]
        token = first["metadata"]["continue"]
        await c.ok("POST", PODS, pod("p3a"))  # after the snapshot: not in the pages
        second = await c.ok("GET", PODS, limit=3, **{"continue": token})
        assert names(second) == ["p3", "p4", "p5"]
        assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        third = await c.ok("GET", PODS, limit=3, **{"continue": second["metadata"]["continue"]})
        assert names(third) == ["p6"] and "continue" not in third["metadata"]
        odd = await c.ok("GET", PODS, limit=2, labelSelector="odd=1")
        assert names(odd) == ["p1", "p3"]
        rest = await c.ok("GET", PODS, limit=2, labelSelector="odd=1",
                          **{"continue": odd["metadata"]["continue"]})
        assert names(rest) == ["p5"]
        status, _ = await c.get(PODS, **{"continue": "not-a-token"})
        assert status == 400


async def test_continue_after_compaction_is_410(api):
    store = MemoryStore(retain_revisions=0)
    try:
        async with api(store) as c:
            for i in range(4):
                await c.ok("POST", PODS, pod(f"p{i}"))
            first = await c.ok("GET", PODS, limit=2)
            await c.ok("POST", PODS, pod("late"))
            store.compact(store.current_revision())
            status, err = await c.get(PODS, limit=2, **{"continue": first["metadata"]["continue"]})
            assert status == 410 and err["reason"] == "Expired"
            assert "continue parameter is too old" in err["message"]
    finally:
        store.close()


async def test_resource_version_semantics(api, memory_store):
    async with api(memory_store) as c:
        a = await c.ok("POST", PODS, pod("a"))
        await c.ok("POST", PODS, pod("b"))
        rv_a = a["metadata"]["resourceVersion"]
        exact = await c.ok("GET", PODS, resourceVersion=rv_a, resourceVersionMatch="Exact")
        assert names(exact) == ["a"] and exact["metadata"]["resourceVersion"] == rv_a
        assert names(await c.ok("GET", PODS, resourceVersion="0")) == ["a", "b"]
        assert names(await c.ok("GET", PODS, resourceVersion=rv_a)) == ["a", "b"]
        status, err = await c.get(PODS, resourceVersion="99999")
        assert status == 504 and "Too large resource version" in err["message"]
        status, _ = await c.get(PODS, resourceVersion="abc")
        assert status == 400


class WatchReader:
    """Reads a watch response line by line."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp

    async def next(self, timeout: float = 5.0) -> Optional[dict]:
        line = await asyncio.wait_for(self.resp.content.readline(), timeout)
        return json.loads(line) if line else None

    async def take(self, n: int) -> list[dict]:
        return [await self.next() for _ in range(n)]


async def open_watch(c: Client, path: str, accept: str = "application/json",
                     **params: Any) -> WatchReader:
    query = {"watch": "true", **{k: str(v) for k, v in params.items()}}
    resp = await c.raw.get(path, params=query, headers={"Authorization": f"Bearer {TOKEN}",
                                                        "Accept": accept})
    assert resp.status == 200, await resp.text()
    return WatchReader(resp)


async def test_watch_initial_events_then_changes(api, any_store):
    async with api(any_store) as c:
        await c.ok("POST", PODS, pod("old"))
        w = await open_watch(c, PODS)
        ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "old"
        created = await c.ok("POST", PODS, pod("new"))
        ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"] == created
        await c.ok("PATCH", f"{PODS}/new", {"metadata": {"labels": {"x": "y"}}})
        ev = await w.next()
        assert ev["type"] == "MODIFIED" and ev["object"]["metadata"]["labels"]["x"] == "y"
        await c.ok("DELETE", f"{PODS}/new")
        ev = await w.next()
        assert ev["type"] == "DELETED" and ev["object"]["metadata"]["name"] == "new"
        assert int(ev["object"]["metadata"]["resourceVersion"]) == \
            any_store.current_revision()
        w.resp.close()


async def test_watch_from_resource_version_and_expired(api):
    store = MemoryStore(retain_revisions=0)
    try:
        async with api(store) as c:
            a = await c.ok("POST", PODS, pod("a"))
            await c.ok("POST", PODS, pod("b"))
            await c.ok("DELETE", f"{PODS}/a")
            w = await open_watch(c, PODS, resourceVersion=a["metadata"]["resourceVersion"])
            events = await w.take(2)
            assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
                ("ADDED", "b"), ("DELETED", "a")]
            w.resp.close()
            store.compact(store.current_revision())
            w = await open_watch(c, PODS, resourceVersion=a["metadata"]["resourceVersion"])
            ev = await w.next()
            assert ev["type"] == "ERROR" and ev["object"]["code"] == 410
            assert ev["object"]["reason"] == "Expired"
            assert ev["object"]["message"].startswith("too old resource version")
            assert await w.next() is None  # and the stream ends
    finally:
        store.close()


async def test_watch_selector_transitions(api, memory_store):
    async with api(memory_store) as c:
        rv = (await c.ok("GET", PODS))["metadata"]["resourceVersion"]
        w = await open_watch(c, PODS, labelSelector="app=web", resourceVersion=rv)
        await c.ok("POST", PODS, pod("p", {"app": "db"}))  # not seen
        await c.ok("PATCH", f"{PODS}/p", {"metadata": {"labels": {"app": "web"}}})
        ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["labels"]["app"] == "web"
        await c.ok("PATCH", f"{PODS}/p", {"metadata": {"labels": {"app": "db"}}})
        ev = await w.next()
        assert ev["type"] == "DELETED"
        # As Kubernetes' watch cache: the last matching content, at the event's revision.
        assert ev["object"]["metadata"]["labels"]["app"] == "web"
        assert int(ev["object"]["metadata"]["resourceVersion"]) == \
            memory_store.current_revision()
        w.resp.close()


async def test_watch_single_object_and_other_namespaces_filtered(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "default2"}})
        w = await open_watch(c, f"{PODS}/target")
        await c.ok("POST", "/api/v1/namespaces/default2/pods", pod("target"))
        await c.ok("POST", PODS, pod("target2"))
        await c.ok("POST", PODS, pod("target"))
        ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["namespace"] == "default"
        assert ev["object"]["metadata"]["name"] == "target"
        w.resp.close()


async def test_watch_table_headers_only_first(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("a"))
        w = await open_watch(c, PODS, accept=TABLE)
        ev = await w.next()
        assert ev["object"]["kind"] == "Table" and ev["object"]["columnDefinitions"]
        assert ev["object"]["rows"][0]["cells"][0] == "a"
        await c.ok("POST", PODS, pod("b"))
        ev = await w.next()
        assert ev["object"]["columnDefinitions"] == []
        assert ev["object"]["rows"][0]["cells"][0] == "b"
        w.resp.close()


async def test_watch_bookmarks_timeout_and_initial_events_end(api, memory_store):
    async with api(memory_store, bookmark_interval=0.2) as c:
        await c.ok("POST", PODS, pod("a"))
        w = await open_watch(c, PODS, allowWatchBookmarks="true", sendInitialEvents="true",
                             resourceVersionMatch="NotOlderThan", timeoutSeconds=2)
        ev = await w.next()
        assert ev["type"] == "ADDED"
        ev = await w.next()
        assert ev["type"] == "BOOKMARK"
        assert ev["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        # Writes elsewhere advance the revision; an idle stream hears of it by bookmark.
        await c.ok("POST", DEPLOYMENTS, deployment("elsewhere"))
        target = str(memory_store.current_revision())
        seen = []
        while True:
            ev = await w.next(timeout=5)
            if ev is None:
                break  # timeoutSeconds ended the stream
            assert ev["type"] == "BOOKMARK"
            assert set(ev["object"]["metadata"]) == {"resourceVersion"}
            seen.append(ev["object"]["metadata"]["resourceVersion"])
        assert target in seen


async def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_shutdown_ends_open_watches(api, memory_store):
    async with api(memory_store) as c:
        w = await open_watch(c, PODS)
        hub = c.app[CONTEXT].watches
        await wait_for(lambda: len(hub) == 1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await c.raw.server.close()  # the runner's cleanup: what SIGTERM does
        # The stream ended cleanly (terminating chunk), and promptly, instead of hanging.
        assert await w.next() is None
        assert loop.time() - started < 5
        assert len(hub) == 0


async def test_watch_departed_client_is_cleaned_up(api, memory_store):
    async with api(memory_store) as c:
        w = await open_watch(c, PODS)
        hub = c.app[CONTEXT].watches
        await wait_for(lambda: len(hub) == 1)
        w.resp.close()
        await wait_for(lambda: len(hub) == 0)


async def test_idle_watches_have_no_task_of_their_own(api, memory_store):
    # One ticker supervises every stream: a task per stream, each waking every second,
    # was the API server's second largest idle cost with a 100-node lab's 1,000 watches.
    async with api(memory_store) as c:
        hub = c.app[CONTEXT].watches
        first = await open_watch(c, PODS, allowWatchBookmarks="true")
        await wait_for(lambda: len(hub) == 1)
        before = len(asyncio.all_tasks())
        more = [await open_watch(c, PODS, allowWatchBookmarks="true") for _ in range(20)]
        await wait_for(lambda: len(hub) == 21)
        # Each stream is aiohttp's tasks for its connection and its request, nothing more.
        assert len(asyncio.all_tasks()) - before <= 2 * 20
        # Supervised all the same: a departed client is noticed and its stream ended.
        for w in more:
            w.resp.close()
        await wait_for(lambda: len(hub) == 1)
        first.resp.close()
        await wait_for(lambda: len(hub) == 0)


async def test_table_list_and_get(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("a"))
        out = await c.ok("GET", PODS, headers={"Accept": TABLE})
        assert out["kind"] == "Table" and [r["cells"][0] for r in out["rows"]] == ["a"]
        assert out["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
        out = await c.ok("GET", f"{PODS}/a", headers={"Accept": TABLE}, includeObject="Object")
        assert out["rows"][0]["object"]["kind"] == "Pod"
        status, _ = await c.get(PODS, headers={"Accept": TABLE}, includeObject="Bogus")
        assert status == 400
