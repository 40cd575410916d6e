"""Running out of open files or memory during ``up``: seeing it and saying so.

An ``up`` that runs out of file descriptors or memory fails somewhere deep
(a netlink socket, SQLite's open, an import in the API server) or sees a
component die of SIGKILL. This module recognises those causes, in an exception
of ``up`` itself, in a component's log, or in a component killed by the kernel's
OOM killer, and words them for the user with the limit that was hit and what
the lab needs. The numbers come from the host (``RLIMIT_NOFILE``, the memory
cgroup's limit, ``/proc/vmstat``'s OOM kill count); the wording is pure.

It also gives ``up`` the means to survive the failure long enough to roll back:
the open-file limit raised to its hard limit as Go programs do at start (each
component inherits it), and a few descriptors held in reserve for the rollback.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import re
import resource
from dataclasses import dataclass
from pathlib import Path

import psutil

# What the API server holds open, measured (a 2-node lab: 45, 11 nodes: 165): about
# a dozen connections per cluster node's agents, and its own files and listeners.
# The API server holds the most of any process; every process inherits up's limit.
FILES_BASE = 64
FILES_PER_NODE = 16
# Descriptors ``up`` keeps in reserve for its rollback: enough for a netlink socket
# per namespace in turn, psutil's reads and the directory walks of the removal.
RESERVE_FDS = 16
# How far ``up`` raises its soft open-file limit: 40 times what a 100-node lab's API
# server holds, and what a pod's process may loop over closing them all.
RAISE_CAP = 65536
OOM_SIGNAL_EXIT = -9  # a component's exit status when SIGKILL ended it

_FILES = re.compile(r"\[Errno 2[34]\]|Too many open files|EMFILE|ENFILE")
_MEMORY = re.compile(r"MemoryError|\[Errno 12\]|Cannot allocate memory|out of memory",
                     re.IGNORECASE)


@dataclass(frozen=True)
class Exhaustion:
    """One resource that ran out: ``resource`` is "files" or "memory"; ``who`` the
    process ("netlab up", "the API server", "kubelet-worker1"); ``evidence`` what
    said so (an error message, a log line), ``system`` when the host's table as a
    whole was full (ENFILE) rather than the process's limit."""

    resource: str
    who: str
    evidence: str = ""
    system: bool = False


def files_needed(cluster_nodes: int) -> int:
    """Open files the busiest process of a lab of ``cluster_nodes`` holds (its API
    server), about."""
    return FILES_BASE + FILES_PER_NODE * cluster_nodes


def suggested_limit(need: int) -> int:
    """A round ``ulimit -n`` with room to spare: twice ``need``, at least 1024."""
    limit = 1024
    while limit < 2 * need:
        limit *= 2
    return limit


def open_files_limit() -> tuple[int, int]:
    """This process's (soft, hard) RLIMIT_NOFILE; ``ulimit -n`` shows the soft one."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def raise_open_files_limit(cap: int = RAISE_CAP) -> int:
    """Raise the soft open-file limit towards the hard one, as Go's runtime does at
    start for kube-apiserver, the kubelet and etcd: 1024, the usual soft default, is
    less than a big lab's API server holds. The supervisor and every component
    inherit it from ``up``, and so do pods' processes: hence ``cap`` (a program that
    closes every possible descriptor before it execs pays for each). Never lowers
    it. Returns the soft limit now."""
    soft, hard = open_files_limit()
    target = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    if soft != resource.RLIM_INFINITY and target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return open_files_limit()[0]


def oom_kills() -> int | None:
    """The kernel's count of OOM kills since boot (``/proc/vmstat`` oom_kill: the
    memory cgroups' as well as the whole machine's); None where it is not kept."""
    try:
        text = Path("/proc/vmstat").read_text()
    except OSError:
        return None
    match = re.search(r"^oom_kill (\d+)$", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def memory_limit() -> tuple[str, int] | None:
    """The tightest memory limit of this process's cgroup and its ancestors, as
    (cgroup path, bytes); None without one. v2 ``memory.max``, v1
    ``memory.limit_in_bytes`` (a v1 "no limit" is a huge number, ignored)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    best: tuple[str, int] | None = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base, name = "/sys/fs/cgroup", "memory.max"
        elif "memory" in controllers.split(","):
            base, name = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
        else:
            continue
        current = path
        while True:
            try:
                value = Path(base + current.rstrip("/"), name).read_text().strip()
            except OSError:
                value = "max"
            if value.isdigit() and int(value) < 2**60 and (best is None or int(value) < best[1]):
                best = (current, int(value))
            if current in ("/", ""):
                break
            current = os.path.dirname(current.rstrip("/")) or "/"
    return best


