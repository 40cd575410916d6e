"""The CronJob and disruption controllers against a real API server in-process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from cmkit import FakeKubelet, cluster, deployment, eventually

from netlab.api.objects import now, timestamp
from netlab.client import APIError
from netlab.master.controllers.cronjob import CronJobController

EVICTION = {"apiVersion": "policy/v1", "kind": "Eviction"}


async def _evict(client, name: str) -> int:
    try:
        await client.request("POST", f"/api/v1/namespaces/default/pods/{name}/eviction",
                             body={**EVICTION, "metadata": {"name": name}})
    except APIError as err:
        return err.code
    return 201


async def _pdb_status(client, name: str, **want: int):
    pdb = await client.get("poddisruptionbudgets", name, "default")
    status = pdb.get("status") or {}
    return status if all(status.get(k) == v for k, v in want.items()) else None


async def test_disruption_budget_status_and_evictions() -> None:
    async with cluster(controllers=["deployment", "replicaset", "disruption"]) as c, \
            FakeKubelet(c.client):
        await c.client.create(deployment("web", 3))
        await c.client.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                               "metadata": {"name": "web", "namespace": "default"},
                               "spec": {"minAvailable": 2,
                                        "selector": {"matchLabels": {"app": "web"}}}})
        await c.client.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                               "metadata": {"name": "pct", "namespace": "default"},
                               "spec": {"maxUnavailable": "34%",
                                        "selector": {"matchLabels": {"app": "web"}}}})
        status = await eventually(lambda: _pdb_status(c.client, "web", currentHealthy=3,
                                                      disruptionsAllowed=1),
                                  what="the budget to see 3 healthy pods")
        assert (status["desiredHealthy"], status["expectedPods"]) == (2, 3)
        assert status["conditions"][0]["reason"] == "SufficientPods"
        # maxUnavailable 34% of the Deployment's 3 replicas rounds up to 2.
        await eventually(lambda: _pdb_status(c.client, "pct", expectedPods=3, desiredHealthy=1,
                                             disruptionsAllowed=2), what="the % budget")
        await c.client.delete("poddisruptionbudgets", "pct", "default")
        pods = await c.pods(selector="app=web")
        assert await _evict(c.client, pods[0]["metadata"]["name"]) == 201
        assert await _evict(c.client, pods[1]["metadata"]["name"]) == 429
        # The evicted pod's replacement becomes ready and the budget allows one again.
        await eventually(lambda: _pdb_status(c.client, "web", currentHealthy=3,
                                             disruptionsAllowed=1),
                         what="the replacement to restore the budget")


async def test_cronjob_runs_on_an_injected_clock_and_trims_history() -> None:
    async with cluster(controllers=["cronjob"]) as c:
        ctrl = next(x for x in c.manager.controllers if isinstance(x, CronJobController))
        offset = [timedelta(seconds=61)]
        ctrl.clock = lambda: now() + offset[0]
        await c.client.create({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {
            "name": "tick", "namespace": "default"}, "spec": {
            "schedule": "*/1 * * * *", "successfulJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "netlab/echo"}]}}}}}})

        async def jobs() -> list[dict]:
            return (await c.client.list("jobs", "default"))["items"]

        first = (await eventually(jobs, what="the first job"))[0]

        async def cronjob_with(check: Callable[[dict], bool]) -> dict | None:
            cj = await c.client.get("cronjobs", "tick", "default")
            return cj if check(cj.get("status") or {}) else None

        # The controller creates the Job, then writes the CronJob's status: two writes.
        cj = await eventually(lambda: cronjob_with(lambda st: bool(st.get("active"))),
                              what="the first job in the CronJob's status")
        assert [r["name"] for r in cj["status"]["active"]] == [first["metadata"]["name"]]
        scheduled = datetime.fromisoformat(first["metadata"]["annotations"][
            "batch.kubernetes.io/cronjob-scheduled-timestamp"].replace("Z", "+00:00"))
        assert first["metadata"]["name"] == f"tick-{int(scheduled.timestamp()) // 60}"
        assert first["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]

        async def complete(job: dict) -> None:
            job = await c.client.get("jobs", job["metadata"]["name"], "default")
            job["status"] = {"startTime": timestamp(), "completionTime": timestamp(),
                             "succeeded": 1, "conditions": [{"type": "Complete",
                                                             "status": "True"}]}
            await c.client.update(job, subresource="status")

        await complete(first)
        offset[0] += timedelta(seconds=60)
        # Wake the controller now rather than at the real next minute.
        await c.client.patch("cronjobs", "tick", {"metadata": {"labels": {"poke": "1"}}},
                             "default")
        second = await eventually(lambda: _other_job(jobs, first), what="the second job")
        await complete(second)
        await eventually(lambda: _only(jobs, second), what="the first job to be trimmed")
        await eventually(lambda: cronjob_with(
            lambda st: bool(st.get("lastSuccessfulTime")) and not st.get("active")),
            what="the CronJob's status: a last success and nothing active")


async def _other_job(jobs, first: dict):
    return next((j for j in await jobs() if j["metadata"]["uid"] != first["metadata"]["uid"]),
                None)


async def _only(jobs, job: dict) -> bool:
    return [j["metadata"]["uid"] for j in await jobs()] == [job["metadata"]["uid"]]


async def test_a_run_created_before_a_lost_status_write_is_adopted_not_duplicated() -> None:
    async with cluster(controllers=["cronjob"]) as c:
        ctrl = next(x for x in c.manager.controllers if isinstance(x, CronJobController))
        # Behind real time: nothing is due until the test moves the clock.
        offset = [timedelta(seconds=-30)]
        ctrl.clock = lambda: now() + offset[0]
        cj = await c.client.create({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {
            "name": "once", "namespace": "default"}, "spec": {
            "schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "netlab/echo"}]}}}}}})
        created = datetime.fromisoformat(cj["metadata"]["creationTimestamp"].replace(
            "Z", "+00:00"))
        due = created.replace(second=0) + timedelta(minutes=1)
        name = f"once-{int(due.timestamp()) // 60}"
        # The Job of the next run exists already, as if the controller had died right after
        # creating it.
        await c.client.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": name, "namespace": "default", "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "CronJob", "name": "once",
                "uid": cj["metadata"]["uid"], "controller": True}]},
            "spec": cj["spec"]["jobTemplate"]["spec"]})
        offset[0] = due - now() + timedelta(seconds=1)
        await c.client.patch("cronjobs", "once", {"metadata": {"labels": {"poke": "1"}}},
                             "default")

        async def adopted():
            status = (await c.client.get("cronjobs", "once", "default")).get("status") or {}
            return [r["name"] for r in status.get("active") or []] == [name] and status

        status = await eventually(adopted, what="the existing run to be adopted")
        assert status["lastScheduleTime"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert [j["metadata"]["name"] for j in
                (await c.client.list("jobs", "default"))["items"]] == [name]
