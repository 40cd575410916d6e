"""The lab state directory, ``/run/netlab/<lab>/``: what a lab created, for cleanup.

``up`` writes the record *before* creating anything, so that ``down`` can
always find what a killed ``up`` left behind. The file is replaced atomically
(write, fsync, rename), so a crash never leaves a half-written record.
A per-lab lock file serialises ``up`` and ``down`` of the same lab.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from netlab.fileio import read_json, write_json  # noqa: F401 (re-exported: the lab's records)
from netlab.paths import (  # noqa: F401 (re-exported: the lab's paths, with its own)
    DATA_ROOT,
    STATE_ROOT,
    data_dir,
    lab_dir,
    socket_path,
)

if TYPE_CHECKING:
    from netlab.topology import LabPlan

STATE_FILE = "state.json"


class LabError(RuntimeError):
    """A lab operation that could not be done, with a message meant for the user."""


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

    def plan(self) -> LabPlan:
        """The lab's address plan, from the topology recorded at ``up`` (``spec``).

        Parsed once per process: every command and component that needs the plan
        of a recorded lab asks here. ``TopologyError`` if the record does not parse.
        """
        return _recorded_plan(self.lab, self.spec)


@functools.lru_cache(maxsize=8)
def _recorded_plan(lab: str, spec: str) -> LabPlan:
    from netlab.topology import parse_topology, plan_lab  # keeps ``state`` light to import

    return plan_lab(parse_topology(spec, f"{lab} (recorded topology)"))


def make_lab_dir(lab: str) -> None:
    """The lab's state directory, on a tmpfs: ``/run`` is one on a standard host
    (systemd mounts it ``nosuid,nodev``), and every pod start writes its records,
    bundle and container layer there. Where the state root is on a disk instead (some
    VMs have no tmpfs ``/run``), the lab mounts a tmpfs of its own on its directory,
    with the same options; ``remove_state`` unmounts it. On such a disk (ext4 without a
    journal), each new file scans past every inode deleted in the last minutes, which
    cost a third of the CPU of a burst of pod starts."""
    from netlab.kernel import mounts  # keeps ``state`` light to import

    path = lab_dir(lab)
    path.mkdir(parents=True, exist_ok=True, mode=0o755)
    if mounts.filesystem_type(str(STATE_ROOT)) != "tmpfs" and not mounts.is_mountpoint(str(path)):
        mounts.mount_tmpfs(str(path), None, mode=0o755)


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def log_dir(lab: str) -> Path:
    return lab_dir(lab) / "logs"


def token_path(lab: str) -> Path:
    return lab_dir(lab) / "token"


def endpoints_path(lab: str) -> Path:
    return lab_dir(lab) / "endpoints.json"


def components_path(lab: str) -> Path:
    return lab_dir(lab) / "components.json"


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
    """Remove the lab's data, then its record: a removal cut short leaves the record,
    by which ``netlab down`` finds the rest (data without a record ``up`` refuses)."""
    from netlab.kernel import mounts

    shutil.rmtree(data_dir(lab), ignore_errors=True)
    with contextlib.suppress(OSError):
        DATA_ROOT.rmdir()
    # The lab's own tmpfs (make_lab_dir) and anything left mounted below it go first.
    mounts.unmount_below(str(lab_dir(lab)))
    shutil.rmtree(lab_dir(lab), ignore_errors=True)


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
    """Remove the state root once the last lab is down, with the lock files that a
    command killed while holding them left (no lab directory and nobody holds them)."""
    with contextlib.suppress(OSError):
        for path in STATE_ROOT.glob(".*.lock"):
            if (STATE_ROOT / path.name[1:-len(".lock")]).exists():
                continue
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a command is working
                path.unlink(missing_ok=True)
            except BlockingIOError:
                pass
            finally:
                os.close(fd)
        STATE_ROOT.rmdir()  # leaves no trace once the last lab is down


def implied_lab(lab: str | None) -> str:
    """The lab a command means: the one named, or the only one up. Lives here, not in
    ``lifecycle``, so a command that only needs the name loads no pyroute2 or aiohttp."""
    if lab:
        return lab
    labs = list_labs()
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no lab is up; start one with 'netlab up TOPOLOGY.yaml'")
    raise LabError(f"{len(labs)} labs are up ({', '.join(labs)}); name one")