def from_exception(exc: BaseException, who: str = "netlab up") -> Exhaustion | None:
    """The exhaustion behind ``exc`` or any exception it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return Exhaustion("memory", who, "MemoryError")
        if isinstance(current, OSError) and current.errno in (errno.EMFILE, errno.ENFILE):
            return Exhaustion("files", who, str(current), system=current.errno == errno.ENFILE)
        if isinstance(current, OSError) and current.errno == errno.ENOMEM:
            return Exhaustion("memory", who, str(current))
        found = from_text(str(current), who)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def from_text(text: str, who: str) -> Exhaustion | None:
    """The first line of ``text`` (an error, a log's tail) that says a resource ran out."""
    for line in text.splitlines():
        if _FILES.search(line):
            system = "[Errno 23]" in line or "in system" in line or "ENFILE" in line
            return Exhaustion("files", who, line.strip(), system=system)
        if _MEMORY.search(line):
            return Exhaustion("memory", who, line.strip())
    return None


def from_log(path: Path, who: str, size: int = 64 * 1024) -> Exhaustion | None:
    """``from_text`` of the end of a component's log."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - size))
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    return from_text(text, who)


def fds_at_limit(pid: int, who: str, margin: int = 2) -> Exhaustion | None:
    """Process ``pid`` holding as many descriptors as its limit lets it (within
    ``margin``: what it opens and closes around the one it could not)."""
    try:
        proc = psutil.Process(pid)
        soft, _ = proc.rlimit(psutil.RLIMIT_NOFILE)
        count = proc.num_fds()
    except (psutil.Error, OSError):
        return None
    if soft == resource.RLIM_INFINITY or count < soft - margin:
        return None
    return Exhaustion("files", who, f"it holds {count} open files")


def killed_components(record: dict[str, dict], since_kills: int | None,
                      kills_now: int | None,
                      names: dict[str, str] | None = None) -> Exhaustion | None:
    """Components the supervisor saw end by SIGKILL (``components.json``'s lastExit):
    the kernel's OOM killer's doing when its count went up meanwhile. Nobody else
    sends SIGKILL to a lab's components while ``up`` runs. ``names``: what to call a
    component ("the API server" for "apiserver")."""
    killed = sorted((names or {}).get(name, name) for name, row in record.items()
                    if row.get("lastExit") == OOM_SIGNAL_EXIT)
    if not killed:
        return None
    who = ", ".join(killed)
    oom = since_kills is not None and kills_now is not None and kills_now > since_kills
    evidence = (f"the kernel's OOM killer killed {kills_now - since_kills} processes"
                if oom and since_kills is not None and kills_now is not None
                else "killed by SIGKILL")
    return Exhaustion("memory", who, evidence)


def oom_killed_meanwhile(since_kills: int | None, kills_now: int | None,
                         supervisor_gone: bool) -> Exhaustion | None:
    """The kernel's OOM killer killed processes while ``up`` ran (its count went up):
    the supervisor, when it is the one gone (it leaves no exit status to read), or
    some of the lab's processes."""
    if since_kills is None or kills_now is None or kills_now <= since_kills:
        return None
    who = "the supervisor" if supervisor_gone else "the lab's processes"
    return Exhaustion("memory", who,
                      f"the kernel's OOM killer killed {kills_now - since_kills} processes")


def describe(found: Exhaustion, cluster_nodes: int, limits: tuple[int, int],
             memory_need: int, memory_cap: tuple[str, int] | None) -> str:
    """The sentence for the user: what ran out, in whom, the limit, what the lab
    needs, and what to do."""
    if found.resource == "files":
        need = files_needed(cluster_nodes)
        if found.system:
            return (f"{found.who} ran out of open files: the system's file table is full "
                    f"(fs.file-max; {found.evidence}). Close programs or raise "
                    "fs.file-max, and try again")
        soft, hard = limits
        hard_words = "" if hard == soft else f", hard limit {_limit_words(hard)}"
        return (f"{found.who} ran out of open files (ulimit -n {_limit_words(soft)}"
                f"{hard_words}: {found.evidence}). A lab of {cluster_nodes} cluster "
                f"nodes needs about {need} open files in its API server; raise the limit "
                f"('ulimit -n {suggested_limit(need)}') and try again")
    mib = 2**20
    cap = (f"; its memory cgroup {memory_cap[0]} is limited to {memory_cap[1] // mib} MiB"
           if memory_cap else "")
    killed = "were" if "," in found.who or found.who.endswith("processes") else "was"
    what = (f"{found.who} {killed} killed: out of memory ({found.evidence}{cap})"
            if found.evidence.startswith(("the kernel's OOM", "killed by"))
            else f"{found.who} ran out of memory ({found.evidence}{cap})")
    return (f"{what}. A lab of {cluster_nodes} cluster nodes needs about "
            f"{memory_need // mib} MiB; free memory or raise the limit, and try again")


def _limit_words(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


class FdReserve:
    """A few descriptors held from the start of ``up`` and given back for its
    rollback: a step that ran out of open files leaves none, and a rollback that
    runs out too would leave the lab half-built, the worst outcome."""

    def __init__(self, count: int = RESERVE_FDS):
        self.fds: list[int] = []
        for _ in range(count):
            try:
                self.fds.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                break

    def release(self) -> None:
        """Give the descriptors back, and collect what a failed step left in
        reference cycles (a half-built netlink socket's event loop holds several)."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        gc.collect()
