"""The namespace and mount primitives, the one libc wrapper of netlab: setns of
any namespace type, unshare, mount/umount, sethostname, and pinning a namespace
to a file with a bind mount (as ``ip netns add`` pins network namespaces).

``netns`` (network namespaces by name) is built on these; the container shim
calls them between fork and exec. Standard library only (ctypes), because the
shim imports it and must start fast.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC = 0x20, 0x1000, 0x4000
MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 18, 1 << 19, 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise NamespaceError(err, f"{what}: {os.strerror(err)}")


def setns_path(path: str, nstype: int) -> None:
    """Join the namespace behind ``path`` (a pin file or ``/proc/<pid>/ns/<type>``).

    For network and UTS namespaces this moves only the calling thread; in a
    single-threaded child about to exec, that is the whole process.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns_fd(fd, nstype, path)
    finally:
        os.close(fd)


def setns_fd(fd: int, nstype: int, what: str = "") -> None:
    _check(_libc.setns(fd, nstype), f"setns {what}".strip())


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare {flags:#x}")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {source} on {target}")


PR_CAPBSET_DROP = 24
MS_RDONLY = 0x1


def drop_bounding(numbers: list[int]) -> None:
    """Drop capabilities from this thread's bounding set (inherited across fork and
    exec, never regained); needs CAP_SETPCAP, so it comes last."""
    for number in numbers:
        _check(_libc.prctl(PR_CAPBSET_DROP, number, 0, 0, 0), f"drop capability {number}")


PR_SET_NO_NEW_PRIVS = 38


def set_no_new_privs() -> None:
    """No exec from now on may gain privileges (setuid bits, file capabilities):
    ``allowPrivilegeEscalation: false``, shown as ``NoNewPrivs: 1`` in
    ``/proc/self/status``. Inherited by every child, never cleared."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")


def remount_read_only(target: str) -> None:
    """Make the mount at ``target`` read-only (``readOnlyRootFilesystem`` on "/"),
    keeping its nosuid/nodev/noexec flags; mounts below it keep their own."""
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    # Parsed by hand, not with _mounts(): inside a container's own root the host's
    # Python library (the unicode_escape codec) is no longer there to import.
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 5 and fields[4] == target:
                for name in fields[5].split(","):
                    flags |= _KEEP_FLAGS.get(name, 0)
    mount(None, target, None, flags)


def mask(path: str) -> None:
    """Hide a directory behind an empty read-only tmpfs (an OCI masked path)."""
    mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
          "size=0,mode=0555")


DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")


def minimal_dev(target: str = "/dev") -> None:
    """Mount at ``target`` what an OCI runtime gives a container as ``/dev``: the six
    character devices, a private devpts, ``/dev/shm`` and the fd links. The host's
    disks and every other device node disappear. Device nodes are bind-mounted
    from the host (through fds opened before ``target`` is covered), so no mknod;
    the tmpfs itself is ``nodev``, so a node made there with CAP_MKNOD (in the
    default set) opens nothing: the host's disks stay out of reach."""
    sources = {n: os.open(f"/dev/{n}", os.O_PATH | os.O_CLOEXEC) for n in DEV_NODES
               if os.path.exists(f"/dev/{n}")}
    try:
        mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
              "mode=0755,size=65536k")
        for name, fd in sources.items():
            open(f"{target}/{name}", "w").close()
            # A bind mount keeps its source's flags (devtmpfs: devices allowed).
            mount(f"/proc/self/fd/{fd}", f"{target}/{name}", None, MS_BIND)
    finally:
        for fd in sources.values():
            os.close(fd)
    os.mkdir(f"{target}/pts")
    mount("devpts", f"{target}/pts", "devpts", MS_NOSUID | MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=0620")
    os.symlink("pts/ptmx", f"{target}/ptmx")
    os.mkdir(f"{target}/shm")
    mount("shm", f"{target}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
          "mode=1777,size=65536k")
    for link, dest in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                       ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(dest, f"{target}/{link}")


_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}


