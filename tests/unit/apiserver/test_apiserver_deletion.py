"""Deletion: graceful pods, finalizers, cascading through ownerReferences, namespaces."""

from __future__ import annotations

import asyncio
from typing import Any

from apiserver_kit import DEPLOYMENTS, PODS, Client, deployment, pod

REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"


async def eventually_gone(c: Client, path: str, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        status, _ = await c.get(path)
        if status == 404:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} still exists")


def owned(name: str, owner: dict, kind: str = "Deployment", **extra: Any) -> dict:
    ref = {"apiVersion": "apps/v1", "kind": kind, "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    body = {"metadata": {"name": name, "labels": {"app": "web"}, "ownerReferences": [ref]},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    body.update(extra)
    return body


async def test_unbound_pod_is_deleted_at_once(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", PODS, pod("p"))
        status, out = await c.delete(f"{PODS}/p")
        assert status == 200 and out["kind"] == "Pod"  # pods return the deleted object
        assert out["metadata"]["uid"] == created["metadata"]["uid"]
        status, _ = await c.get(f"{PODS}/p")
        assert status == 404


async def test_bound_pod_is_deleted_gracefully(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("p", nodeName="n1"))
        out = await c.ok("DELETE", f"{PODS}/p")
        assert out["metadata"]["deletionGracePeriodSeconds"] == 30
        assert out["metadata"]["deletionTimestamp"]
        # A status update from the kubelet does not remove it ...
        await c.ok("PATCH", f"{PODS}/p/status", {"status": {"phase": "Running"}})
        await c.ok("GET", f"{PODS}/p")
        # ... a shorter grace period is recorded ...
        out = await c.ok("DELETE", f"{PODS}/p", {"gracePeriodSeconds": 5})
        assert out["metadata"]["deletionGracePeriodSeconds"] == 5
        # ... and the kubelet's final delete with grace 0 removes it.
        await c.ok("DELETE", f"{PODS}/p", gracePeriodSeconds=0)
        status, _ = await c.get(f"{PODS}/p")
        assert status == 404


async def test_finalizers_hold_deletion(api, memory_store):
    async with api(memory_store) as c:
        body = pod("f")
        body["metadata"]["finalizers"] = ["example.com/hold"]
        await c.ok("POST", PODS, body)
        out = await c.ok("DELETE", f"{PODS}/f")
        assert out["metadata"]["deletionTimestamp"]
        assert out["metadata"]["deletionGracePeriodSeconds"] == 0
        await c.ok("GET", f"{PODS}/f")
        await c.ok("PATCH", f"{PODS}/f", {"metadata": {"finalizers": None}})
        status, _ = await c.get(f"{PODS}/f")
        assert status == 404


async def test_delete_preconditions_and_status_body(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", DEPLOYMENTS, deployment("web"))
        status, err = await c.delete(f"{DEPLOYMENTS}/web", {"preconditions": {"uid": "nope"}})
        assert status == 409 and "Precondition failed: UID in precondition: nope" in \
            err["message"]
        status, out = await c.delete(f"{DEPLOYMENTS}/web")
        assert status == 200 and out["kind"] == "Status" and out["status"] == "Success"
        assert out["details"]["name"] == "web" and out["details"]["kind"] == "deployments"
        status, err = await c.delete(f"{DEPLOYMENTS}/web")
        assert status == 404


async def test_background_cascade(api, memory_store):
    async with api(memory_store) as c:
        dep = await c.ok("POST", DEPLOYMENTS, deployment("web"))
        rs = await c.ok("POST", REPLICASETS, owned("web-1", dep))
        child = pod("web-1-a")
        child["metadata"]["ownerReferences"] = [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
            "uid": rs["metadata"]["uid"], "controller": True}]
        await c.ok("POST", PODS, child)
        await c.ok("POST", PODS, pod("unrelated"))
        await c.ok("DELETE", f"{DEPLOYMENTS}/web", {"propagationPolicy": "Background"})
        await eventually_gone(c, f"{REPLICASETS}/web-1")
        await eventually_gone(c, f"{PODS}/web-1-a")
        await c.ok("GET", f"{PODS}/unrelated")


async def test_orphan_removes_owner_references(api, memory_store):
    async with api(memory_store) as c:
        dep = await c.ok("POST", DEPLOYMENTS, deployment("web"))
        await c.ok("POST", REPLICASETS, owned("web-1", dep))
        out = await c.ok("DELETE", f"{DEPLOYMENTS}/web", propagationPolicy="Orphan")
        assert "orphan" in out["metadata"]["finalizers"]
        await eventually_gone(c, f"{DEPLOYMENTS}/web")
        rs = await c.ok("GET", f"{REPLICASETS}/web-1")
        assert "ownerReferences" not in rs["metadata"]


async def test_foreground_waits_for_dependents(api, memory_store):
    async with api(memory_store) as c:
        dep = await c.ok("POST", DEPLOYMENTS, deployment("web"))
        await c.ok("POST", REPLICASETS, owned("web-1", dep))
        out = await c.ok("DELETE", f"{DEPLOYMENTS}/web",
                         {"kind": "DeleteOptions", "propagationPolicy": "Foreground"})
        assert out["metadata"]["finalizers"] == ["foregroundDeletion"]
        await eventually_gone(c, f"{REPLICASETS}/web-1")
        await eventually_gone(c, f"{DEPLOYMENTS}/web")


async def test_namespace_termination(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "tmp"}})
        await c.ok("POST", "/api/v1/namespaces/tmp/pods", pod("a"))
        await c.ok("POST", "/api/v1/namespaces/tmp/pods", pod("b", nodeName="n1"))
        await c.ok("POST", "/apis/apps/v1/namespaces/tmp/deployments", deployment("d"))
        out = await c.ok("DELETE", "/api/v1/namespaces/tmp")
        assert out["status"]["phase"] == "Terminating"
        assert out["spec"]["finalizers"] == ["kubernetes"]
        await eventually_gone(c, "/api/v1/namespaces/tmp/pods/a")
        await eventually_gone(c, "/apis/apps/v1/namespaces/tmp/deployments/d")
        # The bound pod waits for its kubelet; so does the namespace.
        ns = await c.ok("GET", "/api/v1/namespaces/tmp")
        assert ns["status"]["phase"] == "Terminating"
        await c.ok("DELETE", "/api/v1/namespaces/tmp/pods/b", gracePeriodSeconds=0)
        await eventually_gone(c, "/api/v1/namespaces/tmp")
        status, err = await c.delete("/api/v1/namespaces/default")
        assert status == 403
        assert err["message"] == ('namespaces "default" is forbidden: this namespace may not '
                                  "be deleted")


