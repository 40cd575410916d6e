"""One self-contained HTML page around an SVG picture.

The page carries everything inline: the SVG, a little CSS and a little script,
no external asset, and a Content-Security-Policy that forbids fetching any, so
it opens the same from a CI artifact, a mail attachment or a machine offline.

Hovering over an element shows its details (the SVG ``<title>``) in a panel
beside the picture. On load the script also marks every picture element that
the browser actually laid out with ``data-drawn="yes"`` and counts them on
``<body data-drawn-count>``, so a headless browser's DOM tells a test what was
drawn, not only what was written. Pure.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

# No fetches of any kind: inline style and script only, images only as data: URLs.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data:")

STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .2em 0; }
p.caption { margin: .1em 0; color: #555; }
main { display: flex; gap: 1em; align-items: flex-start; margin-top: .8em; }
.picture { flex: 1 1 auto; overflow: auto; border: 1px solid #ddd; padding: .5em; }
.picture svg { max-width: 100%; height: auto; }
aside { flex: 0 0 22em; position: sticky; top: 1em; border: 1px solid #ddd; padding: .6em;
        background: #fafafa; font-size: .85em; }
aside pre { white-space: pre-wrap; margin: 0; font-family: ui-monospace, monospace; }
g.node:hover > *, g.edge:hover > path, g.nl-hover > path, g.nl-hover > polygon
  { stroke-width: 2.5; }
g.node, g.edge { cursor: default; }
"""

SCRIPT = """
(function () {
  var panel = document.getElementById('nl-details');
  var hint = panel.textContent;
  var count = 0;
  document.querySelectorAll('svg [id^="nl-"]').forEach(function (el) {
    var box = el.getBBox ? el.getBBox() : null;
    if (box && (box.width > 0 || box.height > 0)) { el.setAttribute('data-drawn', 'yes'); count++; }
    var title = el.querySelector(':scope > title');
    if (!title) { return; }
    el.addEventListener('mouseenter', function () {
      panel.textContent = title.textContent;
      el.classList.add('nl-hover');
    });
    el.addEventListener('mouseleave', function () {
      panel.textContent = hint;
      el.classList.remove('nl-hover');
    });
  });
  document.body.setAttribute('data-drawn-count', String(count));
})();
"""


def page(title: str, caption: Sequence[str], svg: str) -> str:
    """The page: heading, caption, the SVG inline and the details panel."""
    captions = "\n".join(f'<p class="caption">{html.escape(line)}</p>' for line in caption)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
{captions}
<main>
<div class="picture">
{svg}
</div>
<aside><pre id="nl-details">Hover over anything in the picture for its details.</pre></aside>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""
