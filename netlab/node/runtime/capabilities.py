"""Which Linux capabilities a container keeps, and which host paths it must not see.

A container runtime does not hand a pod the whole of root. containerd (kind's
runtime) gives a container the 14 capabilities below and masks what it must not
read; ``securityContext.capabilities.add/drop`` adjust the set (``ALL`` names
every capability), and ``privileged: true`` keeps everything. crun applies the set
(bounding, permitted and effective) from the container's ``config.json``, so a root
process in the container can never regain the rest (no ``CAP_SYS_ADMIN``: it cannot
unmount anything, enter another namespace or load modules).

The lab's own files (the state directory: the API server's admin token, the lab CA
and its keys, sockets, logs; the data directory: the store) are not in a contained
container's root at all, and are masked there as well (:func:`masked_paths`); a
hostPath may not lead into them (:func:`forbidden_host_path`).

No side effects: names, numbers and path checks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from netlab import paths

# linux/capability.h, in number order.
NUMBERS: dict[str, int] = {name: number for number, name in enumerate((
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"))}

# containerd's default set for a container (oci.DefaultSpec / CRI's defaults).
DEFAULT: frozenset[str] = frozenset((
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"))


class CapabilityError(ValueError):
    """A capability name that Linux does not have; the message names it."""


def normalise(name: str) -> str:
    """``net_admin``, ``CAP_NET_ADMIN`` and ``NET_ADMIN`` are one capability, as in
    CRI-O and containerd."""
    bare = str(name).strip().upper()
    bare = bare[4:] if bare.startswith("CAP_") else bare
    if bare != "ALL" and bare not in NUMBERS:
        raise CapabilityError(f"unknown capability {name!r}")
    return bare


def container_set(add: Iterable[str] = (), drop: Iterable[str] = ()) -> frozenset[str]:
    """The capabilities a non-privileged container keeps: the default set, less
    ``drop``, plus ``add`` (``ALL`` in either means every capability), as the CRI
    runtimes apply ``securityContext.capabilities``."""
    added = {normalise(n) for n in add}
    dropped = {normalise(n) for n in drop}
    everything = set(NUMBERS)
    if "ALL" in dropped:  # drop ALL, then add back what is named (containerd's order)
        kept = everything if "ALL" in added else added
    else:
        kept = (everything if "ALL" in added else set(DEFAULT) | added) - dropped
    return frozenset(kept - {"ALL"})


def masked_paths() -> list[str]:
    """The host directories every unprivileged container sees as empty."""
    return [str(paths.STATE_ROOT), str(paths.DATA_ROOT)]


def forbidden_host_path(path: str) -> str | None:
    """Why ``path`` may not be a hostPath: it is, holds or lies in netlab's state or
    data directories (admin token, CA keys, the store of every lab). The kubelet asks
    when it sets the volume up; the runtime asks again of where the opened source
    really leads, just before the mount, so a link swapped in meanwhile is caught."""
    real = os.path.realpath(path)
    for root in (paths.STATE_ROOT, paths.DATA_ROOT):
        guarded = os.path.realpath(root)
        if os.path.commonpath((real, guarded)) in (real, guarded):
            return (f"hostPath {path} would expose netlab's own files ({guarded}), "
                    "which no pod may read")
    return None


def install_paths() -> list[str]:
    """Where netlab and its Python live: a contained container must still see them,
    since the built-in images run from there (a virtualenv may sit under /tmp, and
    its interpreter be another installation's, a pyenv one under /root)."""
    package_root = Path(__file__).resolve().parents[3]  # the directory holding netlab/
    found = {sys.prefix, sys.base_prefix, str(package_root)}
    # A path inside another one is already there with it.
    return sorted(p for p in found if not any(
        o != p and Path(p).is_relative_to(o) for o in found))
