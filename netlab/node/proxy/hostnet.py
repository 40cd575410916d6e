"""What the proxy needs from its node namespace besides the nftables table.

Two settings of the proxy's own, and one it relies on, all inside the node's own
namespace (never the host's):

**Bridged replies pass through netfilter** (``net.bridge.bridge-nf-call-iptables
= 1``). The classic bridge hairpin problem: pod A on ``cni0`` connects to a
ClusterIP, the node DNATs it to pod B on the same bridge, and B answers A
directly, *bridged*, since A is on its own subnet. Without br_netfilter that
reply never meets conntrack, so A gets a packet from B's address instead of
the ClusterIP's and resets the connection. With it, bridged IPv4 frames run
through the ``ip`` hooks, conntrack undoes the DNAT on the reply, and B still
sees A's real address. The sysctl is per network namespace since Linux 5.3
(checked on this 6.x kernel: a lab namespace can turn it off while the host
and other namespaces keep theirs), so setting it here touches nothing else.
The alternatives were worse: masquerading all same-node Service traffic hides
client addresses, and routing pods (a /32 each, no bridge) is the pod
runtime's design to make, not the proxy's.

**Bridge ports in hairpin mode.** With br_netfilter, a pod reaching *itself*
through its Service is DNATed while still in the bridge, and the bridge would
have to send the frame back out the port it came in on, which it refuses
unless the port is in hairpin mode (the CNI bridge plugin's ``hairpinMode``,
kubelet's ``hairpin-veth``). The pod network sets it when it plugs a pod in
(``netlab.node.cni``, ADD), and reports a port without it on CHECK.

**The Service CIDR is local** (``ip route add local 10.96.0.0/16 dev lo``), as
kube-proxy's IPVS mode binds ClusterIPs to a dummy device. Nodes have no
default route, so without it a packet to a ClusterIP that was not DNATed (a
Service with no endpoints) would fail routing with "no route to host" before
any filter hook could reject it properly; with it, it is delivered locally and
the proxy's ``filter`` chain refuses it. Node processes can then also reach
ClusterIPs (``nat`` output DNATs them).
"""

from __future__ import annotations

import logging

from netlab.kernel import links
from netlab.kernel import netns as nsmod

log = logging.getLogger("netlab.proxy")

BRIDGE_NF_SYSCTL = "net.bridge.bridge-nf-call-iptables"


def enable_bridge_netfilter() -> bool:
    """Turn br_netfilter on for the calling thread's namespace; False when the
    kernel has no br_netfilter (then same-node Service replies break)."""
    try:
        if nsmod.read_sysctl(BRIDGE_NF_SYSCTL) != "1":
            nsmod.write_sysctl(BRIDGE_NF_SYSCTL, "1")
        return True
    except FileNotFoundError:
        log.warning("%s is missing (br_netfilter not available): replies from a pod to a "
                    "pod on the same bridge will not be un-NATed", BRIDGE_NF_SYSCTL)
        return False


def ensure_local_route(cidr: str) -> None:
    """``ip route replace local CIDR dev lo table local``; idempotent."""
    with links.netlink() as ipr:
        links.ensure_local_route(ipr, cidr)


def remove_local_route(cidr: str) -> bool:
    with links.netlink() as ipr:
        return links.remove_local_route(ipr, cidr)
