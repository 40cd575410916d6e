"""The API server process: ``python -m netlab.master.apiserver``.

The supervisor starts it inside the control-plane node's namespace and hands
it two already-listening sockets from the host namespace (a 0600 unix socket
for the CLI and 127.0.0.1:<port> for kubectl); it binds the third listener,
the control-plane's underlay address on port 6443, itself, where the node
agents reach it across the physical network. The store is opened here and
closed on SIGTERM, after the HTTP server stops taking requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import sys
from ipaddress import ip_network
from pathlib import Path

from aiohttp import web

log = logging.getLogger("netlab.apiserver")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="netlab-apiserver")
    parser.add_argument("--lab", required=True)
    parser.add_argument("--bind", help="host:port to listen on with token auth (the underlay)")
    parser.add_argument("--unix-fd", type=int, help="an inherited, listening unix socket")
    parser.add_argument("--loopback-fd", type=int, help="an inherited, listening TCP socket")
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--tls-cert", type=Path, help="serve TCP listeners over TLS with this")
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--store", default="memory:")
    parser.add_argument("--service-subnet", default="10.96.0.0/16")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from netlab.master.apiserver.app import make_app
    from netlab.master.apiserver.config import APIServerConfig
    from netlab.master.store import open_store

    token = args.token_file.read_text().strip()
    host, _, port = (args.bind or "").rpartition(":")
    config = APIServerConfig(service_subnet=ip_network(args.service_subnet), tokens={token},
                             advertise_address=host or None,
                             advertise_port=int(port) if port else 6443)
    store = open_store(args.store)
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
        sites.append(web.TCPSite(runner, host, int(port), reuse_address=True, ssl_context=tls))
    for site in sites:
        await site.start()
    log.info("lab %s: serving on %s", args.lab, ", ".join(s.name for s in sites))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()
        with contextlib.suppress(Exception):
            store.close()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(_parse(argv)))


if __name__ == "__main__":
    main()
