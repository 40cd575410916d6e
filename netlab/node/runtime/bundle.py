"""A container's OCI bundle on disk: its root directory and ``config.json``.

One bundle per attempt, ``<pod dir>/<container>/<n>.rootfs/``, removed with the
attempt (``containers._prune``):

- ``root``: the container's root filesystem.
  - A stored image: an overlay of the image's unpacked layers (read-only, shared)
    with ``upper``/``work`` beside it as the container's own writable layer. It is
    mounted by the runtime in conmon's private mount namespace just before ``crun
    create`` (``oci_runtime.Overlay``), so it disappears with the container.
  - A built-in image or a host program: a directory of its own in which the host's
    ``/usr``, ``/lib*``, ``/bin``, ``/sbin`` and ``/etc`` are overlays (the host's
    directory below, the container's ``upper`` above, mounted in conmon's
    namespace like an image's root; merged-/usr links such as ``/bin -> usr/bin``
    are made as links), and netlab's own install is bound read-only. Nothing of the
    lab's own files (``/run/netlab``, ``/var/lib/netlab``) is there at all.
  - A privileged container without an image: a plain directory into which every
    top-level directory of the host is bound writable, as ``privileged: true``
    asks (with its own /proc and /sys, and the host's /dev).
- ``config.json``: ``oci.build`` from the ContainerSpec, the sandbox's namespaces
  and /etc files, the pod's volumes (a ``subPath`` resolved here, inside its
  volume; ``mountPropagation`` checked by ``check_propagation`` before anything is
  made, as CRI-O checks it), the numeric user resolved in the image's (or host's)
  ``/etc/passwd`` and ``/etc/group``, and the default seccomp profile (compiled
  once per lab: ``seccomp_cache``).
- ``conmon.log``: what conmon itself said, for start errors.
"""

from __future__ import annotations

import dataclasses
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from netlab.kernel import mounts
from netlab.kernel import namespaces as nsutil
from netlab.kernel.rootfs import overlay_options
from netlab.node.runtime import capabilities, oci
from netlab.node.runtime.oci_runtime import Overlay
from netlab.node.runtime.paths import HOSTNAME_FILE, HOSTS_FILE, RESOLV_FILE
from netlab.node.runtime.sandbox import Sandbox
from netlab.node.runtime.seccomp_cache import CompiledFilters
from netlab.node.runtime.security import LOCALHOST
from netlab.node.runtime.spec import ContainerSpec
from netlab.paths import SECCOMP_ROOT

