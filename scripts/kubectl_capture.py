"""Capture what kubectl sends: ``python scripts/kubectl_capture.py PORT LOG``.

Serves netlab's API server (memory store) on plain http://127.0.0.1:PORT and appends
one JSON line per request to LOG: method, path, query, Content-Type, Accept and the
body in hex. Point a kubectl at it with ``--server http://127.0.0.1:PORT``. Requests
are let through as the lab administrator (kubectl sends no token over plain HTTP).
Used to record the protobuf fixtures of tests/unit/apiserver/data.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from aiohttp import web

from netlab.master.apiserver.app import make_app
from netlab.master.apiserver.config import APIServerConfig
from netlab.master.store import MemoryStore

TOKEN = "capture-token"


def main() -> None:
    port, log_path = int(sys.argv[1]), sys.argv[2]
    app = make_app(MemoryStore(), APIServerConfig(tokens={TOKEN}))

    @web.middleware
    async def capture(request: web.Request, handler: Any) -> web.StreamResponse:
        request = request.clone(headers={**request.headers,
                                         "Authorization": f"Bearer {TOKEN}"})
        body = await request.read()
        with open(log_path, "a") as log:
            log.write(json.dumps({
                "method": request.method, "path": request.path,
                "query": request.query_string,
                "ctype": request.headers.get("Content-Type", ""),
                "accept": request.headers.get("Accept", ""),
                "body": body.hex()}) + "\n")
        return await handler(request)

    app.middlewares.insert(0, capture)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
