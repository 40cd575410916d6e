"""Pod sandboxes: the network and UTS namespaces a pod's containers share.

A sandbox is what CRI's ``RunPodSandbox`` plus a CNI ``ADD`` make, in kernel
objects a user can inspect with ``ip netns`` and ``ip link``:

- a network namespace ``<lab>-<node>.<pod>-<uid8>``, tagged with the lab's
  owner tag (like every lab namespace, so ``netlab down`` finds it), IPv6 off,
  ``lo`` up;
- the pod's network, which this module never builds itself: a CNI ADD of
  ``netlab.node.cni`` (container id = pod uid, ifname ``eth0``) makes the veth
  pair into ``cni0`` (hairpin, MTU) and gives ``eth0`` an address from the
  node's /24 (host-local IPAM) and a default route; ``check_sandbox`` uses CNI
  CHECK and ``remove_sandbox`` CNI DEL;
- a UTS namespace whose hostname is the pod's name, pinned by a bind mount at
  ``<pod dir>/uts`` so every container (and ``exec``) can join it later;
- the pod's own ``hosts``, ``hostname`` and ``resolv.conf``, which crun
  bind-mounts over ``/etc`` in each container.

``create_sandbox`` is a reconcile: on an existing sandbox it converges each
piece (same IP, same names) rather than failing, so a kubelet that restarts
mid-create just runs it again. A *fresh* create that fails removes all it made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from netlab.kernel import links, mounts, netns, rtnl
from netlab.kernel import namespaces as nsutil
from netlab.kernel.processes import kill_in_netns
from netlab.node import cni
from netlab.node.runtime.paths import (
    HOSTNAME_FILE,
    HOSTS_FILE,
    RESOLV_FILE,
    SANDBOX_FILE,
    UTS_PIN,
    pod_dir,
    pod_hostname,
    pod_netns,
    pods_dir,
    read_json,
    write_json,
    write_text,
)
from netlab.topology.plan import POD_BRIDGE, NodePlan

POD_IFNAME = "eth0"
# As in every lab namespace (netlab.lab.network.BASE_SYSCTLS): labs are IPv4. One write:
# ``all`` sets ``default`` too (addrconf_disable_ipv6), so eth0, made later, has no IPv6
# either. The kernel takes this write only with the RTNL lock free and retries the
# system call until it is: during a burst of pod starts each write spun about 0.8 ms.
POD_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1"}
CLUSTER_DOMAIN = "cluster.local"


class SandboxError(RuntimeError):
    pass


@dataclass(frozen=True)
class PodSpec:
    """What the runtime needs to know about a pod to give it a sandbox: the CRI's
    PodSandboxConfig in small. The kubelet builds it from the Pod object."""

    namespace: str
    name: str
    uid: str
    hostname: str | None = None  # default: the pod name, cut to 63 characters
    # hostname.subdomain.<ns>.svc.<zone> for a pod with a subdomain: /etc/hosts names it.
    fqdn: str | None = None
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] | None = None  # default: the cluster's search path
    dns_options: tuple[str, ...] = ("ndots:5",)


@dataclass
class Sandbox:
    """A pod's sandbox as recorded in ``sandbox.json``."""

    namespace: str
    name: str
    uid: str
    node: str
    netns: str
    veth: str
    hostname: str
    directory: str
    ip: str | None = None
    fqdn: str | None = None
    prefixlen: int = 24
    gateway: str | None = None
    mtu: int | None = None
    created: float = field(default_factory=time.time)
    state: str = "creating"  # creating -> ready

    @property
    def path(self) -> Path:
        return Path(self.directory)

    @property
    def uts_pin(self) -> str:
        return str(self.path / UTS_PIN)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sandbox:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def load_sandbox(directory: Path) -> Sandbox | None:
    data = read_json(directory / SANDBOX_FILE)
    return Sandbox.from_json(data) if isinstance(data, dict) else None


def find_sandbox(lab: str, uid: str) -> Sandbox | None:
    """The recorded sandbox of pod ``uid``, if any. Its directory is named
    ``<namespace>_<name>_<uid>``: found by name, without reading every other record (a
    kubelet asks for each new pod before its sandbox exists; reading them all made a
    burst of pods quadratic)."""
    suffix = "_" + uid
    try:
        entries = os.scandir(pods_dir(lab))
    except FileNotFoundError:
        return None
    with entries:
        for entry in entries:
            if entry.name.endswith(suffix):
                sb = load_sandbox(Path(entry.path))
                if sb is not None and sb.uid == uid:
                    return sb
    return None


