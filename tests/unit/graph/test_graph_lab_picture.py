"""``netlab graph``'s picture of a lab: what is drawn, how odd names are written, the
Mermaid text, the caption of a lab drawn without its API, and the command's exits."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from graphkit import PODS, SERVICES, needs_dot, plan

from netlab.cli.main import main
from netlab.graph import source
from netlab.graph.dot import quote, to_dot
from netlab.graph.graphviz import SVG_NS, add_titles
from netlab.graph.html import page
from netlab.graph.labpic import (
    PodInfo,
    ServiceInfo,
    lab_scene,
    pods_from_api,
    services_from_api,
)
from netlab.graph.mermaid import to_mermaid
from netlab.graph.output import format_for, render
from netlab.graph.scene import element_id, id_part
from netlab.topology import parse_topology, plan_lab

pytestmark = pytest.mark.unit


def _scene(overlay: str = "vxlan"):
    return lab_scene(plan(overlay), PODS, SERVICES, ["lab pic is running"])


def test_nodes_tunnels_subnets_pods_and_services_are_all_drawn():
    scene = _scene()
    ids = scene.ids()
    for node in ("control-plane", "worker1", "worker2", "client"):
        assert element_id("node", node) in ids and element_id("link", node) in ids
    assert scene.box(element_id("node", "client")).kind == "external"
    # A tunnel between every pair of cluster nodes; none to the external client.
    assert sorted(scene.ids("tunnel")) == [
        "nl-tunnel.control-plane.worker1", "nl-tunnel.control-plane.worker2",
        "nl-tunnel.worker1.worker2"]
    assert [element_id("subnet", n) for n in ("control-plane", "worker1", "worker2")] == \
        scene.ids("subnet")
    assert "pods 10.244.1.0/24" in scene.box("nl-subnet.worker1").label
    for pod in PODS:
        assert element_id("pod", pod.namespace, pod.name) in ids
    assert scene.box("nl-pod.default.web-1").label == ["web-1", "10.244.1.2"]
    assert scene.box("nl-pod.team.db-0").label == ["team/db-0", "10.244.2.3 (running, not ready)"]
    assert scene.box("nl-pod.default.waiting").group == "nl-unscheduled"
    for svc in SERVICES:
        assert element_id("svc", svc.namespace, svc.name) in ids
    ends = {line.id: (line.tail, line.head, line.kind) for line in scene.lines
            if line.kind.startswith("endpoint")}
    assert ends["nl-ep.default.web.0"] == ("nl-svc.default.web", "nl-pod.default.web-1",
                                           "endpoint")
    # A Service whose endpoint is a node's address (kube-dns) points at the node; an
    # address nobody in the lab has gets its own box.
    assert ends["nl-ep.kube-system.kube-dns.0"][1] == "nl-node.control-plane"
    assert ends["nl-ep.default.outside.0"] == ("nl-svc.default.outside", "nl-addr.172_2e16_2e0_2e9",
                                               "endpoint-unready")
    tunnel = next(line for line in scene.lines if line.id == "nl-tunnel.worker1.worker2")
    assert "VNI 1, UDP 4789" in tunnel.tooltip and "192.168.100.3 <-> 192.168.100.4" in \
        tunnel.tooltip


def test_the_dot_text_carries_every_id_and_the_kinds_as_classes():
    dot = to_dot(_scene())
    for element in _scene().ids():
        assert quote(element) in dot or f'id="{element}"' in dot
    assert 'class="tunnel"' in dot and 'class="pod"' in dot and 'class="service"' in dot
    assert "lab pic is running" in dot


def test_without_an_overlay_there_are_no_tunnels():
    scene = _scene("none")
    assert scene.ids("tunnel") == [] and "no overlay" in scene.title
    assert "vxlan0" not in "\n".join(scene.box("nl-node.worker1").label)


def test_ids_never_collide_and_stay_valid_names():
    assert id_part("web-1") == "web-1"
    assert id_part("a.b") != id_part("a_2eb")
    assert element_id("pod", "a", "b.c") != element_id("pod", "a.b", "c")
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", element_id("pod", 'we"ird', "a b/ü<>&"))


ODD = PodInfo('we"ird', 'a"b\\c&d<e>{f}|g #h', "worker1", "10.244.1.9", "Running", True)


def test_odd_names_are_escaped_in_dot():
    dot = to_dot(lab_scene(plan(), [ODD], []))
    assert quote('a"b\\c&d<e>{f}|g #h') == '"a\\"b\\\\c&amp;d<e>{f}|g #h"'
    assert 'we\\"ird/a\\"b\\\\c&amp;d<e>{f}|g #h' in dot


def test_odd_names_survive_graphviz_into_the_svg_text_and_titles():
    needs_dot()
    scene = lab_scene(plan(), [ODD], [])
    svg = render(scene, "svg").decode()
    root = ET.fromstring(svg.split("\n", 1)[1])
    pod = next(g for g in root.iter(f"{{{SVG_NS}}}g")
               if g.get("id") == element_id("pod", ODD.namespace, ODD.name))
    texts = [t.text for t in pod.iter(f"{{{SVG_NS}}}text")]
    assert texts[0] == 'we"ird/a"b\\c&d<e>{f}|g #h'
    assert pod.find(f"{{{SVG_NS}}}title").text.startswith('pod we"ird/a"b\\c&d<e>{f}|g #h\n')


def test_mermaid_is_a_flowchart_with_safe_ids_and_quoted_labels():
    text = to_mermaid(lab_scene(plan(), [*PODS, ODD], SERVICES, ['caption "quoted"']))
    lines = text.splitlines()
    assert lines[0] == "---" and lines[1].startswith('title: "') and lines[2] == "---"
    assert lines[3] == "flowchart TB"
    assert sum(1 for x in lines if x.strip().startswith("subgraph ")) == \
        sum(1 for x in lines if x.strip() == "end")
    node_def = re.compile(r'^\s+([A-Za-z0-9_]+)(\[\[|\(|\{\{|\[/|\[|>)"([^"]*)"'
                          r'(\]\]|\)|\}\}|/\]|\])$')
    link = re.compile(r'^\s+([A-Za-z0-9_]+) (---|-\.-|-\.->|-->)(\|"[^"]*"\|)? ([A-Za-z0-9_]+)$')
    defined, linked = set(), set()
    for x in lines[4:]:
        stripped = x.strip()
        if not stripped or stripped.startswith(("%%", "end", "classDef ", "class ")):
            continue
        if stripped.startswith("subgraph "):
            assert re.fullmatch(r'subgraph [A-Za-z0-9_]+\["[^"]*"\]', stripped), x
            continue
        if m := node_def.match(x):
            defined.add(m.group(1))
        elif m := link.match(x):
            linked.update((m.group(1), m.group(4)))
        else:
            raise AssertionError(f"not a Mermaid statement: {x!r}")
    assert linked <= defined
    assert "-.-|\"VXLAN 1\"|" in text  # the tunnels
    assert "a#quot;b\\c#amp;d#lt;e#gt;{f}|g #35;h" in text  # escaped, with '#' first
    assert not re.search(r"\b(end|graph|subgraph)\[", text)


def test_api_objects_become_pods_and_services_with_their_endpoints():
    pods = pods_from_api([
        {"metadata": {"name": "b", "namespace": "default"}, "spec": {"nodeName": "worker1"},
         "status": {"phase": "Running", "podIP": "10.244.1.5",
                    "conditions": [{"type": "Ready", "status": "True"}]}},
        {"metadata": {"name": "a", "namespace": "default"}, "spec": {}, "status": {}}])
    assert [(p.name, p.node, p.ip, p.phase, p.ready) for p in pods] == [
        ("a", None, None, "Pending", False), ("b", "worker1", "10.244.1.5", "Running", True)]
    services = services_from_api(
        [{"metadata": {"name": "web", "namespace": "default"},
          "spec": {"type": "NodePort", "clusterIP": "10.96.0.20",
                   "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                              "nodePort": 30080, "protocol": "TCP"}]}}],
        [{"metadata": {"namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
          "ports": [{"port": 8080, "protocol": "TCP"}],
          "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True},
                         "nodeName": "worker1",
                         "targetRef": {"kind": "Pod", "name": "b", "namespace": "default"}},
                        {"addresses": ["10.244.2.7"], "conditions": {"ready": False}}]},
         {"metadata": {"namespace": "default", "labels": {}}, "endpoints": []}])
    assert services == [ServiceInfo(
        "default", "web", "NodePort", "10.96.0.20", ("80:30080/TCP -> 8080 (http)",),
        (services[0].endpoints[0], services[0].endpoints[1]))]
    first, second = services[0].endpoints
    assert (first.ip, first.pod, first.ready, first.ports) == ("10.244.1.5", "default/b", True,
                                                               ("8080/TCP",))
    assert (second.ip, second.pod, second.ready) == ("10.244.2.7", None, False)


def test_a_topology_file_is_drawn_alone_and_the_caption_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr("netlab.lab.state.load_state", lambda lab: None)
    path = tmp_path / "pic.yaml"
    path.write_text(__import__("graphkit").TOPOLOGY % "vxlan")
    snap = source.snapshot(str(path))
    assert not snap.live and snap.pods == [] and snap.services == []
    assert snap.caption == [f"drawn from the topology file {path} alone; lab pic is not running"]
    assert snap.caption[0] in to_dot(lab_scene(snap.plan, caption=snap.caption))


def test_a_recorded_lab_that_does_not_answer_is_drawn_from_its_topology(tmp_path, monkeypatch):
    monkeypatch.setattr("netlab.paths.socket_path", lambda lab: tmp_path / "absent.sock")
    assert "runs no control plane (network only): drawn from its topology alone" in \
        source.from_lab("pic", plan()).caption[0]
    assert source.from_lab("pic", plan(), phase="failed").caption == [
        "lab pic is failed, not running: drawn from its recorded topology alone"]
    (tmp_path / "dead.sock").touch()  # a socket file nobody listens on
    monkeypatch.setattr("netlab.paths.socket_path", lambda lab: tmp_path / "dead.sock")
    caption = source.from_lab("pic", plan(), timeout=1.0).caption[0]
    assert "drawn from its topology alone, without pods or Services" in caption


def test_the_html_page_is_self_contained():
    svg = add_titles('<svg xmlns="http://www.w3.org/2000/svg"><g id="nl-x"><title>x</title>'
                     '</g></svg>', {"nl-x": "details <b> & more"})
    assert "<title>details &lt;b&gt; &amp; more</title>" in svg
    html = page("lab <pic>", ["from the topology alone"], svg)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "<h1>lab &lt;pic&gt;</h1>" in html and "from the topology alone" in html
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#|data:)""", html)
    assert not re.search(r"https?://(?!www\.w3\.org/)", html)


