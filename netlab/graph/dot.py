"""A :class:`~netlab.graph.scene.Scene` written as Graphviz DOT.

Every element carries its scene id as DOT ``id`` (Graphviz writes it on the SVG
element) and its kind as ``class``, so the SVG can be styled and searched by
what things are. Text is escaped for DOT's quoted strings (backslash and quote)
and for the entities Graphviz expands in them (``&``), so a name with odd
characters is drawn as written. Pure.
"""

from __future__ import annotations

import html

from netlab.graph.scene import Box, Group, Line, Scene

FONT = "Helvetica,Arial,sans-serif"

# How each kind of element looks. Builders may add attributes per element.
BOX_STYLE: dict[str, dict[str, str]] = {
    "bridge": {"shape": "box", "style": "filled,bold", "fillcolor": "#c9d9f2",
               "color": "#3d6bb3"},
    "node": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#ffffff",
             "color": "#555555"},
    "external": {"shape": "box", "style": "rounded,filled,dashed", "fillcolor": "#ffffff",
                 "color": "#777777"},
    "router": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#fdebd0",
               "color": "#b9770e"},
    "subnet": {"shape": "folder", "style": "filled", "fillcolor": "#e3f1e5", "color": "#4f8f5b"},
    "pod": {"shape": "box", "style": "rounded,filled", "fillcolor": "#cdebd1",
            "color": "#3c7d48"},
    "pod-pending": {"shape": "box", "style": "rounded,filled,dashed", "fillcolor": "#f2f2f2",
                    "color": "#999999"},
    "service": {"shape": "box", "style": "filled", "fillcolor": "#ffefc2", "color": "#b8860b"},
    "address": {"shape": "box", "style": "dashed", "color": "#999999"},
    "lane": {"shape": "box", "style": "filled", "fillcolor": "#f6f8fb", "color": "#c8d0dc",
             "fontsize": "11"},
    "lane-pod": {"shape": "box", "style": "filled", "fillcolor": "#eef8ef", "color": "#b9d8bd",
                 "fontsize": "11"},
    "lane-network": {"shape": "box", "style": "filled", "fillcolor": "#eef3fb",
                     "color": "#b3c6e6", "fontsize": "11"},
    "hop": {"shape": "box", "style": "rounded,filled", "fillcolor": "#ffffff",
            "color": "#1f5fa8"},
    "hop-reply": {"shape": "box", "style": "rounded,filled", "fillcolor": "#ffffff",
                  "color": "#c05a00"},
    "spacer": {"shape": "point", "style": "invis", "width": "0", "height": "0"},
    "mesh": {"shape": "box", "style": "filled,dashed", "fillcolor": "#fbe3e0", "color": "#c0392b",
             "fontcolor": "#8e2a20"},
    "note": {"shape": "note", "style": "filled", "fillcolor": "#fff8e6", "color": "#b8860b"},
}
LINE_STYLE: dict[str, dict[str, str]] = {
    "link": {"dir": "none", "color": "#3d6bb3", "penwidth": "2"},
    "cni": {"dir": "none", "color": "#4f8f5b"},
    "veth": {"dir": "none", "color": "#3c7d48"},
    "tunnel": {"dir": "both", "style": "dashed", "color": "#c0392b", "fontcolor": "#c0392b",
               "penwidth": "1.6", "constraint": "false", "arrowsize": "0.6"},
    "endpoint": {"style": "dotted", "color": "#b8860b", "fontcolor": "#8a6508",
                 "arrowsize": "0.7"},
    "endpoint-unready": {"style": "dotted", "color": "#aaaaaa", "fontcolor": "#888888",
                         "arrowsize": "0.7"},
    "forward": {"color": "#1f5fa8", "penwidth": "1.6", "fontcolor": "#1f5fa8"},
    "reply": {"color": "#c05a00", "penwidth": "1.6", "fontcolor": "#c05a00"},
    "order": {"style": "invis"},
}
GROUP_STYLE: dict[str, dict[str, str]] = {
    "underlay": {"style": "filled,rounded", "fillcolor": "#eef3fb", "color": "#3d6bb3"},
    "node": {"style": "filled,rounded", "fillcolor": "#f7f7f7", "color": "#888888"},
    "external": {"style": "filled,rounded,dashed", "fillcolor": "#fbfbfb", "color": "#999999"},
    "router": {"style": "filled,rounded", "fillcolor": "#fef9f2", "color": "#b9770e"},
    "services": {"style": "filled,rounded", "fillcolor": "#fffaf0", "color": "#b8860b"},
    "unscheduled": {"style": "dashed,rounded", "color": "#999999"},
}


