"""Unpacking one image layer into a directory that overlayfs can stack.

A layer is a tar stream (Docker's and OCI's "changeset" format). Each one is
unpacked once, into its own directory of the image store, and a container's root
filesystem is an overlay mount with those directories as lower layers. So the
layer's whiteouts become what overlayfs understands:

- ``dir/.wh.NAME`` ("NAME was deleted in this layer") becomes a character device
  0/0 named ``NAME``: overlayfs hides NAME of the layers below;
- ``dir/.wh..wh..opq`` ("dir's lower content is gone") becomes the extended
  attribute ``trusted.overlay.opaque=y`` on ``dir``.

A layer comes from whoever built the image, so nothing in it may reach outside
the directory it is unpacked into. Refused, with :class:`LayerError`:

- a member whose path has a ``..`` component;
- a member whose path goes through a symbolic link (``link -> /root`` followed by
  ``link/file`` would write the host's ``/root/file``): nothing is ever created
  through a link, whichever way it points;
- a symbolic link whose target climbs above the root (``../../etc/shadow`` from
  ``/a``, or ``/../etc``): inside the container the kernel would stop at the root,
  but on the host, where the layer lives, it points out of the store;
- a hard link to anything but a regular file unpacked earlier from this layer.

Absolute symbolic links that stay inside (``/bin/sh -> /bin/busybox``) are what
images are made of: they are kept, and resolve inside the container's root.
Device nodes are not created (a container has no business with the host's
devices); FIFOs are. Ownership is applied when unpacking as root; extended
attributes other than the opaque marker are not kept.

Standard library only.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
COPY_CHUNK = 1 << 20


class LayerError(ValueError):
    """A layer that must not be unpacked; the message names the member and why."""


@dataclass
class LayerStats:
    """What unpacking found: bytes of file content, and what was left out."""

    size: int = 0
    entries: int = 0
    skipped_devices: list[str] = field(default_factory=list)


def member_path(name: str) -> str:
    """A member's path relative to the layer's root (``./a//b`` -> ``a/b``; a leading
    ``/`` is dropped, as Docker does). Raises :class:`LayerError` on ``..``."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"{name!r}: a path with '..' would leave the root filesystem")
    return "/".join(parts)


def classify(path: str) -> tuple[str, str]:
    """``("entry", path)``, ``("whiteout", deleted path)`` or ``("opaque", directory)``."""
    head, _, base = path.rpartition("/")
    if base == OPAQUE_MARKER:
        return "opaque", head
    if base.startswith(WHITEOUT_PREFIX):
        name = base[len(WHITEOUT_PREFIX):]
        if not name or name in (".", ".."):
            raise LayerError(f"{path!r}: a whiteout without a name")
        return "whiteout", f"{head}/{name}" if head else name
    return "entry", path


