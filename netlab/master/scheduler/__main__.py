"""The scheduler process: ``python -m netlab.master.scheduler --server ... --token-file ...``.

Started by the lab supervisor in the control-plane node's namespace with the
standard connection flags (``netlab.client.connection``). It runs until
SIGTERM; after a crash the supervisor starts it again, and it resumes from
the API's state alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from netlab.client.connection import add_connection_args, serve_with_informers
from netlab.master.scheduler.scheduler import (
    DEFAULT_BIND_CONCURRENCY,
    DEFAULT_SCHEDULER,
    Scheduler,
)
from netlab.master.scheduler.scoring import DEFAULT_USAGE_WEIGHT
from netlab.process import setup_logging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="netlab-scheduler",
                                     description="Places pending pods on nodes.")
    add_connection_args(parser)
    parser.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER,
                        help="schedule pods whose spec.schedulerName is this (or unset)")
    parser.add_argument("--usage-weight", type=float, default=DEFAULT_USAGE_WEIGHT,
                        help="weight of measured usage against requests in the score (0-1)")
    parser.add_argument("--bind-concurrency", type=int, default=DEFAULT_BIND_CONCURRENCY,
                        help="bindings in flight at once")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every decision")
    args = parser.parse_args(argv)
    if not 0.0 <= args.usage_weight <= 1.0:
        parser.error("--usage-weight must be between 0 and 1")
    if args.bind_concurrency < 1:
        parser.error("--bind-concurrency must be at least 1")
    return args


async def serve(args: argparse.Namespace) -> None:
    await serve_with_informers(args, lambda client, informers: Scheduler(
        client, informers, name=args.scheduler_name, usage_weight=args.usage_weight,
        bind_concurrency=args.bind_concurrency))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
