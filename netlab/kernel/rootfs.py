"""A container's own root filesystem: an overlay of its image's layers, entered with
pivot_root, as an OCI runtime builds it.

The container shim calls :func:`enter` in the container's fresh mount namespace
(every mount already a slave of the host's), just before exec:

1. an overlay mount at ``<dir>/root``: the image's unpacked layers as ``lowerdir``
   (read-only, shared by every container of the image), ``<dir>/upper`` and
   ``<dir>/work`` as the container's own writable layer; ``nodev``, so a device
   node made inside opens nothing;
2. ``/proc`` (a new proc of the container's PID namespace), ``/sys`` read-only (a
   sysfs of the pod's network namespace), a minimal ``/dev`` with a devpts and
   ``/dev/shm`` (``namespaces.minimal_dev``; a privileged container gets the host's
   ``/dev`` and a writable ``/sys`` instead);
3. the pod's ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf``
   bind-mounted over the image's, then the pod's volumes at their destinations
   (``netlab.kernel.mounts``);
4. ``pivot_root`` into it, and the old root detached: the host's filesystem is no
   longer reachable from the container at all.

Mount targets inside the image are resolved with :func:`secure_join`, which
follows the image's symbolic links as the container would see them (an absolute
link from the root of the image, ``..`` stopping at it), so an image whose
``/etc/resolv.conf`` is a link gets the pod's file where the link points, and an
image cannot make a mount land outside its root.

Standard library only: the shim imports this, and must start fast.
"""

from __future__ import annotations

import os
import stat

from netlab.kernel import mounts
from netlab.kernel import namespaces as nsutil

MAX_SYMLINKS = 40  # as the kernel's path walk (ELOOP)
OVERLAY_OPTIONS_MAX = 4000  # a mount's data is one page; leave room


class RootfsError(OSError):
    pass


def secure_join(root: str, path: str) -> str:
    """``root`` joined with ``path``, every symbolic link on the way resolved as if
    ``root`` were ``/``. The result is always inside ``root``; components that do
    not exist yet are appended as they are."""
    pending = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise RootfsError(f"too many symbolic links resolving {path} in the image")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending = [p for p in target.split("/") if p] + pending
    return os.path.join(root, *resolved)


def mountpoint(root: str, path: str, directory: bool) -> str:
    """The host path of ``path`` inside ``root``, created (a directory, or an empty
    file for a file bind mount) when the image lacks it."""
    target = secure_join(root, path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        os.makedirs(target if directory else os.path.dirname(target), mode=0o755,
                    exist_ok=True)
        if not directory:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644))
        return target
    if directory != stat.S_ISDIR(st.st_mode):
        kind = "a directory" if directory else "a file"
        raise RootfsError(f"{path} in the image is not {kind}: cannot mount over it")
    return target


def overlay_options(lower: list[str], upper: str, work: str) -> str:
    """overlayfs' mount data. Layers that share a parent directory (all of an image
    store's do) are named relative to it, which the caller makes the working
    directory: that keeps images of many layers under the one-page limit."""
    parents = {os.path.dirname(p) for p in lower}
    names = [os.path.basename(p) for p in lower] if len(parents) == 1 else lower
    data = f"lowerdir={':'.join(names)},upperdir={upper},workdir={work}"
    if len(data) > OVERLAY_OPTIONS_MAX:
        raise RootfsError(f"the image has too many layers ({len(lower)}) for one overlay mount")
    return data


def mount_overlay(lower: list[str], upper: str, work: str, target: str, flags: int) -> None:
    if not lower:
        raise RootfsError("an image root filesystem needs at least one layer")
    cwd = os.getcwd()
    os.chdir(os.path.dirname(lower[0]))  # see overlay_options
    try:
        nsutil.mount("overlay", target, "overlay", flags, overlay_options(lower, upper, work))
    finally:
        os.chdir(cwd)


def enter(lower: list[str], directory: str, binds: list[tuple[str, str]],
          privileged: bool = False,
          volumes: list[tuple[mounts.VolumeBind, int, bool]] | None = None) -> None:
    """Build the container's root filesystem in ``directory`` and pivot into it (see
    the module docstring). ``lower`` lists the image's layer directories top first;
    ``binds`` are (host file, path in the container) pairs; ``volumes`` the pod's
    volumes as ``mounts.open_sources`` opened them, mounted after those (shallowest
    destination first, each made inside the image if missing). Call it in the
    container's own mount namespace, whose mounts are slaves of the host's."""
    upper, work, root = (os.path.join(directory, d) for d in ("upper", "work", "root"))
    for path in (upper, work, root):
        os.makedirs(path, mode=0o755, exist_ok=True)
    mount_overlay(lower, upper, work, root, 0 if privileged else nsutil.MS_NODEV)
    _standard_mounts(root, privileged, binds, volumes or [])
    nsutil.pivot_root(root)


