"""cgroups for pods and containers: cpu and memory limits, usage, OOM kills.

Each container gets a group ``netlab/<lab>/<pod-uid>/<container>`` in every
hierarchy that carries a controller we use; the pod's group above it sums its
containers (usage is hierarchical in both versions). Two host layouts:

- **v2** (unified at ``/sys/fs/cgroup`` with ``cgroup.controllers``): one tree;
  ``memory.max``, ``cpu.max``, ``memory.current``, ``cpu.stat``,
  ``memory.events``. Controllers are enabled top-down in
  ``cgroup.subtree_control``; because of v2's no-internal-processes rule the
  tree hangs off the root (as kubelet's ``/kubepods`` does), not off a cgroup
  that holds processes.
- **v1** (separate ``cpu``, ``cpuacct``, ``memory`` and ``devices`` mounts, and a v2
  ``unified`` mount without those controllers, as on netlab's CI machines):
  ``memory.limit_in_bytes``, ``cpu.cfs_quota_us``/``cpu.cfs_period_us``,
  ``cpuacct.usage``, ``memory.usage_in_bytes``, ``memory.oom_control``. The
  groups nest under the cgroup of the process that creates them, so a lab
  stays inside whatever limits and accounting the host put netlab under.

The v1 ``devices`` controller filters which device nodes a container may open
(:func:`restrict_devices`): crun would, but it runs with its cgroup manager off.
Without one (a v2 host), the runtime takes MKNOD from containers that did not add
it, so no container can make a node for the host's disk.

Where a controller is missing, ``CgroupHost.missing`` holds a sentence saying
so, which ``set_limits`` returns and the kubelet turns into an event.

Which roots were created is recorded in ``/run/netlab/<lab>/runtime/cgroups.json``
so ``cleanup_lab`` finds them from any process. Standard library only: the
runtime moves each created container into its groups and reads its OOM count.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Callable

from netlab.node.runtime.paths import read_json, runtime_dir, write_json

CGROUP_ROOT = "/sys/fs/cgroup"
NETLAB_GROUP = "netlab"
CONTROLLERS = ("cpu", "cpuacct", "memory")
DEVICES = "devices"  # v1's device filter, which crun sets only when it manages cgroups
# The device nodes every container may use: containerd's and CRI-O's defaults (the
# OCI runtime spec's default devices plus mknod of any, which is harmless without
# read or write).
DEFAULT_DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
                        "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",
                        "c 136:* rwm")
CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000  # the kernel's floor, as kubelet clamps it
RECORD = "cgroups.json"
UNIFIED = "unified"  # the key for the single v2 tree


class CgroupError(OSError):
    pass


@dataclass(frozen=True)
class CgroupHost:
    """What this host offers: the version, where each controller's tree is, and
    under which directory netlab's groups go."""

    version: str  # "v2", "v1" or "none"
    parents: dict[str, str] = field(default_factory=dict)  # controller -> parent dir
    missing: dict[str, str] = field(default_factory=dict)  # controller -> why it is unusable

    def has(self, controller: str) -> bool:
        return controller in self.parents

    def lab_roots(self, lab: str) -> dict[str, str]:
        return {c: os.path.join(p, NETLAB_GROUP, lab) for c, p in self.parents.items()}


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(fstype, mountpoint, options) of every cgroup mount."""
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                found.append((parts[2], parts[1].replace("\\040", " "), set(parts[3].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup per v1 controller, and ``unified`` for v2."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if hid == "0" and not ctrls:
                paths[UNIFIED] = path
            for ctrl in ctrls.split(","):
                if ctrl:
                    paths[ctrl] = path
    return paths


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _controllers_of(point: str) -> set[str] | None:
    try:
        return set(_read(os.path.join(point, "cgroup.controllers")).split())
    except OSError:
        return None


def detect(mounts: list[tuple[str, str, set[str]]] | None = None,
           own: dict[str, str] | None = None,
           controllers_of: Callable[[str], set[str] | None] = _controllers_of) -> CgroupHost:
    """Inspect the mounts and decide which version and controllers to use.

    The arguments default to this process's view; tests pass their own.
    """
    mounts = _mounts() if mounts is None else mounts
    own = _own_paths() if own is None else own
    v1: dict[str, str] = {}
    for fstype, point, opts in mounts:
        if fstype == "cgroup":
            for ctrl in CONTROLLERS:
                if ctrl in opts:
                    v1.setdefault(ctrl, point)
    if v1:
        for fstype, point, opts in mounts:
            if fstype == "cgroup" and DEVICES in opts:
                v1.setdefault(DEVICES, point)
        parents, missing = {}, {}
        for ctrl in (*CONTROLLERS, DEVICES):
            if ctrl == DEVICES and ctrl not in v1:
                continue  # no device filter: containers get no MKNOD (restrict_devices)
            if ctrl in v1:
                parents[ctrl] = os.path.normpath(
                    os.path.join(v1[ctrl], own.get(ctrl, "/").lstrip("/")))
            else:
                missing[ctrl] = (f"no {ctrl} cgroup controller: cgroup v1 is in use and no "
                                 f"hierarchy with {ctrl} is mounted under {CGROUP_ROOT}")
        return CgroupHost("v1", parents, missing)
    for fstype, point, _ in mounts:
        if fstype != "cgroup2":
            continue
        available = controllers_of(point)
        if available is None:
            continue
        missing = {c: f"no {c} controller in the cgroup v2 hierarchy at {point} "
                      f"(cgroup.controllers lists: {' '.join(sorted(available)) or 'nothing'})"
                   for c in ("cpu", "memory") if c not in available}
        if len(missing) == 2:
            continue  # a hybrid host's empty unified tree
        # cpu.stat's usage_usec comes with the v2 tree whether or not cpu is enabled.
        return CgroupHost("v2", {UNIFIED: point}, missing)
    reason = "no cgroup hierarchy with cpu or memory controllers is mounted"
    return CgroupHost("none", {}, {c: reason for c in ("cpu", "memory")})


# -- groups ------------------------------------------------------------------


@dataclass(frozen=True)
class Cgroup:
    """One logical group: its directory in each hierarchy that has it."""

    version: str
    dirs: dict[str, str]  # controller (or "unified") -> directory

    def dir_for(self, controller: str) -> str | None:
        if self.version == "v2":
            return self.dirs.get(UNIFIED)
        return self.dirs.get(controller)

    def unique_dirs(self) -> list[str]:
        return sorted(set(self.dirs.values()))

    def to_json(self) -> dict:
        return {"version": self.version, "dirs": self.dirs}

    @classmethod
    def from_json(cls, data: dict | None) -> Cgroup | None:
        if not data:
            return None
        return cls(data["version"], dict(data["dirs"]))


def group(host: CgroupHost, lab: str, *parts: str) -> Cgroup:
    """The group ``netlab/<lab>/<parts...>`` (not created)."""
    dirs = {c: os.path.join(root, *parts) for c, root in host.lab_roots(lab).items()}
    return Cgroup(host.version, dirs)


def _record_root(lab: str, dirs: list[str]) -> None:
    directory = runtime_dir(lab)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f".{RECORD}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        known = set(read_json(directory / RECORD) or [])
        if not set(dirs) <= known:
            write_json(directory / RECORD, sorted(known | set(dirs)))
    finally:
        os.close(fd)


def _enable_v2_controllers(parent: str, target: str, controllers: list[str]) -> list[str]:
    """Enable cpu and memory in every ``subtree_control`` from ``parent`` down to
    ``target``'s parent; returns why a controller could not be enabled."""
    problems = []
    rel = os.path.relpath(target, parent).split(os.sep)
    current = parent
    for part in rel:
        for ctrl in controllers:
            try:
                with open(os.path.join(current, "cgroup.subtree_control"), "w") as f:
                    f.write(f"+{ctrl}")
            except OSError as exc:
                problems.append(f"cannot enable the {ctrl} controller below {current}: "
                                f"{exc.strerror}")
        current = os.path.join(current, part)
        with contextlib.suppress(FileExistsError):
            os.mkdir(current)
    return problems