def quote(text: str) -> str:
    """A DOT quoted string showing ``text`` as written; newlines become line breaks."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f"{k}={quote(v)}" for k, v in attrs.items())


def _title_label(scene: Scene) -> str:
    # An HTML-like label: the title larger than the caption under it.
    rows = [f'<font point-size="16"><b>{html.escape(scene.title)}</b></font>']
    rows += [f'<font point-size="11">{html.escape(line)}</font>' for line in scene.caption]
    return "<" + "<br/>".join(rows) + ">"


def _box(box: Box, indent: str) -> str:
    kind_style = BOX_STYLE.get(box.kind, {})
    attrs = {"id": box.id, "class": box.kind, "label": "\n".join(box.label),
             **kind_style, **box.attrs}
    if box.tooltip:
        attrs["tooltip"] = box.tooltip
    return f"{indent}{quote(box.id)} [{_attrs(attrs)}];"


def _line(line: Line) -> str:
    attrs = {"id": line.id, "class": line.kind, **LINE_STYLE.get(line.kind, {}), **line.attrs}
    if line.label:
        attrs["label"] = line.label
    if line.tooltip or line.label:
        attrs["tooltip"] = line.tooltip or line.label
    if not line.directed:
        attrs.setdefault("dir", "none")
    tail, head = line.tail, line.head
    if line.layout_reversed:
        tail, head = head, tail
        drawn = attrs.get("dir", "forward")
        attrs["dir"] = {"forward": "back", "back": "forward"}.get(drawn, drawn)
    return f"  {quote(tail)} -> {quote(head)} [{_attrs(attrs)}];"


def _group(scene: Scene, group: Group, depth: int) -> list[str]:
    indent = "  " * depth
    attrs = {"id": group.id, "class": group.kind, "label": "\n".join(group.label),
             **GROUP_STYLE.get(group.kind, {}), **group.attrs}
    if group.tooltip:
        attrs["tooltip"] = group.tooltip
    out = [f"{indent}subgraph {quote('cluster_' + group.id)} {{"]
    out += [f"{indent}  {k}={quote(v)};" for k, v in attrs.items()]
    out += [_box(b, indent + "  ") for b in scene.boxes if b.group == group.id]
    for child in scene.groups:
        if child.parent == group.id:
            out += _group(scene, child, depth + 1)
    out.append(f"{indent}}}")
    return out


def to_dot(scene: Scene, title: bool = True) -> str:
    """The scene as a DOT digraph, ready for ``dot -Tsvg``; ``title=False`` leaves the
    title and caption to the page around it."""
    graph = {"id": "nl-graph", "rankdir": scene.direction, "labelloc": "t",
             "fontname": FONT, "bgcolor": "white", "newrank": "true", "nodesep": "0.35",
             "ranksep": "0.45", "pad": "0.3", **scene.attrs}
    lines = [f"digraph {quote(scene.name)} {{",
             f"  graph [{_attrs(graph)}"
             + (f", label={_title_label(scene)}];" if title else "];"),
             f'  node [fontname="{FONT}", fontsize="10", margin="0.12,0.06"];',
             f'  edge [fontname="{FONT}", fontsize="9"];']
    for group in scene.groups:
        if group.parent is None:
            lines += _group(scene, group, 1)
    grouped = {g.id for g in scene.groups}
    lines += [_box(b, "  ") for b in scene.boxes if b.group not in grouped]
    for ids in scene.same_rank:
        lines.append("  { rank=same; " + " ".join(quote(i) + ";" for i in ids) + " }")
    lines += [_line(line) for line in scene.lines]
    lines.append("}")
    return "\n".join(lines) + "\n"
