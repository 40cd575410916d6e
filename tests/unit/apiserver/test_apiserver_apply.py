"""Server-side apply and managedFields through the API (in-process server)."""

from __future__ import annotations

import json

from apiserver_kit import DEPLOYMENTS, PODS, deployment, pod

APPLY = "application/apply-patch+yaml"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def entries(obj: dict) -> dict:
    return {(e["manager"], e["operation"], e.get("subresource", "")): e
            for e in obj["metadata"].get("managedFields", [])}


def owns(obj: dict, manager: str, *path: str) -> bool:
    for (name, _, _), e in entries(obj).items():
        if name != manager:
            continue
        node = e["fieldsV1"]
        for elem in path:
            if elem not in node:
                break
            node = node[elem]
        else:
            return True
    return False


async def apply(c, path: str, body: dict, manager: str = "kubectl", **params):
    return await c.patch(path, body, patch_type=APPLY, fieldManager=manager, **params)


async def test_every_write_records_its_manager(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", DEPLOYMENTS, deployment("web"),
                             fieldManager="kubectl-create")
        (e,) = created["metadata"]["managedFields"]
        assert (e["manager"], e["operation"], e["apiVersion"], e["fieldsType"]) == \
            ("kubectl-create", "Update", "apps/v1", "FieldsV1")
        assert "f:replicas" in e["fieldsV1"]["f:spec"] and e["time"]
        assert "f:name" not in e["fieldsV1"].get("f:metadata", {})
        # A patch without fieldManager is recorded under the User-Agent's prefix.
        patched = await c.ok("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"replicas": 3}},
                             headers={"User-Agent": "scaler/v1.0 (linux)"})
        assert owns(patched, "scaler", "f:spec", "f:replicas")
        assert not owns(patched, "kubectl-create", "f:spec", "f:replicas")
        # The same manager's entries merge.
        again = await c.ok("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"paused": True}},
                           headers={"User-Agent": "scaler/v1.0 (linux)"})
        assert len(entries(again)) == 2 and owns(again, "scaler", "f:spec", "f:paused")
        # A no-op write changes nothing, not even the managedFields.
        same = await c.ok("PATCH", f"{DEPLOYMENTS}/web", {"spec": {"paused": True}},
                          fieldManager="someone")
        assert same["metadata"]["resourceVersion"] == again["metadata"]["resourceVersion"]
        # Scale and status writes carry their subresource.
        scale = await c.ok("PATCH", f"{DEPLOYMENTS}/web/scale", {"spec": {"replicas": 4}},
                           fieldManager="hpa")
        assert scale["spec"]["replicas"] == 4
        status = await c.ok("PATCH", f"{DEPLOYMENTS}/web/status",
                            {"status": {"observedGeneration": 9}}, fieldManager="ctl")
        got = entries(status)
        assert ("hpa", "Update", "scale") in got and ("ctl", "Update", "status") in got
        assert "f:status" in got[("ctl", "Update", "status")]["fieldsV1"]


