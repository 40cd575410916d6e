"""A StatefulSet's volumeClaimTemplates: each pod's claims (names, labels, owner references
per persistentVolumeClaimRetentionPolicy) and volumes (pure), and the controller making
the claims before the pods, in-process; a re-created pod names the same claim."""

from __future__ import annotations

from cmkit import cluster, eventually

from netlab.master.controllers import statefulset_plan as sp

TEMPLATE = {"metadata": {"name": "data", "labels": {"tier": "db"}},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}


def sts(replicas: int = 2, policy: dict | None = None) -> dict:
    spec: dict = {"replicas": replicas, "serviceName": "web",
                  "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                      "containers": [{"name": "c", "image": "i", "volumeMounts": [
                          {"name": "data", "mountPath": "/data"}]}],
                      "volumes": [{"name": "data", "emptyDir": {}},
                                  {"name": "cache", "emptyDir": {}}]}},
                  "volumeClaimTemplates": [TEMPLATE]}
    if policy:
        spec["persistentVolumeClaimRetentionPolicy"] = policy
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "set-uid"},
            "spec": spec}


def test_each_pod_gets_its_own_claim_named_after_template_set_and_ordinal():
    (claim,) = sp.claims_for(sts(), 1)
    assert claim["metadata"] == {"name": "data-web-1", "namespace": "default",
                                 "labels": {"tier": "db", "app": "web"}}
    assert claim["spec"] == TEMPLATE["spec"]
    pod = sp.pod_for(sts(), sts()["spec"]["template"], 1, "web-abc")
    # The claim's volume replaces the template's volume of the same name.
    assert pod["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}},
        {"name": "cache", "emptyDir": {}}]


def test_owner_references_follow_the_retention_policy():
    assert sp.claim_owner_refs(sts(), None, 0) == []  # Retain/Retain: claims outlive the set
    deleted = sts(policy={"whenDeleted": "Delete", "whenScaled": "Retain"})
    assert sp.claim_owner_refs(deleted, None, 0) == [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid"}]
    scaled = sts(replicas=1, policy={"whenDeleted": "Delete", "whenScaled": "Delete"})
    pod = {"metadata": {"name": "web-1", "uid": "pod-uid"}}
    assert sp.claim_owner_refs(scaled, pod, 1) == [
        {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "pod-uid"}]
    assert [r["kind"] for r in sp.claim_owner_refs(scaled, pod, 0)] == ["StatefulSet"]


async def test_the_controller_makes_claims_before_pods_and_reuses_them() -> None:
    async with cluster(controllers=["statefulset"]) as c:
        body = sts(replicas=1)
        del body["metadata"]["uid"]
        await c.client.create(body)

        async def claims():
            items = (await c.client.list("persistentvolumeclaims", "default"))["items"]
            return [i["metadata"]["name"] for i in items] or None

        assert await eventually(claims, what="the claim") == ["data-web-0"]
        claim = await c.client.get("persistentvolumeclaims", "data-web-0", "default")
        assert claim["spec"]["storageClassName"] == "standard"  # the default class
        assert "ownerReferences" not in claim["metadata"]
        (pod,) = await eventually(lambda: c.pods(selector="app=web"), what="web-0")
        assert pod["spec"]["volumes"][0] == {
            "name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}
        events = (await c.client.list("events", "default"))["items"]
        assert "create Claim data-web-0 Pod web-0 in StatefulSet web success" in {
            e["message"] for e in events}
        # The pod goes and comes back: the same claim, not a new one.
        await c.client.delete("pods", "web-0", "default")

        async def recreated():
            pods = await c.pods(selector="app=web")
            return pods if pods and pods[0]["metadata"]["uid"] != pod["metadata"]["uid"] \
                else None

        (again,) = await eventually(recreated, what="web-0 re-created")
        assert again["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == \
            "data-web-0"
        assert await claims() == ["data-web-0"]
        await c.client.delete("statefulsets", "web", "default")
        assert await claims() == ["data-web-0"]  # Retain: the claim outlives the set