def create(host: CgroupHost, lab: str, *parts: str) -> tuple[Cgroup, list[str]]:
    """Create ``netlab/<lab>/<parts...>`` in every usable hierarchy (idempotent).

    Returns the group and the reasons for anything that could not be set up.
    """
    cg = group(host, lab, *parts)
    if host.version == "none":
        return cg, list(dict.fromkeys(host.missing.values()))
    _record_root(lab, list(host.lab_roots(lab).values()))
    problems: list[str] = []
    made: dict[str, str] = {}
    for ctrl, directory in cg.dirs.items():
        try:
            if host.version == "v2":
                usable = [c for c in ("cpu", "memory") if c not in host.missing]
                problems += _enable_v2_controllers(host.parents[ctrl], directory, usable)
            else:
                os.makedirs(directory, exist_ok=True)
            made[ctrl] = directory
        except OSError as exc:  # a read-only cgroupfs, a delegation we lack
            problems.append(f"no {ctrl} cgroup: cannot create {directory}: {exc.strerror}")
    # Only groups that exist: the container joins every one, and must not fail on a gap.
    return Cgroup(cg.version, made), list(dict.fromkeys(problems))


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def set_limits(host: CgroupHost, cg: Cgroup, cpu_limit_millis: int | None = None,
               memory_limit_bytes: int | None = None,
               cpu_request_millis: int | None = None) -> list[str]:
    """Apply the limits; return one sentence per limit that is not enforced."""
    problems: list[str] = []

    def attempt(controller: str, what: str, writes: list[tuple[str, str]]) -> None:
        if controller in host.missing:
            problems.append(f"{what} not enforced: {host.missing[controller]}")
            return
        directory = cg.dir_for(controller)
        if directory is None:
            problems.append(f"{what} not enforced: no {controller} group")
            return
        for name, value in writes:
            try:
                _write(os.path.join(directory, name), value)
            except OSError as exc:
                problems.append(f"{what} not enforced: writing {value} to "
                                f"{os.path.join(directory, name)} failed: {exc.strerror}")
                return

    if memory_limit_bytes is not None:
        what = f"memory limit {memory_limit_bytes} bytes"
        if host.version == "v2":
            writes = [("memory.max", str(memory_limit_bytes))]
            directory = cg.dir_for("memory")
            if directory and os.path.exists(os.path.join(directory, "memory.swap.max")):
                writes.append(("memory.swap.max", "0"))  # a limit, not a hint to swap
        else:
            writes = [("memory.limit_in_bytes", str(memory_limit_bytes))]
            directory = cg.dir_for("memory")
            if directory and os.path.exists(os.path.join(directory, "memory.memsw.limit_in_bytes")):
                # memory+swap at the same value: with swap on, the limit still OOM-kills.
                writes.append(("memory.memsw.limit_in_bytes", str(memory_limit_bytes)))
        attempt("memory", what, writes)
    if cpu_limit_millis is not None:
        quota = max(MIN_CFS_QUOTA_US, cpu_limit_millis * CFS_PERIOD_US // 1000)
        what = f"cpu limit {cpu_limit_millis}m"
        if host.version == "v2":
            attempt("cpu", what, [("cpu.max", f"{quota} {CFS_PERIOD_US}")])
        else:
            attempt("cpu", what, [("cpu.cfs_period_us", str(CFS_PERIOD_US)),
                                  ("cpu.cfs_quota_us", str(quota))])
    if cpu_request_millis is not None:
        shares = max(2, cpu_request_millis * 1024 // 1000)  # kubelet's MilliCPUToShares
        what = f"cpu request {cpu_request_millis}m"
        if host.version == "v2":
            weight = 1 + ((shares - 2) * 9999) // 262142  # kubelet's shares -> weight
            attempt("cpu", what, [("cpu.weight", str(min(10000, weight)))])
        else:
            attempt("cpu", what, [("cpu.shares", str(shares))])
    return problems


def limits(cg: Cgroup) -> dict[str, int | None]:
    """The limits as the kernel holds them (None: unlimited or unreadable)."""
    out: dict[str, int | None] = {"cpu_quota_us": None, "cpu_period_us": None,
                                  "memory_bytes": None}
    with contextlib.suppress(OSError, ValueError):
        if cg.version == "v2":
            quota, period = _read(os.path.join(cg.dirs[UNIFIED], "cpu.max")).split()
            out["cpu_quota_us"] = None if quota == "max" else int(quota)
            out["cpu_period_us"] = int(period)
        elif "cpu" in cg.dirs:
            quota_v1 = int(_read(os.path.join(cg.dirs["cpu"], "cpu.cfs_quota_us")))
            out["cpu_quota_us"] = None if quota_v1 < 0 else quota_v1
            out["cpu_period_us"] = int(_read(os.path.join(cg.dirs["cpu"], "cpu.cfs_period_us")))
    with contextlib.suppress(OSError, ValueError):
        if cg.version == "v2":
            raw = _read(os.path.join(cg.dirs[UNIFIED], "memory.max"))
            out["memory_bytes"] = None if raw == "max" else int(raw)
        elif "memory" in cg.dirs:
            value = int(_read(os.path.join(cg.dirs["memory"], "memory.limit_in_bytes")))
            out["memory_bytes"] = None if value >= 2**62 else value
    return out


# -- counters ------------------------------------------------------------------


def _kv(path: str) -> dict[str, int]:
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
    return out


def cpu_usage_ns(cg: Cgroup) -> int | None:
    """Cumulative CPU time of everything in the group, in nanoseconds."""
    try:
        if cg.version == "v2":
            return _kv(os.path.join(cg.dirs[UNIFIED], "cpu.stat"))["usage_usec"] * 1000
        if "cpuacct" in cg.dirs:
            return int(_read(os.path.join(cg.dirs["cpuacct"], "cpuacct.usage")))
    except (OSError, KeyError, ValueError):
        return None
    return None


def memory_working_set(cg: Cgroup) -> int | None:
    """Usage less inactive file cache: what kubelet/cAdvisor call the working set,
    the number memory limits and evictions are judged by."""
    try:
        if cg.version == "v2":
            d = cg.dirs[UNIFIED]
            usage = int(_read(os.path.join(d, "memory.current")))
            inactive = _kv(os.path.join(d, "memory.stat")).get("inactive_file", 0)
        elif "memory" in cg.dirs:
            d = cg.dirs["memory"]
            usage = int(_read(os.path.join(d, "memory.usage_in_bytes")))
            inactive = _kv(os.path.join(d, "memory.stat")).get("total_inactive_file", 0)
        else:
            return None
    except (OSError, KeyError, ValueError):
        return None
    return max(0, usage - inactive)


def oom_kills(cg: Cgroup) -> int | None:
    """How many processes the kernel has OOM-killed in this group so far."""
    try:
        if cg.version == "v2":
            return _kv(os.path.join(cg.dirs[UNIFIED], "memory.events")).get("oom_kill", 0)
        if "memory" in cg.dirs:
            return _kv(os.path.join(cg.dirs["memory"], "memory.oom_control")).get("oom_kill", 0)
    except OSError:
        return None
    return None


def restrict_devices(cg: Cgroup, privileged: bool) -> bool:
    """Limit the container's group to the default device nodes (every device when
    ``privileged``), as an OCI runtime does through the devices controller; False when
    the host has no v1 devices hierarchy to do it with."""
    directory = cg.dirs.get(DEVICES)
    if directory is None:
        return False
    if privileged:
        _write(os.path.join(directory, "devices.allow"), "a")
        return True
    _write(os.path.join(directory, "devices.deny"), "a")
    for rule in DEFAULT_DEVICE_RULES:
        _write(os.path.join(directory, "devices.allow"), rule)
    return True


def add_process(cg: Cgroup, pid: int) -> None:
    """Move process ``pid`` into the group in every hierarchy: the runtime does this
    for a container crun has created but not yet started (its command has not run)."""
    for directory in cg.unique_dirs():
        _write(os.path.join(directory, "cgroup.procs"), str(pid))


def procs(directory: str) -> list[int]:
    """Pids in ``directory`` and every group below it."""
    found: list[int] = []
    for root, _dirs, _files in os.walk(directory):
        with contextlib.suppress(OSError):
            found += [int(p) for p in _read(os.path.join(root, "cgroup.procs")).split()]
    return found


# -- removal -------------------------------------------------------------------


def _rmdir_tree(directory: str) -> list[str]:
    """Remove a group and everything below it, leaves first. Returns what remained."""
    left = []
    for root, dirs, _files in os.walk(directory, topdown=False):
        for d in dirs:
            with contextlib.suppress(FileNotFoundError):
                try:
                    os.rmdir(os.path.join(root, d))
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        left.append(os.path.join(root, d))
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        pass
    except OSError:
        left.append(directory)
    return left


def _kill_and_wait(directories: list[str], timeout: float) -> None:
    """SIGKILL every pid in the groups (read from cgroup.procs: current, never
    stale), until they are empty or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    me = os.getpid()
    while True:
        pids = [p for d in directories if os.path.isdir(d) for p in procs(d) if p != me]
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)  # the kernel empties cgroup.procs as the processes are reaped


def remove(cg: Cgroup, timeout: float = 5.0) -> list[str]:
    """Kill what is left in the group and delete it (idempotent); returns any
    directory that could not be removed."""
    dirs = cg.unique_dirs()
    _kill_and_wait(dirs, timeout)
    left: list[str] = []
    for d in dirs:
        left += _rmdir_tree(d)
    return left


def cleanup_lab(lab: str, host: CgroupHost | None = None, timeout: float = 5.0) -> list[str]:
    """Remove every group of the lab in every hierarchy, killing their processes
    first. Finds the roots from the record and from where this process would
    create them. Returns the directories removed."""
    host = host or detect()
    candidates = set(read_json(runtime_dir(lab) / RECORD) or [])
    candidates |= set(host.lab_roots(lab).values())
    if host.version == "v1":  # a lab made by a process in another cgroup, record lost
        for ctrl in host.parents:
            for _, point, opts in _mounts():
                if ctrl in opts:
                    candidates.add(os.path.join(point, NETLAB_GROUP, lab))
    present = sorted(d for d in candidates if os.path.isdir(d))
    _kill_and_wait(present, timeout)
    removed = []
    for d in present:
        if not _rmdir_tree(d):
            removed.append(d)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(d))  # netlab/, once the last lab is gone
    with contextlib.suppress(OSError):
        os.unlink(runtime_dir(lab) / RECORD)
    return removed
