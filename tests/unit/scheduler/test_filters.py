"""Filters and kube-scheduler's FitError message, over API objects."""

from __future__ import annotations

import pytest
from schedkit import CONTROL_PLANE_TAINT, node, pod

from netlab.master.scheduler.filters import filter_node, find_feasible, fit_error, tolerates
from netlab.master.scheduler.nodeinfo import node_info, pod_info


def verdict(p: dict, n: dict, placed: tuple = ()) -> list[str]:
    return filter_node(pod_info(p), node_info(n, [pod_info(x) for x in placed]))


def test_the_issue_message_four_nodes_taint_and_cpu():
    nodes = [node("control-plane", taints=[CONTROL_PLANE_TAINT])] + [
        node(f"worker{i}", cpu="2") for i in (1, 2, 3)]
    big = pod_info(pod("big", cpu="3"))
    feasible, failed = find_feasible(big, [node_info(n) for n in nodes])
    assert feasible == []
    assert fit_error(4, failed) == (
        "0/4 nodes are available: 1 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu.")


def test_reasons_are_sorted_as_go_sorts_the_formatted_strings():
    failed = {f"n{i}": ["Insufficient memory"] for i in range(10)}
    failed.update({"a": ["Insufficient cpu"], "b": ["Insufficient cpu"]})
    # "10 ..." sorts before "2 ..." as strings, exactly as in kube-scheduler.
    assert fit_error(12, failed) == \
        "0/12 nodes are available: 10 Insufficient memory, 2 Insufficient cpu."


def test_one_node_can_fail_several_resources_and_each_is_counted():
    n = node("w", cpu="1", memory="1Gi")
    assert verdict(pod("p", cpu="2", memory="2Gi"), n) == ["Insufficient cpu",
                                                            "Insufficient memory"]
    assert fit_error(1, {"w": verdict(pod("p", cpu="2", memory="2Gi"), n)}) == \
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."


def test_no_nodes_at_all():
    assert fit_error(0, {}) == "no nodes available to schedule pods"


def test_requests_already_placed_count_against_allocatable():
    n = node("w", cpu="2")
    placed = (pod("a", cpu="1500m", node_name="w"),)
    assert verdict(pod("p", cpu="500m"), n, placed) == []
    assert verdict(pod("p", cpu="501m"), n, placed) == ["Insufficient cpu"]
    # A pod that requests nothing always fits the resources, as in Kubernetes.
    assert verdict(pod("p"), n, (pod("a", cpu="2", node_name="w"),)) == []


def test_too_many_pods():
    n = node("w", pods="2")
    placed = (pod("a", node_name="w"), pod("b", node_name="w"))
    assert verdict(pod("p"), n, placed) == ["Too many pods"]


def test_init_containers_and_overhead_in_the_request():
    p = pod("p", cpu="500m")
    p["spec"]["initContainers"] = [{"name": "init", "image": "x",
                                    "resources": {"requests": {"cpu": "1500m"}}}]
    p["spec"]["overhead"] = {"cpu": "100m"}
    info = pod_info(p)
    assert info.cpu == 1600  # max(sum of containers, largest init) + overhead
    assert verdict(p, node("w", cpu="1500m")) == ["Insufficient cpu"]


def test_not_ready_and_unschedulable_nodes():
    assert verdict(pod("p"), node("w", ready="False")) == ["node(s) were not ready"]
    assert verdict(pod("p"), node("w", ready="Unknown")) == ["node(s) were not ready"]
    assert verdict(pod("p"), node("w", ready=None)) == ["node(s) were not ready"]
    assert verdict(pod("p"), node("w", unschedulable=True)) == ["node(s) were unschedulable"]
    tolerant = pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                      "operator": "Exists", "effect": "NoSchedule"},
                                     {"key": "node.kubernetes.io/unreachable",
                                      "operator": "Exists"}])
    assert verdict(tolerant, node("w", unschedulable=True)) == []
    assert verdict(tolerant, node("w", ready="Unknown")) == []


