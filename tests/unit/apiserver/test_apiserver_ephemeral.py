"""``pods/ephemeralcontainers``: what ``kubectl debug`` patches, with upstream's rules
and wording: only ephemeral containers change, existing ones stay as they are."""

from __future__ import annotations

from apiserver_kit import PODS, pod

SMP = "application/strategic-merge-patch+json"
DEBUGGER = {"name": "debugger-abcde", "image": "busybox", "targetContainerName": "c",
            "command": ["sh", "-c", "ps"], "stdin": False, "tty": False}


def _causes(err: dict) -> list[tuple[str, str, str]]:
    return [(c["reason"], c["field"], c["message"]) for c in err["details"]["causes"]]


async def test_add_an_ephemeral_container_by_strategic_merge_patch(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("p"))
        out = await c.ok("PATCH", f"{PODS}/p/ephemeralcontainers",
                         {"spec": {"ephemeralContainers": [DEBUGGER]}}, patch_type=SMP)
        assert out["kind"] == "Pod"
        (added,) = out["spec"]["ephemeralContainers"]
        # Defaulted as containers are.
        assert added["terminationMessagePath"] == "/dev/termination-log"
        assert added["imagePullPolicy"] == "Always" and added["targetContainerName"] == "c"
        got = await c.ok("GET", f"{PODS}/p/ephemeralcontainers")
        assert got["spec"]["ephemeralContainers"] == out["spec"]["ephemeralContainers"]
        # A second one by JSON merge patch (the whole list), then PUT of the Pod.
        second = dict(DEBUGGER, name="second")
        out = await c.ok("PATCH", f"{PODS}/p/ephemeralcontainers", {"spec": {
            "ephemeralContainers": [*out["spec"]["ephemeralContainers"], second]}})
        assert [e["name"] for e in out["spec"]["ephemeralContainers"]] == [
            "debugger-abcde", "second"]
        out["spec"]["ephemeralContainers"].append(dict(DEBUGGER, name="third"))
        out["metadata"]["labels"] = {"changed": "ignored"}
        out["spec"]["containers"][0]["image"] = "ignored"
        put = await c.ok("PUT", f"{PODS}/p/ephemeralcontainers", out)
        assert len(put["spec"]["ephemeralContainers"]) == 3
        # Only ephemeral containers change through the subresource.
        assert put["metadata"]["labels"] == {"app": "test"}
        assert put["spec"]["containers"][0]["image"] == "busybox"


async def test_existing_ones_cannot_change_or_go(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("p"))
        out = await c.ok("PATCH", f"{PODS}/p/ephemeralcontainers",
                         {"spec": {"ephemeralContainers": [DEBUGGER]}}, patch_type=SMP)
        status, err = await c.patch(f"{PODS}/p/ephemeralcontainers",
                                    {"spec": {"ephemeralContainers": []}})
        assert status == 422 and err["reason"] == "Invalid"
        assert err["message"].startswith('Pod "p" is invalid: spec.ephemeralContainers: '
                                         'Forbidden: existing ephemeral containers '
                                         '"debugger-abcde" may not be removed')
        changed = dict(out["spec"]["ephemeralContainers"][0], image="alpine")
        status, err = await c.patch(f"{PODS}/p/ephemeralcontainers",
                                    {"spec": {"ephemeralContainers": [changed]}}, patch_type=SMP)
        assert status == 422
        assert ("FieldValueForbidden", "spec.ephemeralContainers",
                'Forbidden: existing ephemeral containers "debugger-abcde" may not be '
                'changed\n') in _causes(err)


async def test_fields_an_ephemeral_container_may_not_have(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("p"))
        bad = dict(DEBUGGER, ports=[{"containerPort": 80}],
                   readinessProbe={"exec": {"command": ["true"]}},
                   resources={"limits": {"cpu": "1"}}, targetContainerName="nope")
        status, err = await c.patch(f"{PODS}/p/ephemeralcontainers",
                                    {"spec": {"ephemeralContainers": [bad]}}, patch_type=SMP)
        assert status == 422
        causes = _causes(err)
        for field in ("ports", "readinessProbe", "resources"):
            assert ("FieldValueForbidden", f"spec.ephemeralContainers[0].{field}",
                    "Forbidden: cannot be set for an Ephemeral Container") in causes
        assert ("FieldValueNotFound", "spec.ephemeralContainers[0].targetContainerName",
                'Not found: "nope"') in causes
        status, err = await c.patch(f"{PODS}/p/ephemeralcontainers", {"spec": {
            "ephemeralContainers": [dict(DEBUGGER, name="c")]}}, patch_type=SMP)
        assert status == 422
        assert ("FieldValueDuplicate", "spec.ephemeralContainers[0].name",
                'Duplicate value: "c"') in _causes(err)


async def test_not_on_create_nor_through_the_pod_itself(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.post(PODS, pod("p", ephemeralContainers=[DEBUGGER]))
        assert status == 422
        assert ("FieldValueForbidden", "spec.ephemeralContainers",
                "Forbidden: cannot be set on create") in _causes(err)
        await c.ok("POST", PODS, pod("p"))
        status, err = await c.patch(f"{PODS}/p", {"spec": {"ephemeralContainers": [DEBUGGER]}},
                                    patch_type=SMP)
        assert status == 422 and "pod updates may not change fields" in err["message"]
        status, _ = await c.patch(f"{PODS}/nope/ephemeralcontainers",
                                  {"spec": {"ephemeralContainers": [DEBUGGER]}}, patch_type=SMP)
        assert status == 404


async def test_discovery_lists_the_subresource(api, memory_store):
    async with api(memory_store) as c:
        core = await c.ok("GET", "/api/v1")
        (sub,) = [r for r in core["resources"] if r["name"] == "pods/ephemeralcontainers"]
        assert sub["kind"] == "Pod" and sorted(sub["verbs"]) == ["get", "patch", "update"]


async def test_an_ephemeral_container_is_checked_as_a_container_is(api, memory_store):
    """validateEphemeralContainers runs validateContainerCommon on each: the env,
    mount propagation and seccomp rules of a regular container hold for one too."""
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("p", volumes=[{"name": "v", "emptyDir": {}}]))
        bad = dict(DEBUGGER, env=[{"name": "1BAD"}],
                   volumeMounts=[{"name": "v", "mountPath": "/v",
                                  "mountPropagation": "Bidirectional"}],
                   securityContext={"seccompProfile": {
                       "type": "Localhost", "localhostProfile": "../../run/netlab/x"}})
        status, err = await c.patch(f"{PODS}/p/ephemeralcontainers",
                                    {"spec": {"ephemeralContainers": [bad]}}, patch_type=SMP)
        assert status == 422
        causes = {(reason, field) for reason, field, _ in _causes(err)}
        assert ("FieldValueInvalid", "spec.ephemeralContainers[0].env[0].name") in causes
        assert ("FieldValueForbidden",
                "spec.ephemeralContainers[0].volumeMounts.mountPropagation") in causes
        assert ("FieldValueInvalid", "spec.ephemeralContainers[0].securityContext."
                "seccompProfile.localhostProfile") in causes
        got = await c.ok("GET", f"{PODS}/p")
        assert not got["spec"].get("ephemeralContainers")
