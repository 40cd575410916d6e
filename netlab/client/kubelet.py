"""How the API server reaches a kubelet: Kubernetes' ``pkg/kubelet/client`` in small.

The API server serves ``pods/log`` by connecting to the kubelet of the pod's
node: the Node's ``InternalIP`` and ``status.daemonEndpoints.kubeletEndpoint``
port (10250), over HTTPS, with the lab's bearer token. It runs in the
control-plane node's namespace, so every node's underlay address is
reachable. ``kubelet_tls(ca_file)`` is the TLS the API server speaks to kubelets:
given kube-apiserver's ``--kubelet-certificate-authority`` (a lab passes its CA,
which signs every kubelet's serving certificate for the node's address), the
certificate must chain to it and name the address dialled; without it, nothing is
verified, kube-apiserver's default.

``open_container_log`` connects before returning, so a refused connection or a
kubelet's error is an exception (``KubeletError``) before any byte of the
answer is sent, and the caller can turn it into a proper Status. It imports
only aiohttp: the API server pays nothing else for it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any, Optional

import aiohttp

from netlab.api.views import name_of, status_of

DEFAULT_PORT = 10250


class KubeletError(Exception):
    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def kubelet_address(node: Optional[dict[str, Any]]) -> tuple[str, int]:
    """The (host, port) a Node object advertises for its kubelet."""
    status = status_of(node or {})
    name = name_of(node or {})
    host = next((a.get("address") for a in status.get("addresses") or []
                 if a.get("type") == "InternalIP"), None)
    if not host:
        raise KubeletError(f'node "{name}" has no InternalIP address: is its kubelet running?')
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    return host, int(port or DEFAULT_PORT)


def kubelet_tls(ca_file: Optional[str] = None) -> ssl.SSLContext:
    """Verify kubelets against ``ca_file`` (hostname checks match the IP SAN against
    the address dialled); None: verify nothing."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _session(token: str, tls: Optional[ssl.SSLContext],
             connect_timeout: float) -> aiohttp.ClientSession:
    """A session for one kubelet connection: the lab's bearer token, ``tls`` (built once
    by the caller; None: unverified), no overall timeout (streams last), and a connect
    timeout so an unreachable kubelet is an error soon."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=tls or kubelet_tls(), force_close=True),
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout))


async def open_container_log(node: Optional[dict[str, Any]], namespace: str, pod: str,
                             container: str, token: str, *, follow: bool = False,
                             previous: bool = False, timestamps: bool = False,
                             tail_lines: Optional[int] = None,
                             since_seconds: Optional[int] = None,
                             since_time: Optional[str] = None,
                             limit_bytes: Optional[int] = None,
                             connect_timeout: float = 5.0,
                             tls: Optional[ssl.SSLContext] = None) -> AsyncIterator[bytes]:
    """Connect to the kubelet and return the log as an async iterator of chunks
    (``tls``: see ``kubelet_tls``; default: unverified)."""
    host, port = kubelet_address(node)
    params = {k: v for k, v in {
        "follow": "true" if follow else None, "previous": "true" if previous else None,
        "timestamps": "true" if timestamps else None,
        "tailLines": None if tail_lines is None else str(tail_lines),
        "sinceSeconds": None if since_seconds is None else str(since_seconds),
        "sinceTime": since_time,
        "limitBytes": None if limit_bytes is None else str(limit_bytes)}.items()
        if v is not None}
    session = _session(token, tls, connect_timeout)
    try:
        response = await session.get(f"https://{host}:{port}/containerLogs/{namespace}/{pod}/"
                                     f"{container}", params=params)
    except (aiohttp.ClientError, OSError) as err:
        await session.close()
        raise KubeletError(f"the kubelet at {host}:{port} is not reachable: {err}") from None
    if response.status != 200:
        text = (await response.text()).strip()
        response.release()
        await session.close()
        raise KubeletError(text or f"the kubelet answered {response.status}",
                           404 if response.status == 404 else 400)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.content.iter_any():
                yield chunk
        finally:
            response.release()
            await session.close()

    return chunks()


async def open_remote_command(node: Optional[dict[str, Any]], kind: str, namespace: str,
                              pod: str, container: str, query: list[tuple[str, str]],
                              token: str, protocols: list[str], *,
                              connect_timeout: float = 5.0, scheme: str = "https",
                              tls: Optional[ssl.SSLContext] = None
                              ) -> tuple[aiohttp.ClientSession, Any]:
    """Open the kubelet's ``/exec`` or ``/attach`` (``kind``) WebSocket offering
    ``protocols``; return the session (close it after the socket) and the socket
    (``tls``: see ``kubelet_tls``; default: unverified)."""
    host, port = kubelet_address(node)
    url = f"{scheme}://{host}:{port}/{kind}/{namespace}/{pod}"
    if container:  # portForward names no container
        url += f"/{container}"
    session = _session(token, tls, connect_timeout)
    try:
        ws = await session.ws_connect(url, params=query, protocols=protocols, autoping=True,
                                      max_msg_size=0)
    except aiohttp.WSServerHandshakeError as err:
        await session.close()
        # The kubelet puts its reason in a header: a failed handshake's body is not kept.
        message = (err.headers.get("X-Netlab-Error") if err.headers else None) or err.message
        raise KubeletError(message, err.status) from None
    except (aiohttp.ClientError, OSError) as err:
        await session.close()
        raise KubeletError(f"the kubelet at {host}:{port} is not reachable: {err}") from None
    except BaseException:
        await session.close()
        raise
    return session, ws
