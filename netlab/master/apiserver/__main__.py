"""The API server process: ``python -m netlab.master.apiserver``.

The supervisor starts it inside the control-plane node's namespace and hands
it two already-listening sockets from the host namespace (a 0600 unix socket
for the CLI and 127.0.0.1:<port> for kubectl); it binds the third listener,
the control-plane's underlay address on port 6443, itself, where the node
agents reach it across the physical network. It binds that one first, before
it imports the API, opens the store and bootstraps: the components starting
alongside it then queue on the listener (the kernel completes their connects)
and are answered the moment it serves, instead of being refused and retrying
with a backoff that grows while the API server starts. The store is opened here and
closed on SIGTERM, after the HTTP server stops taking requests. ``pods/log``
reaches the kubelets through ``kubelet_log_fetcher``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import ssl
from ipaddress import IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING

from netlab.process import run, setup_logging, stop_event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aiohttp import web

    from netlab.master.apiserver.config import LogFetcher, LogRequest, RemoteCommandDialer

log = logging.getLogger("netlab.apiserver")
# Connections the kernel completes while the API server starts (capped by the
# namespace's net.core.somaxconn): every node agent of a big lab may be waiting.
LISTEN_BACKLOG = 4096


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="netlab-apiserver")
    parser.add_argument("--lab", required=True)
    parser.add_argument("--bind", help="host:port to listen on with token auth (the underlay)")
    parser.add_argument("--unix-fd", type=int, help="an inherited, listening unix socket")
    parser.add_argument("--loopback-fd", type=int, help="an inherited, listening TCP socket")
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--tls-cert", type=Path, help="serve TCP listeners over TLS with this")
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--kubelet-certificate-authority",
                        help="verify kubelets' serving certificates against this CA "
                             "(default: no verification, as kube-apiserver)")
    # kube-apiserver's service-account token flags (kubeadm's defaults: the issuer is
    # https://kubernetes.default.svc.<dnsDomain>, and the API audiences default to it).
    parser.add_argument("--service-account-signing-key-file", type=Path,
                        help="ECDSA P-256 key (PEM) that signs service-account tokens "
                             "(default: one made at start)")
    parser.add_argument("--service-account-issuer",
                        default="https://kubernetes.default.svc.cluster.local")
    parser.add_argument("--api-audiences", default="",
                        help="comma-separated audiences the API server accepts "
                             "(default: the issuer)")
    parser.add_argument("--store", default="memory:",
                        help="memory:, sqlite:<path> or etcd:https://<host>:<port>")
    # kube-apiserver's flags for its etcd client certificate (used with --store etcd:...).
    parser.add_argument("--etcd-cafile", help="the CA that signed etcd's certificate")
    parser.add_argument("--etcd-certfile", help="client certificate presented to etcd")
    parser.add_argument("--etcd-keyfile", help="its key")
    parser.add_argument("--etcd-netns-fd", type=int,
                        help="an inherited fd of the network namespace to dial etcd from "
                             "(the host's, for an etcd outside the lab)")
    parser.add_argument("--service-subnet", default="10.96.0.0/16")
    # kube-apiserver's DefaultTolerationSeconds flags: the tolerationSeconds every pod
    # gets for the not-ready/unreachable NoExecute taints, i.e. how long its pods
    # outlive a node that stopped answering before the node lifecycle controller
    # evicts them. Kubernetes' default is 300; a lab passes its pod eviction timeout.
    parser.add_argument("--default-not-ready-toleration-seconds", type=int, default=300)
    parser.add_argument("--default-unreachable-toleration-seconds", type=int, default=300)
    # The API server's stand-ins for the garbage collector and the namespace controller
    # (Config.builtin_gc / builtin_namespace_deleter). The lab turns them off because its
    # controller manager does that work, as kube-controller-manager does.
    parser.add_argument("--builtin-gc", action=argparse.BooleanOptionalAction, default=True,
                        help="cascade deletions in the API server itself (default: on)")
    parser.add_argument("--builtin-namespace-deleter", action=argparse.BooleanOptionalAction,
                        default=True, help="empty Terminating namespaces in the API server "
                                           "itself (default: on)")
    args = parser.parse_args(argv)
    if args.default_not_ready_toleration_seconds != args.default_unreachable_toleration_seconds:
        parser.error("netlab applies one default toleration to both taints for now: give "
                     "--default-not-ready-toleration-seconds and "
                     "--default-unreachable-toleration-seconds the same value")
    if args.default_unreachable_toleration_seconds < 0:
        parser.error("--default-unreachable-toleration-seconds must be 0 or more")
    return args


def kubelet_log_fetcher(token: str, ca_file: str | None = None) -> LogFetcher:
    """``pods/log``: stream from the kubelet of the pod's node (HTTPS :10250, the lab
    token, its certificate verified against ``ca_file`` when given), which this process
    reaches across the underlay from the control plane."""
    from netlab.client.kubelet import KubeletError, kubelet_tls, open_container_log
    from netlab.master.apiserver.config import LogUnavailable

    tls = kubelet_tls(ca_file)

    async def fetch(req: LogRequest) -> AsyncIterator[bytes]:
        try:
            return await open_container_log(
                req.node, req.namespace, req.pod_name, req.container, token,
                follow=req.follow, previous=req.previous, timestamps=req.timestamps,
                tail_lines=req.tail_lines, since_seconds=req.since_seconds,
                since_time=req.since_time, limit_bytes=req.limit_bytes, tls=tls)
        except KubeletError as err:
            raise LogUnavailable(str(err), err.code) from None

    return fetch


def kubelet_remote_command(token: str, ca_file: str | None = None) -> RemoteCommandDialer:
    """``pods/exec`` and ``pods/attach``: a WebSocket to the kubelet of the pod's node,
    verified against ``ca_file`` (the lab CA) when given: its TLS context is built once,
    not for every exec and every forwarded connection."""
    from netlab.client.kubelet import KubeletError, kubelet_tls, open_remote_command
    from netlab.master.apiserver.config import LogUnavailable

    tls = kubelet_tls(ca_file)

    async def dial(node: dict | None, kind: str, namespace: str, pod: str, container: str,
                   query: list[tuple[str, str]], protocols: list[str]) -> tuple:
        try:
            return await open_remote_command(node, kind, namespace, pod, container, query,
                                             token, protocols, tls=tls)
        except KubeletError as err:
            raise LogUnavailable(str(err), err.code) from None

    return dial


def bind_underlay(bind: str) -> socket.socket:
    """The ``--bind`` listener, listening already: connects to it succeed (and wait in
    the accept queue) from now on, however long the rest of the start takes."""
    host, _, port = bind.rpartition(":")
    sock = socket.create_server((host, int(port)), backlog=LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


async def serve(args: argparse.Namespace, underlay: socket.socket | None = None) -> None:
    """Serve until SIGTERM; ``underlay`` is the ``--bind`` listener when bound already."""
    from aiohttp import web

    from netlab.master.apiserver import strategy
    from netlab.master.apiserver.app import make_app
    from netlab.master.apiserver.config import APIServerConfig
    from netlab.master.store import open_store

    # The admission default lives in a module constant of the strategy until Config
    # carries it; set it before the app admits its first pod.
    strategy.DEFAULT_TOLERATION_SECONDS = args.default_unreachable_toleration_seconds
    token = args.token_file.read_text().strip()
    host, _, port = (args.bind or "").rpartition(":")
    config = APIServerConfig(service_subnet=IPv4Network(args.service_subnet), tokens={token},
                             advertise_address=host or None,
                             advertise_port=int(port) if port else 6443,
                             log_fetcher=kubelet_log_fetcher(
                                 token, args.kubelet_certificate_authority),
                             remote_command=kubelet_remote_command(
                                 token, args.kubelet_certificate_authority),
                             builtin_gc=args.builtin_gc,
                             builtin_namespace_deleter=args.builtin_namespace_deleter,
                             service_account_key=(
                                 args.service_account_signing_key_file.read_bytes()
                                 if args.service_account_signing_key_file else None),
                             service_account_issuer=args.service_account_issuer,
                             api_audiences=tuple(a for a in args.api_audiences.split(",")
                                                 if a))
    etcd_options = {"ca": args.etcd_cafile, "cert": args.etcd_certfile, "key": args.etcd_keyfile,
                "netns_fd": args.etcd_netns_fd}
    store = open_store(args.store, **({k: v for k, v in etcd_options.items() if v is not None}
                                      if args.store.startswith("etcd:") else {}))
    app = make_app(store, config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    tls = None
    if args.tls_cert:
        # kubectl sends its bearer token only over TLS, so TCP listeners are HTTPS;
        # the unix socket (mode 0600) stays plain.
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    sites: list[web.BaseSite] = []
    for fd, context in ((args.unix_fd, None), (args.loopback_fd, tls)):
        if fd is not None:
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            sites.append(web.SockSite(runner, sock, ssl_context=context))
    if args.bind:
        sites.append(web.SockSite(runner, underlay or bind_underlay(args.bind),
                                  ssl_context=tls))
    for site in sites:
        await site.start()
    log.info("lab %s: serving on %s", args.lab, ", ".join(s.name for s in sites))
    stop = stop_event()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()
        with contextlib.suppress(Exception):
            store.close()


def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = _parse(argv)
    run(serve(args, bind_underlay(args.bind) if args.bind else None))


if __name__ == "__main__":
    main()