async def test_delete_collection(api, memory_store):
    async with api(memory_store) as c:
        for i in range(5):
            await c.ok("POST", PODS, pod(f"p{i}", {"batch": "x" if i < 3 else "y"}))
        out = await c.ok("DELETE", PODS, labelSelector="batch=x")
        assert out["kind"] == "PodList" and len(out["items"]) == 3
        left = await c.ok("GET", PODS)
        assert [i["metadata"]["name"] for i in left["items"]] == ["p3", "p4"]
        status, _ = await c.delete("/api/v1/namespaces")
        assert status == 405  # namespaces have no deletecollection


async def test_job_orphans_by_default(api, memory_store):
    async with api(memory_store) as c:
        job = await c.ok("POST", "/apis/batch/v1/namespaces/default/jobs", {
            "metadata": {"name": "j"}, "spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}})
        uid = job["metadata"]["uid"]
        assert job["spec"]["selector"]["matchLabels"] == {
            "batch.kubernetes.io/controller-uid": uid}
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["job-name"] == "j" and labels["controller-uid"] == uid
        child = pod("j-abcde", labels)
        child["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job",
                                                 "name": "j", "uid": uid, "controller": True}]
        await c.ok("POST", PODS, child)
        await c.ok("DELETE", "/apis/batch/v1/namespaces/default/jobs/j")
        await eventually_gone(c, "/apis/batch/v1/namespaces/default/jobs/j")
        left = await c.ok("GET", f"{PODS}/j-abcde")
        assert "ownerReferences" not in left["metadata"]
