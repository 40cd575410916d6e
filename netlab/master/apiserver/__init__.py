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

from netlab.master.apiserver.app import make_app
from netlab.master.apiserver.config import Config, LogFetcher, LogRequest, LogUnavailable

__all__ = ["Config", "LogFetcher", "LogRequest", "LogUnavailable", "make_app"]
