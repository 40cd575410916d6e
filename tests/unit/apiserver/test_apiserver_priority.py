"""PriorityClasses and Priority admission through the API, as a user of upstream sees them:
the built-in classes in every cluster and undeletable, 422 and 403 with upstream's
messages, and every new pod's spec.priority resolved from its class."""

from __future__ import annotations

from apiserver_kit import PODS, pod

CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def pc(name: str, value: int, **fields) -> dict:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, **fields}


async def test_every_cluster_has_the_system_classes_and_keeps_them(api, memory_store):
    async with api(memory_store) as c:
        listed = await c.ok("GET", CLASSES)
        got = {o["metadata"]["name"]: (o["value"], o["preemptionPolicy"], o["description"])
               for o in listed["items"]}
        assert got == {
            "system-cluster-critical": (2000000000, "PreemptLowerPriority",
                                        "Used for system critical pods that must run in the "
                                        "cluster, but can be moved to another node if "
                                        "necessary."),
            "system-node-critical": (2000001000, "PreemptLowerPriority",
                                     "Used for system critical pods that must not be moved "
                                     "from their current node.")}
        status, err = await c.delete(f"{CLASSES}/system-node-critical")
        assert status == 403 and err["message"] == (
            'priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: this is a '
            "system priority class and cannot be deleted")
        table = await c.ok("GET", CLASSES, headers={"Accept": TABLE})
        assert [col["name"] for col in table["columnDefinitions"] if col["priority"] == 0] == [
            "Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
        assert [r["cells"][:3] + r["cells"][4:] for r in table["rows"]] == [
            ["system-cluster-critical", 2000000000, False, "PreemptLowerPriority"],
            ["system-node-critical", 2000001000, False, "PreemptLowerPriority"]]
    async with api(memory_store) as c:  # a restart changes nothing
        assert len((await c.ok("GET", CLASSES))["items"]) == 2


async def test_class_writes_are_checked_as_upstream_checks_them(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", CLASSES, pc("high", 1000, description="x",
                                                 preemptionPolicy="Never"))
        assert (created["value"], created["preemptionPolicy"], created["metadata"][
            "generation"]) == (1000, "Never", 1)
        status, err = await c.post(CLASSES, pc("too-high", 1000000001))
        assert status == 422 and err["message"] == (
            'PriorityClass.scheduling.k8s.io "too-high" is invalid: value: Forbidden: maximum '
            "allowed value of a user defined priority is 1000000000")
        status, err = await c.post(CLASSES, pc("system-mine", 5))
        assert status == 422 and "prefix are reserved for system use only. error: " \
            "system-mine is not a known system priority class" in err["message"]
        status, err = await c.patch(f"{CLASSES}/high", {"value": 2000})
        assert status == 422 and err["message"].endswith(
            "value: Forbidden: may not be changed in an update.")
        status, err = await c.patch(f"{CLASSES}/high",
                                    {"preemptionPolicy": "PreemptLowerPriority"})
        assert status == 422 and err["message"].endswith(
            'preemptionPolicy: Invalid value: "PreemptLowerPriority": field is immutable')
        assert (await c.ok("PATCH", f"{CLASSES}/high", {"description": "y"}))[
            "description"] == "y"


async def test_only_one_class_is_the_global_default(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", CLASSES, pc("first", 10, globalDefault=True))
        status, err = await c.post(CLASSES, pc("second", 20, globalDefault=True))
        assert status == 403 and err["reason"] == "Forbidden" and err["message"] == (
            'priorityclasses.scheduling.k8s.io "second" is forbidden: PriorityClass first is '
            "already marked as default. Only one default can exist")
        await c.ok("POST", CLASSES, pc("second", 20))
        status, err = await c.patch(f"{CLASSES}/second", {"globalDefault": True})
        assert status == 403 and "PriorityClass first is already marked" in err["message"]
        await c.ok("PATCH", f"{CLASSES}/first", {"description": "still the default"})
        await c.ok("DELETE", f"{CLASSES}/first")
        assert (await c.ok("PATCH", f"{CLASSES}/second", {"globalDefault": True}))[
            "globalDefault"] is True


async def test_pods_get_their_classes_priority(api, memory_store):
    async with api(memory_store) as c:
        critical = await c.ok("POST", PODS, pod("critical",
                                                priorityClassName="system-cluster-critical"))
        assert (critical["spec"]["priority"], critical["spec"]["preemptionPolicy"]) == (
            2000000000, "PreemptLowerPriority")
        status, err = await c.post(PODS, pod("x", priorityClassName="nonexistent"))
        assert status == 403 and err["reason"] == "Forbidden" and err["message"] == (
            'pods "x" is forbidden: no PriorityClass with name nonexistent was found')
        status, _ = await c.post(PODS, pod("x", priorityClassName="nonexistent"),
                                 dryRun="All")
        assert status == 403
        plain = await c.ok("POST", PODS, pod("plain"))
        assert (plain["spec"]["priority"], plain["spec"]["preemptionPolicy"]) == (
            0, "PreemptLowerPriority")
        assert "priorityClassName" not in plain["spec"]

        await c.ok("POST", CLASSES, pc("high", 1000))
        status, err = await c.post(PODS, pod("y", priorityClassName="high", priority=5))
        assert status == 403 and err["message"] == (
            'pods "y" is forbidden: the integer value of priority (5) must not be provided in '
            "pod spec; priority admission controller computed 1000 from the given "
            "PriorityClass name")
        status, err = await c.post(PODS, pod("y", priorityClassName="high",
                                             preemptionPolicy="Never"))
        assert status == 403 and err["message"] == (
            'pods "y" is forbidden: the string value of PreemptionPolicy (Never) must not be '
            "provided in pod spec; priority admission controller computed PreemptLowerPriority "
            "from the given PriorityClass name")
        same = await c.ok("POST", PODS, pod("y", priorityClassName="high", priority=1000))
        assert same["spec"]["priority"] == 1000

        await c.ok("POST", CLASSES, pc("batch", -10, globalDefault=True,
                                       preemptionPolicy="Never"))
        defaulted = await c.ok("POST", PODS, pod("z"))
        assert (defaulted["spec"]["priorityClassName"], defaulted["spec"]["priority"],
                defaulted["spec"]["preemptionPolicy"]) == ("batch", -10, "Never")


async def test_a_pod_update_without_the_priority_keeps_it(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", PODS, pod("p", priorityClassName="system-node-critical"))
        body = dict(created, metadata=dict(created["metadata"], labels={"app": "changed"}))
        body["spec"] = {k: v for k, v in created["spec"].items()
                        if k not in ("priority", "preemptionPolicy")}
        replaced = await c.ok("PUT", f"{PODS}/p", body)
        assert (replaced["spec"]["priority"], replaced["metadata"]["labels"]) == (
            2000001000, {"app": "changed"})
        status, err = await c.patch(f"{PODS}/p", {"spec": {"priority": 3}})
        assert status == 422 and "spec: Forbidden: pod updates may not change fields" in \
            err["message"]
