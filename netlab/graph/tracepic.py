"""The picture of a trace: its hops as swimlanes, one lane per network namespace.

Built from the ``netlab.trace/v1`` document (``netlab.trace.report.to_json``), so it
draws exactly what ``netlab trace -o json`` reports, and a saved document can be
drawn later. Time runs down the page: the forward path first, then the reply,
each hop in the lane of the namespace that saw it, with its interface, its
observation point, its time since the probe was first seen, and what changed
there (DNAT, un-DNAT, SNAT, ENCAP, DECAP) or the rule that dropped or rejected it
(a NetworkPolicy drop is named as such). The verdict closes the path. Pure.

Element ids: ``nl-lane.NETNS`` (a lane), ``nl-hop.forward.N`` / ``nl-hop.reply.N``
(the Nth hop of a path), ``nl-step.forward.N`` (the line into that hop),
``nl-verdict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netlab.graph.scene import Box, Line, Scene, element_id

API_VERSION = "netlab.trace/v1"
DIRECTIONS = {"ingress": "in", "egress": "out", "forward": "fwd"}
CHANGE_FILL = {"dnat": "#fff1b8", "un-dnat": "#fff1b8", "snat": "#ffe0b8", "un-snat": "#ffe0b8",
               "encap": "#f9d4d0", "decap": "#f9d4d0"}
DROP_FILL = "#f5b7b1"


class TraceDocumentError(ValueError):
    """Not a ``netlab.trace/v1`` document."""


@dataclass
class _Lane:
    netns: str
    kind: str  # pod, node, network
    label: list[str]


def _lane_of(hop: dict[str, Any]) -> _Lane:
    netns = hop["netns"]
    if hop.get("node") is None:
        return _Lane(netns, "network", ["physical network", f"netns {netns}"])
    if hop.get("pod") and hop.get("point") in ("sent", "received"):
        return _Lane(netns, "pod", [f"pod {hop['pod']}", f"on {hop['node']}",
                                    f"netns {netns}"])
    return _Lane(netns, "node", [f"node {hop['node']}", f"netns {netns}"])


def change_text(change: dict[str, Any]) -> str:
    """A change as the trace table says it: ``DNAT 10.96.0.10:80 → 10.244.2.2:8080``."""
    kind, before, after = change.get("kind", "?"), change.get("from", ""), change.get("to", "")
    if kind == "ttl":
        return f"TTL {before}→{after}"
    if kind == "encap":
        return f"ENCAP {after}"
    if kind == "decap":
        return f"DECAP {before}"
    return f"{kind.upper()} {before} → {after}"


def _rule_text(rule: dict[str, Any]) -> str | None:
    """The label line of a rule that stopped the packet, else None."""
    action = rule.get("action")
    if action not in ("drop", "reject"):
        return None
    label = rule.get("label") or ""
    head = "POLICY DROP" if "NetworkPolicy" in label else action.upper()
    return f"{head}: {label}" if label else head


def _endpoint(packet: dict[str, Any], side: str) -> str:
    port = packet.get("sport" if side == "src" else "dport")
    return f"{packet.get(side)}:{port}" if port is not None else str(packet.get(side))


def _hop_box(hop: dict[str, Any]) -> Box:
    path, index = hop["path"], hop["hop"]
    packet = hop.get("packet") or {}
    arrow = "↓" if path == "forward" else "↑"
    head = (f"{arrow} {index}  {hop['interface']} {DIRECTIONS.get(hop['direction'], '?')} · "
            f"{hop['point']}")
    changes = [c for c in hop.get("changes") or [] if c.get("kind") != "ttl"]
    lines = [head, *(change_text(c) for c in changes)]
    stop = _rule_text(hop["rule"]) if hop.get("rule") else None
    if stop:
        lines.append(stop)
    lines.append(f"+{hop.get('offsetUs', 0):.1f} µs")
    tip = [f"{path} hop {index} at {hop['offsetUs']:.1f} µs", f"netns {hop['netns']}, "
           f"{hop['interface']} {hop['direction']} ({hop['point']})",
           f"{hop.get('pod') or hop.get('node') or 'physical network'}",
           f"{packet.get('proto', '?')} {_endpoint(packet, 'src')} → "
           f"{_endpoint(packet, 'dst')} {packet.get('summary', '')} ttl {packet.get('ttl')}",
           *(change_text(c) for c in hop.get("changes") or [])]
    outer = hop.get("outer")
    if outer:
        tip.append(f"outer {outer['src']} → {outer['dst']} udp/{outer['dport']} "
                   f"vni {outer['vni']}")
    if hop.get("rule"):
        tip.append(f"rule ({hop['rule'].get('action')}): {hop['rule'].get('label')}")
    attrs: dict[str, str] = {}
    fill = DROP_FILL if stop else next(
        (CHANGE_FILL[c["kind"]] for c in changes if c.get("kind") in CHANGE_FILL), None)
    if fill:
        attrs["fillcolor"] = fill
    if stop:
        attrs["color"] = "#a93226"
    return Box(element_id("hop", path, str(index)), "hop" if path == "forward" else "hop-reply",
               lines, "\n".join(tip), attrs=attrs)


def verdict_text(verdict: dict[str, Any]) -> str:
    result = verdict.get("result", "?")
    rtt = f", round trip {verdict['rttUs']:.0f} µs" if verdict.get("rttUs") is not None else ""
    if result == "lost":
        where = f" at {verdict['node']}" if verdict.get("node") else ""
        return f"lost after hop {verdict.get('lastHop')}{where}: {verdict.get('reason', '')}"
    return f"{result}: {verdict.get('reason', '')}{rtt}"


def _place(place: dict[str, Any]) -> str:
    addr = place.get("ip") or "?"
    if place.get("port"):
        addr += f":{place['port']}"
    if place.get("kind") == "ip":
        return addr
    prefix = "svc/" if place.get("kind") == "service" else f"{place.get('kind')} "
    return f"{prefix}{place.get('name')} ({addr})"


# Layout, in points: Graphviz's dot cannot be told the order of side-by-side clusters,
# so the lanes are placed here and pinned, and Graphviz (neato, keeping pinned nodes
# where they are) draws them and routes the lines. Widths are estimated from the
# text: about 6 points a character at the 10-point font, which errs wide.
CHAR_W, LINE_H, PAD, ROW_GAP, LANE_GAP = 5.8, 13.0, 16.0, 14.0, 12.0


def _width(lines: list[str]) -> float:
    return max((len(line) for line in lines), default=1) * CHAR_W + PAD


def _height(lines: list[str]) -> float:
    return len(lines) * LINE_H + 12.0


def _pin(box: Box, x: float, y: float, width: float | None = None,
         height: float | None = None) -> None:
    box.attrs["pos"] = f"{x / 72:.3f},{y / 72:.3f}!"
    if width is not None:
        box.attrs.update(width=f"{width / 72:.3f}", height=f"{(height or 0) / 72:.3f}",
                         fixedsize="true")


def trace_scene(doc: dict[str, Any]) -> Scene:
    """The swimlane picture of one trace document."""
    if not isinstance(doc, dict) or doc.get("apiVersion") != API_VERSION:
        raise TraceDocumentError(f"not a {API_VERSION} document (netlab trace -o json)")
    probe = doc.get("probe") or {}
    verdict = doc.get("verdict") or {}
    hops = [h for path in ("forward", "reply") for h in doc.get("hops") or []
            if h.get("path") == path]
    title = (f"trace {probe.get('proto', '?')} from {_place(doc.get('src') or {})} "
             f"to {_place(doc.get('dst') or {})}")
    caption = [f"lab {doc.get('lab')}: {verdict_text(verdict)}",
               "forward path ↓ (blue), then reply path ↑ (orange); one lane per network "
               "namespace; times since the probe was first seen"]
    caption += [f"warning: {w}" for w in doc.get("warnings") or []]
    if not hops:
        caption.append("no hop was seen")
    scene = Scene(name="trace", title=title, caption=caption, direction="TB",
                  attrs={"layout": "neato", "splines": "line", "overlap": "true",
                         "outputorder": "nodesfirst"})
    lanes: dict[str, _Lane] = {}
    for hop in hops:
        lanes.setdefault(hop["netns"], _lane_of(hop))
    lane_ids = {netns: element_id("lane", netns) for netns in lanes}
    hop_boxes = [_hop_box(hop) for hop in hops]
    verdict_lines = _wrap(verdict_text(verdict), 44)
    verdict_lane = verdict.get("netns") if verdict.get("netns") in lanes else None
    # Lane widths: the widest text in each lane.
    widths = {netns: _width(lane.label) for netns, lane in lanes.items()}
    for hop, box in zip(hops, hop_boxes):
        widths[hop["netns"]] = max(widths[hop["netns"]], _width(box.label))
    if verdict_lane:
        widths[verdict_lane] = max(widths[verdict_lane], _width(verdict_lines))
    header = max((_height(lane.label) for lane in lanes.values()), default=0.0)
    # Rows from the top, y growing downwards (negated when pinned: Graphviz's y is up).
    y = header + ROW_GAP
    rows = []
    for box in hop_boxes:
        h = _height(box.label)
        rows.append(y + h / 2)
        y += h + ROW_GAP
    verdict_h = _height(verdict_lines)
    verdict_y = y + verdict_h / 2
    total = y + verdict_h + ROW_GAP
    x = 0.0
    centres = {}
    for netns, lane in lanes.items():
        w = widths[netns] + PAD
        centres[netns] = x + w / 2
        kind = {"pod": "lane-pod", "network": "lane-network"}.get(lane.kind, "lane")
        box = Box(lane_ids[netns], kind, lane.label, "\n".join(lane.label),
                  attrs={"labelloc": "t"})
        _pin(box, centres[netns], -total / 2, w, total)
        scene.boxes.append(box)
        x += w + LANE_GAP
    for hop, box, row in zip(hops, hop_boxes, rows):
        _pin(box, centres[hop["netns"]], -row)
        scene.boxes.append(box)
    for previous, (hop, box) in zip([None, *hop_boxes], zip(hops, hop_boxes)):
        if previous is not None and previous.kind == box.kind:
            scene.lines.append(Line(element_id("step", hop["path"], str(hop["hop"])),
                                    hop["path"], previous.id, box.id,
                                    tooltip=_step_tip(hops, hop)))
    note = Box("nl-verdict", "note", verdict_lines, verdict_text(verdict),
               attrs={"fillcolor": DROP_FILL} if verdict.get("result") == "lost" else {})
    _pin(note, centres[verdict_lane] if verdict_lane else max(x - LANE_GAP, 0) / 2, -verdict_y)
    scene.boxes.append(note)
    return scene


def _step_tip(hops: list[dict[str, Any]], hop: dict[str, Any]) -> str:
    before = [h for h in hops if h["path"] == hop["path"] and h["hop"] == hop["hop"] - 1]
    delta = hop["offsetUs"] - before[0]["offsetUs"] if before else 0.0
    return f"{hop['path']} hop {hop['hop'] - 1} → {hop['hop']}: +{delta:.1f} µs"


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]