def list_sandboxes(lab: str, node: str | None = None) -> list[Sandbox]:
    """Every recorded sandbox of the lab (of one node, if given), oldest first."""
    found = []
    try:
        entries = sorted(pods_dir(lab).iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        sb = load_sandbox(entry) if entry.is_dir() else None
        if sb is not None and (node is None or sb.node == node):
            found.append(sb)
    return sorted(found, key=lambda s: s.created)


# -- the pieces, each idempotent ---------------------------------------------------


def _read_owner() -> str | None:
    with links.netlink() as ipr:
        return links.read_owner(ipr)


def _prepare_pod_netns(lab: str) -> None:
    for key, value in POD_SYSCTLS.items():
        netns.write_sysctl(key, value)
    with rtnl.open_socket() as nl:  # lo (index 1) tagged and up in one request
        nl.set_link(1, up=True, alias=links.OWNER_ALIAS_PREFIX + lab)


def _ensure_netns(lab: str, name: str, ours: bool) -> None:
    """``ours``: our own record names this namespace, so an untagged one is ours
    too (made, then interrupted before the tag). Otherwise only a tagged one is."""
    if not netns.exists(name):
        netns.create_netns(name, lambda: _prepare_pod_netns(lab))
        return
    owner = netns.run_in_netns(name, _read_owner)
    if owner != lab and not (owner is None and ours):  # never adopt what isn't ours
        whose = f"lab {owner}" if owner else "something other than netlab"
        raise SandboxError(f"network namespace {name} already exists and belongs to {whose}")
    netns.run_in_netns(name, lambda: _prepare_pod_netns(lab))


def _ensure_uts(pin: str, hostname: str) -> None:
    """A UTS namespace with the pod's hostname, pinned at ``pin``."""
    if nsutil.is_pinned(pin):
        def converge() -> None:
            nsutil.setns_path(pin, nsutil.CLONE_NEWUTS)
            if socket.gethostname() != hostname:
                nsutil.sethostname(hostname)
        netns.parallel([converge])  # a throwaway thread: its UTS namespace dies with it
        return
    nsutil.unpin(pin)  # a stale, unmounted file left by a crash

    def make() -> None:
        nsutil.unshare(nsutil.CLONE_NEWUTS)
        nsutil.sethostname(hostname)
        nsutil.pin_current("uts", pin)

    netns.parallel([make])


def _hosts(sb: Sandbox) -> str:
    names = f"{sb.fqdn}\t{sb.hostname}" if sb.fqdn else sb.hostname  # as the kubelet writes
    return ("# Kubernetes-managed hosts file (netlab runtime).\n"
            "127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\n"
            "fe00::0\tip6-mcastprefix\n"
            "fe00::1\tip6-allnodes\n"
            "fe00::2\tip6-allrouters\n"
            f"{sb.ip}\t{names}\n")


def _resolv(pod: PodSpec) -> str:
    """In the order container runtimes write it: search, nameservers, options."""
    searches = pod.searches if pod.searches is not None else (
        f"{pod.namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN)
    lines = ["search " + " ".join(searches)] if searches else []
    lines += [f"nameserver {ns}" for ns in pod.nameservers]
    if pod.dns_options:
        lines.append("options " + " ".join(pod.dns_options))
    return "\n".join(lines) + "\n"


# -- the sandbox -------------------------------------------------------------------


def create_sandbox(lab: str, node: NodePlan, pod: PodSpec, mtu: int | None = None) -> Sandbox:
    """Create the pod's sandbox, or converge an existing one; return its record."""
    if node.pod_subnet is None or node.gateway is None:
        raise SandboxError(f"node {node.name} is not a cluster node: it has no pod subnet")
    directory = pod_dir(lab, pod.namespace, pod.name, pod.uid)
    existing = load_sandbox(directory)
    fresh = existing is None
    sb = existing or Sandbox(
        namespace=pod.namespace, name=pod.name, uid=pod.uid, node=node.name,
        netns=pod_netns(lab, node.name, pod.name, pod.uid),
        veth=cni.host_veth_name(pod.uid),
        hostname=pod_hostname(pod.hostname or pod.name), directory=str(directory),
        fqdn=pod.fqdn)
    if sb.node != node.name:
        raise SandboxError(f"pod {pod.namespace}/{pod.name} already has a sandbox "
                           f"on node {sb.node}")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        write_json(directory / SANDBOX_FILE, sb.to_json())  # first: cleanup can find it all
        _ensure_netns(lab, sb.netns, ours=not fresh)
        # CNI ADD: veth into cni0 (hairpin, MTU), an address from host-local IPAM.
        result = cni.add(cni.node_netconf(lab, node, mtu), _cni_args(sb), node.netns)
        sb.veth, sb.ip = result.host_veth, str(result.address.ip)
        sb.prefixlen, sb.gateway = result.address.network.prefixlen, str(result.gateway)
        sb.mtu = mtu
        write_json(directory / SANDBOX_FILE, sb.to_json())
        _ensure_uts(sb.uts_pin, sb.hostname)
        write_text(directory / HOSTS_FILE, _hosts(sb))
        write_text(directory / HOSTNAME_FILE, sb.hostname + "\n")
        write_text(directory / RESOLV_FILE, _resolv(pod))
        sb.state = "ready"
        write_json(directory / SANDBOX_FILE, sb.to_json())
    except BaseException:
        if fresh:
            with contextlib.suppress(Exception):
                remove_sandbox(lab, node.netns, sb)
        raise
    return sb


def check_sandbox(sb: Sandbox, node_netns: str) -> list[str]:
    """What is wrong with a recorded sandbox (empty when it is whole), for the
    kubelet to decide whether to recreate it, as kubelet does on a sandbox change."""
    problems = []
    if not netns.exists(sb.netns):
        return [f"network namespace {sb.netns} is gone"]

    problems += cni.check(_netconf(_lab_of(sb), sb), _cni_args(sb), node_netns)
    if not nsutil.is_pinned(sb.uts_pin):
        problems.append("the UTS namespace is not pinned")
    return problems


def _cni_args(sb: Sandbox) -> cni.RuntimeConf:
    return cni.RuntimeConf(container_id=sb.uid, netns=sb.netns, ifname=POD_IFNAME)


def _netconf(lab: str, sb: Sandbox) -> cni.NetConf:
    """The network the sandbox was added to, from its record (DEL and CHECK need
    only the data dir, the subnet, gateway and MTU, all recorded)."""
    anchor = sb.ip or sb.gateway or "0.0.0.0"
    subnet = IPv4Interface(f"{anchor}/{sb.prefixlen}").network
    return cni.NetConf(name=cni.NETWORK_NAME, subnet=subnet,
                       gateway=IPv4Address(sb.gateway) if sb.gateway else None,
                       data_dir=cni.ipam_dir(lab, sb.node), bridge=POD_BRIDGE, mtu=sb.mtu)


def _lab_of(sb: Sandbox) -> str:
    """The lab a sandbox belongs to: its directory is ``<lab dir>/pods/<pod>``."""
    return sb.path.parent.parent.name


def remove_sandbox(lab: str, node_netns: str, sb: Sandbox, kill_timeout: float = 2.0) -> None:
    """Remove everything of the sandbox: processes left in it, the veth, the netns,
    the UTS pin, the IP and the pod directory. Idempotent; the containers
    should have been stopped gracefully before (see ``containers.stop_all``)."""
    if netns.exists(sb.netns):
        kill_in_netns([sb.netns], timeout=kill_timeout)
    # CNI DEL, before the netns goes: a mount namespace elsewhere may still pin
    # it, and its eth0 must not keep an address that is handed out again.
    cni.delete(_netconf(lab, sb), _cni_args(sb), node_netns)
    netns.delete_netns(sb.netns)
    nsutil.unpin(sb.uts_pin)
    mounts.unmount_below(str(sb.path))  # a memory emptyDir's tmpfs, if the kubelet left one
    with contextlib.suppress(FileNotFoundError):  # removed already: idempotent
        shutil.rmtree(sb.path)
