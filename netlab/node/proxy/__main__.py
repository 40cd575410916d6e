"""The kube-proxy process: ``python -m netlab.node.proxy``, one per cluster node.

The supervisor starts it inside the node's namespace. It lists and watches
Services and EndpointSlices through the API (across the physical network), feeds
every change to the ``Proxier`` sync engine, and syncs: the first time only
after both initial lists have arrived (so a restart never programs a
half-known world), then on every change, rate-limited by the engine (a sync
a second on average, two back to back after a quiet spell), and on a slow
timer so deferred clean-up runs. On SIGTERM it removes its table.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from netlab.client.connection import add_connection_args, client_from_args
from netlab.client.workqueue import SharedInformers
from netlab.node.proxy.syncer import Proxier, SyncResult
from netlab.node.syncloop import ChangeGate, run_sync_loop
from netlab.process import setup_logging, stop_event

log = logging.getLogger("netlab.proxy")
RESYNC_PERIOD = 5.0  # seconds between syncs with nothing new: lets deferred GC run


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="netlab-proxy")
    add_connection_args(parser)
    parser.add_argument("--node", required=True)
    parser.add_argument("--netns", required=True, help="the node's namespace (for nft)")
    parser.add_argument("--cluster-cidr", required=True, help="the pod subnet of the cluster")
    parser.add_argument("--local-pod-cidr", required=True, help="this node's pod /24")
    parser.add_argument("--service-cidr", required=True)
    parser.add_argument("--min-sync-interval", type=float, default=1.0)
    parser.add_argument("--sync-burst", type=int, default=2,
                        help="syncs allowed back to back after a quiet spell (upstream's "
                             "burstSyncs)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    client = client_from_args(args)
    proxier = Proxier(args.netns, None, args.cluster_cidr, service_cidr=args.service_cidr,
                      local_pod_cidr=args.local_pod_cidr, min_interval=args.min_sync_interval,
                      burst=args.sync_burst)
    informers = SharedInformers(client)
    services = informers.get("services")
    slices = informers.get("endpointslices")
    gate = ChangeGate(asyncio.Event())

    def on_service(kind: str, obj: dict, _old: dict | None) -> None:
        gate.apply(proxier.delete_service if kind == "DELETED" else proxier.update_service,
                   obj)

    def on_slice(kind: str, obj: dict, _old: dict | None) -> None:
        gate.apply(proxier.delete_endpoint_slice if kind == "DELETED"
                   else proxier.update_endpoint_slice, obj)

    services.add_handler(on_service)
    slices.add_handler(on_slice)
    def next_wait(result: SyncResult) -> float:
        if result.kind in ("full", "partial") or not result.ok:
            log.info("sync %s: %s, %d service ports, %d bytes in %.1f ms%s",
                     result.kind, "ok" if result.ok else f"failed: {result.error}",
                     result.ports, result.bytes, result.seconds * 1000,
                     f", flushed {result.flushed} UDP flows" if result.flushed else "")
        timeout = result.retry_in if result.kind == "deferred" else RESYNC_PERIOD
        return min(timeout, args.min_sync_interval) if not result.ok else timeout

    await run_sync_loop(informers, client, gate, stop_event(), proxier.sync, next_wait,
                        proxier.cleanup)
    log.info("stopped; table removed")


def main(argv: list[str] | None = None) -> None:
    setup_logging()
    asyncio.run(run(_parse(argv)))


if __name__ == "__main__":
    main()
