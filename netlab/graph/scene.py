"""A drawing before it is DOT or Mermaid: boxes, lines between them, and groups.

Builders (``labpic.py``, ``tracepic.py``) decide *what* is drawn; renderers
(``dot.py``, ``mermaid.py``) decide how it is written. Every element has a
stable id made by :func:`element_id`, which becomes the SVG element's ``id``,
so a test (or a reader's script) finds ``nl-node.worker1`` in the picture
without guessing what Graphviz named it. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Characters kept as they are in an element id; "." separates the parts, and
# anything else is written as _XX (UTF-8 bytes in hex), so two different names
# never share an id and every id is a valid XML name and HTML id.
_ID_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def id_part(text: str) -> str:
    """One part of an element id: ``web-1`` stays, ``a.b`` becomes ``a_2eb``."""
    return "".join(c if c in _ID_SAFE else "".join(f"_{b:02x}" for b in c.encode())
                   for c in text)


def element_id(kind: str, *parts: str) -> str:
    """``element_id("pod", "default", "web-1")`` -> ``nl-pod.default.web-1``."""
    return ".".join([f"nl-{kind}", *(id_part(p) for p in parts)])


@dataclass
class Box:
    """Something drawn as a shape: a node, a bridge, a pod, a Service, a hop."""

    id: str
    kind: str  # node, external, bridge, subnet, pod, service, address, hop, lane, note
    label: list[str]
    tooltip: str = ""
    group: str | None = None  # the id of the Group it sits in
    attrs: dict[str, str] = field(default_factory=dict)  # renderer hints (DOT attributes)


@dataclass
class Line:
    """A connection: an underlay link, a tunnel, a pod's veth, a Service endpoint, a step."""

    id: str
    kind: str  # link, cni, veth, tunnel, endpoint, forward, reply, order
    tail: str
    head: str
    label: str = ""
    tooltip: str = ""
    directed: bool = True
    # Laid out as head -> tail but drawn pointing at head: keeps a Service below the
    # pods it points at, which is where a reader looks for it.
    layout_reversed: bool = False
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Group:
    """A box around boxes: the physical network, one node, a swimlane."""

    id: str
    kind: str  # underlay, node, services, unscheduled, lane
    label: list[str]
    tooltip: str = ""
    parent: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Scene:
    name: str  # the graph's name: the lab, or "trace"
    title: str
    caption: list[str] = field(default_factory=list)  # what the picture is drawn from
    direction: str = "TB"  # TB or LR
    boxes: list[Box] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    same_rank: list[list[str]] = field(default_factory=list)  # boxes laid out side by side
    attrs: dict[str, str] = field(default_factory=dict)  # graph-level renderer hints

    def box(self, box_id: str) -> Box:
        for box in self.boxes:
            if box.id == box_id:
                return box
        raise KeyError(box_id)

    def ids(self, kind: str | None = None) -> list[str]:
        """Every element id (of one kind), in drawing order."""
        elements: list[Group | Box | Line] = [*self.groups, *self.boxes, *self.lines]
        return [e.id for e in elements if kind is None or e.kind == kind]

    def tooltips(self) -> dict[str, str]:
        """Element id -> its hover text, for the SVG's <title>s."""
        out = {}
        labelled: list[Group | Box] = [*self.groups, *self.boxes]
        for element in labelled:
            if text := element.tooltip or "\n".join(element.label):
                out[element.id] = text
        for line in self.lines:
            if text := line.tooltip or line.label:
                out[line.id] = text
        return out
