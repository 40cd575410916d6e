"""The non-resource endpoints: version, discovery, health and OpenAPI.

* ``/version``: the server's version info (``kubectl version``);
* ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>``, ``/apis/<group>/<version>``:
  legacy discovery documents, built by :mod:`netlab.api.resources`. kubectl
  asks for aggregated discovery first; a plain ``application/json`` answer
  makes it fall back to these, as it does against older servers;
* ``/healthz``, ``/livez``, ``/readyz`` (and their ``/<check>`` forms): ``ok``;
  ``/readyz`` fails until startup finished and once shutdown began;
* ``/openapi/v2``, ``/openapi/v3``, ``/openapi/v3/<path>``: served by
  :mod:`netlab.api.openapi`, imported on first use; 404 without it.
"""

from __future__ import annotations

import platform
import re
import sys
from typing import Any, Callable, Optional

from aiohttp import web

from netlab.api import errors, resources
from netlab.api.objects import dumps

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)")


def version_info(git_version: str) -> dict:
    m = _VERSION_RE.match(git_version)
    major, minor = (m.group(1), m.group(2)) if m else ("1", "0")
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(),
                                                          platform.machine())
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "compiler": "cpython",
        "platform": f"linux/{machine}",
    }


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(doc), status=status, content_type="application/json")


def is_public(path: str) -> bool:
    """Paths an unauthenticated client may read (Kubernetes' system:public-info-viewer)."""
    return path in ("/version", "/version/") or any(
        path == p or path.startswith(p + "/") for p in HEALTH_PATHS)


def health(path: str, ready: bool) -> web.Response:
    if path.startswith("/readyz") and not ready:
        return web.Response(text="[-]ready failed: reason withheld\nreadyz check failed\n",
                            status=500, content_type="text/plain")
    return web.Response(text="ok", content_type="text/plain")


def _openapi_module() -> Any:
    try:
        from netlab.api import openapi  # imported lazily: it is large and optional
    except ImportError:
        return None
    return openapi


def openapi(request: web.Request) -> web.Response:
    module = _openapi_module()
    if module is None:
        raise errors.path_not_found()
    served = module.serve_openapi(request.path, request.query,
                                  request.headers.get("Accept"),
                                  request.headers.get("If-None-Match"))
    if served.status == 404:
        raise errors.path_not_found()
    return web.Response(body=served.body or None, status=served.status,
                        headers=served.headers)


def discovery(path: str, server_address: Optional[str]) -> Optional[web.Response]:
    doc = resources.discovery_document(path, server_address)
    return None if doc is None else _json(doc)


def non_resource(request: web.Request, git_version: str, ready: bool,
                 server_address: Optional[str]) -> Optional[web.Response]:
    """The response for a non-resource path, or None when ``path`` is a resource path."""
    path = request.path
    handler: Optional[Callable[[], web.Response]] = None
    if path in ("/version", "/version/"):
        def handler() -> web.Response:
            return _json(version_info(git_version))
    elif any(path == p or path.startswith(p + "/") for p in HEALTH_PATHS):
        def handler() -> web.Response:
            return health(path, ready)
    elif path == "/openapi" or path.startswith("/openapi/"):
        def handler() -> web.Response:
            return openapi(request)
    else:
        parts = [p for p in path.split("/") if p]
        if parts in (["api"], ["apis"]) or (len(parts) == 2 and parts[0] == "apis") or \
                (len(parts) == 2 and parts[0] == "api") or \
                (len(parts) == 3 and parts[0] == "apis"):
            def handler() -> web.Response:
                found = discovery(path, server_address)
                if found is None:
                    raise errors.path_not_found()
                return found
        elif not parts or parts[0] not in ("api", "apis"):
            def handler() -> web.Response:
                raise errors.path_not_found()
    if handler is None:
        return None
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    return handler()
