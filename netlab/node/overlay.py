"""The VXLAN overlay, following the Node objects, as flannel's node agent does it.

Every node publishes what a peer needs to reach its pods on its own Node
object (``node.py`` writes it at registration): ``spec.podCIDR`` and
flannel's annotations ``flannel.alpha.coreos.com/backend-data``
(``{"VNI":1,"VtepMAC":...}``) and ``.../public-ip`` (the underlay address).
``peers_from_nodes`` reads them back from every *other* Node; the
``OverlayAgent`` converges the local ``vxlan0`` to exactly those peers with
``netlab.kernel.overlay.reconcile_overlay`` whenever the set changes, so a
node that registers is wired and a Node that is deleted is unwired on every
peer, with no rebuild. It also reconverges every ``resync`` seconds (90, as
Calico's Felix refreshes its routes), which heals hand-made damage (``bridge fdb
del ...``) the way a controller would. Not more often: a reconcile reads back the
whole FDB, neighbour and route tables, 16.5 ms of CPU with 99 peers, so at every 30
s the kubelets of a 100-node lab spent 5 % of a core on it while nothing changed.

A node agent of its own, the one home of the overlay: the kubelet process hosts
it as an asyncio service (flannel runs beside the kubelet; here they share a
process), and since that process lives in its node's network namespace (the
supervisor put it there), the netlink socket it opens is the node's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from netlab.api.views import meta_of, node_spec, node_status
from netlab.topology.plan import OverlayPeer

log = logging.getLogger("netlab.overlay")

BACKEND_DATA = "flannel.alpha.coreos.com/backend-data"
BACKEND_TYPE = "flannel.alpha.coreos.com/backend-type"
PUBLIC_IP = "flannel.alpha.coreos.com/public-ip"
SUBNET_MANAGER = "flannel.alpha.coreos.com/kube-subnet-manager"


def flannel_annotations(vni: int, vtep_mac: str, public_ip: str) -> dict[str, str]:
    return {BACKEND_DATA: json.dumps({"VNI": vni, "VtepMAC": vtep_mac}, separators=(",", ":")),
            BACKEND_TYPE: "vxlan", PUBLIC_IP: public_ip, SUBNET_MANAGER: "true"}


def peer_of(node: dict[str, Any]) -> OverlayPeer | None:
    """The overlay peer a Node object describes; None if it does not describe one."""
    meta, spec = meta_of(node), node_spec(node)
    annotations = meta.get("annotations") or {}
    try:
        data = json.loads(annotations.get(BACKEND_DATA) or "null")
        mac = data.get("VtepMAC") if isinstance(data, dict) else None
        subnet = IPv4Network(spec.get("podCIDR") or "")
        public = annotations.get(PUBLIC_IP) or next(
            (a.get("address") for a in node_status(node).get("addresses") or []
             if a.get("type") == "InternalIP"), None)
        underlay = IPv4Address(public or "")
    except (ValueError, TypeError):
        return None
    if not mac:
        return None
    return OverlayPeer(node=meta.get("name", ""), underlay_ip=underlay, vtep_mac=mac,
                       vtep_ip=subnet.network_address, pod_subnet=subnet)


def peers_from_nodes(nodes: Iterable[dict[str, Any]], me: str) -> list[OverlayPeer]:
    peers = []
    for node in nodes:
        if meta_of(node).get("name") == me:
            continue
        peer = peer_of(node)
        if peer is not None:
            peers.append(peer)
    return sorted(peers, key=lambda p: p.node)


def _reconcile(peers: list[OverlayPeer], applied: list[OverlayPeer] | None = None
               ) -> list[str]:
    """Converge vxlan0 to ``peers``: from ``applied`` (what was programmed last) by the
    difference alone when given, else (or when that fails) in full with a read-back."""
    # The only netlink use of the kubelet: calls into netlab.kernel.
    from netlab.kernel.links import netlink
    from netlab.kernel.overlay import reconcile_overlay, update_overlay

    with netlink() as ipr:
        changes = None
        if applied is not None:
            try:
                changes = update_overlay(ipr, applied, peers)
            except Exception as err:  # whatever it was, the full reconcile repairs it
                log.info("overlay update by difference failed (%s): reconciling in full", err)
        if changes is None:
            changes = reconcile_overlay(ipr, peers)
    return [f"+ {c}" for c in changes.added] + [f"- {c}" for c in changes.removed]


class OverlayAgent:
    def __init__(self, me: str, run_blocking: Any, resync: float = 90.0) -> None:
        self.me = me
        self._run = run_blocking  # AsyncRuntime.call: off the event loop
        self.resync = resync
        self._peers: dict[str, OverlayPeer] = {}
        self._wanted: list[OverlayPeer] | None = None
        self._applied: list[OverlayPeer] | None = None
        self._changed = asyncio.Event()
        self.reconciles = 0

    def nodes_changed(self, nodes: Iterable[dict[str, Any]]) -> None:
        """The whole set of Nodes (a resync): cheap, never blocks."""
        self._peers = {p.node: p for p in peers_from_nodes(nodes, self.me)}
        self._want()

    def node_event(self, kind: str, node: dict[str, Any]) -> None:
        """One Node's informer event, in constant time: every Node update of a big lab
        (its usage report, its status) reaches every node, and only a change of that
        node's peer (podCIDR, VTEP MAC, address) is news to the overlay."""
        name = meta_of(node).get("name", "")
        if name != self.me:
            peer = None if kind == "DELETED" else peer_of(node)
            if self._peers.get(name) == peer and self._wanted is not None:
                return
            if peer is None:
                self._peers.pop(name, None)
            else:
                self._peers[name] = peer
        elif self._wanted is not None:
            return
        self._want()  # also the first event, our own Node's included: [] is an answer

    def _want(self) -> None:
        wanted = sorted(self._peers.values(), key=lambda p: p.node)
        if wanted != self._wanted:
            self._wanted = wanted
            self._changed.set()

    async def run(self, synced: asyncio.Event) -> None:
        await synced.wait()  # never unwire peers from an empty, unsynced cache
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                # Woken by a change; the timeout is the periodic resync.
                await asyncio.wait_for(self._changed.wait(), self.resync)
            # A change is applied by its difference from what was programmed; the
            # periodic resync reads the kernel back and heals whatever else changed.
            by_difference = self._changed.is_set() and self._applied is not None
            self._changed.clear()
            wanted = self._wanted
            if wanted is None:
                continue
            try:
                lines = await self._run(_reconcile, wanted,
                                        self._applied if by_difference else None)
            except (OSError, LookupError) as err:
                log.warning("overlay reconcile failed: %s", err)
                await asyncio.sleep(1.0)  # retry backoff
                self._changed.set()
                continue
            self.reconciles += 1
            if lines or wanted != self._applied:
                log.info("overlay: %d peers (%s)%s", len(wanted),
                         ", ".join(p.node for p in wanted) or "none",
                         "".join(f"\n  {line}" for line in lines))
            self._applied = wanted
