"""Network namespaces: create, enter, list, delete, and find what runs inside.

A namespace is created the way ``ip netns add`` does it (bind-mounted under
``/run/netns`` so ``ip netns exec`` and ``tcpdump`` work without netlab), but
without forking: a worker thread unshares its own network namespace, pins it
with the bind mount and configures it, and the thread's exit leaves the rest
of the process where it was. ``setns(CLONE_NEWNET)`` only ever changes the
calling thread, which is why every namespaced action here runs in a thread of
its own: the host's root namespace is never the one being changed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar, cast

from netlab.kernel import namespaces as ns
from netlab.kernel.namespaces import (
    CLONE_NEWNET,
    CLONE_NEWNS,
    MS_BIND,
    MS_REC,
    MS_SHARED,
    MS_SLAVE,
)

NETNS_RUN_DIR = "/run/netns"

T = TypeVar("T")
_run_dir_lock = threading.Lock()
NetnsError = ns.NamespaceError


def netns_path(name: str) -> str:
    """``/run/netns/<name>``; an absolute path (CNI's ``CNI_NETNS``) is taken as is."""
    return name if os.path.isabs(name) else os.path.join(NETNS_RUN_DIR, name)


def _ensure_run_dir() -> None:
    """Make /run/netns a shared mount, as iproute2 does, so namespace mounts
    propagate to every mount namespace (``ip netns exec`` creates its own)."""
    with _run_dir_lock:
        os.makedirs(NETNS_RUN_DIR, exist_ok=True)
        try:
            ns.mount("none", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC)
            return
        except OSError:
            pass  # not a mount point yet: bind it onto itself first
        ns.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC)
        ns.mount("none", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC)


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


def exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


def run_on_own_thread(target: Callable[[], T]) -> T:
    """Run ``target`` in a fresh thread (whose namespaces it may change: they die with
    it) and return its result. The thread starts in the caller's namespaces."""
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            result.append(target())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=body, name="netlab-netns", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def join_netns(name: str) -> None:
    """Move the calling thread (in a fresh child: the whole process) into ``name``."""
    _setns(name)


def _setns(name: str) -> None:
    ns.setns_path(netns_path(name), CLONE_NEWNET)


def run_in_netns(name: str, fn: Callable[[], T]) -> T:
    """Call ``fn()`` inside namespace ``name`` (on a dedicated thread) and return its result.

    Sockets created by ``fn`` stay in that namespace after it returns, so this
    is also how to open a netlink or packet socket in a lab namespace.
    """
    if not exists(name):
        raise NetnsError(errno.ENOENT, f"network namespace {name} does not exist")

    def target() -> T:
        _setns(name)
        return fn()

    return run_on_own_thread(target)


def executor_in_netns_fd(fd: int, max_workers: int = 2) -> ThreadPoolExecutor:
    """A thread pool whose threads live in the network namespace behind the open file
    ``fd`` (``/proc/<pid>/ns/net``, handed down by a parent): the sockets they create
    and the names they resolve are that namespace's. How a component inside a lab
    namespace reaches the host's, which it holds as an fd and cannot name."""
    return ThreadPoolExecutor(max_workers, thread_name_prefix=f"netns-fd{fd}",
                              initializer=ns.setns_fd, initargs=(fd, CLONE_NEWNET, f"fd {fd}"))


def create_netns(name: str, setup: Callable[[], T] | None = None) -> T | None:
    """Create namespace ``name`` and run ``setup()`` inside it; return its result.

    Fails with EEXIST when the name is taken: labs never adopt a namespace they
    did not make. When ``setup`` fails the namespace is deleted again: it is
    this call's, and ``setup`` (the lab's owner tag) is what would let a later
    cleanup tell it from someone else's, so nobody else could remove it.
    """
    _ensure_run_dir()
    path = netns_path(name)

    def target() -> T | None:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
        os.close(fd)
        try:
            ns.unshare(CLONE_NEWNET)
            ns.mount(ns.thread_ns_path("net"), path, "none", MS_BIND)
        except BaseException:
            os.unlink(path)
            raise
        if setup is None:
            return None
        try:
            return setup()
        except BaseException:
            delete_netns(name)
            raise

    return run_on_own_thread(target)


