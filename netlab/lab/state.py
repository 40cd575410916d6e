"""The lab state directory, ``/run/netlab/<lab>/``: what a lab created, for cleanup.

``up`` writes the record *before* creating anything, so that ``down`` can
always find what a killed ``up`` left behind. The file is replaced atomically
(write, fsync, rename), so a crash never leaves a half-written record.
A per-lab lock file serialises ``up`` and ``down`` of the same lab.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

STATE_ROOT = Path(os.environ.get("NETLAB_STATE_DIR", "/run/netlab"))
DATA_ROOT = Path(os.environ.get("NETLAB_DATA_DIR", "/var/lib/netlab"))
STATE_FILE = "state.json"


class LabBusyError(RuntimeError):
    pass


@dataclass
class LabState:
    lab: str
    topology: str = ""
    phase: str = "building"  # building -> up; "failed" when up rolled back partway
    created: float = field(default_factory=time.time)
    namespaces: list[str] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    overlay: str = "vxlan"
    # The topology as validated at ``up`` (workloads left out): components are
    # configured from this copy, so editing the file later changes nothing.
    spec: str = ""
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The process that ran ``up``: lets a test suite's sweep tell a lab another
    # live run owns from one a killed run left behind.
    creator: dict[str, Any] = field(default_factory=lambda: {
        "pid": os.getpid(), "createTime": _create_time(os.getpid())})

    @property
    def directory(self) -> Path:
        return lab_dir(self.lab)

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        write_json(self.directory / STATE_FILE, asdict(self))


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def lab_dir(lab: str) -> Path:
    return STATE_ROOT / lab


def data_dir(lab: str) -> Path:
    """Durable data (the API server's store), on disk rather than tmpfs."""
    return DATA_ROOT / lab


def log_dir(lab: str) -> Path:
    return lab_dir(lab) / "logs"


def token_path(lab: str) -> Path:
    return lab_dir(lab) / "token"


def socket_path(lab: str) -> Path:
    return lab_dir(lab) / "apiserver.sock"


def endpoints_path(lab: str) -> Path:
    return lab_dir(lab) / "endpoints.json"


def components_path(lab: str) -> Path:
    return lab_dir(lab) / "components.json"


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` atomically, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_state(lab: str) -> LabState | None:
    try:
        data = json.loads((lab_dir(lab) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    known = LabState.__dataclass_fields__
    return LabState(**{k: v for k, v in data.items() if k in known})


def list_labs() -> list[str]:
    try:
        return sorted(p.name for p in STATE_ROOT.iterdir()
                      if p.is_dir() and (p / STATE_FILE).exists())
    except FileNotFoundError:
        return []


def remove_state(lab: str) -> None:
    shutil.rmtree(lab_dir(lab), ignore_errors=True)
    shutil.rmtree(data_dir(lab), ignore_errors=True)
    with contextlib.suppress(OSError):
        DATA_ROOT.rmdir()


@contextmanager
def lab_lock(lab: str, timeout: float = 60.0) -> Iterator[None]:
    """Exclusive per-lab lock, so an ``up`` and a ``down`` of one lab never interleave.

    The lock file sits beside the state directories and goes with the lab.
    A second command waits for the first (up to ``timeout``) rather than failing.
    """
    STATE_ROOT.mkdir(parents=True, exist_ok=True, mode=0o755)
    path = STATE_ROOT / f".{lab}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabBusyError(f"another netlab command has been working on lab {lab} "
                                       f"for over {timeout:.0f}s; check 'netlab list'") from None
                time.sleep(0.05)  # polling the lock with a deadline
        try:
            yield
        finally:
            if not lab_dir(lab).exists():
                path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    _remove_root_if_empty()


def _remove_root_if_empty() -> None:
    with contextlib.suppress(OSError):
        STATE_ROOT.rmdir()  # leaves no trace once the last lab is down
