"""The API client: Kubernetes REST and watch over a unix socket or TCP, on aiohttp.

Every netlab component and the CLI talk to the API server through this one
client. Paths come from the resource registry (``netlab.api.resources``), so
``client.list("pods", namespace="default")`` and ``client.get("deploy", "web")``
resolve exactly as kubectl resolves them. Errors come back as ``APIError``
carrying the server's Kubernetes ``Status``.

``Client`` is async. ``SyncClient`` wraps it for the CLI and tests, with a
private event loop.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import aiohttp

from netlab.api import resources
from netlab.api.objects import decoding_many
from netlab.api.views import meta_of

JSON = "application/json"
TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",  # server-side apply; JSON is YAML
}


class APIError(Exception):
    """An error answer from the API server, with its ``Status`` object."""

    def __init__(self, code: int, status: dict[str, Any]):
        self.code = code
        self.status = status
        self.reason = status.get("reason", "")
        super().__init__(status.get("message") or f"HTTP {code}")

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409


def resource_path(resource: str | resources.Resource, namespace: str | None = None,
                  name: str | None = None, subresource: str | None = None,
                  version: str | None = None) -> str:
    """``/api/v1/namespaces/default/pods/web/log``-style paths."""
    res = resource if isinstance(resource, resources.Resource) else resources.resolve(resource)
    version = version or res.preferred_version
    base = f"/api/{version}" if res.group == "" else f"/apis/{res.group}/{version}"
    if res.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    path = f"{base}/{res.plural}"
    if name:
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path


def object_path(obj: dict[str, Any], with_name: bool = True) -> str:
    """The path of a manifest's collection (or of the object itself)."""
    res = resources.by_api_version_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
    if res is None:
        raise resources.UnknownResourceError(f"{obj.get('apiVersion')}/{obj.get('kind')}")
    version = obj["apiVersion"].rsplit("/", 1)[-1]
    meta = meta_of(obj)
    namespace = (meta.get("namespace") or "default") if res.namespaced else None
    return resource_path(res, namespace, meta.get("name") if with_name else None, version=version)


# What each component calls itself in User-Agent, as upstream's binaries do: the API
# server names a write's field manager after it (``kube-controller-manager``, not
# ``Python``), so ``--show-managed-fields`` says who wrote what.
_AGENTS = {"netlab.master.controllers": "kube-controller-manager",
           "netlab.master.scheduler": "kube-scheduler",
           "netlab.master.nodelifecycle": "kube-controller-manager",
           "netlab.node.kubelet": "kubelet", "netlab.node.proxy": "kube-proxy",
           "netlab.dns": "coredns"}


def default_user_agent() -> str:
    """``<component>/netlab`` for the program this process runs (``netlab`` for the CLI)."""
    main = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = (main.name if main else "").removesuffix(".__main__")
    return f"{_AGENTS.get(name, 'netlab')}/netlab"


