"""CustomResourceDefinitions through the in-process API server: the resource appears
without a restart, custom objects are validated, pruned and defaulted by their schema,
the status and scale subresources work, and deleting the CRD removes its objects."""

from __future__ import annotations

import asyncio
import copy

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices"

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "replicas": {"type": "integer"},
                "selector": {"type": "string"},
                "port": {"x-kubernetes-int-or-string": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"},
                                                     "replicas": {"type": "integer"}}},
    },
}


def crd(kind: str = "Widget", plural: str = "widgets", group: str = "example.com",
        scope: str = "Namespaced", versions: list | None = None) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group, "scope": scope,
            "names": {"plural": plural, "singular": plural[:-1], "kind": kind,
                      "shortNames": [plural[:2]], "categories": ["all"]},
            "versions": versions or [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)},
                "subresources": {"status": {}, "scale": {
                    "specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas",
                    "labelSelectorPath": ".spec.selector"}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}],
            }],
        },
    }


def widget(name: str, **spec: object) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"size": 3, **spec}}


async def _established(c, name: str) -> dict:
    for _ in range(200):
        got = await c.ok("GET", f"{CRDS}/{name}")
        conds = {x["type"]: x["status"] for x in got["status"].get("conditions") or []}
        if conds.get("Established") == "True":
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} never established: {got['status']}")


async def test_crd_serves_its_resource(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", CRDS, crd())
        assert created["spec"]["names"]["listKind"] == "WidgetList"
        assert created["status"]["storedVersions"] == ["v1"]
        got = await _established(c, "widgets.example.com")
        conds = {x["type"]: x for x in got["status"]["conditions"]}
        assert conds["NamesAccepted"]["reason"] == "NoConflicts"
        assert got["status"]["acceptedNames"]["kind"] == "Widget"
        disc = await c.ok("GET", "/apis/example.com/v1")
        entry = next(r for r in disc["resources"] if r["name"] == "widgets")
        assert entry["shortNames"] == ["wi"] and entry["categories"] == ["all"]
        assert {r["name"] for r in disc["resources"]} >= {"widgets/status", "widgets/scale"}
        groups = await c.ok("GET", "/apis")
        assert "example.com" in [g["name"] for g in groups["groups"]]
        # As kube-apiserver's CRD registration controller: an automanaged Local APIService.
        service = None
        for _ in range(200):
            status, service = await c.get(f"{APISERVICES}/v1.example.com")
            if status == 200:
                break
            await asyncio.sleep(0.02)
        assert service["spec"] == {"group": "example.com", "version": "v1",
                                   "groupPriorityMinimum": 1000, "versionPriority": 100}
        assert service["metadata"]["labels"] == {
            "kube-aggregator.kubernetes.io/automanaged": "true"}

        w = await c.ok("POST", WIDGETS, widget("w1", bogus=1), fieldValidation="Ignore")
        assert w["spec"] == {"size": 3, "color": "red"}  # pruned and defaulted
        assert w["metadata"]["generation"] == 1
        status, err = await c.post(WIDGETS, widget("w2", size="big"))
        assert status == 422
        assert ('spec.size: Invalid value: "string": spec.size in body must be of type '
                'integer: "string"') in err["message"]
        status, err = await c.post(WIDGETS, widget("w2", size=11, color="green"))
        assert status == 422 and "spec.size in body should be less than or equal to 10" in \
            err["message"] and 'spec.color: Unsupported value: "green"' in err["message"]
        status, err = await c.post(WIDGETS, widget("w3", bogus=1), fieldValidation="Strict")
        assert status == 400 and 'unknown field "spec.bogus"' in err["message"]
        status, err = await c.post(WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                             "metadata": {"name": "w4"}, "spec": {}})
        assert status == 422 and "spec.size: Required value" in err["message"]

        # status subresource: status through /status only; generation tracks the spec.
        await c.ok("PATCH", f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}})
        w = await c.ok("PATCH", f"{WIDGETS}/w1", {"spec": {"size": 4}, "status": {"phase": "X"}})
        assert w["status"]["phase"] == "Ready" and w["metadata"]["generation"] == 2
        # scale subresource through the CRD's paths.
        scale = await c.ok("PUT", f"{WIDGETS}/w1/scale", {
            "apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "w1"},
            "spec": {"replicas": 5}})
        assert scale["spec"]["replicas"] == 5
        assert (await c.ok("GET", f"{WIDGETS}/w1"))["spec"]["replicas"] == 5

        table = await c.ok("GET", WIDGETS, headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        assert [d["name"] for d in table["columnDefinitions"]] == ["Name", "Size", "Phase"]
        assert table["rows"][0]["cells"] == ["w1", 4, "Ready"]
        # The schema is published for kubectl (v3 per group-version, and v2).
        index = await c.ok("GET", "/openapi/v3")
        assert "apis/example.com/v1" in index["paths"]
        doc = await c.ok("GET", "/openapi/v3/apis/example.com/v1")
        schema = doc["components"]["schemas"]["com.example.v1.Widget"]
        assert schema["properties"]["spec"]["properties"]["size"]["maximum"] == 10
        assert schema["x-kubernetes-group-version-kind"] == [
            {"group": "example.com", "kind": "Widget", "version": "v1"}]
        patch = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"][
            "patch"]
        assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
        v2 = await c.ok("GET", "/openapi/v2")
        assert "com.example.v1.Widget" in v2["definitions"]
        listed = await c.ok("GET", WIDGETS, fieldSelector="metadata.name=w1")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]
        status, _ = await c.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}},
                                  patch_type="application/strategic-merge-patch+json")
        assert status == 415

        # deleting the CRD deletes its objects, then the resource is gone.
        await c.ok("DELETE", f"{CRDS}/widgets.example.com")
        for _ in range(200):
            status, _ = await c.get(f"{CRDS}/widgets.example.com")
            if status == 404:
                break
            await asyncio.sleep(0.02)
        assert status == 404
        status, _ = await c.get(WIDGETS)
        assert status == 404
        assert not memory_store.list("/registry/widgets.example.com/").items
        for _ in range(200):  # ... and its APIService with it
            status, _ = await c.get(f"{APISERVICES}/v1.example.com")
            if status == 404:
                break
            await asyncio.sleep(0.02)
        assert status == 404