def _standard_mounts(root: str, privileged: bool, binds: list[tuple[str, str]],
                     volumes: list[tuple[mounts.VolumeBind, int, bool]]) -> None:
    """``/proc``, ``/sys``, ``/dev``, the pod's ``/etc`` files and its volumes, in the
    root filesystem being built at ``root``."""
    safe = nsutil.MS_NOSUID | nsutil.MS_NODEV | nsutil.MS_NOEXEC
    nsutil.mount("proc", mountpoint(root, "/proc", True), "proc", safe)
    sys_flags = safe if privileged else safe | nsutil.MS_RDONLY
    nsutil.mount("sysfs", mountpoint(root, "/sys", True), "sysfs", sys_flags)
    dev = mountpoint(root, "/dev", True)
    if privileged:
        nsutil.mount("/dev", dev, None, nsutil.MS_BIND | nsutil.MS_REC)
    else:
        nsutil.minimal_dev(dev)
    for source, path in binds:
        if os.path.exists(source):
            nsutil.mount(source, mountpoint(root, path, False), None, nsutil.MS_BIND)
    for volume, fd, is_dir in volumes:
        mounts.bind(fd, mountpoint(root, volume.destination, is_dir), volume.read_only)


# What a container without an image of its own sees of the host: the programs and
# libraries, and /etc. Each is an overlay whose lower layer is the host's directory, so
# writes land in the container's layer; a link (/bin -> usr/bin) is copied as a link.
HOST_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
# Made empty in the container's layer: where programs expect to write.
LAYER_DIRS = (("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700), ("home", 0o755),
              ("run", 0o755), ("mnt", 0o755))


def _inside(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def enter_host(directory: str, keep: list[str], binds: list[tuple[str, str]],
               volumes: list[tuple[mounts.VolumeBind, int, bool]] | None = None) -> None:
    """An own root filesystem for a container without an image (a built-in image, a
    host program), built in ``directory`` and pivoted into: a read-only view of the
    host's :data:`HOST_DIRS` (overlays whose upper layers are the container's, under
    ``directory/upper``), netlab's own install (``keep``: bound read-only at the same
    paths, so the built-in images run), empty :data:`LAYER_DIRS`, then what every
    container gets (``/proc``, ``/sys`` read-only, a minimal ``/dev``, the pod's ``/etc``
    files, its volumes). The rest of the host (the lab's state and data, ``/var``,
    ``/run``, the host's ``/tmp`` and ``/root``) is not there at all. Writes land in
    ``directory``, which goes with the attempt."""
    upper, work, root = (os.path.join(directory, d) for d in ("upper", "work", "root"))
    for path in (upper, work, root):
        os.makedirs(path, mode=0o755, exist_ok=True)
    nsutil.mount(root, root, None, nsutil.MS_BIND)  # a mount point, for pivot_root
    nsutil.mount(None, root, None, nsutil.MS_REMOUNT | nsutil.MS_BIND | nsutil.MS_NODEV)
    shown: list[str] = []
    for path in HOST_DIRS:
        target = root + path
        if os.path.islink(path):
            if not os.path.lexists(target):
                os.symlink(os.readlink(path), target)
            shown.append(os.path.realpath(path))
        elif os.path.isdir(path):
            name = path.strip("/")
            layer, scratch = os.path.join(upper, name), os.path.join(work, name)
            for made in (layer, scratch, target):
                os.makedirs(made, mode=0o755, exist_ok=True)
            nsutil.mount("overlay", target, "overlay", nsutil.MS_NODEV,
                         f"lowerdir={path},upperdir={layer},workdir={scratch}")
            shown.append(path)
    for name, mode in LAYER_DIRS:
        made = os.path.join(root, name)
        os.makedirs(made, exist_ok=True)
        os.chmod(made, mode)
    for path in sorted(os.path.realpath(p) for p in keep):
        if _inside(path, shown) or not os.path.isdir(path):
            continue  # seen already (under /usr, or inside an install bound before)
        target = root + path
        os.makedirs(target, mode=0o755, exist_ok=True)
        nsutil.mount(path, target, None, nsutil.MS_BIND | nsutil.MS_REC)
        nsutil.mount(None, target, None, nsutil.MS_REMOUNT | nsutil.MS_BIND | nsutil.MS_RDONLY)
        shown.append(path)
    _standard_mounts(root, False, binds, volumes or [])
    nsutil.pivot_root(root)
