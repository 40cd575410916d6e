"""CronJob and PodDisruptionBudget through the API server, and the pods/eviction subresource."""

from __future__ import annotations

from apiserver_kit import PODS, pod

from netlab.api import validation

CRONJOBS = "/apis/batch/v1/namespaces/default/cronjobs"
PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def cronjob(name: str, schedule: str = "*/1 * * * *", **spec: object) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}, **spec}}


def pdb(name: str, **spec: object) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "test"}}, **spec}}


def _causes(err: dict) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in err["details"]["causes"]]


async def test_cronjob_defaults_and_columns(api, memory_store):
    async with api(memory_store) as c:
        created = await c.ok("POST", CRONJOBS, cronjob("cj", timeZone="Europe/Paris"))
        spec = created["spec"]
        assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
                spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
        assert created["metadata"]["generation"] == 1
        table = await c.ok("GET", CRONJOBS, headers={"Accept": TABLE})
        assert [col["name"] for col in table["columnDefinitions"] if col["priority"] == 0] == [
            "Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"]
        assert table["rows"][0]["cells"][:6] == ["cj", "*/1 * * * *", "Europe/Paris", "False",
                                                  0, "<none>"]


async def test_cronjob_schedule_and_time_zone_are_validated(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.post(CRONJOBS, cronjob("a", "*/1 * * *"))
        assert status == 422
        assert _causes(err) == [("spec.schedule", 'Invalid value: "*/1 * * *": expected '
                                 'exactly 5 fields, found 4: [*/1 * * *]')]
        status, err = await c.post(CRONJOBS, cronjob("b", "0 25 * * *"))
        assert _causes(err) == [("spec.schedule", 'Invalid value: "0 25 * * *": end of range '
                                 '(25) above maximum (23): 25')]
        status, err = await c.post(CRONJOBS, cronjob("c", "CRON_TZ=UTC 0 0 * * *"))
        assert ("spec.schedule", 'Invalid value: "CRON_TZ=UTC 0 0 * * *": cannot use TZ or '
                'CRON_TZ in schedule, use timeZone field instead') in _causes(err)
        status, err = await c.post(CRONJOBS, cronjob("d", timeZone="Mars/Olympus"))
        assert status == 422
        assert _causes(err) == [("spec.timeZone", 'Invalid value: "Mars/Olympus": unknown '
                                 'time zone Mars/Olympus')]
        status, err = await c.post(CRONJOBS, cronjob("e", concurrencyPolicy="Sometimes"))
        assert _causes(err)[0][0] == "spec.concurrencyPolicy"
        status, _ = await c.post(CRONJOBS, cronjob("f", "@every 1h30m"))
        assert status == 201
        status, err = await c.post(CRONJOBS, cronjob("g", "@fortnightly"))
        assert _causes(err) == [("spec.schedule", 'Invalid value: "@fortnightly": '
                                 'unrecognized descriptor: @fortnightly')]


async def test_pdb_validation_and_columns(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.post(PDBS, pdb("both", minAvailable=1, maxUnavailable=1))
        assert status == 422 and _causes(err)[0][0] == "spec"
        assert "minAvailable and maxUnavailable cannot be both set" in err["message"]
        status, err = await c.post(PDBS, pdb("pct", maxUnavailable="150%"))
        assert _causes(err) == [("spec.maxUnavailable",
                                 'Invalid value: "150%": must not be greater than 100%')]
        created = await c.ok("POST", PDBS, pdb("ok", minAvailable="50%"))
        assert created["status"]["disruptionsAllowed"] == 0
        table = await c.ok("GET", PDBS, headers={"Accept": TABLE})
        assert [col["name"] for col in table["columnDefinitions"]] == [
            "Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"]
        assert table["rows"][0]["cells"][:4] == ["ok", "50%", "N/A", 0]


async def _running_ready(c, name: str) -> None:
    await c.ok("POST", PODS, pod(name, nodeName="n1"))
    current = await c.ok("GET", f"{PODS}/{name}")
    current["status"] = {"phase": "Running", "conditions": [{"type": "Ready",
                                                             "status": "True"}]}
    await c.ok("PUT", f"{PODS}/{name}/status", current)


def _eviction(name: str, version: str = "policy/v1") -> dict:
    return {"apiVersion": version, "kind": "Eviction", "metadata": {"name": name}}


async def _set_pdb_status(c, name: str, allowed: int) -> None:
    current = await c.ok("GET", f"{PDBS}/{name}")
    current["status"] = {"disruptionsAllowed": allowed, "currentHealthy": 2,
                         "desiredHealthy": 2 - allowed, "expectedPods": 2,
                         "observedGeneration": current["metadata"]["generation"]}
    await c.ok("PUT", f"{PDBS}/{name}/status", current)


async def test_eviction_honours_the_budget(api, memory_store):
    async with api(memory_store) as c:
        await _running_ready(c, "a")
        await _running_ready(c, "b")
        await c.ok("POST", PDBS, pdb("budget", minAvailable=1))
        # Not yet processed by the disruption controller for its generation: refused.
        status, err = await c.post(f"{PODS}/a/eviction", _eviction("a"))
        assert status == 429 and err["reason"] == "TooManyRequests"
        await _set_pdb_status(c, "budget", 1)
        status, out = await c.post(f"{PODS}/a/eviction", _eviction("a"))
        assert status == 201 and out["status"] == "Success"
        evicted = await c.ok("GET", f"{PODS}/a")
        assert evicted["metadata"]["deletionTimestamp"]  # graceful: the kubelet finishes it
        budget = await c.ok("GET", f"{PDBS}/budget")
        assert budget["status"]["disruptionsAllowed"] == 0
        assert list(budget["status"]["disruptedPods"]) == ["a"]
        assert {"type": "DisruptionAllowed", "status": "False",
                "reason": "InsufficientPods"}.items() <= budget["status"]["conditions"][0].items()
        status, err = await c.post(f"{PODS}/b/eviction", _eviction("b", "policy/v1beta1"))
        assert status == 429
        assert err["message"] == ("Cannot evict pod as it would violate the pod's disruption "
                                  "budget.")
        assert err["details"]["causes"] == [{
            "reason": "DisruptionBudget",
            "message": "The disruption budget budget needs 1 healthy pods and has 2 currently"}]
        assert (await c.ok("GET", f"{PODS}/b"))["metadata"].get("deletionTimestamp") is None


async def test_eviction_without_budget_or_of_pending_pods(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", PODS, pod("pending"))
        await c.ok("POST", PDBS, pdb("budget", minAvailable=5))
        # A pending pod never counts against a budget: it goes at once.
        status, _ = await c.post(f"{PODS}/pending/eviction", _eviction("pending"))
        assert status == 201
        status, _ = await c.get(f"{PODS}/pending")
        assert status == 404
        await c.ok("POST", PODS, pod("free", labels={"app": "other"}, nodeName="n1"))
        status, _ = await c.post(f"{PODS}/free/eviction", _eviction("free"))
        assert status == 201
        status, _ = await c.post(f"{PODS}/free/eviction", _eviction("other"))
        assert status == 400
        status, _ = await c.post(f"{PODS}/missing/eviction", _eviction("missing"))
        assert status == 404



def test_a_tz_prefix_may_stay_on_update_only_without_time_zone():
    # Objects stored before the rule may keep their CRON_TZ prefix (ValidateCronJobUpdate).
    legacy = {**cronjob("legacy", "CRON_TZ=UTC 0 0 * * *"),
              "metadata": {"name": "legacy", "namespace": "default"}}
    legacy["spec"]["concurrencyPolicy"] = "Allow"
    assert validation.validate_update("CronJob", legacy, legacy, True) == []
    both = {**legacy, "spec": {**legacy["spec"], "timeZone": "UTC"}}
    assert [e.detail for e in validation.validate_update("CronJob", both, legacy, True)] == [
        "cannot use both timeZone field and TZ or CRON_TZ in schedule"]
    plain = {**legacy, "spec": {**legacy["spec"], "schedule": "0 0 * * *"}}
    assert [e.detail for e in validation.validate_update("CronJob", legacy, plain, True)] == [
        "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"]
