"""Running Graphviz: DOT to SVG or PNG with Debian's ``dot``, and hover details in the SVG.

Graphviz puts a DOT ``tooltip`` on an ``<a xlink:title>`` wrapper, which not every
viewer shows; :func:`add_titles` instead writes each element's details into the
``<title>`` that SVG viewers and browsers show on hover, and drops the wrapper.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

INSTALL_HINT = "Graphviz is not installed: apt-get install graphviz (scripts/setup.sh does)"


class GraphvizError(RuntimeError):
    """``dot`` is missing or refused the input; the message says which."""


def run_dot(dot: str, fmt: str, timeout: float = 60.0) -> bytes:
    """``dot -T<fmt>`` on the DOT text; ``fmt`` is ``svg`` or ``png``."""
    binary = shutil.which("dot")
    if binary is None:
        raise GraphvizError(INSTALL_HINT)
    try:
        done = subprocess.run([binary, f"-T{fmt}"], input=dot.encode(), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise GraphvizError(f"dot took longer than {timeout:.0f}s") from err
    if done.returncode != 0:
        raise GraphvizError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def add_titles(svg: bytes | str, titles: Mapping[str, str]) -> str:
    """The SVG with each ``<g id=ID>``'s ``<title>`` set to ``titles[ID]`` and Graphviz's
    tooltip anchors unwrapped (their children moved up in place)."""
    root = ET.fromstring(svg if isinstance(svg, bytes) else svg.encode())
    for group in list(root.iter(f"{{{SVG_NS}}}g")):
        text = titles.get(group.get("id", ""))
        if text is not None:
            title = group.find(f"{{{SVG_NS}}}title")
            if title is None:
                title = ET.Element(f"{{{SVG_NS}}}title")
                group.insert(0, title)
            title.text = text
        _unwrap_anchors(group)
    return ET.tostring(root, encoding="unicode")


def _unwrap_anchors(parent: ET.Element) -> None:
    children: list[ET.Element] = []
    for child in parent:
        anchors = [a for a in child if a.tag == f"{{{SVG_NS}}}a"
                   and not a.get(f"{{{XLINK_NS}}}href")]
        if (child.tag == f"{{{SVG_NS}}}g" and child.get("id", "").startswith("a_")
                and len(anchors) == 1 and len(child) == 1):
            # <g id="a_X"><a xlink:title=...>shapes</a></g> -> the shapes, in its place.
            children.extend(anchors[0])
        else:
            children.append(child)
    parent[:] = children


def render_svg(dot: str, titles: Mapping[str, str]) -> str:
    """DOT to an SVG document (without the XML prolog) with hover titles."""
    return add_titles(run_dot(dot, "svg"), titles)
