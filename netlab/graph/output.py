"""One scene in any of the picture formats: ``svg``, ``png``, ``dot``, ``html``, ``mermaid``."""

from __future__ import annotations

from netlab.graph.dot import to_dot
from netlab.graph.graphviz import render_svg, run_dot
from netlab.graph.html import page
from netlab.graph.mermaid import to_mermaid
from netlab.graph.scene import Scene

FORMATS = ("svg", "png", "dot", "html", "mermaid")
BINARY = frozenset({"png"})
SUFFIXES = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot", ".html": "html",
            ".htm": "html", ".mmd": "mermaid", ".mermaid": "mermaid"}


def render(scene: Scene, fmt: str) -> bytes:
    """The picture as bytes (UTF-8 for the text formats). ``svg``, ``png`` and ``html``
    run Graphviz (``GraphvizError`` when it is missing or fails)."""
    if fmt == "dot":
        return to_dot(scene).encode()
    if fmt == "mermaid":
        return to_mermaid(scene).encode()
    if fmt == "png":
        return run_dot(to_dot(scene), "png")
    if fmt == "svg":
        svg = render_svg(to_dot(scene), scene.tooltips())
        return ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + svg + "\n").encode()
    if fmt == "html":  # the page shows the title and caption above the picture
        svg = render_svg(to_dot(scene, title=False), scene.tooltips())
        return page(scene.title, scene.caption, svg).encode()
    raise ValueError(f"unknown picture format {fmt!r}; one of {', '.join(FORMATS)}")


def format_for(path: str | None, fmt: str | None, default: str = "svg") -> str:
    """The format asked for, else the output file's suffix says it, else ``default``."""
    if fmt:
        return fmt
    if path:
        for suffix, name in SUFFIXES.items():
            if path.lower().endswith(suffix):
                return name
    return default