# Directories a host-view root needs that no bind provides (mount points crun makes).
_HOST_VIEW_DIRS = (("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700), ("run", 0o755),
                   ("home", 0o755))


@lru_cache(maxsize=1)
def _default_profile() -> dict[str, Any] | None:
    try:
        with open(oci.DEFAULT_SECCOMP_PROFILE) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _localhost_profile(seccomp: str) -> dict[str, Any]:
    """The Localhost profile ``Localhost/<path>`` names, read from ``SECCOMP_ROOT`` as
    the kubelet reads ``<root-dir>/seccomp/<path>``; a missing or unreadable one fails
    the container with the runtime's message."""
    relative = seccomp.split("/", 1)[1] if "/" in seccomp else ""
    path = SECCOMP_ROOT / relative
    try:
        if not relative or os.path.isabs(relative) or ".." in relative.split("/"):
            raise OSError(f"{relative!r} is not a path below {SECCOMP_ROOT}")
        with open(path) as f:
            found = json.load(f)
        if not isinstance(found, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise oci.OciConfigError(f'cannot load seccomp profile "{path}": {why}') from None
    return found


def _with_groups(spec: ContainerSpec, user: oci.ProcessUser) -> oci.ProcessUser:
    """The image's groups for the user, then the pod's supplementalGroups and fsGroup
    (CRI-O's and containerd's Merge policy), each once and never the primary group."""
    extra = tuple(g for g in dict.fromkeys((*user.additional_gids, *spec.supplemental_groups))
                  if g != user.gid)
    return dataclasses.replace(user, additional_gids=extra)


def _own_capabilities() -> tuple[str, ...]:
    """The capabilities in this process's bounding set: all a privileged container
    can be given (a runtime inside a container holds fewer than the kernel has)."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return tuple(n for n, i in capabilities.NUMBERS.items() if mask >> i & 1)
    return tuple(capabilities.NUMBERS)


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _image_file(layers: tuple[str, ...], name: str) -> str:
    """``/etc/<name>`` as the image shows it: the top-most layer that has it."""
    for layer in layers:
        candidate = os.path.join(layer, "etc", name)
        if os.path.isfile(candidate) and not os.path.islink(candidate):
            return _read(candidate)
    return ""


def _host_links() -> dict[str, str]:
    """Top-level host-view paths that are symbolic links here (merged /usr)."""
    return {p: os.readlink(p) for p in oci.HOST_VIEW if os.path.islink(p)}


def _host_view_root(directory: Path, root: Path, links: dict[str, str]) -> Overlay:
    """The root of a host-view container: each host directory of ``oci.HOST_VIEW``
    an overlay (the host's below, the container's layer above: writes and volume
    mount points land there), merged-/usr links as links, the usual writable
    directories. The lab's own directories are simply not there."""
    root.mkdir(parents=True, exist_ok=True)
    upper, work = directory / "upper", directory / "work"
    shown = []
    for path in oci.HOST_VIEW:
        if path in links or not os.path.isdir(path):
            continue
        for base in (root, upper, work):
            (base / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        shown.append(path)
    for path, target in links.items():
        link = root / path.lstrip("/")
        if not link.is_symlink():
            os.symlink(target, link)
    for rel, mode in _HOST_VIEW_DIRS:
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, mode)
    return Overlay(root=str(root), host_dirs=tuple(shown), upper=str(upper), work=str(work))


def check_propagation(spec: ContainerSpec) -> None:
    """Raise ``oci.OciConfigError`` when a volume's ``mountPropagation`` cannot be had:
    its source is not on a shared (Bidirectional) or shared or slave
    (HostToContainer) mount, CRI-O's check and words; or another volume would be
    mounted inside a Bidirectional one, where crun's mount of it would propagate to
    the host and stay there after the container (netlab refuses that)."""
    for m in spec.mounts:
        if m.propagation != mounts.BIDIRECTIONAL:
            continue
        outer = os.path.normpath(m.destination).rstrip("/") + "/"
        inner = [o.destination for o in spec.mounts
                 if os.path.normpath(o.destination).startswith(outer)]
        if inner:
            raise oci.OciConfigError(
                f'volume mount "{inner[0]}" is inside the Bidirectional mount '
                f'"{m.destination}": its mount would propagate to the host')
    for m in spec.mounts:
        path = os.path.join(m.source, m.sub_path) if m.sub_path else m.source
        try:
            mounts.check_propagation(path, m.propagation)
        except mounts.MountError as err:
            raise oci.OciConfigError(str(err)) from None


def _volume_binds(spec: ContainerSpec, directory: Path
                  ) -> tuple[tuple[oci.Bind, ...], tuple[tuple[int, str], ...]]:
    """The pod's volumes as binds crun can follow safely. Each source is opened here
    (a ``subPath`` resolved inside its volume without following a link out of it,
    ``mounts.open_beneath``), a hostPath checked again where it really leads, and the
    opened object bound on a mount point of this bundle (``volumes/<i>``, which no pod
    can reach): crun then mounts that path, so a link swapped into a volume after the
    check cannot redirect the mount (upstream binds its ``volume-subpaths`` the same
    way). The helper mounts go with the bundle (``mounts.unmount_below``).

    The helper mount is private, or a slave of its source for HostToContainer and
    Bidirectional (it receives the host's later mounts, and crun's rslave bind of it
    in the shield with them). A Bidirectional volume must also send the container's
    mounts back, which no copy of a slave does: the second value holds, for each, a
    detached copy of the source (``open_tree``, a peer of the host's mount) to attach
    over the helper mount inside the shield (``oci_runtime.Overlay.peers``). The
    caller closes those descriptors."""
    opened = mounts.open_sources(list(spec.mounts))
    if opened:
        mounts.unmount_below(str(directory / "volumes"))  # a retried start binds afresh
    out: list[oci.Bind] = []
    peers: list[tuple[int, str]] = []
    try:
        for i, (m, fd, is_dir) in enumerate(opened):
            if m.host_path:
                why = capabilities.forbidden_host_path(os.readlink(f"/proc/self/fd/{fd}"))
                if why:
                    raise oci.OciConfigError(why)
            target = directory / "volumes" / str(i)
            target.parent.mkdir(exist_ok=True)
            if is_dir:
                target.mkdir(exist_ok=True)
            else:
                target.touch(exist_ok=True)
            mounts.bind(fd, str(target), m.read_only,
                        receive=m.propagation in (mounts.HOST_TO_CONTAINER, mounts.BIDIRECTIONAL))
            if m.propagation == mounts.BIDIRECTIONAL:
                peers.append((nsutil.clone_tree(fd, mounts.bind_attributes(is_dir, m.read_only)),
                              str(target)))
            out.append(oci.Bind(str(target), m.destination, read_only=m.read_only,
                                propagation=m.oci_propagation))
        return tuple(out), tuple(peers)
    except BaseException:
        for tree, _ in peers:
            os.close(tree)
        raise
    finally:
        mounts.close_sources(opened)


def prepare(sb: Sandbox, spec: ContainerSpec, directory: Path,
            cgroups_path: str | None = None, filters: CompiledFilters | None = None
            ) -> tuple[dict[str, Any], Overlay | None]:
    """Make the bundle in ``directory`` and return its config and the overlay to
    mount (None when the root is a plain directory and no Bidirectional volume needs
    the shield's help); ``oci_runtime.create`` closes the overlay's ``peers``.
    ``filters``: the lab's compiled seccomp filters, handed to crun when one is kept
    for this container's profile. Raises ``oci.OciConfigError``."""
    directory.mkdir(parents=True, exist_ok=True)
    root = directory / "root"
    overlay: Overlay | None = None
    binds: tuple[oci.Bind, ...] = ()
    if spec.rootfs:
        upper, work = directory / "upper", directory / "work"
        for d in (root, upper, work):
            d.mkdir(exist_ok=True)
        options = overlay_options(list(spec.rootfs), str(upper), str(work))
        parents = {os.path.dirname(p) for p in spec.rootfs}
        layers = parents.pop() if len(parents) == 1 else "/"
        if not spec.privileged:
            options = "nodev," + options  # a device node made inside opens nothing
        overlay = Overlay(layers, options, str(root))
        user = _with_groups(spec, oci.resolve_user(
            spec.process_user, _image_file(spec.rootfs, "passwd"),
            _image_file(spec.rootfs, "group")))
        root_path = str(root)
    elif spec.privileged:
        # The host's whole tree, writable, as privileged asks (crun cannot pivot into
        # the host's own root, so each top-level directory is bound instead).
        top = [n for n in os.listdir("/") if os.path.isdir(f"/{n}")
               and not os.path.islink(f"/{n}")]
        links = {f"/{n}": os.readlink(f"/{n}") for n in os.listdir("/")
                 if os.path.islink(f"/{n}")}
        # A volume whose mount point the host lacks (the service-account token's
        # /var/run/secrets/...): its top-level directory becomes an overlay (the
        # host's below, the container's layer above), so the mount point is made in
        # the container's layer, never on the host.
        layered = sorted({"/" + os.path.realpath(m.destination).split("/")[1]
                          for m in spec.mounts if not os.path.exists(m.destination)}
                         & {f"/{n}" for n in top})
        root.mkdir(parents=True, exist_ok=True)
        for path, target in links.items():
            if not (root / path.lstrip("/")).is_symlink():
                os.symlink(target, root / path.lstrip("/"))
        upper, work = directory / "upper", directory / "work"
        for path in layered:
            for base in (root, upper, work):
                (base / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        if layered:
            # An overlay shows its lower directory's files, not what is mounted below it
            # (/run/netns's namespace pins, tmpfs mounts): those are bound back in.
            overlay = Overlay(root=str(root), host_dirs=tuple(layered), upper=str(upper),
                              work=str(work), submounts=mounts.top_mounts_below(layered))
        top = [n for n in top if f"/{n}" not in layered]
        binds = oci.whole_host_binds(top, links)
        user = _with_groups(spec, oci.resolve_user(spec.process_user, _read("/etc/passwd"),
                                                   _read("/etc/group")))
        root_path = str(root)
    else:
        links = _host_links()
        overlay = dataclasses.replace(_host_view_root(directory, root, links),
                                      read_only=spec.read_only_root)
        # netlab's install, bound read-only (what HOST_VIEW's overlays already show
        # of it, under /usr, is not bound again).
        binds = tuple(b for b in oci.host_view_binds(capabilities.install_paths(), links)
                      if os.path.exists(b.source) and b.source not in oci.HOST_VIEW
                      and not any(Path(os.path.realpath(b.source)).is_relative_to(d)
                                  for d in overlay.host_dirs))
        user = _with_groups(spec, oci.resolve_user(spec.process_user, _read("/etc/passwd"),
                                                   _read("/etc/group")))
        root_path = str(root)
    sandbox_paths = oci.SandboxPaths(
        netns=f"/run/netns/{sb.netns}", uts=sb.uts_pin, hosts=str(sb.path / HOSTS_FILE),
        hostname=str(sb.path / HOSTNAME_FILE), resolv=str(sb.path / RESOLV_FILE))
    profile = _localhost_profile(spec.seccomp) if spec.seccomp.startswith(LOCALHOST) \
        else _default_profile()
    volumes, peers = _volume_binds(spec, directory)
    try:
        opts = oci.BundleOptions(
            root=root_path, cgroups_path=cgroups_path, binds=binds, seccomp_profile=profile,
            # The lab's directories are not in a contained container's root at all;
            # masked too, in case an image or a volume brings a path there.
            masked=() if spec.privileged else tuple(capabilities.masked_paths()),
            host_caps=_own_capabilities() if spec.privileged else None, volumes=volumes)
        config = oci.build(spec, sandbox_paths, opts, user, hostname=sb.hostname)
        if filters is not None and "seccomp" in config["linux"]:
            config.setdefault("annotations", {}).update(
                filters.annotations(config["linux"]["seccomp"]))
        tmp = directory / ".config.json.tmp"
        tmp.write_text(json.dumps(config))
        os.replace(tmp, directory / "config.json")
    except BaseException:
        for tree, _ in peers:
            os.close(tree)
        raise
    if peers:
        overlay = dataclasses.replace(overlay or Overlay(), peers=peers)
    return config, overlay
