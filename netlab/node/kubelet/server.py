"""The kubelet's HTTPS endpoint on the node's underlay address, port 10250.

What the API server (and metrics-server) reach a kubelet for, with the
kubelet API's own paths:

- ``GET /containerLogs/{namespace}/{pod}/{container}``: the container's log,
  with kubectl's options (``follow``, ``previous``, ``timestamps``,
  ``tailLines``, ``sinceSeconds``, ``sinceTime``, ``limitBytes``): the other
  end of ``kubectl logs`` (the API server's ``pods/log`` connects here);
- ``GET /stats/summary``: the Summary API (``metrics.py``);
- ``GET /pods``: the pods this kubelet runs, as a PodList;
- ``GET /healthz``: ``ok``, unauthenticated;
- ``/exec/...`` and ``/attach/...``: remote commands over WebSocket (``streaming.py``).
- ``/portForward/...``: port forwarding over WebSocket (``portforward.py``).

Everything but ``/healthz`` needs the lab's bearer token. TLS uses the
certificate in the cert directory (``certs.py``): in a lab, one the lab CA
signed for the node's address, which the API server verifies.
"""

from __future__ import annotations

import datetime
import hmac
import logging
import ssl
from collections.abc import Awaitable
from typing import Any, Callable

from aiohttp import web

from netlab.api.timefmt import parse_time
from netlab.node.kubelet import portforward, streaming
from netlab.node.kubelet.logs import LogOptions, read_log

log = logging.getLogger("netlab.kubelet.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _status(code: int, message: str) -> web.Response:
    return web.Response(status=code, text=message + "\n", content_type="text/plain")


def log_options(query: Any) -> LogOptions:
    """kubectl's log options from a query string; ValueError on a bad value."""
    def number(key: str) -> int | None:
        value = query.get(key)
        return int(value) if value not in (None, "") else None

    since = None
    seconds = number("sinceSeconds")
    if seconds is not None:
        since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    elif query.get("sinceTime"):
        since = parse_time(query["sinceTime"])
        if since is None:
            raise ValueError(f"invalid sinceTime {query['sinceTime']!r}")
    return LogOptions(follow=query.get("follow") in ("true", "1"),
                      timestamps=query.get("timestamps") in ("true", "1"),
                      tail_lines=number("tailLines"), since=since,
                      limit_bytes=number("limitBytes"))


class KubeletServer:
    """The aiohttp app. ``kubelet`` supplies the lookups (see ``Kubelet``)."""

    def __init__(self, kubelet: Any, token: str) -> None:
        self.kubelet = kubelet
        self.token = token
        self.runner: web.AppRunner | None = None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 self.token.encode()):
            return _status(401, "Unauthorized")
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        app.router.add_get("/stats/summary", self._summary)
        app.router.add_get("/pods", self._pods)
        streaming.register(app, self.kubelet)
        portforward.register(app, self.kubelet)
        return app

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self.runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=tls, reuse_address=True)
        await site.start()
        log.info("serving on %s", site.name)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _summary(self, request: web.Request) -> web.Response:
        summary = self.kubelet.summary()
        if summary is None:
            return _status(503, "no usage measured yet")
        return web.json_response(summary)

    async def _pods(self, request: web.Request) -> web.Response:
        items = [w.pod for w in self.kubelet.workers.workers.values() if w.pod is not None]
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                  "items": items})

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        try:
            opts = log_options(request.query)
        except ValueError as err:
            return _status(400, str(err))
        previous = request.query.get("previous") in ("true", "1")
        found = await self.kubelet.log_source(ns, pod, container, previous)
        if isinstance(found, tuple) and isinstance(found[0], int):
            return _status(*found)
        path, finished = found
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            async for chunk in read_log(path, opts if not previous else
                                        LogOptions(timestamps=opts.timestamps,
                                                   tail_lines=opts.tail_lines, since=opts.since,
                                                   limit_bytes=opts.limit_bytes), finished):
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the reader went away (kubectl logs -f interrupted)
        except FileNotFoundError:
            pass  # the pod was removed while we read
        return response
