"""Create, read, update and patch through the API, against both store backends."""

from __future__ import annotations

import asyncio

from apiserver_kit import DEPLOYMENTS, PODS, deployment, pod

from netlab.master.store import StoreError


async def test_create_get_defaults_and_system_fields(api, any_store):
    async with api(any_store) as c:
        status, created = await c.post(PODS, pod("web"))
        assert status == 201
        m = created["metadata"]
        assert m["namespace"] == "default" and m["uid"] and m["creationTimestamp"]
        assert int(m["resourceVersion"]) == any_store.current_revision()
        spec = created["spec"]
        assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
        assert spec["terminationGracePeriodSeconds"] == 30
        assert spec["schedulerName"] == "default-scheduler"
        container = spec["containers"][0]
        assert container["imagePullPolicy"] == "Always"  # untagged image
        assert container["terminationMessagePath"] == "/dev/termination-log"
        assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
        status, got = await c.get(f"{PODS}/web")
        assert status == 200 and got == created


async def test_already_exists_and_not_found_statuses(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("a"))
        status, err = await c.post(PODS, pod("a"))
        assert status == 409
        assert err["reason"] == "AlreadyExists" and err["message"] == 'pods "a" already exists'
        assert err["details"] == {"name": "a", "kind": "pods"}
        status, err = await c.get(f"{DEPLOYMENTS}/nope")
        assert status == 404 and err["message"] == 'deployments.apps "nope" not found'
        assert err["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


async def test_invalid_object_lists_every_cause(api, memory_store):
    async with api(memory_store) as c:
        bad = pod("Bad_Name")
        bad["spec"]["containers"] = [{"name": "c"}, {"name": "c", "image": "x",
                                                      "ports": [{"containerPort": 70000}]}]
        status, err = await c.post(PODS, bad)
        assert status == 422 and err["reason"] == "Invalid"
        assert err["message"].startswith('Pod "Bad_Name" is invalid: [metadata.name: '
                                         'Invalid value: "Bad_Name": a lowercase RFC 1123')
        causes = {(x["field"], x["reason"]) for x in err["details"]["causes"]}
        assert ("spec.containers[0].image", "FieldValueRequired") in causes
        assert ("spec.containers[1].name", "FieldValueDuplicate") in causes
        assert ("spec.containers[1].ports[0].containerPort", "FieldValueInvalid") in causes
        status, err = await c.post(PODS, {"metadata": {"name": "x"}, "spec": {}})
        assert status == 422
        assert err["message"] == 'Pod "x" is invalid: spec.containers: Required value'


async def test_generate_name(api, memory_store):
    async with api(memory_store) as c:
        body = pod("")
        body["metadata"] = {"generateName": "web-"}
        names = set()
        for _ in range(3):
            created = await c.ok("POST", PODS, body)
            name = created["metadata"]["name"]
            assert name.startswith("web-") and len(name) == len("web-") + 5
            names.add(name)
        assert len(names) == 3


async def test_missing_and_terminating_namespace(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.post("/api/v1/namespaces/nope/pods", pod("a"))
        assert status == 404 and err["message"] == 'namespaces "nope" not found'
        await c.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
        await c.ok("POST", "/api/v1/namespaces/doomed/pods",
                   pod("blocker", nodeName="n1"))  # bound: waits for a kubelet
        await c.ok("DELETE", "/api/v1/namespaces/doomed")
        status, err = await c.post("/api/v1/namespaces/doomed/pods", pod("b"))
        assert status == 403 and err["reason"] == "Forbidden"
        assert err["message"] == ('pods "b" is forbidden: unable to create new content in '
                                  "namespace doomed because it is being terminated")


async def test_body_must_match_url(api, memory_store):
    async with api(memory_store) as c:
        body = pod("a")
        body["metadata"]["namespace"] = "other"
        status, err = await c.post(PODS, body)
        assert status == 400 and "does not match the namespace" in err["message"]
        await c.ok("POST", PODS, pod("a"))
        status, err = await c.put(f"{PODS}/a", pod("b"))
        assert status == 400
        assert err["message"] == "the name of the object (b) does not match the name on the URL (a)"
        body = pod("c")
        body["kind"] = "Service"
        status, err = await c.post(PODS, body)
        assert status == 400 and "kind" in err["message"]


async def test_update_conflict_and_unconditional(api, any_store):
    async with api(any_store) as c:
        created = await c.ok("POST", DEPLOYMENTS, deployment("web"))
        assert created["metadata"]["generation"] == 1
        stale = dict(created)
        first = dict(created, spec=dict(created["spec"], replicas=3))
        updated = await c.ok("PUT", f"{DEPLOYMENTS}/web", first)
        assert updated["metadata"]["generation"] == 2
        status, err = await c.put(f"{DEPLOYMENTS}/web", dict(stale, spec=dict(
            stale["spec"], replicas=4)))
        assert status == 409 and err["reason"] == "Conflict"
        assert err["message"] == ('Operation cannot be fulfilled on deployments.apps "web": the '
                                  "object has been modified; please apply your changes to the "
                                  "latest version and try again")
        unconditional = dict(stale, spec=dict(stale["spec"], replicas=5))
        unconditional["metadata"] = {k: v for k, v in stale["metadata"].items()
                                     if k != "resourceVersion"}
        done = await c.ok("PUT", f"{DEPLOYMENTS}/web", unconditional)
        assert done["spec"]["replicas"] == 5 and done["metadata"]["generation"] == 3


async def test_noop_update_keeps_resource_version(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", DEPLOYMENTS, deployment("web"))
        again = await c.ok("PUT", f"{DEPLOYMENTS}/web", created)
        assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        patched = await c.ok("PATCH", f"{DEPLOYMENTS}/web", {"metadata": {"labels": None}})
        assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_status_subresource_separation(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", DEPLOYMENTS, deployment("web"))
        # The main resource ignores status changes ...
        body = dict(created, status={"replicas": 7})
        out = await c.ok("PUT", f"{DEPLOYMENTS}/web", body)
        assert out["status"] == {}
        # ... and /status ignores spec changes and does not bump the generation.
        body = dict(out, status={"replicas": 2}, spec=dict(out["spec"], replicas=9))
        out = await c.ok("PUT", f"{DEPLOYMENTS}/web/status", body)
        assert out["status"] == {"replicas": 2} and out["spec"]["replicas"] == 1
        assert out["metadata"]["generation"] == 1
        out = await c.ok("PATCH", f"{DEPLOYMENTS}/web/status", {"status": {"replicas": 3}})
        assert out["status"]["replicas"] == 3 and out["metadata"]["generation"] == 1
        status, got = await c.get(f"{DEPLOYMENTS}/web/status")
        assert status == 200 and got["status"]["replicas"] == 3


async def test_patch_types(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", DEPLOYMENTS, deployment("web"))
        out = await c.ok("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "nginx:2"}]}}}},
            patch_type="application/strategic-merge-patch+json")
        assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
        assert out["metadata"]["generation"] == 2
        out = await c.ok("PATCH", f"{DEPLOYMENTS}/web",
                         [{"op": "replace", "path": "/spec/replicas", "value": 4}],
                         patch_type="application/json-patch+json")
        assert out["spec"]["replicas"] == 4
        # Server-side apply needs a field manager (422, as upstream's PatchOptions check).
        status, err = await c.patch(f"{DEPLOYMENTS}/web", {"spec": {}},
                                    patch_type="application/apply-patch+yaml")
        assert status == 422 and "fieldManager: Required value" in err["message"]
        status, err = await c.patch(f"{DEPLOYMENTS}/web", {"spec": {}},
                                    patch_type="application/apply-patch+cbor")
        assert status == 415 and err["reason"] == "UnsupportedMediaType"
        status, err = await c.patch(f"{DEPLOYMENTS}/nope", {"spec": {}})
        assert status == 404
        status, err = await c.patch(f"{DEPLOYMENTS}/web", {"metadata": {
            "resourceVersion": "1"}, "spec": {"replicas": 1}})
        assert status == 409


async def test_immutable_fields(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", DEPLOYMENTS, deployment("web"))
        status, err = await c.patch(f"{DEPLOYMENTS}/web", {"spec": {
            "selector": {"matchLabels": {"app": "other"}},
            "template": {"metadata": {"labels": {"app": "other"}}}}})
        assert status == 422 and "spec.selector: Invalid value" in err["message"]
        assert "field is immutable" in err["message"]
        await c.ok("POST", PODS, pod("p"))
        status, err = await c.patch(f"{PODS}/p", {"spec": {"restartPolicy": "Never"}})
        assert status == 422 and err["details"]["causes"][0]["field"] == "spec"
        out = await c.ok("PATCH", f"{PODS}/p", {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}},
            patch_type="application/strategic-merge-patch+json")
        assert out["spec"]["containers"][0]["image"] == "busybox:2"


async def test_dry_run_writes_nothing(api, memory_store):
    async with api(memory_store) as c:
        before = memory_store.current_revision()
        status, out = await c.post(PODS, pod("dry"), dryRun="All")
        assert status == 201 and out["metadata"]["name"] == "dry"
        assert memory_store.current_revision() == before
        status, _ = await c.get(f"{PODS}/dry")
        assert status == 404
        status, _ = await c.post(PODS, pod("dry"), dryRun="Maybe")
        assert status == 422


async def test_create_on_update_for_leases(api, memory_store):
    async with api(memory_store) as c:
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": "n1", "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}}
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"
        status, out = await c.put(path, lease)
        assert status == 201
        status, out = await c.put(path, dict(out, spec={"holderIdentity": "n1",
                                                        "leaseDurationSeconds": 41}))
        assert status == 200 and out["spec"]["leaseDurationSeconds"] == 41
        status, _ = await c.put(f"{PODS}/ghost", pod("ghost"))
        assert status == 404


async def test_field_validation(api, memory_store):
    async with api(memory_store) as c:
        body = pod("typo")
        body["spec"]["containers"][0]["imagee"] = "x"
        status, err = await c.post(PODS, body, fieldValidation="Strict")
        assert status == 400
        assert err["message"] == ('Pod in version "v1" cannot be handled as a Pod: strict '
                                  'decoding error: unknown field "spec.containers[0].imagee"')
        async with c.raw.post(PODS, json=body, headers={
                "Authorization": "Bearer test-token"}) as resp:
            assert resp.status == 201
            assert resp.headers.getall("Warning") == [
                '299 - "unknown field \\"spec.containers[0].imagee\\""']
            created = await resp.json()
        assert "imagee" not in created["spec"]["containers"][0]


async def test_yaml_body_and_output(api, memory_store):
    async with api(memory_store) as c:
        text = b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: y\nspec:\n  containers:\n" \
               b"  - name: c\n    image: busybox\n"
        status, out = await c.post(PODS, data=text, content_type="application/yaml")
        assert status == 201 and out["metadata"]["name"] == "y"
        async with c.raw.get(f"{PODS}/y", headers={"Authorization": "Bearer test-token",
                                                   "Accept": "application/yaml"}) as resp:
            assert resp.status == 200 and resp.content_type == "application/yaml"
            assert "name: y" in await resp.text()


async def test_concurrent_creates_and_updates(api, any_store):
    async with api(any_store) as c:
        results = await asyncio.gather(*(c.post(PODS, pod(f"p{i}")) for i in range(40)))
        assert all(status == 201 for status, _ in results)
        await c.ok("POST", DEPLOYMENTS, deployment("web"))
        # Unconditional patches race; every one must land (retried on conflict).
        await asyncio.gather(*(c.ok("PATCH", f"{DEPLOYMENTS}/web", {"metadata": {
            "annotations": {f"a{i}": "x"}}}) for i in range(20)))
        out = await c.ok("GET", f"{DEPLOYMENTS}/web")
        assert len(out["metadata"]["annotations"]) == 20


async def test_a_store_failure_is_a_500_in_the_stores_words(api, memory_store, monkeypatch):
    """etcd without a quorum: kube-apiserver's ErrorToAPIStatus answers an error that is
    not a Status with code 500, no reason and the error's text (kubectl: "Error from
    server: etcdserver: request timed out")."""
    async def timed_out(*args, **kwargs):
        raise StoreError("etcdserver: request timed out")

    async with api(memory_store) as c:
        monkeypatch.setattr(memory_store, "acreate", timed_out)
        status, err = await c.post(PODS, pod("web"))
        assert status == 500
        assert err == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Failure", "message": "etcdserver: request timed out",
                       "code": 500}
