"""The namespace and mount primitives, the one libc wrapper of netlab: setns of
any namespace type, unshare, mount/umount, sethostname, and pinning a namespace
to a file with a bind mount (as ``ip netns add`` pins network namespaces).

``netns`` (network namespaces by name) is built on these. Standard library only
(ctypes).
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


MS_RDONLY = 0x1


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
