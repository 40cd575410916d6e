"""Helpers for the API server tests: an in-process server with a JSON client,
and small object builders."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Optional

from aiohttp.test_utils import TestClient, TestServer

from netlab.master.apiserver import Config, make_app
from netlab.master.store import Store

TOKEN = "test-token"


class Client:
    """A thin JSON client over aiohttp's TestClient."""

    def __init__(self, client: TestClient, app: Any) -> None:
        self.raw = client
        self.app = app

    async def request(self, method: str, path: str, body: Any = None, *,
                      headers: Optional[dict] = None, token: Optional[str] = TOKEN,
                      content_type: str = "application/json", data: Optional[bytes] = None,
                      **params: Any) -> tuple[int, Any]:
        hdrs = {"Accept": "application/json"}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not None or data is not None:
            hdrs["Content-Type"] = content_type
            if data is None:
                data = json.dumps(body).encode()
        hdrs.update(headers or {})
        query = {k: str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in params.items() if v is not None}
        async with self.raw.request(method, path, data=data, headers=hdrs,
                                    params=query) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text) if text else None
            except ValueError:
                return resp.status, text

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any = None, *,
                    patch_type: str = "application/merge-patch+json",
                    **kw: Any) -> tuple[int, Any]:
        return await self.request("PATCH", path, body, content_type=patch_type, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, body, **kw)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """Like ``request`` but asserts success and returns the body only; a PATCH is a
        merge patch unless ``patch_type`` says otherwise."""
        if method == "PATCH":
            kw["content_type"] = kw.pop("patch_type", "application/merge-patch+json")
        status, out = await self.request(method, path, body, **kw)
        assert status < 300, (status, out)
        return out


@contextlib.asynccontextmanager
async def serve(store: Store, **config: Any) -> AsyncIterator[Client]:
    config.setdefault("tokens", {TOKEN})
    app = make_app(store, Config(**config))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Client(client, app)


def pod(name: str, labels: Optional[dict] = None, **spec: Any) -> dict:
    body: dict = {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": name, "labels": labels or {"app": "test"}},
                  "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}
    return body


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.25") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def service(name: str, **spec: Any) -> dict:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}
    body["spec"].update(spec)
    return body


PODS = "/api/v1/namespaces/default/pods"
SERVICES = "/api/v1/namespaces/default/services"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


# --- a real listener, for kubectl and the Python client ------------------------------------------


def make_certificate(directory: Any) -> Optional[tuple[str, str]]:
    """A self-signed certificate for 127.0.0.1 (kubectl sends a bearer token only over
    TLS); None when openssl is not installed."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class ThreadedServer:
    """``make_app`` on 127.0.0.1:<free port> with TLS, in a thread with its own loop."""

    def __init__(self, store: Store, cert: str, key: str, **config: Any) -> None:
        import threading

        config.setdefault("tokens", {TOKEN})
        self.config = Config(**config)
        self.store = store
        self.cert, self.key = cert, key
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="apiserver", daemon=True)
        self._loop: Any = None
        self._stop: Any = None
        self.port = 0
        self.error: Optional[BaseException] = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _run(self) -> None:
        import asyncio

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as err:  # surfaced by start()
            self.error = err
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        import asyncio
        import socket
        import ssl

        from aiohttp import web

        runner = web.AppRunner(make_app(self.store, self.config), access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        await web.SockSite(runner, sock, ssl_context=context).start()
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def start(self) -> ThreadedServer:
        self._thread.start()
        self._ready.wait(30)
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def kubeconfig(self, path: Any, namespace: str = "default") -> str:
        import base64
        from pathlib import Path

        ca = base64.b64encode(Path(self.cert).read_bytes()).decode()
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "netlab",
            "clusters": [{"name": "netlab", "cluster": {
                "server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": "admin", "user": {"token": TOKEN}}],
            "contexts": [{"name": "netlab", "context": {
                "cluster": "netlab", "user": "admin", "namespace": namespace}}]}))
        return str(path)
