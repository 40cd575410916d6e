"""Pictures of labs and traces: ``netlab graph`` and ``netlab trace -o svg|html``.

A picture is built in two pure steps and one rendering step:

1. a builder turns what is known into a :class:`~netlab.graph.scene.Scene`, a
   renderer-neutral drawing (boxes, lines, groups, hover details):
   ``labpic.py`` from a lab's address plan and, for a running lab, its pods and
   Services; ``tracepic.py`` from a ``netlab.trace/v1`` document;
2. ``dot.py`` writes a Scene as Graphviz DOT, ``mermaid.py`` as a Mermaid flowchart;
3. ``graphviz.py`` runs Debian's ``dot`` for SVG and PNG and puts the hover details
   into the SVG, and ``html.py`` wraps that SVG in one self-contained page.

Only ``source.py`` reads a lab (its state record and its API); everything else here
is data in, text out, unit-tested without root.
"""
