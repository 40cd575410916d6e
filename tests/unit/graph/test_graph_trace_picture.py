"""``netlab trace -o svg|html``: a trace document drawn as swimlanes per namespace."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from graphkit import needs_dot, trace_doc

from netlab.graph.graphviz import SVG_NS
from netlab.graph.output import render
from netlab.graph.tracepic import TraceDocumentError, trace_scene

pytestmark = pytest.mark.unit


def _pos(box) -> tuple[float, float]:
    x, y = box.attrs["pos"].rstrip("!").split(",")
    return float(x), float(y)


def test_every_hop_sits_in_its_namespaces_lane_in_time_order():
    scene = trace_scene(trace_doc())
    lanes = scene.ids("lane") + scene.ids("lane-pod") + scene.ids("lane-network")
    order = sorted(lanes, key=lambda i: _pos(scene.box(i))[0])
    # Lanes left to right in the order the probe met them.
    assert order == ["nl-lane.pic-worker1_2eweb-1", "nl-lane.pic-worker1", "nl-lane.pic-net",
                     "nl-lane.pic-worker2", "nl-lane.pic-worker2_2eweb-2"]
    hops = scene.ids("hop") + scene.ids("hop-reply")
    assert hops == [f"nl-hop.forward.{i}" for i in range(1, 7)] + \
        [f"nl-hop.reply.{i}" for i in range(1, 5)]
    ys = [_pos(scene.box(h))[1] for h in hops]
    assert ys == sorted(ys, reverse=True)  # time runs down the page
    lane_x = {lane: _pos(scene.box(lane))[0] for lane in lanes}
    assert _pos(scene.box("nl-hop.forward.4"))[0] == lane_x["nl-lane.pic-net"]
    assert _pos(scene.box("nl-hop.reply.3"))[0] == lane_x["nl-lane.pic-worker1"]


def test_hops_show_their_change_and_timing_and_paths_are_joined():
    scene = trace_scene(trace_doc())
    assert scene.box("nl-hop.forward.2").label == [
        "↓ 2  cni0 in · to-stack", "DNAT 10.96.0.20:80 → 10.244.2.2:8080", "+4.0 µs"]
    assert "ENCAP vni 1 192.168.100.3 → 192.168.100.4:4789" in scene.box("nl-hop.forward.3").label
    assert "DECAP vni 1" in scene.box("nl-hop.forward.5").label
    assert "UN-DNAT 10.244.2.2:8080 → 10.96.0.20:80" in scene.box("nl-hop.reply.3").label
    assert "outer 192.168.100.3 → 192.168.100.4 udp/4789 vni 1" in \
        scene.box("nl-hop.forward.3").tooltip
    steps = {line.id: line for line in scene.lines}
    assert [i for i in steps if steps[i].kind == "forward"] == \
        [f"nl-step.forward.{i}" for i in range(2, 7)]
    assert [i for i in steps if steps[i].kind == "reply"] == \
        [f"nl-step.reply.{i}" for i in range(2, 5)]
    assert steps["nl-step.forward.3"].tooltip == "forward hop 2 → 3: +76.0 µs"
    assert scene.box("nl-verdict").label[0].startswith("delivered: syn-ack")
    assert "round trip 175 µs" in scene.caption[0]


def test_a_policy_drop_is_named_and_the_path_ends_lost():
    doc = trace_doc(verdict={"result": "lost", "reason": "dropped: NetworkPolicy team/deny-all "
                             "(ingress)", "lastHop": 2, "node": "worker1",
                             "netns": "pic-worker1", "answer": None, "answeredBy": None,
                             "rttUs": None})
    doc["hops"] = doc["hops"][:2]
    doc["hops"][1]["rule"] = {"action": "drop", "label": "dropped: NetworkPolicy team/deny-all "
                              "(ingress)"}
    scene = trace_scene(doc)
    hop = scene.box("nl-hop.forward.2")
    assert "POLICY DROP: dropped: NetworkPolicy team/deny-all (ingress)" in hop.label
    assert hop.attrs["fillcolor"] == "#f5b7b1"
    assert scene.box("nl-verdict").tooltip.startswith("lost after hop 2 at worker1: dropped")
    doc["hops"][1]["rule"] = {"action": "reject", "label": "service default/web has no endpoints"}
    assert "REJECT: service default/web has no endpoints" in \
        trace_scene(doc).box("nl-hop.forward.2").label


def test_a_trace_with_no_hops_still_draws_and_says_so():
    scene = trace_scene(trace_doc(hops=[], verdict={"result": "lost", "reason": "no capture saw"
                                                    " it", "lastHop": None, "node": None,
                                                    "netns": None, "rttUs": None}))
    assert scene.ids("hop") == [] and "no hop was seen" in scene.caption


def test_only_a_trace_document_is_drawn():
    with pytest.raises(TraceDocumentError, match=r"netlab\.trace/v1"):
        trace_scene({"apiVersion": "v1", "kind": "Pod"})


def test_the_swimlanes_render_to_svg_with_every_hop():
    needs_dot()
    svg = render(trace_scene(trace_doc()), "svg").decode()
    root = ET.fromstring(svg.split("\n", 1)[1])
    ids = {g.get("id") for g in root.iter(f"{{{SVG_NS}}}g")}
    assert {f"nl-hop.forward.{i}" for i in range(1, 7)} <= ids
    assert {f"nl-hop.reply.{i}" for i in range(1, 5)} <= ids
    assert {"nl-step.forward.2", "nl-verdict", "nl-lane.pic-net"} <= ids
    html = render(trace_scene(trace_doc()), "html").decode()
    assert html.count('class="node hop"') == 6 and html.count('class="node hop&#45;reply"') + \
        html.count('class="node hop-reply"') == 4
    assert not re.search(r"https?://(?!www\.w3\.org/)", html)
