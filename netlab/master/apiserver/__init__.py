"""netlab's Kubernetes-compatible API server (the master's API server: see docs/architecture.md).

``make_app(store, config)`` builds the aiohttp application that kubectl, the
Python ``kubernetes`` client and netlab's own components talk to; ``Config``
holds its settings and ``LogRequest``/``LogUnavailable`` form the hook through
which ``pods/log`` reaches kubelets. The process entry point and the listeners
live in ``__main__`` and ``listeners``.

Module map: ``app`` (routing, middleware, startup), ``request`` (paths,
negotiation, bodies), ``handlers`` (verbs), ``listing`` and ``watch`` (reads),
``storage`` (the generic registry), ``strategy`` (per-kind behaviour),
``deletion`` (graceful deletion, finalizers, cascading, namespaces),
``subresources`` (scale, binding, log), ``allocators`` (ClusterIP/NodePort),
``conversion`` (served versions), ``render`` (response bodies), ``discovery``
(version, discovery, health, OpenAPI), ``bootstrap`` (initial objects).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netlab.master.apiserver.app import make_app
    from netlab.master.apiserver.config import Config, LogFetcher, LogRequest, LogUnavailable

__all__ = ["Config", "LogFetcher", "LogRequest", "LogUnavailable", "make_app"]


def __getattr__(name: str) -> Any:
    """The package's names, imported on first use: ``python -m netlab.master.apiserver``
    imports this package before its ``__main__``, which binds the API server's
    listener first and only then imports the API (half a second of CPU), so that the
    components starting alongside it queue on the socket instead of being refused."""
    if name == "make_app":
        from netlab.master.apiserver.app import make_app

        return make_app
    if name in ("Config", "LogFetcher", "LogRequest", "LogUnavailable"):
        from netlab.master.apiserver import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