def pivot_root(new_root: str) -> None:
    """Make ``new_root`` (a mount point) this mount namespace's root and detach the
    old root entirely, as runc does: pivot_root(".", ".") stacks the old root on
    the new one, and a lazy unmount of "." removes it. Afterwards nothing of the
    old root is reachable. The old root must not be a shared mount (make it a
    slave first), or the unmount would propagate to the host."""
    os.chdir(new_root)
    if hasattr(_libc, "pivot_root"):
        result = _libc.pivot_root(b".", b".")
    else:  # glibc before 2.36 has no wrapper
        import platform

        result = _libc.syscall(_SYS_PIVOT_ROOT[platform.machine()], b".", b".")
    _check(result, f"pivot_root {new_root}")
    _check(_libc.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")


# Pseudo filesystems: nothing on them is the host's disk, and some refuse a remount.
_NOT_STORAGE = frozenset((
    "proc", "sysfs", "nsfs", "cgroup", "cgroup2", "devpts", "mqueue", "bpf", "tracefs",
    "debugfs", "securityfs", "fusectl", "configfs", "pstore", "binfmt_misc", "hugetlbfs",
    "autofs", "efivarfs", "rpc_pipefs", "devtmpfs"))
_KEEP_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 0x400, 0x800, 1 << 21
_KEEP_FLAGS |= {"noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, mount options, filesystem type) of this mount namespace."""
    rows = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            point = fields[4].encode().decode("unicode_escape")  # \040 is a space
            rows.append((point, fields[5], right.split()[0]))
    return rows


def read_only_host(writable: tuple[str, ...] = ("/tmp", "/var/tmp"),
                   keep: tuple[str, ...] = ()) -> None:
    """Make every storage mount of this mount namespace read-only (the host's root
    filesystem and whatever is mounted under it), except ``/dev``, ``/proc`` and
    ``/sys``, then give each of ``writable`` a fresh private tmpfs: what a container
    without its own image root filesystem may write, and nothing of the host.

    Each ``keep`` directory that a fresh tmpfs would hide (netlab installed in a
    virtualenv under /tmp) is bound back, read-only, at its own path."""
    for point, options, fstype in _mounts():
        if point.startswith(("/proc", "/dev", "/sys")) or "ro" in options.split(","):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for name in options.split(","):
            flags |= _KEEP_FLAGS.get(name, 0)
        if _libc.mount(None, point.encode(), None, flags, None) != 0 and \
                fstype not in _NOT_STORAGE:
            err = ctypes.get_errno()
            raise OSError(err, f"remount {point} ({fstype}) read-only: {os.strerror(err)}")
    hidden = [p for p in keep if os.path.isdir(p) and
              any(os.path.commonpath((p, w)) == w for w in writable)]
    # Opened before the tmpfs covers them: the only way back to them afterwards.
    handles = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in hidden}
    try:
        for path in writable:
            if os.path.isdir(path):
                mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k")
        for path, fd in handles.items():
            os.makedirs(path, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    finally:
        for fd in handles.values():
            os.close(fd)


def umount(target: str) -> bool:
    """Lazily detach ``target``; False when it was not mounted (idempotent)."""
    return bool(_libc.umount2(target.encode(), MNT_DETACH) == 0)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), f"sethostname {name}")


def is_pinned(path: str) -> bool:
    """A pin file is an nsfs bind mount: its device differs from its directory's."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path) or ".").st_dev
    except OSError:
        return False


def thread_ns_path(nstype_name: str) -> str:
    """The calling thread's own namespace file (``/proc/self/ns`` is the main thread's)."""
    return f"/proc/self/task/{threading.get_native_id()}/ns/{nstype_name}"


def pin_current(nstype_name: str, pin: str) -> None:
    """Bind-mount the calling thread's namespace onto ``pin`` (created empty), so it
    outlives every process in it and others can ``setns`` into it later."""
    fd = os.open(pin, os.O_RDONLY | os.O_CREAT, 0o444)
    os.close(fd)
    try:
        mount(thread_ns_path(nstype_name), pin, None, MS_BIND)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(pin)
        raise


def unpin(pin: str) -> bool:
    """Undo ``pin_current``: the namespace goes once nothing else holds it. Idempotent."""
    if not os.path.lexists(pin):
        return False
    umount(pin)  # may already be unmounted after a crash
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pin)
    return True
