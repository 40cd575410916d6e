"""The agent's sync engine with a fake kernel: one transaction per change (full first,
then partial), nothing when nothing changed, a full rewrite after a failed transaction or
a failed clean-up, IPAM-learnt addresses."""

from __future__ import annotations

import re

import pytest
from netpolkit import ns_obj, pod_ip, pod_obj, policy_obj

from netlab.node.netpol.agent import PolicyAgent


class FakeKernel:
    """Keeps the table as the objects the scripts declare, flush and all."""

    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.fail_next = 0
        self.fail_collect = 0
        self.prepared = 0
        self.deleted = 0
        self.collected: list[dict[str, str]] = []
        self.objects: dict[str, str] | None = None

    def prepare(self) -> None:
        self.prepared += 1

    def apply(self, script: str) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("nft: injected failure")
        self.scripts.append(script)
        objects = dict(self.objects or {})
        declared: set[str] = set()
        for line in script.splitlines():
            words = line.split()
            if words[:2] == ["delete", "table"]:
                objects = {}
            elif words[0] == "flush":
                assert words[4] in objects, f"flush of a missing object: {line}"
                objects[words[4]] = ""
            elif words[0] == "add" and words[1] in ("set", "map", "chain"):
                name = words[4]
                declared.add(name)
                # nft 1.0.6 finds a set a rule names only among this batch's declarations.
                for ref in re.findall(r"@([^\s;,}]+)", line):
                    assert ref in declared, f"{ref} not declared in the batch: {line}"
                bare = words[1] != "chain" and "elements" not in line and "comment" not in line
                if not (bare and objects.get(name)):
                    objects[name] = line
        self.objects = objects

    @property
    def table(self) -> str:
        return "\n".join((self.objects or {}).values())

    def collect(self, garbage) -> int:
        if self.fail_collect:
            self.fail_collect -= 1
            raise RuntimeError("netlink: injected failure")
        self.collected.append(dict(garbage))
        for name in garbage:
            assert self.objects is not None and self.objects.pop(name) == "", name
        return len(garbage)

    def delete_table(self) -> bool:
        self.deleted += 1
        had, self.objects = self.objects is not None, None
        return had

    def release(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup() -> tuple[PolicyAgent, FakeKernel, Clock]:
    kernel, clock = FakeKernel(), Clock()
    agent = PolicyAgent("worker1", "lab-worker1", "10.244.1.0/24", kernel=kernel, clock=clock,
                        min_interval=0.05)
    for ns in "xyz":
        agent.update_namespace(ns_obj(ns))
    for ns in "xyz":
        for name in "abc":
            agent.update_pod(pod_obj(ns, name, node="worker1"))
    return agent, kernel, clock


def test_first_sync_writes_the_table_and_prepares_the_node(setup) -> None:
    agent, kernel, _ = setup
    result = agent.sync()
    assert result.kind == "full" and result.ok and kernel.prepared == 1
    assert len(kernel.scripts) == 1 and result.policies == 0 and result.isolated == 0


def test_nothing_changed_means_no_transaction(setup) -> None:
    agent, kernel, clock = setup
    agent.sync()
    clock.now += 1
    assert agent.sync().kind == "none"
    agent.update_pod(pod_obj("x", "a", node="worker1"))  # same object again
    assert agent.sync().kind == "none" and len(kernel.scripts) == 1


def test_each_change_is_one_transaction(setup) -> None:
    agent, kernel, clock = setup
    agent.sync()
    clock.now += 1
    agent.update_policy(policy_obj("x", "deny-all", {"podSelector": {}}))
    result = agent.sync()
    assert result.kind == "partial" and result.isolated == 3 and len(kernel.scripts) == 2
    assert "NetworkPolicy x/deny-all (ingress) isolates x/a" in kernel.table
    assert "delete table" not in kernel.scripts[1], "a partial sync rewrites what changed"


def test_bursts_are_rate_limited(setup) -> None:
    agent, kernel, clock = setup
    agent.sync()
    agent.update_policy(policy_obj("x", "deny-all", {"podSelector": {}}))
    deferred = agent.sync()
    assert deferred.kind == "deferred" and 0 < deferred.retry_in <= 0.05
    agent.update_policy(policy_obj("y", "deny-all", {"podSelector": {}}))
    clock.now += 0.05
    assert agent.sync().isolated == 6 and len(kernel.scripts) == 2


def test_a_failed_transaction_changes_nothing_and_forces_a_full_rewrite(setup) -> None:
    agent, kernel, clock = setup
    agent.sync()
    before = kernel.table
    clock.now += 1
    agent.update_policy(policy_obj("x", "deny-all", {"podSelector": {}}))
    kernel.fail_next = 1
    failed = agent.sync()
    assert not failed.ok and "injected" in failed.error and failed.retry_in > 0
    assert kernel.table == before, "the kernel kept the old table"
    assert agent.applied is None and agent.dirty
    clock.now += 1
    retried = agent.sync()
    assert retried.ok and retried.kind == "full" and "x/deny-all" in kernel.table
    assert kernel.scripts[-1].startswith("add table ip netlab-policy\ndelete table")
    # Even a table identical to an earlier one is rewritten after a failure:
    # what the kernel holds is not trusted until a transaction commits.
    agent.force_full()
    clock.now += 1
    assert agent.sync().kind == "full" and len(kernel.scripts) == 3


def test_a_failed_clean_up_forces_a_full_rewrite(setup) -> None:
    agent, kernel, clock = setup
    policy = policy_obj("x", "deny-all", {"podSelector": {}})
    agent.update_policy(policy)
    agent.sync()
    agent.delete_policy(policy)
    kernel.fail_collect = 1
    clock.now += 1
    result = agent.sync()
    assert result.ok and result.kind == "partial" and agent.applied is None
    clock.now += 1
    assert agent.sync().kind == "full"


def test_deleted_objects_are_emptied_then_collected(setup) -> None:
    agent, kernel, clock = setup
    policy = policy_obj("x", "from-y", {"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]})
    agent.update_policy(policy)
    agent.sync()
    assert any(name.startswith("peers-") for name in kernel.objects)
    agent.delete_policy(policy)
    clock.now += 1
    result = agent.sync()
    assert result.kind == "partial" and result.collected > 0
    assert {k for k in kernel.collected[-1]} == {
        n for n in kernel.collected[-1] if n.startswith(("pod-", "rules-", "peers-"))}
    assert not any(n.startswith(("pod-", "rules-", "peers-")) for n in kernel.objects)


def test_a_re_added_policy_refills_its_objects(setup) -> None:
    agent, kernel, clock = setup
    policy = policy_obj("x", "deny-all", {"podSelector": {}})
    agent.update_policy(policy)
    agent.sync()
    full = dict(kernel.objects)
    agent.delete_policy(policy)
    clock.now += 1
    agent.sync()
    agent.update_policy(policy)
    clock.now += 1
    agent.sync()
    assert kernel.objects == full


def test_deleting_a_policy_restores_the_open_table(setup) -> None:
    agent, kernel, clock = setup
    agent.sync()
    open_table = kernel.table
    policy = policy_obj("x", "deny-all", {"podSelector": {}})
    agent.update_policy(policy)
    clock.now += 1
    agent.sync()
    agent.delete_policy(policy)
    clock.now += 1
    agent.sync()
    assert kernel.table == open_table


def test_pod_status_churn_alone_does_not_resync(setup) -> None:
    agent, _kernel, _clock = setup
    agent.sync()
    cluster = agent.cluster()
    busy = pod_obj("x", "a", node="worker1")
    busy["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    agent.update_pod(busy)
    assert agent.cluster() is cluster and not agent.dirty


def test_a_policy_change_keeps_the_compiled_cluster(setup) -> None:
    agent, _kernel, clock = setup
    agent.update_policy(policy_obj("x", "deny-all", {"podSelector": {}}))
    agent.sync()
    cluster = agent.cluster()
    agent.update_policy(policy_obj("y", "deny-all", {"podSelector": {}}))
    assert agent.cluster() is cluster
    clock.now += 1
    assert agent.sync().isolated == 6
    agent.update_pod(pod_obj("x", "a", node="worker1", labels={"pod": "moved"}))
    assert agent.cluster() is not cluster, "a label change rebuilds the selections"


def test_addresses_from_ipam_make_a_pod_known_before_its_status_says(setup) -> None:
    agent, kernel, clock = setup
    fresh = pod_obj("x", "new", node="worker1", ip=None)
    agent.update_policy(policy_obj("x", "deny-all", {"podSelector": {}}))
    agent.update_pod(fresh)
    assert agent.pending_local()
    agent.sync()
    assert "10.244.1.99" not in kernel.table
    assert agent.learn_addresses({"10.244.1.99": "uid-x-new",
                                  pod_ip("x", "a"): "uid-x-a"}) is True
    assert not agent.pending_local()
    clock.now += 1
    agent.sync()
    assert '10.244.1.99 comment "x/new" : goto' in kernel.table
    assert agent.learn_addresses({"10.244.1.99": "uid-x-new",
                                  pod_ip("x", "a"): "uid-x-a"}) is False


def test_ipam_owner_beats_a_stale_reported_address(setup) -> None:
    agent, _, _ = setup
    # x/a's address was freed and handed to x/new: x/a's status still names it.
    agent.update_pod(pod_obj("x", "new", node="worker1", ip=None))
    agent.learn_addresses({pod_ip("x", "a"): "uid-x-new"})
    assert agent.parsed[("x", "new")].ip == pod_ip("x", "a")
    assert agent.parsed[("x", "a")].ip is None
    assert agent.parsed[("x", "b")].ip == pod_ip("x", "b"), "no record: the status is used"


def test_other_nodes_pods_keep_their_reported_address(setup) -> None:
    agent, _, _ = setup
    agent.update_pod(pod_obj("y", "far", node="worker2", ip="10.244.2.50"))
    agent.learn_addresses({"10.244.1.5": "someone"})
    assert agent.parsed[("y", "far")].ip == "10.244.2.50"


def test_cleanup_deletes_the_table(setup) -> None:
    agent, kernel, _ = setup
    agent.sync()
    assert agent.cleanup() is True and kernel.objects is None and kernel.deleted == 1
    assert agent.applied is None and agent.dirty


def test_thousands_of_policies_converge_in_one_sync(setup) -> None:
    agent, kernel, _ = setup
    for i in range(2000):
        agent.update_policy(policy_obj("x", f"p{i}", {
            "podSelector": {"matchLabels": {"pod": "abc"[i % 3]}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                                   "podSelector": {"matchLabels": {"pod": "b"}}}],
                         "ports": [{"port": 8000 + i}]}]}))
    result = agent.sync()
    assert result.ok and result.policies == 2000 and result.isolated == 3
    assert result.compile_seconds < 5
    assert kernel.table.count("add chain ip netlab-policy rules-") == 2000


def test_cached_rendering_equals_a_fresh_render_through_many_changes(setup) -> None:
    """Policy chains are not rendered again when nothing they depend on changed; the
    table must still be exactly what a fresh render gives, including when the
    policy that first named a shared set goes away or a new one sorts before it."""
    from netlab.node.netpol import model, ruleset

    agent, _kernel, clock = setup
    peers = [{"namespaceSelector": {"matchLabels": {"ns": "y"}}},
             {"podSelector": {"matchLabels": {"pod": "b"}}}]
    named = [{"port": "serve-80-tcp"}]

    def make(name: str, i: int) -> dict:
        return policy_obj("x", name, {"podSelector": {}, "ingress": [
            {"from": [peers[i % 2]], "ports": named if i % 3 == 0 else [{"port": 80 + i}]}]})

    steps = [("add", "m", 0), ("add", "n", 2), ("add", "c", 4), ("del", "c", 4),
             ("add", "a", 0), ("del", "m", 0), ("add", "b", 1), ("add", "z", 3),
             ("del", "a", 0), ("add", "a", 3)]
    for verb, name, i in steps:
        if verb == "add":
            agent.update_policy(make(name, i))
        else:
            agent.delete_policy(make(name, i))
        clock.now += 1
        assert agent.sync().ok
        fresh = ruleset.render_objects(agent.cfg, model.compile_node(
            model.Cluster(agent.policies.values(), agent.parsed.values(), agent.namespaces),
            agent.node))
        assert agent.applied == fresh, (verb, name)


def test_without_any_policy_pod_events_compile_nothing_and_poll_nothing(setup) -> None:
    # 99 agents compiling for each of a 1,000-pod rollout's events, and polling IPAM for
    # every pending local pod, took 40 % of a core while no NetworkPolicy existed.
    agent, kernel, clock = setup
    agent.sync()
    for ns in "xyz":
        clock.now += 1
        agent.update_pod(pod_obj(ns, "a", node="worker1", ip=None, labels={"new": ns}))
        assert agent.sync().kind == "none"
    assert len(kernel.scripts) == 1
    assert not agent.pending_local()
    agent.update_policy(policy_obj("x", "deny-all", {"podSelector": {}}))
    assert agent.pending_local(), "with a policy, a local pod's address matters again"


def test_the_first_policy_after_pod_churn_programs_what_a_fresh_agent_would(setup) -> None:
    agent, kernel, clock = setup
    agent.sync()
    churn = [pod_obj("x", "b", node="worker1", labels={"app": "web"}),
             pod_obj("y", "c", node="worker1", labels={"app": "web"}, ip="10.244.1.77")]
    for pod in churn:
        clock.now += 1
        agent.update_pod(pod)
        agent.sync()
    agent.delete_pod(pod_obj("x", "a", node="worker1"))
    policy = policy_obj("x", "from-web", {"podSelector": {}, "ingress": [
        {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}]}]})
    agent.update_policy(policy)
    clock.now += 1
    assert agent.sync().kind == "partial"

    fresh_kernel = FakeKernel()
    fresh = PolicyAgent("worker1", "lab-worker1", "10.244.1.0/24", kernel=fresh_kernel,
                        clock=clock, min_interval=0.05)
    for ns in "xyz":
        fresh.update_namespace(ns_obj(ns))
    for ns in "xyz":
        for name in "abc":
            if (ns, name) != ("x", "a"):
                fresh.update_pod(pod_obj(ns, name, node="worker1"))
    for pod in churn:
        fresh.update_pod(pod)
    fresh.update_policy(policy)
    fresh.sync()
    assert kernel.objects == fresh_kernel.objects


def test_a_policy_waits_for_the_pods_list(setup) -> None:
    """The feeder watches pods only from the first policy on: until their list is in,
    a policy would isolate its pods and admit none of their peers."""
    agent, kernel, clock = setup
    agent.sync()
    agent.pods_synced = False
    clock.now += 1
    agent.update_policy(policy_obj("x", "allow-from-y", {
        "podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}))
    waiting = agent.sync()
    assert waiting.kind == "deferred" and waiting.retry_in > 0 and len(kernel.scripts) == 1
    agent.pods_known()
    synced = agent.sync()
    assert synced.kind == "partial" and synced.isolated == 3 and synced.policies == 1