def test_the_format_comes_from_the_option_else_the_file_suffix():
    assert format_for("out.png", None) == "png" and format_for("x.MMD", None) == "mermaid"
    assert format_for("out.png", "dot") == "dot" and format_for(None, None) == "svg"


def test_graph_command_draws_a_topology_file_and_refuses_bad_input(tmp_path, monkeypatch):
    monkeypatch.setattr("netlab.lab.state.list_labs", lambda: ["alpha"])
    runner = CliRunner()
    out = runner.invoke(main, ["graph", "topologies/demo.yaml", "-o", "mermaid"])
    assert out.exit_code == 0, out.output
    assert "flowchart TB" in out.output and "nl_tunnel" not in out.output
    assert "nl_node_worker1 -.-|\"VXLAN 1\"| nl_node_worker2" in out.output
    out = runner.invoke(main, ["graph", "nosuch"])
    assert out.exit_code == 2
    assert "no lab named nosuch is up (labs up: alpha)" in out.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nnodes:\n  - {name: a, rol: worker}\n")
    out = runner.invoke(main, ["graph", str(bad)])
    assert out.exit_code == 2
    assert f"{bad}:3: nodes[0].rol: unknown key 'rol'" in out.output and "Fix:" in out.output
    out = runner.invoke(main, ["graph", str(tmp_path / "missing.yaml")])
    assert out.exit_code == 2 and "no such topology file" in out.output


