"""``netlab graph``: a picture of a lab or a topology (see ``netlab.graph``).

Thin: find what to draw (``netlab.graph.source``), build the scene
(``netlab.graph.labpic``), render it (``netlab.graph.output``), write it.
``write_picture`` is shared with ``netlab trace -o svg|html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from netlab.cli.common import fail
from netlab.cli.complete import complete_labs
from netlab.graph.output import FORMATS


def write_picture(data: bytes, fmt: str, output_file: str | None) -> None:
    """The picture to ``output_file``, or to stdout (never binary to a terminal)."""
    if output_file:
        try:
            Path(output_file).write_bytes(data)
        except OSError as err:
            fail(f"cannot write {output_file}: {err.strerror}", 2)
        click.echo(f"wrote {output_file} ({fmt}, {len(data)} bytes)", err=True)
        return
    if fmt == "png" and sys.stdout.isatty():
        fail("a png is binary: pass --output-file FILE (or redirect stdout)", 2)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@click.command("graph")
@click.argument("target", required=False, metavar="[LAB | TOPOLOGY.yaml]",
                shell_complete=complete_labs)
@click.option("--lab", "lab", help="The lab (the same as naming it; implied when only one is up).",
              shell_complete=complete_labs)
@click.option("-o", "--output", type=click.Choice(FORMATS),
              help="Picture format; default: the --output-file suffix's, else svg.")
@click.option("--output-file", type=click.Path(dir_okay=False),
              help="Write the picture here instead of stdout.")
def graph(target: str | None, lab: str | None, output: str | None,
          output_file: str | None) -> None:
    """Draw a lab: nodes on the physical network, VXLAN tunnels, pod subnets, pods, Services.

    A running lab is drawn with its pods (name, IP) and Services (ClusterIP ->
    endpoints), read from its API; a lab that does not answer, or a topology
    file, is drawn from the topology alone, and the picture says so. svg, png
    and html need Graphviz's dot (apt-get install graphviz); html is one
    self-contained page with hover details.

    \b
    Examples:
      netlab graph -o html --output-file demo.html   # the lab that is up, one page
      netlab graph demo --output-file demo.png       # format from the suffix
      netlab graph topologies/demo.yaml -o mermaid   # a topology, before 'up'
      netlab graph demo -o dot | dot -Tpdf > demo.pdf
    """
    from netlab.graph.graphviz import GraphvizError
    from netlab.graph.labpic import lab_scene
    from netlab.graph.output import format_for, render
    from netlab.graph.source import GraphSourceError, snapshot
    from netlab.topology import TopologyError

    if target and lab and target != lab:
        fail(f"two labs named: {target} and --lab {lab}", 2)
    fmt = format_for(output_file, output)
    try:
        snap = snapshot(target or lab)
    except GraphSourceError as err:
        fail(str(err), 2)
    except TopologyError as err:
        click.echo(err.format(), err=True)
        sys.exit(2)
    scene = lab_scene(snap.plan, snap.pods, snap.services, snap.caption)
    try:
        data = render(scene, fmt)
    except GraphvizError as err:
        fail(str(err), 1)
    write_picture(data, fmt, output_file)


COMMANDS = [graph]
