"""A :class:`~netlab.graph.scene.Scene` written as a Mermaid flowchart, for Markdown
that renders Mermaid (GitHub, GitLab, many wikis).

Mermaid lays the picture out itself, so layout hints (ranks, pinned positions,
invisible ordering lines) are left out. Ids are the scene's ids reduced to
letters, digits and ``_`` (made unique); every label is a quoted string with
Mermaid's entity codes for the characters its parser would read (``"``, ``#``,
``<``, ``>``, ``&``) and ``<br/>`` between lines. Pure.
"""

from __future__ import annotations

import re

from netlab.graph.dot import BOX_STYLE
from netlab.graph.scene import Box, Group, Scene

# Mermaid's entity codes: '#' first, since the others are written with it.
_ENTITIES = (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("&", "#amp;"))
_SHAPES = {"pod": '("{}")', "pod-pending": '("{}")', "service": '{{{{"{}"}}}}',
           "bridge": '[["{}"]]', "subnet": '[/"{}"/]', "note": '>"{}"]'}
_LINKS = {"link": "---", "cni": "---", "veth": "---", "tunnel": "-.-", "endpoint": "-.->",
          "endpoint-unready": "-.->", "forward": "-->", "reply": "-->"}


def text(value: str) -> str:
    """A label's text, safe inside Mermaid's double quotes."""
    for raw, code in _ENTITIES:
        value = value.replace(raw, code)
    return value.replace("\r", "").replace("\n", "<br/>")


class _Ids:
    def __init__(self) -> None:
        self.known: dict[str, str] = {}

    def __call__(self, element_id: str) -> str:
        if element_id not in self.known:
            base = re.sub(r"[^A-Za-z0-9]+", "_", element_id).strip("_") or "n"
            candidate, n = base, 1
            while candidate in self.known.values():
                n += 1
                candidate = f"{base}_{n}"
            self.known[element_id] = candidate
        return self.known[element_id]


def _box(box: Box, ids: _Ids, indent: str) -> str:
    label = text("\n".join(box.label))
    return indent + ids(box.id) + _SHAPES.get(box.kind, '["{}"]').format(label)


def _group(scene: Scene, group: Group, ids: _Ids, depth: int) -> list[str]:
    indent = "  " * depth
    out = [f'{indent}subgraph {ids(group.id)}["{text(" / ".join(group.label))}"]']
    out += [_box(b, ids, indent + "  ") for b in scene.boxes if b.group == group.id]
    for child in scene.groups:
        if child.parent == group.id:
            out += _group(scene, child, ids, depth + 1)
    out.append(f"{indent}end")
    return out


def _class_name(kind: str) -> str:
    return "k_" + re.sub(r"[^A-Za-z0-9]", "_", kind)


def to_mermaid(scene: Scene) -> str:
    """The scene as a Mermaid ``flowchart`` with a title and the caption as comments."""
    ids = _Ids()
    title = " / ".join([scene.title, *scene.caption])
    out = ["---", 'title: "' + title.replace("\\", "\\\\").replace('"', '\\"') + '"', "---",
           f"flowchart {scene.direction if scene.direction in ('TB', 'LR') else 'TB'}"]
    out += [f"  %% {line.replace('%%', '%')}" for line in scene.caption]
    for group in scene.groups:
        if group.parent is None:
            out += _group(scene, group, ids, 1)
    grouped = {g.id for g in scene.groups}
    out += [_box(b, ids, "  ") for b in scene.boxes if b.group not in grouped]
    for line in scene.lines:
        link = _LINKS.get(line.kind)
        if link is None:  # layout-only lines
            continue
        label = f'|"{text(line.label)}"|' if line.label else ""
        out.append(f"  {ids(line.tail)} {link}{label} {ids(line.head)}")
    kinds: dict[str, list[str]] = {}
    for box in scene.boxes:
        kinds.setdefault(box.kind, []).append(ids(box.id))
    for kind, members in kinds.items():
        style = BOX_STYLE.get(kind, {})
        fill, stroke = style.get("fillcolor"), style.get("color")
        if fill or stroke:
            parts = [f"fill:{fill}" if fill else "", f"stroke:{stroke}" if stroke else ""]
            out.append(f"  classDef {_class_name(kind)} {','.join(p for p in parts if p)}")
            out.append(f"  class {','.join(members)} {_class_name(kind)}")
    return "\n".join(out) + "\n"
