"""The cluster DNS component: ``python -m netlab.dns``, CoreDNS's ``kubernetes`` plugin
in small.

The supervisor starts it in the control-plane node's namespace, restarts it when it
dies and keeps its log, like the other control-plane components. It

1. publishes the ``kube-system/kube-dns`` Service and its endpoint (``addon.py``), so
   that pods reach it through kube-proxy at the address their resolv.conf names;
2. lists and watches Services and EndpointSlices through the shared informers into
   ``ClusterRecords``;
3. once both lists have arrived, and not before (a restart must never answer
   NXDOMAIN for a name that exists), serves DNS on port 53 over UDP and TCP, and
   Prometheus metrics, ``/health`` and ``/ready`` on port 9153.

A lost watch or an API restart leaves the records as they were: the server keeps
answering from its last known state while the informers catch up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from ipaddress import IPv4Network

import aiohttp
from aiohttp import web

from netlab.client import APIError, Client
from netlab.client.connection import add_connection_args, client_from_args
from netlab.client.workqueue import SharedInformers
from netlab.dns import addon
from netlab.dns.metrics import metrics_text
from netlab.dns.records import ClusterRecords
from netlab.dns.server import DNSServer, start_dns_server
from netlab.process import setup_logging, stop_event

log = logging.getLogger("netlab.dns")
PUBLISH_RETRY = (0.2, 5.0)  # seconds: first and longest wait between tries


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="netlab-dns", description=__doc__.split("\n")[0])
    add_connection_args(parser)
    parser.add_argument("--bind", required=True, help="the address to serve on")
    parser.add_argument("--node", required=True, help="the node it runs on (for its endpoint)")
    parser.add_argument("--service-cidr", required=True, type=IPv4Network)
    parser.add_argument("--zone", default="cluster.local")
    parser.add_argument("--upstream", help="ip[:port] of a server for names outside the zone")
    parser.add_argument("--port", type=int, default=addon.DNS_PORT)
    parser.add_argument("--metrics-port", type=int, default=addon.METRICS_PORT)
    parser.add_argument("--ttl", type=int, default=30)
    return parser.parse_args(argv)


async def publish(client: Client, cluster_ip: str, address: str, node: str,
                  stop: asyncio.Event) -> None:
    """Apply the kube-dns Service, EndpointSlice and Endpoints; retry until it worked
    (the API server may still be starting) or the component is stopped."""
    wait = PUBLISH_RETRY[0]
    objects = (addon.service(cluster_ip), addon.endpoint_slice(address, node),
               addon.endpoints(address, node))
    while not stop.is_set():
        try:
            for obj in objects:
                await client.apply(obj, addon.FIELD_MANAGER)
            log.info("published %s/%s at %s -> %s:%d", addon.NAMESPACE, addon.SERVICE,
                     cluster_ip, address, addon.DNS_PORT)
            return
        except APIError as err:
            if err.code == 422:  # e.g. the address is taken: retrying cannot help
                log.error("cannot publish %s: %s", addon.SERVICE, err)
                return
            log.warning("publishing %s failed (%s); retrying", addon.SERVICE, err)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as err:
            # What the informers retry too: a dropped connection (ServerDisconnectedError
            # is no OSError) must not end publishing, or pods never reach the server.
            log.warning("publishing %s failed (%s); retrying", addon.SERVICE, err)
        try:
            await asyncio.wait_for(stop.wait(), wait)
        except asyncio.TimeoutError:
            wait = min(wait * 2, PUBLISH_RETRY[1])


def _feed(informers: SharedInformers, records: ClusterRecords) -> None:
    for resource, kind in (("services", "Service"), ("endpointslices", "EndpointSlice")):
        def handler(event: str, obj: dict, _old: dict | None, kind: str = kind) -> None:
            (records.delete if event == "DELETED" else records.upsert)(kind, obj)
        informers.get(resource).add_handler(handler)


async def _http(server_ref: list[DNSServer], synced: asyncio.Event, host: str,
                port: int) -> web.AppRunner:
    async def metrics(_request: web.Request) -> web.Response:
        text = metrics_text(server_ref[0]) if server_ref else ""
        return web.Response(text=text, content_type="text/plain")

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="OK" if synced.is_set() else "not synced",
                            status=200 if synced.is_set() else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run(args: argparse.Namespace) -> None:
    client = client_from_args(args)
    records = ClusterRecords(zone=args.zone, ttl=args.ttl,
                             ns_ips=(addon.cluster_dns_ip(args.service_cidr),))
    informers = SharedInformers(client)
    _feed(informers, records)
    stop = stop_event()
    synced = asyncio.Event()
    server_ref: list[DNSServer] = []
    runner = await _http(server_ref, synced, args.bind, args.metrics_port)
    publishing: asyncio.Future[None] | None = None
    informers.start()
    try:
        waiting = asyncio.ensure_future(informers.wait_synced())
        await asyncio.wait({waiting, asyncio.ensure_future(stop.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            return
        server_ref.append(await start_dns_server(records, args.bind, args.port,
                                                 upstream=args.upstream))
        synced.set()
        # Only now: an endpoint published before the server listens sends the pods'
        # first queries to a closed port (glibc: "Temporary failure in name resolution").
        publishing = asyncio.ensure_future(publish(
            client, addon.cluster_dns_ip(args.service_cidr), args.bind, args.node, stop))
        log.info("serving %s on %s:%d (UDP, TCP), upstream %s", args.zone, args.bind,
                 args.port, args.upstream or "none (REFUSED)")
        await stop.wait()
    finally:
        if publishing is not None:
            publishing.cancel()
        for server in server_ref:
            server.close()
            await server.wait_closed()
        await runner.cleanup()
        await informers.stop()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    asyncio.run(run(_parse(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
