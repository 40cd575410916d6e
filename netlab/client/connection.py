"""How a component process reaches the API server: flags in, a ``Client`` out.

Every component (scheduler, controller manager, kubelet, proxy) is started by
the supervisor with the same three flags: ``--server`` (the control plane's
underlay address, https://<ip>:6443), ``--token-file`` and ``--ca-file``. They
reach the API across the lab's physical network, as in the picture.
``serve_with_informers`` runs a component made of one client and shared
informers until SIGTERM.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable
from pathlib import Path
from typing import Callable, Protocol

from netlab.client.http import Client
from netlab.client.workqueue import SharedInformers
from netlab.process import run_until_stopped


class Runnable(Protocol):
    def run(self) -> Awaitable[None]: ...


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, help="https://<control-plane IP>:6443")
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--ca-file", type=Path, required=True)


def client_from_args(args: argparse.Namespace, timeout: float = 30.0) -> Client:
    token = args.token_file.read_text().strip()
    return Client(args.server, token=token, ca_file=str(args.ca_file), timeout=timeout)


def connection_argv(server: str, token_file: str | Path, ca_file: str | Path) -> tuple[str, ...]:
    """The flags, for the supervisor's component list."""
    return ("--server", server, "--token-file", str(token_file), "--ca-file", str(ca_file))


async def serve_with_informers(args: argparse.Namespace,
                               build: Callable[[Client, SharedInformers], Runnable]) -> None:
    """Run ``build(client, informers).run()`` until SIGTERM or SIGINT, with a client from
    the connection flags; then stop the informers and close the client."""
    client = client_from_args(args)
    informers = SharedInformers(client)
    try:
        await run_until_stopped(build(client, informers).run())
    finally:
        await informers.stop()
        await client.close()
