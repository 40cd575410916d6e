"""The node lifecycle controller on its own: ``python -m netlab.master.nodelifecycle``.

Normally it runs inside the controller manager; this entry point runs it
alone, with the standard connection flags and Kubernetes' flag names for its
two timings (Go durations: ``10s``, ``1m``):

- ``--node-monitor-grace-period`` (lab default 10s): silence before Ready=Unknown;
- ``--pod-eviction-timeout`` (lab default 20s): how long the pods of such a
  node wait before eviction, when they carry no toleration saying otherwise.
"""

from __future__ import annotations

import argparse
import asyncio

from netlab.client.connection import add_connection_args, serve_with_informers
from netlab.master.nodelifecycle.controller import (
    DEFAULT_EVICTION_TIMEOUT,
    DEFAULT_GRACE,
    NodeLifecycleController,
)
from netlab.process import setup_logging
from netlab.units import parse_duration


def add_lifecycle_args(parser: argparse.ArgumentParser) -> None:
    """The two flags, for the controller manager's parser too."""
    parser.add_argument("--node-monitor-grace-period", type=parse_duration,
                        default=DEFAULT_GRACE, metavar="DURATION",
                        help=f"silence before a node is Unknown (default {DEFAULT_GRACE:g}s)")
    parser.add_argument("--pod-eviction-timeout", type=parse_duration,
                        default=DEFAULT_EVICTION_TIMEOUT, metavar="DURATION",
                        help="how long pods of an Unknown node wait before eviction "
                             f"(default {DEFAULT_EVICTION_TIMEOUT:g}s)")


async def serve(args: argparse.Namespace) -> None:
    await serve_with_informers(args, lambda client, informers: NodeLifecycleController(
        client, informers, args.node_monitor_grace_period, args.pod_eviction_timeout))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="netlab-node-lifecycle",
                                     description="Marks silent nodes Unknown, taints them "
                                                 "and evicts their pods.")
    add_connection_args(parser)
    add_lifecycle_args(parser)
    args = parser.parse_args(argv)
    setup_logging()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
