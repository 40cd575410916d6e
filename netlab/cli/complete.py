"""Shell completion: ``netlab completion bash|zsh|fish`` and the names it completes.

click generates the shell side; this module gives the arguments their candidates,
read from what the lab recorded, never from a slow or failing source:

* labs: the state directories (``--lab``, ``down``, ``status``);
* nodes: the lab's recorded nodes (``shell``, ``proxy show``, ``fault``);
* pods: the runtime's sandbox records, ``NAME`` in the namespace given with ``-n``
  and ``NS/NAME`` otherwise (``logs``, ``exec``, ``capture``, ``trace``);
* Services: the lab's API over its unix socket, with a short timeout (``svc/NAME``
  and ``dns/NAME`` for ``trace``, and ``dns lookup``);
* images: the image store's index (``image rm``).

A completer never raises: whatever goes wrong, the shell gets no candidates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import click
from click.shell_completion import CompletionItem

from netlab.api.views import meta_of

SHELLS = ("bash", "zsh", "fish")
Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _safe(fn: Callable[[click.Context, str], Iterable[str]]) -> Completer:
    def complete(ctx: click.Context, _param: click.Parameter,
                 incomplete: str) -> list[CompletionItem]:
        try:
            return [CompletionItem(c) for c in sorted(set(fn(ctx, incomplete)))
                    if c.startswith(incomplete)]
        except Exception:
            return []
    return complete


def _lab(ctx: click.Context) -> str | None:
    from netlab.lab.state import LabError, implied_lab

    params: dict[str, Any] = ctx.params
    try:
        return implied_lab(params.get("lab"))
    except LabError:
        return None


def _labs(_ctx: click.Context, _incomplete: str) -> Iterable[str]:
    from netlab.lab.state import list_labs

    return list_labs()


def _nodes(ctx: click.Context, _incomplete: str) -> Iterable[str]:
    from netlab.lab.state import load_state

    lab = _lab(ctx)
    state = load_state(lab) if lab else None
    return [str(n.get("name")) for n in (state.nodes if state else [])]


def _pods(ctx: click.Context, _incomplete: str) -> Iterable[str]:
    from netlab.node.runtime.sandbox import list_sandboxes

    lab = _lab(ctx)
    if lab is None:
        return []
    namespace = ctx.params.get("namespace") or "default"
    return [sb.name if sb.namespace == namespace else f"{sb.namespace}/{sb.name}"
            for sb in list_sandboxes(lab)]


def _services(ctx: click.Context, _incomplete: str) -> list[str]:
    from netlab.client import SyncClient, lab_client

    lab = _lab(ctx)
    if lab is None:
        return []
    namespace = ctx.params.get("namespace") or "default"
    with SyncClient(lab_client(lab, timeout=2.0)) as client:
        items = client.list("services")["items"]
    return [m["name"] if m.get("namespace") == namespace else f"{m.get('namespace')}/{m['name']}"
            for m in (meta_of(i) for i in items)]


def _images(_ctx: click.Context, _incomplete: str) -> Iterable[str]:
    from netlab.images.store import ImageStore

    return ImageStore().names()


def _targets(ctx: click.Context, incomplete: str) -> Iterable[str]:
    return [*_nodes(ctx, incomplete), *_pods(ctx, incomplete)]


def _trace_targets(ctx: click.Context, incomplete: str) -> Iterable[str]:
    found = list(_targets(ctx, incomplete))
    if incomplete.startswith(("svc/", "dns/")):
        with contextlib.suppress(Exception):
            found += [incomplete[:4] + s for s in _services(ctx, incomplete)]
    return [*found, "dns", "svc/", "dns/"]


complete_images = _safe(_images)
complete_labs = _safe(_labs)
complete_nodes = _safe(_nodes)
complete_pods = _safe(_pods)
complete_services = _safe(_services)
complete_targets = _safe(_targets)
complete_trace_targets = _safe(_trace_targets)


def script(shell: str, program: click.Command, name: str = "netlab") -> str:
    """The completion script click generates for ``shell``."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:
        raise click.BadParameter(f"{shell!r}: use one of {', '.join(SHELLS)}")
    return cls(program, {}, name, "_NETLAB_COMPLETE").source()
