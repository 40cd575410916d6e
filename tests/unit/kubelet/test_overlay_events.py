"""The overlay agent's view of Node events: in a big lab every Node update (a usage
report, a status) reaches every kubelet, and only a change of a peer's podCIDR, VTEP
MAC or address may cost it work."""

from __future__ import annotations

import copy

import pytest

from netlab.node.overlay import OverlayAgent, flannel_annotations

pytestmark = pytest.mark.unit


def node(name: str, ip: str, subnet: str, mac: str) -> dict:
    return {"metadata": {"name": name, "annotations": flannel_annotations(1, mac, ip)},
            "spec": {"podCIDR": subnet},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


def test_only_a_peer_change_wakes_the_overlay() -> None:
    agent = OverlayAgent("w1", run_blocking=None)
    agent.node_event("ADDED", node("w1", "10.0.0.2", "10.244.1.0/24", "02:00:00:00:00:01"))
    assert agent._wanted == [] and agent._changed.is_set()  # no peer yet is an answer
    agent._changed.clear()
    w2 = node("w2", "10.0.0.3", "10.244.2.0/24", "02:00:00:00:00:02")
    agent.node_event("ADDED", w2)
    assert [p.node for p in agent._wanted or []] == ["w2"] and agent._changed.is_set()
    agent._changed.clear()
    # A usage report or a status post: the same peer, nothing to do.
    busy = copy.deepcopy(w2)
    busy["metadata"]["annotations"]["metrics.netlab.io/usage"] = '{"node": {"cpu": "5m"}}'
    busy["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    agent.node_event("MODIFIED", busy)
    agent.node_event("MODIFIED", node("w1", "10.0.0.2", "10.244.1.0/24", "02:00:00:00:00:09"))
    assert not agent._changed.is_set()
    # A new VTEP MAC (the node's kubelet restarted with a new vxlan0) is news.
    agent.node_event("MODIFIED", node("w2", "10.0.0.3", "10.244.2.0/24", "02:00:00:00:00:03"))
    assert agent._changed.is_set() and (agent._wanted or [])[0].vtep_mac == "02:00:00:00:00:03"
    agent._changed.clear()
    agent.node_event("DELETED", w2)
    assert agent._wanted == [] and agent._changed.is_set()
