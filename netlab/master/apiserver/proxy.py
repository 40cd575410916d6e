"""``pods/proxy`` and ``services/proxy``: HTTP forwarded by the API server to a pod.

``/api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy/PATH`` and
``/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORTNAME|PORT]/proxy/PATH`` reach
``PATH`` (query string, method, body and headers too) on a pod, as kube-apiserver's
ProxyREST does: the resource's ``ResourceLocation`` picks the address, and the request
is forwarded there. The API server runs in the control-plane node's namespace, which
reaches every pod IP over the overlay, so it connects to the pod directly (as
kube-apiserver does for these two subresources; only ``nodes/proxy`` goes through a
kubelet).

* A pod: its IP; the given port, else the first declared container port, else 80
  (no port in the URL). A named port is resolved from the containers' ports.
* A service: the port (a number is turned into the service port's name, as upstream
  does), then a ready endpoint chosen at random from the Service's EndpointSlices
  carrying that port name, among those whose ``targetRef`` is a Pod with that address
  (upstream's check); none is 503 ``no endpoints available for service "web"``.

Errors are upstream's Statuses: ``invalid pod request "a:b:c:d"`` (400), the object's
own 404, ``address not allowed`` (400, a pod without an IP), 503 when nothing answers
(``error trying to reach service: ...``). The client's credentials (``Authorization``,
``Impersonate-*``) and hop-by-hop headers are not forwarded, as the API server drops
them after authenticating. HTTP only: no WebSocket or other upgrades, and unlike
kube-apiserver, links in HTML answers are not rewritten.

``parse_proxy_path``, ``split_scheme_name_port``, ``pod_location`` and
``service_location`` are pure and unit-tested; ``serve`` does the I/O.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from yarl import URL

from netlab.api import errors, resources
from netlab.api.objects import loads
from netlab.api.views import labels_of
from netlab.master.apiserver import storage
from netlab.master.store import Store

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
VALID_SCHEMES = ("", "http", "https")
# Hop-by-hop headers (RFC 9110 7.6.1) and what a proxy must not pass on; the client's
# credentials stop at the API server.
_DROP_REQUEST = frozenset({"connection", "keep-alive", "proxy-authenticate",
                           "proxy-authorization", "te", "trailer", "transfer-encoding",
                           "upgrade", "host", "authorization", "content-length"})
# The answer's Content-Length stays: its bytes pass unchanged (not decompressed), and a
# HEAD answer must keep the length it announces.
_DROP_RESPONSE = frozenset({"connection", "keep-alive", "proxy-authenticate",
                            "proxy-authorization", "te", "trailer", "transfer-encoding",
                            "upgrade"})
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class ProxyPath:
    """What a proxy URL names: ``resource`` is ``pods`` or ``services``; ``id`` the
    ``[scheme:]name[:port]`` segment; ``path`` the rest, raw (``""`` for ``.../proxy``)."""

    namespace: str
    resource: str
    id: str
    path: str


@dataclass(frozen=True)
class Location:
    scheme: str
    host: str
    port: Optional[int]

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = f"{host}:{self.port}" if self.port is not None else host
        return f"{self.scheme or 'http'}://{netloc}{path or '/'}"


def parse_proxy_path(raw_path: str) -> Optional[ProxyPath]:
    """The proxy request at ``raw_path`` (still percent-encoded); None when it is not
    one."""
    parts = raw_path.split("/")
    # "", "api", "v1", "namespaces", NS, RESOURCE, ID, "proxy", rest...
    if len(parts) < 8 or parts[:4] != ["", "api", "v1", "namespaces"] or \
            parts[5] not in ("pods", "services") or parts[7] != "proxy":
        return None
    namespace, ident = unquote(parts[4]), unquote(parts[6])
    if not namespace or not ident:
        return None
    rest = parts[8:]
    return ProxyPath(namespace, parts[5], ident, "/" + "/".join(rest) if rest else "")


def split_scheme_name_port(ident: str, what: str) -> tuple[str, str, str]:
    """``utilnet.SplitSchemeNamePort``: ``name``, ``name:port`` or ``scheme:name:port``;
    400 ``invalid pod request "..."`` (``what``: pod or service) otherwise."""
    parts = ident.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        scheme, name, port = "", "", ""
    if not name or scheme not in VALID_SCHEMES:
        raise errors.bad_request(f'invalid {what} request "{ident}"')
    return scheme, name, port


def _port_number(port: str, what: str, ident: str) -> Optional[int]:
    if not port:
        return None
    if port.isdigit() and 0 < int(port) < 65536:
        return int(port)
    raise errors.bad_request(f'invalid {what} request "{ident}"')


def pod_location(pod: Mapping[str, Any], ident: str) -> Location:
    """Where a pod proxy request goes (the pod strategy's ``ResourceLocation``)."""
    scheme, _, port = split_scheme_name_port(ident, "pod")
    containers = [c for c in (pod.get("spec") or {}).get("containers") or []
                  if isinstance(c, dict)]
    declared = [p for c in containers for p in c.get("ports") or [] if isinstance(p, dict)]
    if not port and declared:
        port = str(declared[0].get("containerPort", ""))
    elif port and not port.isdigit():  # a named container port
        named = next((p for p in declared if p.get("name") == port), None)
        if named is None:
            raise errors.bad_request(f'invalid pod request "{ident}": no container port '
                                     f'named "{port}"')
        port = str(named.get("containerPort", ""))
    ip = str((pod.get("status") or {}).get("podIP") or "")
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise errors.bad_request("address not allowed") from None
    # netutils' IsGlobalUnicast: private pod addresses are global unicast, loopback,
    # link-local and multicast are not.
    if address.is_loopback or address.is_link_local or address.is_multicast or \
            address.is_unspecified:
        raise errors.bad_request("address not allowed")
    return Location(scheme, ip, _port_number(port, "pod", ident))


def service_location(service: Mapping[str, Any], slices: Sequence[Mapping[str, Any]],
                     ident: str, rng: Optional[random.Random] = None) -> Location:
    """Where a service proxy request goes (the service REST's ``ResourceLocation``,
    over EndpointSlices): a ready endpoint, at random, of the port asked for."""
    scheme, name, port = split_scheme_name_port(ident, "service")
    port_name = port
    if port.isdigit():
        wanted = int(port)
        match = next((p for p in (service.get("spec") or {}).get("ports") or []
                      if isinstance(p, dict) and p.get("port") == wanted), None)
        if match is None:
            raise errors.service_unavailable(
                f'no service port {wanted} found for service "{name}"')
        port_name = str(match.get("name") or "")
    candidates: list[tuple[str, int]] = []
    any_ready = False
    for eps in slices:
        ready = [str(a) for e in eps.get("endpoints") or [] if isinstance(e, dict)
                 and (e.get("conditions") or {}).get("ready") is not False
                 for a in (e.get("addresses") or [])[:1]]
        any_ready = any_ready or bool(ready)
        for p in eps.get("ports") or []:
            if isinstance(p, dict) and str(p.get("name") or "") == port_name and \
                    isinstance(p.get("port"), int):
                candidates += [(a, p["port"]) for a in ready]
    if not candidates:
        raise errors.service_unavailable(
            f'no endpoints available for service "{ident if any_ready else name}"')
    host, number = (rng or random).choice(candidates)
    return Location(scheme, host, number)


def pod_endpoints_only(slices: Sequence[Mapping[str, Any]], pods: Mapping[str, Mapping[str, Any]]
                       ) -> list[dict[str, Any]]:
    """The slices with only the endpoints that are what they claim: a ``targetRef`` to a
    Pod (``pods``: by name) that has that address, as upstream's ``isValidAddress``
    checks, so that a hand-written EndpointSlice cannot point the API server elsewhere."""
    out = []
    for eps in slices:
        kept = []
        for e in eps.get("endpoints") or []:
            ref = e.get("targetRef") if isinstance(e, dict) else None
            if not isinstance(ref, dict) or ref.get("kind") != "Pod":
                continue
            status = (pods.get(str(ref.get("name"))) or {}).get("status") or {}
            ips = {str(i.get("ip")) for i in status.get("podIPs") or [] if isinstance(i, dict)}
            ips.add(str(status.get("podIP") or ""))
            addresses = [str(a) for a in e.get("addresses") or []]
            if addresses and addresses[0] in ips:
                kept.append(e)
        out.append({**eps, "endpoints": kept})
    return out


# --- serving ----------------------------------------------------------------------------------

_KINDS = {"pods": "Pod", "services": "Service"}


async def _get(store: Store, plural: str, namespace: str, name: str) -> dict:
    kv = await storage.get_kv(store, resources.builtin(_KINDS[plural]), namespace, name)
    obj = loads(kv.value)
    if not isinstance(obj, dict):
        raise errors.not_found(plural, name)
    return obj


async def _slices(store: Store, namespace: str, service: str) -> list[dict]:
    listed = await store.alist(resources.store_prefix("endpointslices", namespace))
    out = []
    for kv in listed.items:
        obj = loads(kv.value)
        if isinstance(obj, dict) and labels_of(obj).get(SERVICE_NAME_LABEL) == service:
            out.append(obj)
    return out


async def locate(store: Store, target: ProxyPath) -> Location:
    what = "pod" if target.resource == "pods" else "service"
    _, name, _ = split_scheme_name_port(target.id, what)
    obj = await _get(store, target.resource, target.namespace, name)
    if target.resource == "pods":
        return pod_location(obj, target.id)
    slices = await _slices(store, target.namespace, name)
    pods = {}
    for ref in {str((e.get("targetRef") or {}).get("name")) for eps in slices
                for e in eps.get("endpoints") or [] if isinstance(e, dict)
                and isinstance(e.get("targetRef"), dict)}:
        with contextlib.suppress(errors.APIError):
            pods[ref] = await _get(store, "pods", target.namespace, ref)
    return service_location(obj, pod_endpoints_only(slices, pods), target.id)


def forwarded_headers(headers: Mapping[str, str], client: Optional[str]) -> dict[str, str]:
    out = {k: v for k, v in headers.items()
           if k.lower() not in _DROP_REQUEST and not k.lower().startswith("impersonate-")}
    if client:
        prior = headers.get("X-Forwarded-For")
        out["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
    return out


class Forwarder:
    """The API server's one client session for proxied requests: made at the first one,
    closed with the app (:meth:`close`). Every connection is still new (the pod behind
    an address changes), and no cookie is kept: one client's cookies must never ride
    along on another's request."""

    def __init__(self) -> None:
        self._session: Optional[aiohttp.ClientSession] = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False, force_close=True),
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def serve(request: web.Request, store: Store,
                forwarder: Forwarder) -> Optional[web.StreamResponse]:
    """Forward a proxy request (on ``forwarder``'s session) and stream the answer back;
    None when the path is not a proxy path."""
    target = parse_proxy_path(request.rel_url.raw_path)
    if target is None:
        return None
    location = await locate(store, target)
    url = location.url(target.path)
    query = request.rel_url.raw_query_string
    if query:
        url += "?" + query
    body = await request.read()
    try:
        upstream = await forwarder.session.request(
            request.method, URL(url, encoded=True),
            headers=forwarded_headers(request.headers, request.remote),
            data=body or None, allow_redirects=False)
    except (aiohttp.ClientError, OSError) as err:
        raise errors.service_unavailable(
            f"error trying to reach service: {err or type(err).__name__}") from None
    try:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        chunked = "transfer-encoding" in {k.lower() for k in upstream.headers}
        for key, value in upstream.headers.items():
            if key.lower() not in _DROP_RESPONSE and not (
                    chunked and key.lower() == "content-length"):
                response.headers.add(key, value)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            pass  # either side went away mid-answer: nothing more to send
        return response
    finally:
        upstream.release()
