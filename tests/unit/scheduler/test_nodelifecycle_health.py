"""The node lifecycle rules as pure functions: Unknown conditions, taints, eviction times."""

from __future__ import annotations

from schedkit import node, pod

from netlab.master.nodelifecycle.health import (
    NOT_READY_TAINT,
    UNREACHABLE_TAINT,
    desired_taints,
    eviction_time,
    ready_status,
    same_taints,
    unknown_conditions,
)

NOW = "2026-01-01T00:10:00Z"
T0 = 1767226200.0  # 2026-01-01T00:10:00Z


def test_silence_turns_kubelet_conditions_unknown_and_keeps_the_last_heartbeat():
    n = node("w")
    n["status"]["conditions"].append({"type": "MemoryPressure", "status": "False",
                                      "lastHeartbeatTime": "2026-01-01T00:00:00Z"})
    conds = {c["type"]: c for c in unknown_conditions(n, NOW)}
    assert set(conds) == {"Ready", "MemoryPressure"}
    ready = conds["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert ready["lastHeartbeatTime"] == "2026-01-01T00:00:00Z"
    assert ready["lastTransitionTime"] == NOW
    never = unknown_conditions(node("new", ready=None), NOW)
    assert [(c["type"], c["reason"]) for c in never] == [("Ready", "NodeStatusNeverUpdated")]
    already = node("w", ready="Unknown")
    assert unknown_conditions(already, NOW) == []


def test_taints_follow_ready():
    assert desired_taints(node("w"), True, NOW) == []
    unknown = desired_taints(node("w", ready="Unknown"), True, NOW)
    assert unknown == [{"key": UNREACHABLE_TAINT, "effect": "NoSchedule"},
                       {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": NOW}]
    not_ready = desired_taints(node("w", ready="False"), True, NOW)
    assert {t["key"] for t in not_ready} == {NOT_READY_TAINT}
    # Never posted: no new pods, but nothing to evict.
    assert desired_taints(node("w", ready=None), True, NOW) == [
        {"key": NOT_READY_TAINT, "effect": "NoSchedule"}]
    # Cluster-wide trouble: no NoExecute, so no evictions.
    assert desired_taints(node("w", ready="Unknown"), False, NOW) == [
        {"key": UNREACHABLE_TAINT, "effect": "NoSchedule"}]
    cordoned = desired_taints(node("w", unschedulable=True), True, NOW)
    assert cordoned == [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]


def test_taints_keep_their_time_and_other_taints_are_left_alone():
    mine = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    old = {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}
    n = node("w", ready="Unknown", taints=[mine, old])
    wanted = desired_taints(n, True, NOW)
    assert mine in wanted and old in wanted  # timeAdded kept: the eviction clock holds
    back = node("w", ready="True", taints=wanted)
    assert desired_taints(back, True, NOW) == [mine]
    assert same_taints(wanted, list(reversed(wanted)))
    assert not same_taints(wanted, [mine])


def test_eviction_time_counts_from_the_taint_and_honours_tolerations():
    taint = {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": NOW}
    plain = pod("p")
    assert eviction_time(plain, [taint], 20.0, observed=0.0) == T0 + 20
    default = pod("d", tolerations=[{"key": UNREACHABLE_TAINT, "operator": "Exists",
                                     "effect": "NoExecute", "tolerationSeconds": 5}])
    assert eviction_time(default, [taint], 20.0, observed=0.0) == T0 + 5
    forever = pod("f", tolerations=[{"key": UNREACHABLE_TAINT, "operator": "Exists"}])
    assert eviction_time(forever, [taint], 20.0, observed=0.0) is None
    user = {"key": "evict-me", "effect": "NoExecute", "timeAdded": NOW}
    assert eviction_time(plain, [user], 20.0, observed=0.0) == T0  # untolerated: at once
    no_time = {"key": UNREACHABLE_TAINT, "effect": "NoExecute"}
    assert eviction_time(plain, [no_time], 20.0, observed=100.0) == 120.0
    assert eviction_time(plain, [{"key": "x", "effect": "NoSchedule"}], 20.0, 0.0) is None


def test_ready_status():
    assert ready_status(node("w")) == "True"
    assert ready_status(node("w", ready=None)) is None