def test_graph_command_writes_svg_and_html_files(tmp_path, monkeypatch):
    needs_dot()
    monkeypatch.setattr("netlab.lab.state.load_state", lambda lab: None)
    runner = CliRunner()
    for name in ("demo.svg", "demo.html", "demo.png"):
        out = runner.invoke(main, ["graph", "topologies/demo.yaml", "--output-file",
                                   str(tmp_path / name)])
        assert out.exit_code == 0, out.output
    svg = (tmp_path / "demo.svg").read_text()
    assert 'id="nl-tunnel.worker1.worker2"' in svg and "lab demo is not running" in svg
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "demo.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and 'id="nl-node.client"' in html


def test_past_the_limit_the_tunnels_are_one_full_mesh():
    from netlab.graph.labpic import MESH_LIMIT

    nodes = "\n".join(f"  - {{name: w{i}, role: worker}}" for i in range(MESH_LIMIT + 1))
    big = plan_lab(parse_topology(f"name: big\nnodes:\n  - {{name: cp, role: control-plane}}\n"
                                  f"{nodes}\n", "big.yaml"))
    scene = lab_scene(big)
    members = MESH_LIMIT + 2
    assert scene.ids("tunnel") == [element_id("mesh-member", n.name) for n in big.nodes]
    assert scene.box("nl-mesh.big").label == ["VXLAN full mesh",
                                              f"{members * (members - 1) // 2} tunnels, VNI 1"]
    assert f"{members} cluster nodes: their" in scene.caption[-1]


