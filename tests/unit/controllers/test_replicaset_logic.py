"""ReplicaSet decisions: which pods go first, the status, slow start, expectations."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from netlab.master.controllers import podutil
from netlab.master.controllers.expectations import Expectations
from netlab.master.controllers.replicaset import calculate_status, slow_start_batch

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def pod(name, node="n1", phase="Running", ready=True, ready_at="2024-05-01T11:00:00Z",
        created="2024-05-01T10:00:00Z", restarts=0, labels=None, cost=None):
    meta = {"name": name, "creationTimestamp": created, "labels": labels or {"app": "web"}}
    if cost is not None:
        meta["annotations"] = {podutil.DELETION_COST: str(cost)}
    status = {"phase": phase, "containerStatuses": [{"restartCount": restarts}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                              "lastTransitionTime": ready_at}]}
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


def names(pods):
    return [p["metadata"]["name"] for p in pods]


def test_unscheduled_pending_and_unready_pods_go_first():
    pods = [pod("running"), pod("unready", ready=False), pod("pending", phase="Pending"),
            pod("unscheduled", node=None, phase="Pending")]
    assert names(podutil.pods_to_delete(pods, 4)) == [
        "unscheduled", "pending", "unready", "running"]


def test_pods_on_crowded_nodes_go_before_lonely_ones():
    pods = [pod("alone", node="n1"), pod("crowd-1", node="n2"), pod("crowd-2", node="n2"),
            pod("crowd-3", node="n2")]
    first = podutil.pods_to_delete(pods, 1)
    assert names(first)[0].startswith("crowd")
    # Siblings (another ReplicaSet of the deployment) count toward the crowding too.
    related = [*pods, pod("sibling-1", node="n1"), pod("sibling-2", node="n1"),
               pod("sibling-3", node="n1")]
    assert names(podutil.pods_to_delete(pods, 1, related)) == ["alone"]


def test_recently_ready_restarting_and_newest_pods_go_first():
    assert names(podutil.pods_to_delete([pod("old-ready", ready_at="2024-05-01T09:00:00Z"),
                                         pod("new-ready", ready_at="2024-05-01T11:30:00Z")],
                                        1)) == ["new-ready"]
    assert names(podutil.pods_to_delete([pod("steady"), pod("crashy", restarts=5)], 1)) == [
        "crashy"]
    assert names(podutil.pods_to_delete([pod("older", created="2024-05-01T09:00:00Z"),
                                         pod("newer", created="2024-05-01T09:30:00Z")],
                                        1)) == ["newer"]


def test_deletion_cost_steers_the_choice():
    pods = [pod("cheap", cost=-10), pod("dear", cost=100), pod("plain")]
    assert names(podutil.pods_to_delete(pods, 2)) == ["cheap", "plain"]


def test_status_counts_labels_readiness_and_availability():
    rs = {"metadata": {"generation": 3}, "spec": {
        "minReadySeconds": 600, "template": {"metadata": {"labels": {"app": "web", "v": "1"}}}}}
    pods = [pod("a", labels={"app": "web", "v": "1"}, ready_at="2024-05-01T11:00:00Z"),
            pod("b", labels={"app": "web", "v": "1"}, ready_at="2024-05-01T11:55:00Z"),
            pod("c", ready=False)]
    status = calculate_status(rs, pods, NOW)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                      "availableReplicas": 1, "observedGeneration": 3}
    assert podutil.seconds_until_available(pods[1], 600, NOW) == 300
    failed = calculate_status(rs, [], NOW, "quota exceeded", diff=-3)
    cond = failed["conditions"][0]
    assert (cond["type"], cond["reason"], cond["message"]) == (
        "ReplicaFailure", "FailedCreate", "quota exceeded")
    assert "readyReplicas" not in failed and failed["replicas"] == 0


def test_active_and_available_predicates():
    gone = pod("x")
    gone["metadata"]["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    assert not podutil.is_active(gone)
    assert not podutil.is_active(pod("done", phase="Succeeded"))
    assert podutil.is_active(pod("pending", phase="Pending", ready=False))
    assert podutil.is_available(pod("r"), 0, NOW)
    assert not podutil.is_available(pod("r", ready_at="2024-05-01T11:59:59Z"), 5, NOW)


def test_slow_start_doubles_batches_and_stops_at_the_first_failure():
    calls: list[int] = []
    batch_sizes: list[int] = []

    async def run(fail_at: int):
        calls.clear()

        async def create() -> None:
            calls.append(len(calls))
            if len(calls) == fail_at:
                raise RuntimeError("quota")

        return await slow_start_batch(20, 1, create)

    assert asyncio.run(run(0)) == (20, 20, None)
    done, attempted, error = asyncio.run(run(5))  # batches 1, 2, 4: the 3rd batch fails
    assert (done, attempted, str(error)) == (6, 7, "quota")
    del batch_sizes


def test_expectations_hold_until_observed_or_expired():
    clock = [0.0]
    exp = Expectations(timeout=10, clock=lambda: clock[0])
    assert exp.satisfied("rs")
    exp.expect_creations("rs", 2)
    assert not exp.satisfied("rs")
    exp.creation_observed("rs")
    assert exp.pending("rs") == (1, 0)
    exp.creation_observed("rs")
    assert exp.satisfied("rs")
    exp.expect_deletions("rs", ["ns/a", "ns/b"])
    exp.deletion_observed("rs", "ns/a")
    exp.deletion_observed("rs", "ns/other")  # not ours: changes nothing
    assert exp.pending("rs") == (0, 1) and not exp.satisfied("rs")
    clock[0] = 11.0  # a lost event must not wedge the controller
    assert exp.satisfied("rs")
