"""The namespace and mount primitives, the one libc wrapper of netlab: setns of
any namespace type, unshare, mount/umount, sethostname, pinning a namespace
to a file with a bind mount (as ``ip netns add`` pins network namespaces), and the
new mount API's ``open_tree``/``move_mount``/``mount_setattr`` (a detached copy of a
mount, made in one mount namespace and attached in another).

``netns`` (network namespaces by name) is built on these, and ``processes`` uses the
same C library handle for this process's heap. Standard library only (ctypes).
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

libc = ctypes.CDLL(None, use_errno=True)  # the C library, for every kernel module


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
    _check(libc.setns(fd, nstype), f"setns {what}".strip())


def unshare(flags: int) -> None:
    _check(libc.unshare(flags), f"unshare {flags:#x}")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    _check(libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {source} on {target}")


MS_RDONLY = 0x1


def umount(target: str) -> bool:
    """Lazily detach ``target``; False when it was not mounted (idempotent)."""
    return bool(libc.umount2(target.encode(), MNT_DETACH) == 0)


# The new mount API (Linux 5.2; mount_setattr 5.12). Its system calls have the same
# numbers on every architecture but alpha, and glibc has no wrappers for them before
# 2.36.
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE, AT_EMPTY_PATH, AT_RECURSIVE = 0x1, 0x1000, 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
_AT_FDCWD = -100


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def clone_tree(fd: int, attrs: int = 0) -> int:
    """A detached recursive copy of the mount tree at ``fd`` (an ``O_PATH``
    descriptor), as a bind would make it (the copy of a shared mount is its peer),
    with ``attrs`` (``MOUNT_ATTR_*``) set on every mount of it. Returns its
    descriptor (close-on-exec): attach it with ``attach_tree``, or close it to drop
    it."""
    tree = libc.syscall(_SYS_OPEN_TREE, fd, b"", OPEN_TREE_CLONE | os.O_CLOEXEC |
                         AT_EMPTY_PATH | AT_RECURSIVE)
    if tree < 0:
        err = ctypes.get_errno()
        raise NamespaceError(err, f"open_tree: {os.strerror(err)}")
    if attrs:
        attr = _MountAttr(attrs, 0, 0, 0)
        if libc.syscall(_SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH | AT_RECURSIVE,
                         ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
            err = ctypes.get_errno()
            os.close(tree)
            raise NamespaceError(err, f"mount_setattr: {os.strerror(err)}")
    return int(tree)


def attach_tree(tree: int, target: str) -> None:
    """Attach the detached tree ``tree`` (``clone_tree``, possibly made in another
    mount namespace) on ``target`` in the caller's mount namespace."""
    _check(libc.syscall(_SYS_MOVE_MOUNT, tree, b"", _AT_FDCWD, target.encode(),
                         MOVE_MOUNT_F_EMPTY_PATH), f"move_mount on {target}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(libc.sethostname(raw, len(raw)), f"sethostname {name}")


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
