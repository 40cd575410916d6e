"""What a netlab user's own tests look like: one lab per module, no conftest.

The plugin (``netlab.testing``, installed with netlab) brings ``cluster.yaml``
up once for this module, under a unique name, and down at the end, whatever
happens. Every test talks to the lab through the ``lab`` fixture's helpers.

    sudo .venv/bin/python -m pytest examples
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.netlab("cluster.yaml", scope="module")


def web_pods(lab) -> list[dict]:
    """The web Deployment's pods once it is Available, one per worker."""
    lab.wait("deployment", "web", "Available", timeout=90)
    pods = lab.api.list("pods", "default", label_selector="app=web")["items"]
    return sorted(pods, key=lambda p: p["spec"]["nodeName"])


def test_nodes_are_ready_as_kubectl_sees_them(lab):
    out = lab.kubectl("get", "nodes", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == ["node/control-plane", "node/worker1", "node/worker2"]
    # The official Python client works against the lab too (when it is installed).
    kubernetes = pytest.importorskip("kubernetes")
    nodes = kubernetes.client.CoreV1Api(lab.client).list_node().items
    assert all(c.status == "True" for n in nodes for c in n.status.conditions
               if c.type == "Ready")


def test_pods_on_different_nodes_reach_each_other(lab):
    first, second = web_pods(lab)
    assert first["spec"]["nodeName"] != second["spec"]["nodeName"]
    a, b = first["metadata"]["name"], second["metadata"]["name"]
    assert lab.reach(a, b, 8080, within=10)
    assert lab.reach(b, a, 8080, within=10)
    # And from inside the container, as an application would.
    code, out, err = lab.exec(a, ["cat", "/etc/hostname"])
    assert code == 0, err
    assert out.strip() == a


def test_the_service_answers_from_outside_on_its_node_port(lab):
    web_pods(lab)
    # Every node's kube-proxy follows the API a sync behind: give it up to 30 s.
    for node in ("worker1", "worker2", "control-plane"):
        assert lab.reach("client", f"node/{node}:30080", within=30), f"NodePort on {node}"
    # Inside the cluster, the ClusterIP on port 80.
    assert lab.reach("worker1", "svc/web:80", within=30)


def test_a_trace_shows_the_service_dnat_and_the_overlay(lab):
    first, _ = web_pods(lab)
    assert lab.reach(first["metadata"]["name"], "svc/web", within=30)
    trace = lab.trace(first["metadata"]["name"], "svc/web")
    assert trace["apiVersion"] == "netlab.trace/v1"
    assert trace["verdict"]["result"] == "delivered", trace["verdict"]["reason"]
    forward = [h for h in trace["hops"] if h["path"] == "forward"]
    assert any(c["kind"] == "dnat" for h in forward for c in h["changes"])
    assert trace["dst"]["service"] == "default/web:http"


def test_truth_table(lab):
    pods = [p["metadata"]["name"] for p in web_pods(lab)]
    table = {
        # (source, destination, port, protocol): does it answer?
        ("client", "node/worker1:30080", None, "tcp"): True,
        ("client", pods[0], 8080, "tcp"): False,  # pod IPs are not routed outside
        (pods[0], pods[1], 8080, "tcp"): True,
        (pods[0], pods[1], 9999, "tcp"): False,   # nothing listens there
        (pods[0], "svc/web:80", None, "tcp"): True,
        ("worker2", pods[0], None, "icmp"): True,
        ("client", "worker1", None, "icmp"): True,
    }
    # Let the proxies catch up with the Service first (what should answer, answers)...
    for (src, dst, port, proto), answers in table.items():
        if answers:
            lab.reach(src, dst, port=port, proto=proto, within=30)
    # ...then one probe per row.
    seen = {key: lab.reach(*key[:2], port=key[2], proto=key[3]) for key in table}
    assert seen == table


UNREACHABLE = "node.kubernetes.io/unreachable"


def ready_and_taints(node: dict) -> tuple[str, set[str]]:
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    return ready, {t["key"] for t in node["spec"].get("taints") or []}


def unreachable(node: dict) -> bool:
    """The node controller gave up on the node: Ready is Unknown and it is tainted."""
    ready, taints = ready_and_taints(node)
    return ready == "Unknown" and UNREACHABLE in taints


def recovered(node: dict) -> bool:
    ready, taints = ready_and_taints(node)
    return ready == "True" and UNREACHABLE not in taints


def test_a_worker_cut_off_goes_not_ready_and_comes_back(lab):
    web_pods(lab)
    with lab.link_down("worker2"):
        lab.wait("node", "worker2", unreachable, timeout=40)
        assert not lab.reach("client", "worker2", proto="icmp")
    lab.wait("node", "worker2", recovered, timeout=40)
    assert lab.reach("client", "worker2", proto="icmp", within=5)
