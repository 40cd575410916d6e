"""The policy agent process: ``python -m netlab.node.netpol``, one per cluster node.

The supervisor starts it inside the node's namespace (component
``netpol-<node>``). It lists and watches NetworkPolicies and Namespaces
through the API, and Pods from the first NetworkPolicy on (until then no rule
can name a pod, and each of the agents would decode every pod change of the
cluster for nothing: about 3.5 ms of CPU per pod started, for the four agents of
a 3-worker lab); it reads the node's IPAM records (to know a new pod's address
from CNI ADD on, before the kubelet reports it), feeds both to the
:class:`~netlab.node.netpol.agent.PolicyAgent` and syncs: the first time only
after every initial list has arrived (a restart never programs a half-known
world, and until then its predecessor's table stays in force; a policy waits
for the pods' list), then on every change, and on a slow timer. On SIGTERM it removes its table;
after ``kill -9`` the table stays, and the restarted agent replaces it in
one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any, Callable

from netlab.client.connection import add_connection_args, client_from_args
from netlab.client.workqueue import SharedInformers
from netlab.node.netpol.agent import PolicyAgent, SyncResult
from netlab.node.syncloop import ChangeGate, run_sync_loop
from netlab.process import setup_logging, stop_event

log = logging.getLogger("netlab.netpol")
Obj = dict[str, Any]  # an API object as the informers deliver it
# Seconds between syncs with nothing new (each reads this node's IPAM records): every
# change already wakes a sync, and a local pod waiting for its address is polled for
# at IPAM_POLL, so this is only the safety net; at 5 s the 99 agents of a 100-node lab
# spent 2.6 % of a core on it while idle. 30 s, as kube-proxy's --sync-period.
RESYNC_PERIOD = 30.0
IPAM_POLL = 0.05  # while a local pod waits for its address: how often IPAM is read


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="netlab-netpol")
    add_connection_args(parser)
    parser.add_argument("--node", required=True)
    parser.add_argument("--netns", required=True, help="the node's namespace (for nft)")
    parser.add_argument("--pod-cidr", required=True, help="this node's pod subnet")
    parser.add_argument("--ipam-dir", help="this node's host-local IPAM records")
    parser.add_argument("--min-sync-interval", type=float, default=0.05)
    return parser.parse_args(argv)


def _allocations(directory: str | None) -> dict[str, str]:
    if not directory:
        return {}
    from netlab.node.cni.ipam import HostLocalIpam

    return {str(ip): uid for ip, uid in HostLocalIpam(Path(directory)).allocations().items()}


def feed(agent: PolicyAgent, informers: SharedInformers,
         gate: ChangeGate) -> set[asyncio.Future[None]]:
    """Point the informers' events at ``agent`` through ``gate``: NetworkPolicies and
    Namespaces from the start, Pods once the agent holds a policy (the informer is
    started then, and the agent told when its first list is in). Returns the tasks
    to cancel at the end."""
    def handler(update: Callable[[Obj], None],
                delete: Callable[[Obj], None]) -> Callable[[str, Obj, Obj | None], None]:
        def on_event(kind: str, obj: Obj, _old: Obj | None) -> None:
            gate.apply(delete if kind == "DELETED" else update, obj)
        return on_event

    tasks: set[asyncio.Future[None]] = set()
    pods = informers.get("pods", deferred=True)
    pods.add_handler(handler(agent.update_pod, agent.delete_pod))
    agent.pods_synced = False

    async def pods_listed() -> None:
        await pods.synced.wait()
        gate.apply(agent.pods_known)

    def watch_pods_once_needed() -> None:
        if agent.policies and not pods.started:
            pods.start()
            tasks.add(asyncio.ensure_future(pods_listed()))

    policy_events = handler(agent.update_policy, agent.delete_policy)

    def on_policy(kind: str, obj: Obj, old: Obj | None) -> None:
        policy_events(kind, obj, old)
        gate.apply(watch_pods_once_needed)  # after the policy itself, in order

    informers.get("networkpolicies").add_handler(on_policy)
    informers.get("namespaces").add_handler(handler(agent.update_namespace,
                                                    agent.delete_namespace))
    return tasks


async def run(args: argparse.Namespace) -> None:
    client = client_from_args(args)
    agent = PolicyAgent(args.node, args.netns, args.pod_cidr,
                        min_interval=args.min_sync_interval)
    informers = SharedInformers(client)
    gate = ChangeGate(asyncio.Event())
    tasks = feed(agent, informers, gate)

    def learn() -> None:
        try:
            agent.learn_addresses(_allocations(args.ipam_dir))
        except OSError as exc:  # unreadable records: the pods' status still tells
            log.warning("cannot read IPAM records in %s: %s", args.ipam_dir, exc)

    def next_wait(result: SyncResult) -> float:
        if result.kind in ("full", "partial"):
            log.info("%s sync %s: %d policies, %d isolated pod directions, %d bytes, "
                     "compile %.1f ms, total %.1f ms%s", result.kind,
                     "ok" if result.ok else "failed", result.policies, result.isolated,
                     result.bytes, result.compile_seconds * 1000, result.seconds * 1000,
                     f": {result.error}" if not result.ok else "")
        if result.kind == "deferred" or not result.ok:
            return float(result.retry_in)
        # While a local pod waits for its address, poll IPAM; else the periodic resync.
        return IPAM_POLL if agent.pending_local() else RESYNC_PERIOD

    try:
        await run_sync_loop(informers, client, gate, stop_event(), agent.sync, next_wait,
                            agent.cleanup, before_sync=learn)
    finally:
        for task in tasks:
            task.cancel()
    log.info("stopped; table removed")


def main(argv: list[str] | None = None) -> None:
    setup_logging()
    asyncio.run(run(_parse(argv)))


if __name__ == "__main__":
    main()
