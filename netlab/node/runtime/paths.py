"""Where the container runtime keeps things, and how it names them.

Everything a pod leaves on the host is derived here from (lab, node, pod), so
the runtime that created a pod, the same runtime after a restart, and
``netlab down`` all find the same files, namespaces and links without any
in-memory state:

- pod state: ``/run/netlab/<lab>/pods/<namespace>_<name>_<uid>/`` (tmpfs-like:
  it describes live things and goes with the lab);
- IPAM: ``/var/lib/netlab/<lab>/ipam/<node>/`` (durable, as CNI's host-local
  keeps it under ``/var/lib/cni``), so an IP survives any restart;
- the pod netns ``<lab>-<node>.<pod>-<uid8>``: a ``.`` never appears in a node
  name, so it can't collide with a node namespace, and it starts with the lab
  prefix so ``netlab down`` finds it;
- the host end of the pod's veth, ``veth<8 hex>``, from a hash (IFNAMSIZ).

Standard library only.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from netlab.fileio import (  # noqa: F401 (re-exported: the runtime's records)
    read_json,
    write_atomic,
)
from netlab.paths import DATA_ROOT, lab_dir

NETNS_NAME_MAX = 255  # a file name under /run/netns
POD_NAME_IN_NETNS_MAX = 63  # keeps `ip netns list` readable
HOSTNAME_MAX = 63  # Kubernetes truncates pod hostnames to 63 characters

SANDBOX_FILE = "sandbox.json"
UTS_PIN = "uts"  # bind mount of the pod's UTS namespace, as /run/netns pins a netns
HOSTS_FILE, HOSTNAME_FILE, RESOLV_FILE = "hosts", "hostname", "resolv.conf"


def lab_state_dir(lab: str) -> Path:
    return lab_dir(lab)


def pods_dir(lab: str) -> Path:
    return lab_state_dir(lab) / "pods"


def runtime_dir(lab: str) -> Path:
    """Lab-wide runtime records (which cgroup roots were created)."""
    return lab_state_dir(lab) / "runtime"


def pod_dir(lab: str, namespace: str, name: str, uid: str) -> Path:
    return pods_dir(lab) / f"{namespace}_{name}_{uid}"


def ipam_dir(lab: str, node: str) -> Path:
    """The node's IPAM data dir; owned by ``netlab.node.cni.ipam`` (same path)."""
    return DATA_ROOT / lab / "ipam" / node


def pod_netns(lab: str, node: str, pod_name: str, uid: str) -> str:
    """``<lab>-<node>.<pod-name>-<uid8>``, within NAME_MAX.

    The uid prefix keeps two pods of the same name (other namespace, or a
    recreated pod) apart; the name is cut, never the prefix or the uid.
    """
    head, tail = f"{lab}-{node}.", f"-{uid.replace('-', '')[:8]}"
    room = min(POD_NAME_IN_NETNS_MAX, NETNS_NAME_MAX - len(head.encode()) - len(tail.encode()))
    if room < 1:
        raise ValueError(f"lab {lab!r} and node {node!r} leave no room for a pod namespace name")
    name = pod_name.encode()[:room].decode(errors="ignore")
    return f"{head}{name}{tail}"


def is_pod_netns(lab: str, name: str) -> bool:
    """A lab namespace that is a pod's (node namespaces never contain a ``.``)."""
    return name.startswith(f"{lab}-") and "." in name[len(lab) + 1:]


def pod_hostname(pod_name: str) -> str:
    """The pod's hostname as Kubernetes derives it: the name, cut to 63 characters."""
    return pod_name[:HOSTNAME_MAX].rstrip("-.") or "pod"


def write_json(path: Path, data: Any) -> None:
    """A runtime record (sandbox, container attempt, cgroup roots), as indented JSON with
    sorted keys, replaced atomically. Not fsynced: the records describe live namespaces
    and processes, which a power loss takes with them, and a restarted kubelet reads
    them back from the page cache. Six fsyncs per pod start were about 20 ms of waiting
    on a disk-backed /run."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True), fsync=False)


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Atomic replace of a small text file (the pod's hosts, hostname, resolv.conf); not
    fsynced: the pod's state goes with the lab."""
    write_atomic(path, text, mode=mode, fsync=False)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime"):
                return float(line.split()[1])
    raise RuntimeError("no btime in /proc/stat")


def process_start_time(pid: int) -> float | None:
    """A process's start time in seconds since the epoch, computed as psutil's
    ``create_time()`` is, without importing psutil, so records written here can
    be checked with psutil."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(b")") + 2:].split()
    return _boot_time() + int(fields[19]) / _CLOCK_TICKS


def same_process(pid: int | None, start_time: float | None) -> bool:
    """True while ``pid`` is the very process that started at ``start_time`` and
    has not exited (a zombie has exited). Pids are reused; start times are not."""
    if not pid or start_time is None:
        return False
    now = process_start_time(pid)
    if now is None or abs(now - start_time) > 0.05:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")
    except OSError:
        return False


def cri_timestamp(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds in UTC, as CRI log lines and ``kubectl logs
    --timestamps`` print it: ``2026-11-27T15:04:05.123456789Z``."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"
