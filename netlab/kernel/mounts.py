"""Volume mounts: the kernel half of a pod's volumes.

Three callers, three needs:

- the kubelet backs an ``emptyDir`` with ``medium: Memory`` by a tmpfs of its
  ``sizeLimit`` (:func:`mount_tmpfs`), and before a pod's directory is removed,
  whatever is mounted below it goes (:func:`unmount_below`, also what ``netlab down``
  runs after a crash);
- the kubelet and the runtime resolve a ``subPath`` inside a volume with upstream's
  safety (:func:`open_beneath`): symbolic links are evaluated, the result must stay
  inside the volume, and the path is then opened one element at a time without
  following any link, so a link swapped in by a container between the check and the
  mount (the classic subPath escape) is refused instead of followed;
- the runtime opens every volume's source (:func:`open_sources`) and binds the opened
  object on a mount point of the container's bundle (:func:`bind`), read-only when
  the mount asks; crun then mounts that bundle path, which no pod can change, so what
  the container gets is what was checked;
- a volume's ``mountPropagation`` needs its source on a mount that propagates
  (:func:`check_propagation`, CRI-O's ``ensureShared``/``ensureSharedOrSlave``), and
  the bundle's bind of it receives the host's mounts but never sends its own
  unmounts back (a slave): tearing a pod down must not unmount what the host
  mounted in a shared hostPath.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass

from netlab.kernel import namespaces as nsutil


class MountError(OSError):
    pass


def mount_tmpfs(path: str, size_bytes: int | None, mode: int = 0o777) -> None:
    """A tmpfs at ``path`` (made if missing), of at most ``size_bytes``; idempotent."""
    os.makedirs(path, exist_ok=True)
    if is_mountpoint(path):
        return
    data = f"mode={mode:o}" + (f",size={size_bytes}" if size_bytes else "")
    nsutil.mount("tmpfs", path, "tmpfs", nsutil.MS_NOSUID | nsutil.MS_NODEV, data)


def is_read_only(path: str) -> bool:
    """Whether ``path`` is on a read-only mount (False when it is missing)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def filesystem_type(path: str) -> str:
    """The type of the file system ``path`` (or its nearest existing parent) is on:
    ``tmpfs``, ``ext4``..., from the deepest mount point above it."""
    return _mount_of(path)[2]


def is_mountpoint(path: str) -> bool:
    real = os.path.realpath(path)
    return any(point == real for point in _mount_points())


def _mountinfo() -> list[tuple[str, list[str], str]]:
    """Each mount of this mount namespace: its point, its optional fields (``shared:N``,
    ``master:N``) and its file system type, from ``/proc/self/mountinfo``."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            dash = fields.index("-")
            mounts.append((fields[4].encode().decode("unicode_escape"), fields[6:dash],
                           fields[dash + 1]))
    return mounts


def _mount_points() -> list[str]:
    return [point for point, _, _ in _mountinfo()]


def _mount_of(path: str) -> tuple[str, list[str], str]:
    """The mount ``path`` is on: the deepest containing it, the top one of a stack."""
    real = os.path.realpath(path)
    found: tuple[str, list[str], str] = ("/", [], "")
    for mount in _mountinfo():
        if _within(real, mount[0]) and len(mount[0]) >= len(found[0]):
            found = mount
    return found


def unmount_below(path: str) -> list[str]:
    """Lazily unmount everything mounted at or under ``path``, deepest first; returns
    the mount points it detached. Nothing mounted: nothing done."""
    real = os.path.realpath(path)
    below = [p for p in _mount_points() if p == real or p.startswith(real.rstrip("/") + "/")]
    done = []
    for point in sorted(set(below), key=len, reverse=True):
        if nsutil.umount(point):
            done.append(point)
    return done


def top_mounts_below(directories: list[str]) -> tuple[str, ...]:
    """The mount points strictly below any of ``directories``, outermost only (binding
    one recursively brings what is mounted below it)."""
    below = sorted({p for p in _mount_points() for d in directories
                    if p != d and _within(p, d)})
    return tuple(p for p in below if not any(q != p and _within(p, q) for q in below))


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def open_beneath(base: str, sub_path: str) -> int:
    """An ``O_PATH`` descriptor of ``sub_path`` inside the directory ``base``, as the
    kubelet prepares a ``subPath``: absolute paths and ``..`` are refused, symbolic
    links are evaluated and the result must still be inside ``base`` (upstream:
    ``subpath "..." not within volume path "..."``), then each element is opened with
    ``O_NOFOLLOW``, so a link that appears meanwhile fails the open instead of leading
    out. A missing path raises FileNotFoundError. The caller closes the descriptor."""
    if os.path.isabs(sub_path) or ".." in sub_path.split("/"):
        raise MountError(f"subPath {sub_path!r} must be a relative path without '..'")
    real_base = os.path.realpath(base)
    resolved = os.path.realpath(os.path.join(real_base, sub_path))
    if not _within(resolved, real_base):
        raise MountError(f"subpath {resolved!r} not within volume path {real_base!r}")
    fd = os.open(real_base, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in [p for p in os.path.relpath(resolved, real_base).split("/") if p != "."]:
            nxt = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise MountError(f"subPath {sub_path!r}: {part} changed into a symbolic link")
        return fd
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class VolumeBind:
    """One mount of a container, as the runtime's spec records it."""

    source: str  # the volume's directory (or a hostPath file) on the host
    destination: str  # where the container sees it
    read_only: bool = False
    sub_path: str = ""  # inside ``source``; resolved with open_beneath
    host_path: bool = False  # a hostPath: checked again, once opened, where it leads
    propagation: str = ""  # mountPropagation: "" (None), HostToContainer, Bidirectional

    @property
    def oci_propagation(self) -> str:
        """The OCI bind option CRI-O gives the mount's ``mountPropagation``."""
        return PROPAGATION_OPTIONS.get(self.propagation, "rprivate")

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "destination": self.destination,
                "readOnly": self.read_only, "subPath": self.sub_path,
                "hostPath": self.host_path, "propagation": self.propagation}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> VolumeBind:
        return cls(str(data["source"]), str(data["destination"]), bool(data.get("readOnly")),
                   str(data.get("subPath") or ""), bool(data.get("hostPath")),
                   str(data.get("propagation") or ""))