def test_racks_are_drawn_each_with_its_bridge_and_the_router_joins_them():
    from pathlib import Path

    from netlab.topology import load_topology

    racks = Path(__file__).resolve().parents[3] / "topologies" / "multi-rack.yaml"
    scene = lab_scene(plan_lab(load_topology(racks)), caption=["from the topology"])
    assert "2 racks (rack1, rack2)" in scene.title
    assert {g.id for g in scene.groups if g.kind == "underlay"} == {
        "nl-underlay.rack1", "nl-underlay.rack2"}
    assert scene.box("nl-bridge.br-rack1").group == "nl-underlay.rack1"
    router = scene.box(element_id("node", "router"))
    assert router.kind == "router"
    assert router.label == ["eth0 192.168.10.1", "eth1 192.168.20.1",
                            "router: forwards rack1 <-> rack2"]
    links = {line.id: (line.tail, line.head) for line in scene.lines if line.kind == "link"}
    assert links["nl-link.router"] == ("nl-bridge.br-rack1", "nl-node.router")
    assert links["nl-link.router.eth1"] == ("nl-bridge.br-rack2", "nl-node.router")
    assert links["nl-link.worker2"] == ("nl-bridge.br-rack2", "nl-node.worker2")
    # The router is no VXLAN peer; a tunnel across the racks says it is routed.
    assert not [t for t in scene.ids("tunnel") if "router" in t]
    tunnel = next(line for line in scene.lines if line.id == "nl-tunnel.worker1.worker2")
    assert "over br-rack1, routed to br-rack2" in tunnel.tooltip
    assert "route 192.168.20.0/24 via 192.168.10.1 (router)" in \
        scene.box(element_id("node", "worker1")).tooltip
