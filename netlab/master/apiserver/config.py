"""The API server's settings, and the hook through which it reaches kubelets for logs.

``Config`` is what the process entry point (``__main__``) builds from its
command line and hands to :func:`netlab.master.apiserver.app.make_app`. It is
plain data: the app never reads the environment or files on its own.

``log_fetcher`` is how ``GET pods/<name>/log`` reaches the kubelet of the
pod's node. The API server resolves the pod, the container and the Node
object, then awaits ``log_fetcher(LogRequest)``, which returns an async
iterator of byte chunks (connecting first, so a refused connection is an
exception before any byte of the response is sent). Until one is configured
the API server answers log requests with a clear 400.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from netlab.api.views import name_of, namespace_of, pod_spec


@dataclass(frozen=True)
class LogRequest:
    """One ``pods/log`` request, resolved: the pod and its Node object, the container,
    and kubectl's log options (``None`` = not given)."""

    pod: dict
    node: Optional[dict]
    container: str
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: Optional[int] = None
    since_seconds: Optional[int] = None
    since_time: Optional[str] = None
    limit_bytes: Optional[int] = None

    @property
    def namespace(self) -> str:
        return namespace_of(self.pod)

    @property
    def pod_name(self) -> str:
        return name_of(self.pod)

    @property
    def node_name(self) -> str:
        return pod_spec(self.pod).get("nodeName", "")


class LogUnavailable(Exception):
    """Raised by a log fetcher when the kubelet cannot serve the logs (not running,
    unreachable, container not started). The message is shown to the user."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


LogFetcher = Callable[[LogRequest], Awaitable[AsyncIterator[bytes]]]
# pods/exec and pods/attach (streaming.py): (node, "exec" or "attach", namespace, pod,
# container, query, offered WebSocket protocols) -> (session, WebSocket) to the
# kubelet; LogUnavailable when it refuses. (A request without an upgrade never gets
# this far: the API server answers it.)
RemoteCommandDialer = Callable[[Optional[dict], str, str, str, str, list[tuple[str, str]],
                                list[str]], Awaitable[tuple[Any, Any]]]


@dataclass
class Config:
    """Settings of one API server.

    ``tokens`` are the administrator's bearer tokens (``system:masters``) accepted on
    TCP listeners; requests that arrive over a unix socket are the administrator's too
    (the socket's mode is the access control). Service-account tokens are signed with
    ``service_account_key`` (PEM, ECDSA P-256; None: a key made at start, so tokens die
    with the process) for ``service_account_issuer``, and the API server accepts tokens
    for ``api_audiences`` (default: the issuer, as kube-apiserver's ``--api-audiences``).
    Any other TCP request except the public health and version endpoints is 401.
    """

    service_subnet: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network("10.96.0.0/16"))
    node_port_range: tuple[int, int] = (30000, 32767)  # inclusive, as --service-node-port-range
    tokens: set[str] = field(default_factory=set)
    service_account_key: Optional[bytes] = None
    service_account_issuer: str = "https://kubernetes.default.svc.cluster.local"
    api_audiences: tuple[str, ...] = ()
    max_body: int = 3 * 1024 * 1024
    git_version: str = "v1.31.0-netlab"
    # Where clients reach this API server: the endpoints of default/kubernetes and
    # /api's serverAddressByClientCIDRs. None leaves both unset.
    advertise_address: Optional[str] = None
    advertise_port: int = 6443
    log_fetcher: Optional[LogFetcher] = None
    remote_command: Optional[RemoteCommandDialer] = None
    # Stand-ins for controllers that arrive later: the garbage collector (cascading
    # deletes, orphan/foreground finalizers) and the namespace controller (emptying a
    # Terminating namespace). Turn off once the controller manager runs them.
    builtin_gc: bool = True
    builtin_namespace_deleter: bool = True
    # Watches: how often idle streams get a BOOKMARK (when the client allows them):
    # every minute, as kube-apiserver's cacher (defaultBookmarkFrequency). At 5 s the
    # bookmarks to the ~10 watches of every node were the API server's largest idle cost
    # in a 30-node lab. And the server-side timeout range for watches that set no
    # timeoutSeconds.
    bookmark_interval: float = 60.0
    watch_timeout_range: tuple[float, float] = (1800.0, 3600.0)

    def __post_init__(self) -> None:
        if not isinstance(self.service_subnet, ipaddress.IPv4Network):
            self.service_subnet = ipaddress.IPv4Network(self.service_subnet)
        low, high = self.node_port_range
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"invalid node port range {low}-{high}")
        if self.service_subnet.num_addresses < 8:
            raise ValueError(f"service subnet {self.service_subnet} is too small")
        self.tokens = set(self.tokens)
        self.api_audiences = tuple(self.api_audiences) or (self.service_account_issuer,)


# The name the process entry point (``__main__``) uses.
APIServerConfig = Config
