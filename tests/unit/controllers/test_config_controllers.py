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


async def test_every_namespace_gets_kube_root_ca_crt_back() -> None:
    from netlab.master.controllers.base import Options
    from netlab.master.controllers.rootcacert import DESCRIPTION

    ca = "-----BEGIN CERTIFICATE-----\nlab CA\n-----END CERTIFICATE-----\n"
    async with cluster(Options(root_ca=ca), controllers=["root-ca-cert-publisher"]) as c:
        async def published(namespace, uid=None):
            try:
                cm = await c.client.get("configmaps", "kube-root-ca.crt", namespace)
            except APIError as err:
                if err.not_found:
                    return None
                raise
            good = cm["data"] == {"ca.crt": ca} and \
                cm["metadata"]["annotations"]["kubernetes.io/description"] == DESCRIPTION
            return cm if good and cm["metadata"]["uid"] != uid else None
        for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
            await eventually(lambda ns=namespace: published(ns), what=f"{namespace}'s CA")
        await c.client.create({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": "fresh"}})
        first = await eventually(lambda: published("fresh"), what="fresh's CA")
        await c.client.delete("configmaps", "kube-root-ca.crt", "fresh")
        await eventually(lambda: published("fresh", first["metadata"]["uid"]),
                         what="the ConfigMap re-created")
        edited = await c.client.get("configmaps", "kube-root-ca.crt", "fresh")
        edited["data"] = {"ca.crt": "tampered"}
        edited["metadata"]["annotations"] = {}
        await c.client.update(edited)
        await eventually(lambda: published("fresh"), what="the data and annotation restored")
