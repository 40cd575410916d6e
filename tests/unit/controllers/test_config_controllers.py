"""The ReplicationController manager and the service account controller, in-process
against a real API server (memory store), as in test_inprocess."""

from __future__ import annotations

from cmkit import cluster, eventually

from netlab.client import APIError

RC = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
      "spec": {"replicas": 3, "template": {
          "metadata": {"labels": {"app": "rc"}},
          "spec": {"containers": [{"name": "c", "image": "netlab/echo"}]}}}}


async def _pods(c, n):
    pods = await c.pods(selector="app=rc")
    return pods if len(pods) == n else None


async def test_rc_creates_owned_pods_scales_and_reports_status() -> None:
    async with cluster(controllers=["replicationcontroller"]) as c:
        created = await c.client.create(RC, "default")
        assert created["spec"]["selector"] == {"app": "rc"}  # defaulted from the template
        pods = await eventually(lambda: _pods(c, 3), what="3 pods")
        for pod in pods:
            ref = pod["metadata"]["ownerReferences"][0]
            assert (ref["apiVersion"], ref["kind"], ref["name"], ref["controller"]) == (
                "v1", "ReplicationController", "rc", True)
            assert ref["uid"] == created["metadata"]["uid"]

        async def status(n):
            rc = await c.client.get("replicationcontrollers", "rc", "default")
            return rc["status"].get("replicas") == n and \
                rc["status"].get("observedGeneration") == rc["metadata"]["generation"]
        await eventually(lambda: status(3), what="status.replicas 3")
        scale = await c.client.get("replicationcontrollers", "rc", "default", "scale")
        assert scale["status"]["selector"] == "app=rc"
        scale["spec"]["replicas"] = 1
        await c.client.request("PUT", "/api/v1/namespaces/default/replicationcontrollers/rc/scale",
                               body=scale)
        await eventually(lambda: _pods(c, 1), what="1 pod after scaling down")
        await eventually(lambda: status(1), what="status.replicas 1")


async def test_every_namespace_keeps_a_default_service_account() -> None:
    async with cluster(controllers=["serviceaccount"]) as c:
        async def default_sa(namespace):
            try:
                return await c.client.get("serviceaccounts", "default", namespace)
            except APIError as err:
                if err.not_found:
                    return None
                raise
        await eventually(lambda: default_sa("default"), what="default/default at start-up")
        await c.client.create({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": "fresh"}})
        first = await eventually(lambda: default_sa("fresh"), what="fresh/default")
        await c.client.delete("serviceaccounts", "default", "fresh")

        async def recreated():
            sa = await default_sa("fresh")
            return sa if sa and sa["metadata"]["uid"] != first["metadata"]["uid"] else None
        await eventually(recreated, what="fresh/default recreated")
