"""DaemonSet and StatefulSet decisions: placement, ordering, rolling updates, revisions."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from netlab.master.controllers import history
from netlab.master.controllers import statefulset_plan as sp
from netlab.master.controllers.daemonset import plan
from netlab.master.controllers.daemonset_placement import daemon_pod, should_run, target_node

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node(name, taints=(), labels=None, ready="True"):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": list(taints)},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def ds(tolerations=None, node_selector=None, affinity=None, max_unavailable=1, generation=1):
    spec = {"containers": [{"name": "c", "image": "netlab/echo"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if affinity is not None:
        spec["affinity"] = affinity
    return {"metadata": {"name": "agent", "namespace": "default", "uid": "u1",
                         "generation": generation},
            "spec": {"selector": {"matchLabels": {"app": "a"}},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": max_unavailable}},
                     "template": {"metadata": {"labels": {"app": "a"}}, "spec": spec}}}


# --- placement --------------------------------------------------------------------------------


def test_control_plane_taint_keeps_the_daemon_off_unless_tolerated():
    cp = node("control-plane", [CP_TAINT])
    assert should_run(ds(), cp) == (False, True)
    assert should_run(ds(), node("worker1")) == (True, True)
    tolerating = ds(tolerations=[{"key": CP_TAINT["key"], "operator": "Exists",
                                  "effect": "NoSchedule"}])
    assert should_run(tolerating, cp) == (True, True)


def test_untolerated_no_execute_taint_evicts_and_no_schedule_only_blocks_new_pods():
    tainted = node("w", [{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}])
    assert should_run(ds(), tainted) == (False, False)
    equal = ds(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}])
    assert should_run(equal, tainted) == (True, True)
    other_value = ds(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "cpu"}])
    assert should_run(other_value, tainted) == (False, False)


def test_node_selector_and_required_affinity_select_nodes():
    selective = ds(node_selector={"disk": "ssd"})
    assert should_run(selective, node("a", labels={"disk": "ssd"})) == (True, True)
    assert should_run(selective, node("b", labels={"disk": "hdd"})) == (False, False)
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["x"]}]}]}}}
    assert should_run(ds(affinity=affinity), node("a", labels={"zone": "x"}))[0]
    assert not should_run(ds(affinity=affinity), node("a", labels={"zone": "y"}))[0]


def test_not_ready_node_gets_no_new_pod_but_keeps_its_daemon():
    assert should_run(ds(), node("w", ready="False")) == (False, True)
    assert should_run(ds(), node("w", ready="Unknown")) == (False, True)


def test_cordoned_node_keeps_running_daemons_as_upstream():
    cordoned = node("w", [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    assert should_run(ds(), cordoned) == (True, True)


def test_daemon_pod_is_pinned_by_match_fields_and_tolerates_node_problems():
    template = daemon_pod(ds(tolerations=[{"key": "x", "operator": "Exists"}]), "worker2", "h1")
    spec = template["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["worker2"]}]}]}
    assert {"key": "x", "operator": "Exists"} in spec["tolerations"]
    for key, effect in (("node.kubernetes.io/not-ready", "NoExecute"),
                        ("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/unschedulable", "NoSchedule")):
        assert {"key": key, "operator": "Exists", "effect": effect} in spec["tolerations"]
    assert not any("tolerationSeconds" in t for t in spec["tolerations"])
    assert template["metadata"]["labels"] == {"app": "a", "controller-revision-hash": "h1",
                                              "pod-template-generation": "1"}
    assert target_node({"spec": spec}) == "worker2"


# --- the DaemonSet sync -----------------------------------------------------------------------


def dpod(name, node_name, hash_value="h1", ready=True, phase="Running",
         created="2024-05-01T10:00:00Z"):
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": "2024-05-01T11:00:00Z"}]
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "labels": {"app": "a", "controller-revision-hash": hash_value}},
            "spec": {"nodeName": node_name},
            "status": {"phase": phase, "conditions": conditions}}


NODES = [node("control-plane", [CP_TAINT]), node("worker1"), node("worker2")]


def test_plan_creates_one_pod_per_eligible_node():
    step = plan(ds(), NODES, [], "h1", NOW)
    assert step.create == ["worker1", "worker2"] and step.delete == []
    assert step.status["desiredNumberScheduled"] == 2
    assert step.status["currentNumberScheduled"] == 0


def test_plan_keeps_one_pod_per_node_and_removes_pods_of_vanished_nodes():
    pods = [dpod("a", "worker1", created="2024-05-01T10:00:00Z"),
            dpod("b", "worker1", created="2024-05-01T10:05:00Z"),
            dpod("c", "worker2"), dpod("d", "gone")]
    step = plan(ds(), NODES, pods, "h1", NOW)
    assert step.create == []
    assert sorted(p["metadata"]["name"] for p in step.delete) == ["b", "d"]
    assert step.status == {"currentNumberScheduled": 2, "numberMisscheduled": 0,
                           "desiredNumberScheduled": 2, "numberReady": 2, "observedGeneration": 1,
                           "updatedNumberScheduled": 2, "numberAvailable": 2}


def test_rolling_update_replaces_within_max_unavailable():
    pods = [dpod("a", "worker1", "old"), dpod("b", "worker2", "old")]
    step = plan(ds(), NODES, pods, "new", NOW)
    assert [p["metadata"]["name"] for p in step.delete] == ["a"]
    assert "updatedNumberScheduled" not in step.status  # zero, omitted
    both = plan(ds(max_unavailable="100%"), NODES, pods, "new", NOW)
    assert len(both.delete) == 2
    # A node still waiting for its new pod uses up the budget.
    waiting = plan(ds(), NODES, [dpod("b", "worker2", "old")], "new", NOW)
    assert waiting.create == ["worker1"] and waiting.delete == []


def test_rolling_update_deletes_unavailable_old_pods_regardless_of_budget():
    pods = [dpod("a", "worker1", "old", ready=False), dpod("b", "worker2", "old")]
    step = plan(ds(), NODES, pods, "new", NOW)
    assert [p["metadata"]["name"] for p in step.delete] == ["a"]


def test_on_delete_leaves_old_pods_and_failed_pods_are_replaced():
    on_delete = ds()
    on_delete["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert plan(on_delete, NODES, [dpod("a", "worker1", "old"), dpod("b", "worker2", "old")],
                "new", NOW).delete == []
    step = plan(ds(), NODES, [dpod("a", "worker1", phase="Failed"), dpod("b", "worker2")],
                "h1", NOW)
    assert [p["metadata"]["name"] for p in step.delete] == ["a"]


def test_misscheduled_pods_are_counted_and_untolerated_no_execute_removes_them():
    pods = [dpod("a", "control-plane"), dpod("b", "worker1"), dpod("c", "worker2")]
    step = plan(ds(), NODES, pods, "h1", NOW)
    assert step.status["numberMisscheduled"] == 1 and step.delete == []
    evicting = [node("worker1", [{"key": "k", "effect": "NoExecute"}]), node("worker2")]
    step = plan(ds(), evicting, pods[1:], "h1", NOW)
    assert [p["metadata"]["name"] for p in step.delete] == ["b"]


# --- StatefulSet ordering ---------------------------------------------------------------------


def sts(replicas=3, policy="OrderedReady", strategy=None):
    return {"metadata": {"name": "db", "namespace": "default", "uid": "s1", "generation": 1},
            "spec": {"replicas": replicas, "podManagementPolicy": policy, "serviceName": "db",
                     "selector": {"matchLabels": {"app": "db"}},
                     "updateStrategy": strategy or {"type": "RollingUpdate",
                                                    "rollingUpdate": {"partition": 0}},
                     "template": {"metadata": {"labels": {"app": "db"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def spod(ordinal, ready=True, revision="r1", terminating=False, phase="Running"):
    meta = {"name": f"db-{ordinal}", "labels": {"controller-revision-hash": revision}}
    if terminating:
        meta["deletionTimestamp"] = "2024-05-01T11:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def names(pods):
    return [p["metadata"]["name"] for p in pods]


def test_ordered_ready_creates_the_lowest_missing_ordinal_only():
    assert sp.next_step(sts(), [], "r1").create == [0]
    assert sp.next_step(sts(), [spod(0)], "r1").create == [1]
    waiting = sp.next_step(sts(), [spod(0, ready=False)], "r1")
    assert waiting.create == [] and "db-0" in waiting.waiting
    assert sp.next_step(sts(), [spod(0), spod(1)], "r1").create == [2]


def test_parallel_creates_every_missing_ordinal_at_once():
    assert sp.next_step(sts(policy="Parallel"), [spod(1, ready=False)], "r1").create == [0, 2]


def test_scale_down_removes_the_highest_ordinal_first_and_waits():
    pods = [spod(0), spod(1), spod(2)]
    assert names(sp.next_step(sts(replicas=1), pods, "r1").delete) == ["db-2"]
    step = sp.next_step(sts(replicas=1), [spod(0), spod(1), spod(2, terminating=True)], "r1")
    assert step.delete == [] and "db-2" in step.waiting
    assert names(sp.next_step(sts(replicas=1), [spod(0), spod(1)], "r1").delete) == ["db-1"]
    parallel = sp.next_step(sts(replicas=1, policy="Parallel"), pods, "r1")
    assert names(parallel.delete) == ["db-2", "db-1"]


def test_failed_pod_is_replaced():
    assert names(sp.next_step(sts(), [spod(0, phase="Failed")], "r1").delete) == ["db-0"]


def test_rolling_update_goes_from_the_highest_ordinal_down_to_the_partition():
    pods = [spod(0), spod(1), spod(2)]
    assert names(sp.next_step(sts(), pods, "r2").delete) == ["db-2"]
    pods[2] = spod(2, revision="r2", ready=False)
    assert sp.next_step(sts(), pods, "r2").delete == []
    pods[2] = spod(2, revision="r2")
    assert names(sp.next_step(sts(), pods, "r2").delete) == ["db-1"]
    partitioned = sts(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    assert sp.next_step(partitioned, pods, "r2").delete == []
    on_delete = sts(strategy={"type": "OnDelete"})
    assert sp.next_step(on_delete, [spod(0), spod(1), spod(2)], "r2").delete == []


def test_new_pods_below_the_partition_keep_the_current_revision():
    partitioned = sts(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    assert sp.uses_current_revision(partitioned, 1)
    assert not sp.uses_current_revision(partitioned, 2)
    assert not sp.uses_current_revision(sts(strategy={"type": "OnDelete"}), 0)


def test_pod_identity():
    pod = sp.pod_for(sts(), sts()["spec"]["template"], 1, "db-abc")
    assert pod["metadata"]["name"] == "db-1"
    assert pod["spec"]["hostname"] == "db-1" and pod["spec"]["subdomain"] == "db"
    assert pod["metadata"]["labels"] == {
        "app": "db", "statefulset.kubernetes.io/pod-name": "db-1",
        "apps.kubernetes.io/pod-index": "1", "controller-revision-hash": "db-abc"}
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert sp.ordinal_of("db", pod) == 1
    assert sp.ordinal_of("db", {"metadata": {"name": "db-01"}}) is None
    assert sp.ordinal_of("db", {"metadata": {"name": "dbx-1"}}) is None


def test_status_completes_the_rolling_update():
    pods = [spod(0, revision="r2"), spod(1, revision="r2")]
    status = sp.calculate_status(sts(replicas=2), pods, "r1", "r2", NOW, None)
    assert status["currentRevision"] == "r2" and status["currentReplicas"] == 2
    assert status["readyReplicas"] == 2 and status["availableReplicas"] == 2
    mixed = sp.calculate_status(sts(replicas=2), [spod(0), spod(1, revision="r2")], "r1", "r2",
                                NOW, None)
    assert (mixed["currentRevision"], mixed["currentReplicas"], mixed["updatedReplicas"]) == \
        ("r1", 1, 1)


# --- revisions --------------------------------------------------------------------------------


def test_revision_data_replaces_the_template():
    data = history.revision_data(sts())
    assert data["spec"]["template"]["$patch"] == "replace"
    assert history.template_of({"data": data}) == sts()["spec"]["template"]


def test_revision_hash_is_stable_and_salted_by_the_collision_count():
    data = history.revision_data(sts())
    assert history.hash_revision_data(data) == history.hash_revision_data(
        history.revision_data(sts()))
    assert history.hash_revision_data(data) != history.hash_revision_data(data, 1)
    changed = sts()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    assert history.hash_revision_data(history.revision_data(changed)) != \
        history.hash_revision_data(data)
    assert set(history.hash_revision_data(data)) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert history.daemonset_hash(ds()) != history.daemonset_hash(ds(), 1)


def test_fnv1_matches_the_reference_vector():
    # FNV-1 32 (Go's hash/fnv New32) test vectors; FNV-1a of "a" would be 0xe40c292c.
    assert history.fnv1_32(b"") == 0x811C9DC5
    assert history.fnv1_32(b"a") == 0x050C5D7E
    assert history.fnv1_32(b"foobar") == 0x31F0B262


def test_new_revision_labels_owner_and_name():
    data = history.revision_data(sts())
    rev = history.new_revision(sts(), "apps/v1", "StatefulSet", data, 3, "abc")
    assert rev["metadata"]["name"] == "db-abc"
    assert rev["metadata"]["labels"] == {"app": "db", "controller-revision-hash": "abc"}
    assert rev["revision"] == 3
    assert rev["metadata"]["ownerReferences"][0]["uid"] == "s1"


@pytest.mark.parametrize("limit,keep,expected", [
    (10, set(), []),
    (1, {"r3"}, ["r1"]),
    (0, {"r3"}, ["r1", "r2"]),
    (0, {"r1", "r3"}, ["r2"]),
])
def test_history_is_trimmed_oldest_first_sparing_revisions_in_use(limit, keep, expected):
    revisions = [{"metadata": {"name": f"r{i}"}, "revision": i} for i in (3, 1, 2)]
    assert [r["metadata"]["name"] for r in history.to_trim(revisions, limit, keep)] == expected


def test_max_surge_starts_new_pods_beside_old_ones_then_removes_the_old():
    surging = ds(max_unavailable=0)
    surging["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] = 1
    olds = [dpod("a", "worker1", "old"), dpod("b", "worker2", "old")]
    step = plan(surging, NODES, olds, "new", NOW)
    assert step.create == ["worker1"] and step.delete == []
    starting = [*olds, dpod("c", "worker1", "new", ready=False)]
    step = plan(surging, NODES, starting, "new", NOW)
    assert step.create == [] and step.delete == []  # the surge budget is in use
    assert step.status["numberAvailable"] == 2  # the old pods still serve
    ready = [*olds, dpod("c", "worker1", "new")]
    step = plan(surging, NODES, ready, "new", NOW)
    assert [p["metadata"]["name"] for p in step.delete] == ["a"]
