"""Where a lab keeps its files on the host: the one definition every layer uses.

``/run/netlab/<lab>/`` holds the lab's record, logs, sockets and pod state;
``/var/lib/netlab/<lab>/`` its durable data (the API server's store, IPAM).
Both roots can be moved with ``NETLAB_STATE_DIR`` / ``NETLAB_DATA_DIR``. Pure
constants, importable from any layer (the lab, the node runtime, the client).
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_ROOT = Path(os.environ.get("NETLAB_STATE_DIR", "/run/netlab"))
DATA_ROOT = Path(os.environ.get("NETLAB_DATA_DIR", "/var/lib/netlab"))


# Localhost seccomp profiles, for every lab on the host: the kubelet's
# <root-dir>/seccomp (/var/lib/kubelet/seccomp upstream).
SECCOMP_ROOT = DATA_ROOT / "seccomp"


def lab_dir(lab: str) -> Path:
    return STATE_ROOT / lab


def data_dir(lab: str) -> Path:
    """Durable data (the API server's store), on disk rather than tmpfs."""
    return DATA_ROOT / lab


def local_path_dir(lab: str) -> Path:
    """The local-path provisioner's volumes (kind's ``/opt/local-path-provisioner``):
    one directory per provisioned PersistentVolume, gone with the lab's data."""
    return data_dir(lab) / "local-path"


def socket_path(lab: str) -> Path:
    """The API server's unix socket, for the CLI (mode 0600)."""
    return lab_dir(lab) / "apiserver.sock"
