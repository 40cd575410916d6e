"""The teaching topologies do what their header comments say, checked through the
pytest plugin (``netlab.testing``) as a user would check them."""

from __future__ import annotations

import pytest


def _pods(lab, deployment: str, label: str) -> list[dict]:
    lab.wait("deployment", deployment, "Available", timeout=90)
    items = lab.api.list("pods", "default", label_selector=label)["items"]
    return sorted(items, key=lambda p: p["spec"]["nodeName"])


@pytest.mark.netlab("../../topologies/flat.yaml")
def test_flat_pods_on_one_node_talk_and_across_nodes_cannot(lab):
    first, second = (p["metadata"]["name"] for p in _pods(lab, "echo", "app=echo"))
    assert lab.get("pod", first)["spec"]["nodeName"] == "worker1"
    assert lab.reach(first, "worker1", proto="icmp")  # its own node routes it
    assert not lab.reach(first, second, 8080)  # no overlay: nothing carries it
    trace = lab.trace(first, second, port=8080)
    assert trace["verdict"]["result"] == "lost"
    assert "no route" in trace["verdict"]["reason"]
    code, routes, _ = lab.exec("worker1", "ip route")
    assert code == 0
    assert "10.244.2.0/24" not in routes


@pytest.mark.netlab("../../topologies/three-tier.yaml")
def test_three_tier_each_tier_reaches_the_next_through_its_service(lab):
    web = [p["metadata"]["name"] for p in _pods(lab, "web", "tier=web")]
    app = [p["metadata"]["name"] for p in _pods(lab, "app", "tier=app")]
    _pods(lab, "db", "tier=db")
    # Services answer once every node's kube-proxy has synced them: allow it 30 s.
    assert lab.reach("client", "node/worker1:30080", within=30)
    assert lab.reach(web[0], "svc/app:8080", within=30)
    assert lab.reach(app[0], "svc/db:5432", within=30)
    trace = lab.trace(app[0], "svc/db")
    assert trace["verdict"]["result"] == "delivered", trace["verdict"]["reason"]
    dnat = [c for h in trace["hops"] for c in h["changes"] if c["kind"] == "dnat"]
    assert dnat and dnat[0]["to"].endswith(":8080")