async def test_crd_validation_and_name_conflicts(api, memory_store):
    async with api(memory_store) as c:
        bad = crd()
        bad["metadata"]["name"] = "wrong.example.com"
        status, err = await c.post(CRDS, bad)
        assert status == 422 and 'must be spec.names.plural+"."+spec.group' in err["message"]
        bad = crd()
        bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
            "properties"]["size"] = {"minimum": 1}
        status, err = await c.post(CRDS, bad)
        assert status == 422
        assert ("spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size]."
                "type: Required value: must not be empty for specified object fields"
                in err["message"])
        two = crd()
        two["spec"]["versions"] = [dict(two["spec"]["versions"][0]),
                                   dict(two["spec"]["versions"][0], name="v2")]
        status, err = await c.post(CRDS, two)
        assert status == 422 and "must have exactly one version marked as storage version" \
            in err["message"]
        await c.ok("POST", CRDS, crd())
        await _established(c, "widgets.example.com")
        await c.ok("POST", CRDS, crd(plural="gadgets"))  # kind Widget again: a conflict
        for _ in range(200):
            got = await c.ok("GET", f"{CRDS}/gadgets.example.com")
            conds = {x["type"]: x for x in got["status"].get("conditions") or []}
            if conds:
                break
            await asyncio.sleep(0.02)
        assert conds["NamesAccepted"]["status"] == "False"
        assert conds["NamesAccepted"]["reason"] == "KindConflict"
        assert conds["Established"]["status"] == "False"
        status, _ = await c.get("/apis/example.com/v1/namespaces/default/gadgets")
        assert status == 404