HOST_TO_CONTAINER, BIDIRECTIONAL = "HostToContainer", "Bidirectional"
PROPAGATION_OPTIONS = {"": "rprivate", "None": "rprivate", HOST_TO_CONTAINER: "rslave",
                       BIDIRECTIONAL: "rshared"}


def source_mount(path: str) -> tuple[str, list[str]]:
    """The mount point ``path`` is on (the deepest one containing it, the top one of
    a stack) and that mount's optional mountinfo fields (``shared:N``,
    ``master:N``), as CRI-O's ``getSourceMount`` finds them."""
    point, optional, _ = _mount_of(path)
    return point, optional


def check_propagation(path: str, propagation: str) -> None:
    """Raise MountError, with CRI-O's words, when ``path`` is not on a mount that can
    carry ``propagation``: HostToContainer needs a shared or slave mount (else the
    host's later mounts never reach the container), Bidirectional a shared one."""
    if propagation not in (HOST_TO_CONTAINER, BIDIRECTIONAL):
        return
    point, optional = source_mount(path)
    shared = any(o.startswith("shared:") for o in optional)
    if propagation == BIDIRECTIONAL and not shared:
        raise MountError(f'path "{path}" is mounted on "{point}" but it is not a shared mount')
    if not shared and not any(o.startswith("master:") for o in optional):
        raise MountError(f'path "{path}" is mounted on "{point}" but it is not a shared '
                         "or slave mount")


def open_sources(binds: list[VolumeBind]) -> list[tuple[VolumeBind, int, bool]]:
    """Open every mount's source (``subPath`` resolved safely): (mount, fd, is a
    directory). Done before the container's view of the host narrows, since the
    sources live in the pod's directory, which the container must not see."""
    opened: list[tuple[VolumeBind, int, bool]] = []
    try:
        for b in sorted(binds, key=lambda m: len([p for p in m.destination.split("/") if p])):
            if b.sub_path:
                fd = open_beneath(b.source, b.sub_path)
            else:
                fd = os.open(b.source, os.O_PATH | os.O_CLOEXEC)
            opened.append((b, fd, stat.S_ISDIR(os.fstat(fd).st_mode)))
    except BaseException:
        close_sources(opened)
        raise
    return opened


def close_sources(opened: list[tuple[VolumeBind, int, bool]]) -> None:
    for _, fd, _ in opened:
        with contextlib.suppress(OSError):
            os.close(fd)


def bind_attributes(directory: bool, read_only: bool) -> int:
    """The ``MOUNT_ATTR_*`` flags ``bind`` gives a mount (see there)."""
    return nsutil.MOUNT_ATTR_NOSUID | (nsutil.MOUNT_ATTR_NODEV if directory else 0) | \
        (nsutil.MOUNT_ATTR_RDONLY if read_only else 0)


def bind(fd: int, target: str, read_only: bool, receive: bool = False) -> None:
    """Bind-mount the object behind ``fd`` on ``target``, then set the mount's own
    flags: read-only when asked (a plain bind keeps its source's, and the host's view
    of a contained container may be read-only), never suid; a directory also
    ``nodev``, so a device node made in an emptyDir opens nothing (a hostPath of one
    device, ``type: CharDevice``, stays usable). The bind never propagates anything
    back to its source (a bind of a shared mount is its peer: unmounting what it
    received would unmount the source's own mounts); with ``receive`` it is a slave
    that still receives what is mounted at the source later, else private."""
    directory = stat.S_ISDIR(os.fstat(fd).st_mode)
    nsutil.mount(f"/proc/self/fd/{fd}", target, None, nsutil.MS_BIND | nsutil.MS_REC)
    nsutil.mount(None, target, None,
                 nsutil.MS_REC | (nsutil.MS_SLAVE if receive else nsutil.MS_PRIVATE))
    flags = nsutil.MS_REMOUNT | nsutil.MS_BIND | nsutil.MS_NOSUID
    flags |= nsutil.MS_NODEV if directory else 0
    nsutil.mount(None, target, None, flags | (nsutil.MS_RDONLY if read_only else 0))