def symlink_escapes(path: str, target: str) -> bool:
    """Whether the link at ``path`` (relative to the root) pointing at ``target`` climbs
    above the root, resolved lexically (absolute targets from the root)."""
    stack = [] if target.startswith("/") else path.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return True
            stack.pop()
        else:
            stack.append(part)
    return False


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class _Unpacker:
    def __init__(self, dest: Path, as_root: bool) -> None:
        self.dest = dest
        self.as_root = as_root
        self.stats = LayerStats()
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []  # modes and times applied last

    # -- paths ---------------------------------------------------------------------------

    def parent(self, rel: str, name: str) -> None:
        """Make sure every directory above ``rel`` is a real directory of this layer
        (created if missing); refuse a path through a symbolic link."""
        current = self.dest
        for part in rel.split("/")[:-1]:
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise LayerError(f"{name!r} goes through the symbolic link "
                                 f"{current.relative_to(self.dest)}")
            if stat.S_ISDIR(st.st_mode):
                continue
            if _is_whiteout(st):  # deleted, then made again as a directory in this layer
                os.unlink(current)
                os.mkdir(current, 0o755)
                continue
            raise LayerError(f"{name!r}: {current.relative_to(self.dest)} is not a directory")

    def clear(self, target: Path, keep_dir: bool) -> bool:
        """Make room for a new entry at ``target`` (a later member replaces an earlier
        one); True when an existing directory is kept as it is."""
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(target)
        else:
            os.unlink(target)
        return False

    # -- members -------------------------------------------------------------------------

    def member(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = member_path(m.name)
        self.stats.entries += 1
        if not rel:  # the layer's root itself: only its attributes
            if m.isdir():
                self.dirs.append(("", m))
            return
        kind, path = classify(rel)
        if kind == "opaque":
            self.parent(rel, m.name)
            directory = self.dest / path if path else self.dest
            self.xattr(directory, m.name)
            return
        if kind == "whiteout":
            self.parent(path, m.name)
            target = self.dest / path
            if os.path.lexists(target):
                return  # this layer's own entry stays: a whiteout only hides lower layers
            self.whiteout(target, m.name)
            return
        self.parent(rel, m.name)
        target = self.dest / rel
        if m.isdir():
            if not self.clear(target, keep_dir=True):
                os.mkdir(target, 0o755)
            self.dirs.append((rel, m))
            return
        self.clear(target, keep_dir=False)
        if m.isreg():
            self.regular(tar, m, target)
        elif m.issym():
            if symlink_escapes(rel, m.linkname):
                raise LayerError(f"{m.name!r}: the symbolic link to {m.linkname!r} "
                                 "leaves the root filesystem")
            os.symlink(m.linkname, target)
            self.attributes(target, m, link=True)
        elif m.islnk():
            self.hardlink(m, target)
        elif m.isfifo():
            os.mkfifo(target, 0o600)
            self.attributes(target, m)
        elif m.ischr() or m.isblk():
            self.stats.skipped_devices.append(rel)
        else:
            raise LayerError(f"{m.name!r}: unsupported tar member type {m.type!r}")

    def regular(self, tar: tarfile.TarFile, m: tarfile.TarInfo, target: Path) -> None:
        source = tar.extractfile(m)
        assert source is not None
        # O_EXCL | O_NOFOLLOW: the name was just cleared, and nothing is written through a link.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            while chunk := source.read(COPY_CHUNK):
                os.write(fd, chunk)
            if self.as_root:
                os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears set-id bits
        finally:
            os.close(fd)
        os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)
        self.stats.size += m.size

    def hardlink(self, m: tarfile.TarInfo, target: Path) -> None:
        try:
            source_rel = member_path(m.linkname)
        except LayerError:
            raise LayerError(f"{m.name!r}: the hard link to {m.linkname!r} leaves the "
                             "root filesystem") from None
        outside = LayerError(f"{m.name!r}: the hard link to {m.linkname!r} does not name a "
                             "file of this layer")
        if not source_rel:
            raise outside
        try:
            self.parent(source_rel, m.name)
        except LayerError:
            raise outside from None
        source = self.dest / source_rel
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            raise outside from None
        if not stat.S_ISREG(st.st_mode):
            raise outside
        os.link(source, target, follow_symlinks=False)

    def whiteout(self, target: Path, name: str) -> None:
        try:
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        except PermissionError:
            raise LayerError(f"{name!r}: a whiteout needs root to unpack (mknod)") from None

    def xattr(self, directory: Path, name: str) -> None:
        # parent() made or checked every component of the marker's path: a real directory.
        try:
            os.setxattr(directory, OPAQUE_XATTR, b"y", follow_symlinks=False)
        except PermissionError:
            raise LayerError(f"{name!r}: an opaque directory needs root to unpack "
                             "(trusted.* extended attributes)") from None

    def attributes(self, target: Path, m: tarfile.TarInfo, link: bool = False) -> None:
        if self.as_root:
            os.lchown(target, m.uid, m.gid)
        if not link:
            os.chmod(target, m.mode & 0o7777)
        os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)

    def finish(self) -> None:
        # Deepest first, so a read-only directory is only closed after its children.
        for rel, m in sorted(self.dirs, key=lambda d: d[0].count("/") + bool(d[0]),
                             reverse=True):
            self.attributes(self.dest / rel if rel else self.dest, m)


def unpack(stream: BinaryIO, dest: Path, as_root: bool | None = None) -> LayerStats:
    """Unpack the uncompressed layer tar ``stream`` into the directory ``dest``.

    Reads the stream to its end (the caller hashes it). Raises :class:`LayerError`
    for a member that must not be unpacked and ``tarfile.TarError`` for a broken
    stream; ``dest`` is then half-filled, and the caller discards it.
    """
    unpacker = _Unpacker(dest, os.geteuid() == 0 if as_root is None else as_root)
    os.chmod(dest, 0o755)  # a container's "/", unless the layer says otherwise ("./")
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for m in tar:
            unpacker.member(tar, m)
    while stream.read(COPY_CHUNK):  # the end-of-archive padding belongs to the digest
        pass
    unpacker.finish()
    return unpacker.stats