def test_the_unreachable_taint_explains_before_readiness():
    n = node("w", ready="Unknown", taints=[
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
         "timeAdded": "2026-01-01T00:00:00Z"}])
    assert verdict(pod("p"), n) == ["node(s) had untolerated taint "
                                    "{node.kubernetes.io/unreachable: }"]


def test_taints_and_tolerations():
    gpu = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    n = node("w", taints=[gpu, {"key": "soft", "effect": "PreferNoSchedule"}])
    assert verdict(pod("p"), n) == ["node(s) had untolerated taint {dedicated: gpu}"]
    equal = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    assert verdict(pod("p", tolerations=equal), n) == []  # PreferNoSchedule never filters
    wrong_value = [{"key": "dedicated", "operator": "Equal", "value": "cpu"}]
    assert verdict(pod("p", tolerations=wrong_value), n) != []
    assert verdict(pod("p", tolerations=[{"operator": "Exists"}]), n) == []


@pytest.mark.parametrize("toleration,ok", [
    ({"key": "k", "operator": "Exists"}, True),
    ({"key": "k", "value": "v"}, True),  # operator defaults to Equal
    ({"key": "k", "value": "v", "effect": "NoExecute"}, False),
    ({"operator": "Exists", "effect": "NoSchedule"}, True),
    ({"key": "other", "operator": "Exists"}, False),
])
def test_toleration_matching(toleration, ok):
    assert tolerates(toleration, {"key": "k", "value": "v", "effect": "NoSchedule"}) is ok


def test_node_selector_and_required_affinity():
    n = node("w", labels={"disk": "ssd", "zone": "a", "gen": "5"})
    mismatch = ["node(s) didn't match Pod's node affinity/selector"]
    assert verdict(pod("p", node_selector={"disk": "ssd"}), n) == []
    assert verdict(pod("p", node_selector={"disk": "hdd"}), n) == mismatch

    def term(*exprs: dict) -> dict:
        return {"matchExpressions": list(exprs)}

    cases = [
        ([term({"key": "zone", "operator": "In", "values": ["a", "b"]})], True),
        ([term({"key": "zone", "operator": "In", "values": ["c"]})], False),
        ([term({"key": "zone", "operator": "NotIn", "values": ["c"]})], True),
        ([term({"key": "zone", "operator": "NotIn", "values": ["a"]})], False),
        ([term({"key": "absent", "operator": "NotIn", "values": ["a"]})], True),
        ([term({"key": "disk", "operator": "Exists"})], True),
        ([term({"key": "absent", "operator": "Exists"})], False),
        ([term({"key": "absent", "operator": "DoesNotExist"})], True),
        ([term({"key": "gen", "operator": "Gt", "values": ["4"]})], True),
        ([term({"key": "gen", "operator": "Lt", "values": ["4"]})], False),
        # Expressions of a term are ANDed, terms are ORed.
        ([term({"key": "zone", "operator": "In", "values": ["a"]},
               {"key": "disk", "operator": "In", "values": ["hdd"]})], False),
        ([term({"key": "zone", "operator": "In", "values": ["x"]}),
          term({"key": "disk", "operator": "Exists"})], True),
        ([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["w"]}]}], True),
        ([{}], False),  # an empty term matches nothing
    ]
    for terms, ok in cases:
        assert (verdict(pod("p", affinity=terms), n) == []) is ok, terms


def test_host_port_conflicts():
    n = node("w")
    placed = (pod("a", host_port=8080, node_name="w"),)
    assert verdict(pod("p", host_port=8080), n, placed) == \
        ["node(s) didn't have free ports for the requested pod ports"]
    assert verdict(pod("p", host_port=8081), n, placed) == []
    udp = pod("p", host_port=8080)
    udp["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP"
    assert verdict(udp, n, placed) == []


def test_first_failing_filter_wins_per_node():
    # Tainted *and* too small: only the taint is reported for that node.
    n = node("cp", cpu="1", taints=[CONTROL_PLANE_TAINT])
    assert verdict(pod("p", cpu="2"), n) == [
        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