async def test_two_versions_and_cluster_scope(api, memory_store):
    versions = [
        {"name": "v1beta1", "served": True, "storage": False,
         "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)}},
        {"name": "v1", "served": True, "storage": True,
         "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)}},
    ]
    async with api(memory_store) as c:
        await c.ok("POST", CRDS, crd(kind="Thing", plural="things", scope="Cluster",
                                     versions=versions))
        await _established(c, "things.example.com")
        body = {"apiVersion": "example.com/v1beta1", "kind": "Thing",
                "metadata": {"name": "t1"}, "spec": {"size": 1}}
        made = await c.ok("POST", "/apis/example.com/v1beta1/things", body)
        assert made["apiVersion"] == "example.com/v1beta1"
        stored = memory_store.get("/registry/things.example.com/t1")
        assert b'"apiVersion":"example.com/v1"' in stored.value
        got = await c.ok("GET", "/apis/example.com/v1/things/t1")
        assert got["apiVersion"] == "example.com/v1" and got["spec"]["color"] == "red"
        group = await c.ok("GET", "/apis/example.com")
        assert group["preferredVersion"]["version"] == "v1"


async def test_terminating_crd_waits_for_finalized_objects(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", CRDS, crd())
        await _established(c, "widgets.example.com")
        held = widget("held")
        held["metadata"]["finalizers"] = ["example.com/hold"]
        await c.ok("POST", WIDGETS, held)
        status, err = await c.post(WIDGETS, {**widget("w"), "metadata": {
            "name": "w", "bogus": 1}}, fieldValidation="Strict")
        assert status == 400 and 'unknown field "metadata.bogus"' in err["message"]
        deleted = await c.ok("DELETE", f"{CRDS}/widgets.example.com")
        assert "customresourcecleanup.apiextensions.k8s.io" in deleted["metadata"]["finalizers"]
        for _ in range(200):
            got = await c.ok("GET", f"{CRDS}/widgets.example.com")
            conds = {x["type"]: x for x in got["status"].get("conditions") or []}
            if "Terminating" in conds:
                break
            await asyncio.sleep(0.02)
        assert conds["Terminating"]["reason"] == "InstanceDeletionInProgress"
        status, err = await c.post(WIDGETS, widget("late"))
        assert status == 405
        assert err["message"] == ("create not allowed while custom resource definition is "
                                  "terminating")
        # The held object is marked, and the CRD stays until its finalizer goes.
        for _ in range(200):
            got = await c.ok("GET", f"{WIDGETS}/held")
            if got["metadata"].get("deletionTimestamp"):
                break
            await asyncio.sleep(0.02)
        assert got["metadata"].get("deletionTimestamp")
        assert (await c.get(f"{CRDS}/widgets.example.com"))[0] == 200
        await c.ok("PATCH", f"{WIDGETS}/held", {"metadata": {"finalizers": None}})
        for _ in range(200):
            status, _ = await c.get(f"{CRDS}/widgets.example.com")
            if status == 404:
                break
            await asyncio.sleep(0.02)
        assert status == 404


async def test_a_crd_written_while_apiservices_sync_still_gets_its_status(api, memory_store,
                                                                          monkeypatch):
    # The status task is busy with the APIServices when the second CRD arrives; the
    # second must not wait for some later write to be noticed.
    from netlab.master.apiserver.crds import CRDManager

    real_sync = CRDManager._sync_apiservices
    entered, release = asyncio.Event(), asyncio.Event()

    async def held_sync(self):
        entered.set()
        await release.wait()
        await real_sync(self)

    monkeypatch.setattr(CRDManager, "_sync_apiservices", held_sync)
    async with api(memory_store) as c:
        await c.ok("POST", CRDS, crd())
        await asyncio.wait_for(entered.wait(), 10)
        await c.ok("POST", CRDS, crd(kind="Gadget", plural="gadgets"))
        release.set()
        got = await _established(c, "gadgets.example.com")
        assert got["status"]["acceptedNames"]["kind"] == "Gadget"