async def test_request_managed_fields_are_ignored_unless_resetting(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", PODS, pod("p"), fieldManager="maker")
        body = dict(created)
        body["metadata"] = dict(created["metadata"], labels={"x": "y"})
        body["metadata"]["managedFields"] = [{}]  # upstream's reset
        reset = await c.ok("PUT", f"{PODS}/p", body, fieldManager="editor")
        assert set(entries(reset)) == {("editor", "Update", "")}
        # Without a reset, the request's managedFields are the stored ones'.
        body = dict(reset)
        body["metadata"] = dict(reset["metadata"], labels={"x": "z"})
        kept = await c.ok("PUT", f"{PODS}/p", body, fieldManager="editor")
        assert set(entries(kept)) == {("editor", "Update", "")}


async def test_apply_creates_then_is_a_no_op(api, memory_store):
    async with api(memory_store) as c:
        body = deployment("web")
        status, created = await apply(c, f"{DEPLOYMENTS}/web", body)
        assert status == 201
        (e,) = created["metadata"]["managedFields"]
        assert (e["manager"], e["operation"]) == ("kubectl", "Apply")
        status, again = await apply(c, f"{DEPLOYMENTS}/web", body)
        assert status == 200
        assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert again["metadata"]["generation"] == created["metadata"]["generation"]


async def test_apply_conflict_force_and_pruning(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", DEPLOYMENTS, deployment("web"),
                   fieldManager="kubectl-client-side-apply")
        body = deployment("web", replicas=5)
        status, err = await apply(c, f"{DEPLOYMENTS}/web", body, "other")
        assert status == 409 and err["reason"] == "Conflict"
        assert err["message"] == ('Apply failed with 1 conflict: conflict with '
                                  '"kubectl-client-side-apply" using apps/v1: .spec.replicas')
        assert err["details"]["causes"] == [{
            "reason": "FieldManagerConflict", "field": ".spec.replicas",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}]
        status, forced = await apply(c, f"{DEPLOYMENTS}/web", body, "other", force=True)
        assert status == 200 and forced["spec"]["replicas"] == 5
        assert owns(forced, "other", "f:spec", "f:replicas")
        assert not owns(forced, "kubectl-client-side-apply", "f:spec", "f:replicas")
        # A label only "other" owns goes when "other" stops applying it.
        body["metadata"]["labels"] = {"extra": "1"}
        _, labelled = await apply(c, f"{DEPLOYMENTS}/web", body, "other")
        assert labelled["metadata"]["labels"] == {"extra": "1"}
        del body["metadata"]["labels"]
        _, pruned = await apply(c, f"{DEPLOYMENTS}/web", body, "other")
        assert "extra" not in (pruned["metadata"].get("labels") or {})


async def test_apply_bad_input(api, memory_store):
    async with api(memory_store) as c:
        path = f"{DEPLOYMENTS}/web"
        status, err = await c.patch(path, deployment("web"), patch_type=APPLY)
        assert status == 422 and "fieldManager: Required value" in err["message"]
        status, err = await c.request("PATCH", path, content_type=APPLY, data=b"- a\n- b\n",
                                      fieldManager="m")
        assert status == 400
        status, err = await c.request("PATCH", path, content_type=APPLY, data=b"a: [",
                                      fieldManager="m")
        assert status == 400
        wrong = deployment("web")
        wrong["apiVersion"] = "apps/v2"
        status, err = await apply(c, path, wrong, "m")
        assert status == 400 and "Incorrect version specified in apply patch" in err["message"]
        wrong = deployment("web")
        wrong["kind"] = "Pod"
        status, err = await apply(c, path, wrong, "m")
        assert status == 400 and "does not match the expected kind" in err["message"]
        wrong = deployment("other")
        status, err = await apply(c, path, wrong, "m")
        assert status == 400 and "does not match the name on the URL" in err["message"]
        wrong = deployment("web")
        wrong["metadata"]["managedFields"] = [{"manager": "x"}]
        status, err = await apply(c, path, wrong, "m")
        assert status == 400 and "managedFields must be nil" in err["message"]
        wrong = deployment("web")
        wrong["spec"]["template"]["spec"]["containers"] = [{"image": "x"}]
        status, err = await apply(c, path, wrong, "m")
        assert status == 400 and "omits key field" in err["message"]
        wrong = deployment("web")
        wrong["spec"]["bogus"] = 1
        status, err = await apply(c, path, wrong, "m", fieldValidation="Strict")
        assert status == 400 and "bogus" in err["message"]
        await c.ok("POST", DEPLOYMENTS, deployment("web"))
        status, err = await c.patch(path, {"spec": {"replicas": 2}}, force=True)
        assert status == 422 and "force: Forbidden" in err["message"]


async def test_dry_run_on_every_write_verb(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", DEPLOYMENTS, deployment("web"))
        rv = created["metadata"]["resourceVersion"]
        path = f"{DEPLOYMENTS}/web"
        status, out = await apply(c, path, deployment("web", replicas=7), "m", force=True,
                                  dryRun="All")
        assert status == 200 and out["spec"]["replicas"] == 7
        status, out = await apply(c, f"{DEPLOYMENTS}/new", deployment("new"), "m",
                                  dryRun="All")
        assert status == 201
        status, _ = await c.get(f"{DEPLOYMENTS}/new")
        assert status == 404
        out = await c.ok("PATCH", path, {"spec": {"replicas": 8}}, dryRun="All")
        assert out["spec"]["replicas"] == 8
        body = dict(created, spec=dict(created["spec"], replicas=9))
        out = await c.ok("PUT", path, body, dryRun="All")
        assert out["spec"]["replicas"] == 9
        out = await c.ok("PATCH", f"{path}/scale", {"spec": {"replicas": 6}}, dryRun="All")
        assert out["spec"]["replicas"] == 6
        await c.ok("DELETE", path, dryRun="All")
        await c.ok("DELETE", DEPLOYMENTS, dryRun="All")
        got = await c.ok("GET", path)
        assert got["metadata"]["resourceVersion"] == rv and got["spec"]["replicas"] == 1


async def test_apply_status_and_scale(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", DEPLOYMENTS, deployment("web"))
        path = f"{DEPLOYMENTS}/web"
        status, out = await apply(c, f"{path}/status", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "status": {"observedGeneration": 3}, "spec": {"replicas": 9}}, "ctl")
        assert status == 200 and out["status"]["observedGeneration"] == 3
        assert out["spec"]["replicas"] == 1  # spec is not written through /status
        e = entries(out)[("ctl", "Apply", "status")]
        assert list(e["fieldsV1"]) == ["f:status"]
        status, scale = await apply(c, f"{path}/scale", {
            "apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
            "spec": {"replicas": 3}}, "scaler", force=True)
        assert status == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
        got = await c.ok("GET", path)
        assert got["spec"]["replicas"] == 3
        assert owns(got, "scaler", "f:spec", "f:replicas")
        assert entries(got)[("scaler", "Apply", "scale")]


async def test_csa_then_ssa_upgrade_keeps_last_applied(api, memory_store):
    async with api(memory_store) as c:
        body = deployment("web")
        body["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(deployment("web"))}
        await c.ok("POST", DEPLOYMENTS, body, fieldManager="kubectl-client-side-apply")
        changed = deployment("web", replicas=4)
        status, out = await apply(c, f"{DEPLOYMENTS}/web", changed)
        assert status == 200, out
        assert out["spec"]["replicas"] == 4
        assert json.loads(out["metadata"]["annotations"][LAST_APPLIED])["spec"]["replicas"] == 4
        # Another manager gets no such pass.
        status, _ = await apply(c, f"{DEPLOYMENTS}/web", deployment("web", replicas=6), "x")
        assert status == 409


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
GADGETS = "/apis/example.com/v1/namespaces/default/gadgets"


async def test_apply_custom_resource_with_list_map(api, memory_store):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "gadgets", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {
                                      "type": "object", "properties": {"spec": {
                                          "type": "object", "properties": {
                                              "size": {"type": "integer"},
                                              "ports": {
                                                  "type": "array",
                                                  "x-kubernetes-list-type": "map",
                                                  "x-kubernetes-list-map-keys": ["name"],
                                                  "items": {"type": "object", "properties": {
                                                      "name": {"type": "string"},
                                                      "port": {"type": "integer"}}}}}}}}}}]}}
    async with api(memory_store) as c:
        await c.ok("POST", CRDS, crd)
        g = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"},
             "spec": {"size": 1, "ports": [{"name": "a", "port": 1}]}}
        for _ in range(50):  # the CRD is served once established
            status, out = await apply(c, f"{GADGETS}/g", g, "one")
            if status != 404:
                break
        assert status == 201, out
        other = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"},
                 "spec": {"ports": [{"name": "b", "port": 2}]}}
        status, out = await apply(c, f"{GADGETS}/g", other, "two")
        assert status == 200
        assert [p["name"] for p in out["spec"]["ports"]] == ["a", "b"]
        assert owns(out, "two", "f:spec", "f:ports", 'k:{"name":"b"}', "f:port")
        status, err = await apply(c, f"{GADGETS}/g", {
            "apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"},
            "spec": {"size": 2}}, "two")
        assert status == 409, err["message"]
        assert '"one"' in err["message"] and ".spec.size" in err["message"]
