"""Deployment math: fenceposts, rolling-update steps, proportional scaling, revisions, status."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from netlab.api.views import name_of
from netlab.master.controllers import rollout

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def dep(replicas=10, surge="25%", unavailable="25%", strategy="RollingUpdate", **extra):
    spec = {"replicas": replicas, "strategy": {"type": strategy},
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "v1"}]}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, **extra}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "web", "namespace": "default", "uid": "d-uid",
                         "generation": 1}, "spec": spec, "status": {}}


def rs(name, replicas, available=None, created="2024-05-01T10:00:00Z", revision=None,
       image="v1", annotations=None):
    ann = dict(annotations or {})
    if revision is not None:
        ann[rollout.REVISION] = str(revision)
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": ann,
                         "generation": 1},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"labels": {"app": "web", rollout.HASH_LABEL: name}},
                "spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {"replicas": replicas, "availableReplicas":
                       replicas if available is None else available,
                       "readyReplicas": replicas if available is None else available,
                       "observedGeneration": 1}}


@pytest.mark.parametrize("replicas,surge,unavailable,expected", [
    (10, "25%", "25%", (3, 2)),       # surge rounds up, unavailable down
    (4, 1, 1, (1, 1)),
    (4, 0, 0, (0, 1)),                # both zero: one may be unavailable, to progress
    (3, "0%", "10%", (0, 1)),          # 10% of 3 rounds down to 0, then the same rule
    (10, "50%", 0, (5, 0)),
])
def test_fenceposts(replicas, surge, unavailable, expected):
    assert rollout.fenceposts(dep(replicas, surge, unavailable)) == expected


def test_max_unavailable_is_capped_and_zero_for_recreate():
    assert rollout.max_unavailable(dep(2, 0, 5)) == 2
    assert rollout.max_unavailable(dep(0, 1, 1)) == 0
    assert rollout.max_unavailable(dep(5, strategy="Recreate")) == 0


def test_new_replica_set_growth_within_max_surge():
    d = dep(10)  # surge 3
    old, new = rs("old", 10), rs("new", 0)
    assert rollout.new_rs_replicas(d, [old, new], new) == 3
    assert rollout.new_rs_replicas(d, [rs("old", 10), rs("new", 3)], rs("new", 3)) == 3
    assert rollout.new_rs_replicas(d, [rs("old", 5), rs("new", 3)], rs("new", 3)) == 8
    assert rollout.new_rs_replicas(d, [rs("old", 0), rs("new", 9)], rs("new", 9)) == 10
    assert rollout.new_rs_replicas(dep(5, strategy="Recreate"), [], rs("new", 0)) == 5


def test_old_sets_shrink_only_as_far_as_availability_allows():
    d = dep(10)  # surge 3, unavailable 2: at least 8 available
    new = rs("new", 3, available=0)
    plan = rollout.old_scale_down(d, [rs("old", 10)], new)
    assert plan == {"old": 8}  # 13 - 8 - 3 unavailable new = 2
    new = rs("new", 3, available=3)
    assert rollout.old_scale_down(d, [rs("old", 8)], new) == {"old": 5}


def test_unhealthy_old_pods_go_first_and_oldest_sets_first():
    d = dep(10)
    sets = [rs("a", 4, available=1, created="2024-05-01T09:00:00Z"),
            rs("b", 6, available=6, created="2024-05-01T10:00:00Z")]
    plan = rollout.old_scale_down(d, sets, rs("new", 3, available=3))
    # Budget 13 - 8 = 5: the 3 unhealthy pods of "a" first, then 2 healthy ones (10
    # available, 8 needed), the oldest set first.
    assert plan == {"a": 0, "b": 5}


def test_a_stale_status_never_cuts_twice():
    """Right after old went 10 -> 8 its status still says 10 available: no second cut."""
    d = dep(10)
    stale = rs("old", 8)
    stale["status"]["availableReplicas"] = 10
    assert rollout.old_scale_down(d, [stale], rs("new", 3, available=0)) == {}


@pytest.mark.parametrize("replicas,surge,unavailable", [
    (10, "25%", "25%"), (4, 1, 1), (5, 0, 1), (3, 2, 0), (1, 1, 0), (7, "30%", "10%")])
def test_a_whole_rollout_respects_both_bounds(replicas, surge, unavailable):
    """Drive a rollout with the pure steps; new pods become available one step later."""
    d = dep(replicas, surge, unavailable)
    max_surge, max_unavail = rollout.max_surge(d), rollout.max_unavailable(d)
    old, new = rs("old", replicas), rs("new", 0, available=0)
    for _ in range(200):
        # pods of the last step become available now
        new["status"]["availableReplicas"] = new["spec"]["replicas"]
        new["status"]["replicas"] = new["spec"]["replicas"]
        old["status"]["availableReplicas"] = old["spec"]["replicas"]
        old["status"]["replicas"] = old["spec"]["replicas"]
        if new["spec"]["replicas"] == replicas and old["spec"]["replicas"] == 0:
            break
        target = rollout.new_rs_replicas(d, [old, new], new)
        if target != new["spec"]["replicas"]:
            new["spec"]["replicas"] = target  # scaled up: not available yet
        else:
            for name, size in rollout.old_scale_down(d, [old], new).items():
                assert name == "old"
                old["spec"]["replicas"] = size
                old["status"]["availableReplicas"] = min(old["status"]["availableReplicas"],
                                                         size)
        total = old["spec"]["replicas"] + new["spec"]["replicas"]
        available = old["status"]["availableReplicas"] + min(
            new["status"]["availableReplicas"], new["spec"]["replicas"])
        assert total <= replicas + max_surge
        assert available >= replicas - max_unavail
    else:
        pytest.fail("the rollout did not finish")


def test_proportional_scaling_mid_rollout():
    d = dep(15, 3, 2)  # scaled from 10 (max 13 = 10 + 3) to 15: allowed 18
    sized = {rollout.MAX_REPLICAS: "13"}
    old = rs("old", 8, created="2024-05-01T09:00:00Z", annotations=sized)
    new = rs("new", 5, created="2024-05-01T10:00:00Z", annotations=sized)
    # 5 more allowed (18 - 13): round(8 * 18 / 13) = 11 and round(5 * 18 / 13) = 7.
    assert rollout.proportional_scale(d, new, [old]) == {"old": 11, "new": 7}
    # Back down to 5 (allowed 8): the older set gives first, the largest takes the rest.
    assert rollout.proportional_scale(dep(5, 3, 2), rs("new", 7, annotations={
        rollout.MAX_REPLICAS: "18"}), [rs("old", 11, created="2024-05-01T09:00:00Z",
                                          annotations={rollout.MAX_REPLICAS: "18"})]) == \
        {"old": 5, "new": 3}


def test_scaling_a_settled_deployment_touches_only_its_active_set():
    d = dep(7)
    assert rollout.proportional_scale(d, rs("new", 3), [rs("old", 0)]) == {"new": 7}
    assert rollout.proportional_scale(dep(3), rs("new", 3), [rs("old", 0)]) == {}


def test_scaling_event_detected_from_the_desired_annotation():
    d = dep(5)
    sized = {rollout.DESIRED_REPLICAS: "3"}
    assert rollout.is_scaling_event(d, [rs("a", 3, annotations=sized)])
    assert not rollout.is_scaling_event(d, [rs("a", 5, annotations={
        rollout.DESIRED_REPLICAS: "5"})])
    assert not rollout.is_scaling_event(d, [rs("a", 0, annotations=sized)])  # inactive


def test_template_hash_is_stable_safe_and_salted():
    template = dep()["spec"]["template"]
    h = rollout.template_hash(template)
    assert h == rollout.template_hash(template)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    assert rollout.template_hash(template, 1) != h
    hashed = {"metadata": {"labels": {"app": "web", rollout.HASH_LABEL: h}},
              "spec": template["spec"]}
    assert rollout.template_hash(hashed) == h
    assert rollout.equal_ignore_hash(hashed, template)
    other = {**template, "spec": {"containers": [{"name": "c", "image": "v2"}]}}
    assert not rollout.equal_ignore_hash(other, template)


def test_revisions_and_history_on_rollback():
    d = dep()
    d["metadata"]["annotations"] = {"team": "a", rollout.LAST_APPLIED: "{}"}
    new = rollout.new_replica_set(d, "abc", 0, 1, {"uid": "d-uid"})
    ann = new["metadata"]["annotations"]
    assert ann[rollout.REVISION] == "1" and ann["team"] == "a"
    assert rollout.LAST_APPLIED not in ann
    assert ann[rollout.DESIRED_REPLICAS] == "10" and ann[rollout.MAX_REPLICAS] == "13"
    assert new["metadata"]["name"] == "web-abc"
    assert new["spec"]["selector"]["matchLabels"][rollout.HASH_LABEL] == "abc"
    # Rolled back to later: revision 1 becomes 4 and remembers 1.
    assert rollout.set_new_rs_annotations(d, new, 4, exists=True)
    assert ann[rollout.REVISION] == "4" and ann[rollout.REVISION_HISTORY] == "1"
    assert not rollout.set_new_rs_annotations(d, new, 4, exists=True)
    assert rollout.max_revision([new, rs("x", 0, revision=2)]) == 4


def test_status_and_conditions():
    d = dep(4, 1, 1)
    d["metadata"]["generation"] = 2
    sets = [rs("old", 1, available=1), rs("new", 3, available=2)]
    status = rollout.rollout_status(d, sets, sets[1], NOW)
    assert status["replicas"] == 4 and status["updatedReplicas"] == 3
    assert status["availableReplicas"] == 3 and status["unavailableReplicas"] == 1
    assert status["observedGeneration"] == 2
    available = rollout.condition(status, "Available")
    assert available["status"] == "True"  # 3 >= 4 - 1
    assert rollout.condition(status, "Progressing")["reason"] == rollout.RS_UPDATED
    d["status"] = status
    done = [rs("old", 0, available=0), rs("new", 4, available=4)]
    done[0]["status"]["replicas"] = 0
    final = rollout.rollout_status(d, done, done[1], NOW)
    assert rollout.is_complete(d, final)
    assert rollout.condition(final, "Progressing")["reason"] == rollout.NEW_RS_AVAILABLE


def test_progress_deadline():
    d = dep(2, progressDeadlineSeconds=60)
    old = (NOW - timedelta(seconds=61)).strftime("%Y-%m-%dT%H:%M:%SZ")
    d["status"] = {"replicas": 2, "updatedReplicas": 2, "conditions": [{
        "type": "Progressing", "status": "True", "reason": rollout.RS_UPDATED,
        "lastUpdateTime": old, "lastTransitionTime": old}]}
    stuck = [rs("new", 2, available=0)]
    stuck[0]["status"]["replicas"] = 2
    status = rollout.rollout_status(d, stuck, stuck[0], NOW)
    cond = rollout.condition(status, "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", rollout.TIMED_OUT)


def test_history_limit_cleans_only_empty_old_sets():
    d = dep(revisionHistoryLimit=1)
    old = [rs("r1", 0, revision=1), rs("r2", 0, revision=2), rs("r3", 1, revision=3)]
    for s in old[:2]:
        s["status"]["replicas"] = 0
    assert [name_of(s) for s in rollout.cleanup_candidates(d, old)] == ["r1", "r2"]
    old[0]["status"]["replicas"] = 1  # still has pods: kept
    assert [name_of(s) for s in rollout.cleanup_candidates(d, old)] == ["r2"]


def test_templates_compare_semantically():
    """kubectl rollout undo sends the template back with ``creationTimestamp: null`` and
    empty objects: still the same template (and the same hash)."""
    template = dep()["spec"]["template"]
    echoed = {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c", "image": "v1", "resources": {},
                                       "env": []}]}}
    assert rollout.equal_ignore_hash(echoed, template)
    assert rollout.template_hash(echoed) == rollout.template_hash(template)