def delete_netns(name: str) -> bool:
    """Unpin the namespace; the kernel frees it once no process holds it. Idempotent."""
    path = netns_path(name)
    if not os.path.exists(path):
        return False
    ns.umount(path)  # may already be unmounted after a crash
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def netns_inode(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(netns_path(name))
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def process_netns(pid: int) -> tuple[int, int] | None:
    """The (device, inode) of process ``pid``'s network namespace, comparable with
    ``netns_inode``; None when the process is gone."""
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def pids_in_netns(names: Iterable[str]) -> dict[int, str]:
    """Every process whose network namespace is one of ``names``: pid -> name."""
    wanted = {}
    for name in names:
        inode = netns_inode(name)
        if inode is not None:
            wanted[inode] = name
    found: dict[int, str] = {}
    if not wanted:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue  # exited, or a kernel thread
        owner = wanted.get((st.st_dev, st.st_ino))
        if owner is not None:
            found[int(entry)] = owner
    return found


class NetnsMembers:
    """The processes of one network namespace, found once and then kept.

    Finding them is a ``stat`` of every process in /proc (:func:`pids_in_netns`):
    about 1.4 ms on a host of 136 processes, and a 100-node lab has thousands. Every
    kubelet measuring its node each usage period that way made the lab's idle cost
    grow with the square of its nodes. So the kept pids are checked one by one, and
    /proc is scanned again only when one of them has gone or left the namespace (a
    component restarted), the namespace was recreated, or ``rescan`` seconds passed
    (a process started inside by hand is counted from then on).
    """

    def __init__(self, name: str, rescan: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.rescan, self._clock = name, rescan, clock
        self._pids: set[int] | None = None
        self._inode: tuple[int, int] | None = None
        self._scanned_at = 0.0
        self.scans = 0

    def pids(self) -> set[int]:
        now, inode = self._clock(), netns_inode(self.name)
        kept = self._pids
        if kept is not None and inode == self._inode and now - self._scanned_at < self.rescan \
                and all(process_netns(pid) == inode for pid in kept):
            return set(kept)
        self._pids = set(pids_in_netns([self.name]))
        self._inode, self._scanned_at = inode, now
        self.scans += 1
        return set(self._pids)


def enter_netns(name: str) -> None:
    """Move the calling *process* into ``name``, as ``ip netns exec`` does, before exec.

    Only for a single-threaded process about to exec: it also takes a private
    mount namespace and remounts /sys, so tools reading /sys/class/net see the
    namespace's own interfaces.
    """
    _setns(name)
    ns.unshare(CLONE_NEWNS)
    # Keep our remount of /sys from propagating back to the host.
    ns.mount("none", "/", None, MS_REC | MS_SLAVE)
    if ns.umount("/sys"):
        with contextlib.suppress(OSError):
            ns.mount(name, "/sys", "sysfs", 0)


def parallel(tasks: Iterable[Callable[[], T]]) -> list[T]:
    """Run independent tasks concurrently, each on a fresh thread, and return their
    results in order; the first error is re-raised after all have finished.

    Fresh threads, not a pool: a task may ``setns`` its thread, and a reused
    thread would carry that namespace into the next task.
    """
    task_list = list(tasks)
    results: list[T | None] = [None] * len(task_list)
    errors: list[BaseException] = []

    def body(i: int, task: Callable[[], T]) -> None:
        try:
            results[i] = task()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i, t), daemon=True)
               for i, t in enumerate(task_list)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return cast("list[T]", results)  # no task raised, so each filled its slot


def write_sysctl(key: str, value: str) -> None:
    """Set a sysctl in the calling thread's network namespace (``net.ipv4.ip_forward``)."""
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(value)


def read_sysctl(key: str) -> str:
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return f.read().strip()
