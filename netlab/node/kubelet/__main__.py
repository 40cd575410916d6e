"""``python -m netlab.node.kubelet --lab L --node N ...``: one node's kubelet.

The lab supervisor starts it inside the node's network namespace with the
flags ``netlab.lab.components`` builds (see ``config.py`` for all of them),
restarts it if it exits, and logs it to
``/run/netlab/<lab>/logs/kubelet-<node>.log``. SIGTERM stops the kubelet but
not its pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging

from netlab.node.kubelet.config import from_args
from netlab.process import setup_logging, stop_event

M_ARENA_MAX = -8  # mallopt parameter, from malloc.h


async def _main(argv: list[str] | None) -> None:
    from netlab.node.kubelet.kubelet import Kubelet

    cfg = from_args(argv)
    await Kubelet(cfg).run(stop_event())


def _fewer_malloc_arenas() -> None:
    """glibc gives each thread that allocates its own arena (64 MB of address space,
    and RSS that is never returned); the runtime's worker threads would multiply
    the kubelet's memory for nothing. Two arenas, set before any thread starts."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 2)


def main(argv: list[str] | None = None) -> None:
    _fewer_malloc_arenas()
    setup_logging()
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    asyncio.run(_main(argv))


if __name__ == "__main__":
    main()
