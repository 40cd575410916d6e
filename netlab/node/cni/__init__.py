"""The pod network, as CNI: the ``bridge`` plugin with ``host-local`` IPAM.

The container runtime (``netlab.node.runtime.sandbox``) makes a pod's network
namespace and then calls ``add``; on removal it calls ``delete``; to verify a
sandbox, ``check``. These are CNI's ADD, DEL and CHECK with CNI's arguments
(``RuntimeConf``: container id, netns, ifname) and result (``Result``, CNI 1.0
result JSON). ``python -m netlab.node.cni`` is the same as an executable
plugin: ``CNI_COMMAND`` etc. in the environment, the network configuration on
stdin, the result or error JSON on stdout.

- ``config``: ``NetConf`` (the conflist), ``RuntimeConf``, ``Result``, ``CniError``;
- ``ipam``: host-local allocation, one file per IP, under a lock;
- ``bridge``: veth, ``cni0``, hairpin mode, MTU, address and route.

A NetworkPolicy agent is meant to plug in at this boundary (as a chained
plugin would). All netlink goes through ``netlab.kernel``.
"""

from __future__ import annotations

from pathlib import Path

from netlab.node.cni.bridge import add, check, delete, host_veth_name
from netlab.node.cni.config import CniError, NetConf, Result, RuntimeConf
from netlab.node.cni.ipam import HostLocalIpam, RangeExhausted, ipam_dir
from netlab.topology.plan import POD_BRIDGE, NodePlan

NETWORK_NAME = "netlab"

__all__ = ["NETWORK_NAME", "CniError", "HostLocalIpam", "NetConf", "RangeExhausted", "Result",
           "RuntimeConf", "add", "check", "delete", "host_veth_name", "ipam_dir", "node_netconf"]


def node_netconf(lab: str, node: NodePlan, mtu: int | None = None) -> NetConf:
    """The pod network of a cluster node of a lab."""
    if node.pod_subnet is None:
        raise CniError(4, f"node {node.name} is not a cluster node: it has no pod subnet")
    gateway = node.gateway.ip if node.gateway is not None else None
    return NetConf(name=NETWORK_NAME, subnet=node.pod_subnet, gateway=gateway,
                   data_dir=Path(ipam_dir(lab, node.name)), bridge=POD_BRIDGE, mtu=mtu)