class Client:
    """An async Kubernetes API client for one server."""

    def __init__(self, base_url: str = "http://localhost", unix_socket: str | None = None,
                 token: str | None = None, timeout: float = 30.0, ca_file: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.unix_socket = unix_socket
        self.token = token
        self.timeout = timeout
        self.ca_file = ca_file
        self._session: aiohttp.ClientSession | None = None

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if self.unix_socket:
                connector: aiohttp.BaseConnector = aiohttp.UnixConnector(path=self.unix_socket)
            else:
                tls = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
                connector = aiohttp.TCPConnector(limit=64, ssl=tls if tls else True)
            headers = {"User-Agent": default_user_agent()}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(
                connector=connector, headers=headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, content_type: str = JSON, accept: str = JSON,
                      raw: bool = False) -> Any:
        session = await self.session()
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        headers = {"Accept": accept}
        if data is not None:
            headers["Content-Type"] = content_type
        params = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        async with session.request(method, self.base_url + path, params=params, data=data,
                                   headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
            payload = await resp.read()
            if resp.status >= 400:
                raise APIError(resp.status, _status_of(resp.status, payload))
            if raw:
                return payload
            if not payload:
                return None
            with decoding_many():  # a list of thousands of objects decodes 3x faster
                return json.loads(payload)

    # ----------------------------------------------------------- the verbs

    async def get(self, resource: str, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> dict[str, Any]:
        return await self.request("GET", resource_path(resource, namespace, name, subresource))

    async def list(self, resource: str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, as_table: bool = False,
                   **params: Any) -> dict[str, Any]:
        params.update(labelSelector=label_selector, fieldSelector=field_selector, limit=limit)
        return await self.request("GET", resource_path(resource, namespace), params=params,
                                  accept=TABLE_ACCEPT if as_table else JSON)

    async def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        if namespace:
            obj = {**obj, "metadata": {**meta_of(obj), "namespace": namespace}}
        return await self.request("POST", object_path(obj, with_name=False), body=obj)

    async def update(self, obj: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
        path = object_path(obj) + (f"/{subresource}" if subresource else "")
        return await self.request("PUT", path, body=obj)

    async def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None,
                    patch_type: str = "merge", subresource: str | None = None) -> dict[str, Any]:
        return await self.request("PATCH", resource_path(resource, namespace, name, subresource),
                                  body=patch, content_type=PATCH_TYPES[patch_type])

    async def apply(self, obj: dict[str, Any], field_manager: str,
                    force: bool = True) -> dict[str, Any]:
        """Server-side apply of ``obj`` (a full object with apiVersion and kind)."""
        return await self.request("PATCH", object_path(obj), body=obj,
                                  content_type=PATCH_TYPES["apply"],
                                  params={"fieldManager": field_manager, "force": force})

    async def delete(self, resource: str, name: str, namespace: str | None = None, *,
                     propagation: str | None = None,
                     grace_period: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        return await self.request("DELETE", resource_path(resource, namespace, name), body=body)

    async def watch(self, resource: str, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    as_table: bool = False) -> AsyncGenerator[dict[str, Any], None]:
        """Yield watch events (``{"type": ..., "object": ...}``) until the stream ends."""
        session = await self.session()
        params = {k: _param(v) for k, v in {
            "watch": "true", "resourceVersion": resource_version,
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds, "allowWatchBookmarks": "true"}.items()
            if v is not None}
        url = self.base_url + resource_path(resource, namespace)
        accept = TABLE_ACCEPT if as_table else JSON
        async with session.get(url, params=params, headers={"Accept": accept}) as resp:
            if resp.status >= 400:
                raise APIError(resp.status, _status_of(resp.status, await resp.read()))
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)

    async def readyz(self) -> bool:
        try:
            body = await self.request("GET", "/readyz", accept="text/plain", raw=True)
        except (APIError, aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return False
        return body.strip() == b"ok"


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _status_of(code: int, payload: bytes) -> dict[str, Any]:
    try:
        status = json.loads(payload)
        if isinstance(status, dict) and status.get("kind") == "Status":
            return status
    except ValueError:
        pass
    text = payload.decode(errors="replace").strip()
    return {"kind": "Status", "status": "Failure", "code": code, "message": text or f"HTTP {code}"}


class SyncClient:
    """The same client for synchronous callers (the CLI, tests), on a private loop."""

    def __init__(self, client: Client):
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name == "watch":
            return lambda *a, **kw: self._iterate(method(*a, **kw))
        if asyncio.iscoroutinefunction(method):
            return lambda *a, **kw: self._loop.run_until_complete(method(*a, **kw))
        return method

    @property
    def client(self) -> Client:
        return self._client

    def run(self, coro: Any) -> Any:
        """Run one coroutine of the async API (e.g. ``apply_object``) to completion."""
        return self._loop.run_until_complete(coro)

    def _iterate(self, agen: AsyncGenerator[dict[str, Any], None]) -> Iterator[dict[str, Any]]:
        try:
            while True:
                try:
                    yield self._loop.run_until_complete(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._loop.run_until_complete(agen.aclose())

    def close(self) -> None:
        self._loop.run_until_complete(self._client.close())
        self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
