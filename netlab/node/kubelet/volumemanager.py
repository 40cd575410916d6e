"""The kubelet's volume manager: each pod's volumes made real in the pod's directory,
and each container's mounts of them.

Modelled on upstream's ``pkg/kubelet/volumemanager``: before a pod's containers
start, every volume of the pod is set up; on each later sync of the pod the
configMap, secret, downwardAPI and projected volumes are written again through the
atomic writer, so a ConfigMap update (or a new label) reaches the files in the running
pod; when the pod goes, so do its volumes.

Where: ``<pod dir>/volumes/<plugin>/<volume>`` (``kubernetes.io~configmap/cfg``), the
runtime's directory of the pod (``/run/netlab/<lab>/pods/...``), which no container
sees: a container with an image of its own has no view of the host, one without has
the lab's state directory masked. Per volume type:

- ``emptyDir``: a directory (mode 0777), or for ``medium: Memory`` a tmpfs of
  ``sizeLimit`` (``netlab.kernel.mounts``), shared by every container of the pod;
- ``hostPath``: the host path itself, after upstream's ``type`` check (and creation
  for ``DirectoryOrCreate``/``FileOrCreate``); netlab's own state and data
  directories are refused, since a pod must never reach the lab's credentials;
- configMap, secret, downwardAPI, projected: the atomic writer's layout
  (``atomic_writer``), files from ``volumes.payload``; mounted read-only, as upstream;
- ``persistentVolumeClaim``: the bound volume's directory (``claims.resolve``): the
  local-path provisioner's directory for this claim (made again, 0777, should it be
  gone, as its volume's ``DirectoryOrCreate`` says), or a static volume's path under the
  hostPath rules; read-only when the volume source says ``readOnly``.

A volume that cannot be set up raises :class:`netlab.node.kubelet.volumes.VolumeError`
(the worker turns it into a ``FailedMount`` event and the pod waits). Container mounts
resolve ``subPath`` with upstream's safety (``netlab.kernel.mounts.open_beneath``:
no way out through ``..`` or a symbolic link); the runtime opens it again and mounts
the opened object (``netlab.node.runtime.bundle``), so a link swapped in meanwhile
is refused there too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from netlab.api.views import Container
from netlab.kernel import mounts
from netlab.node.kubelet import atomic_writer, claims, envsources
from netlab.node.kubelet import volumes as plugins
from netlab.node.kubelet.spec import CONFIG_ERROR, ContainerConfigError, PodContext, expand
from netlab.node.runtime import capabilities
from netlab.units import QuantityError, memory_bytes

VOLUMES_DIR = "volumes"
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice")


def volume_dir(pod_dir: Path, volume: Mapping[str, Any]) -> Path:
    kind = plugins.volume_type(volume)
    return pod_dir / VOLUMES_DIR / plugins.PLUGIN_DIRS.get(kind, kind) / str(volume["name"])


def _meta_dir(pod_dir: Path, volume: Mapping[str, Any]) -> Path:
    """The plugin's own records of a volume, outside the volume (upstream's
    ``<pod dir>/plugins/kubernetes.io~empty-dir/<name>``; here under ``volumes/``, as
    the pod directory's other names are its containers')."""
    kind = plugins.volume_type(volume)
    return (pod_dir / VOLUMES_DIR / ".meta" / plugins.PLUGIN_DIRS.get(kind, kind)
            / str(volume["name"]))


# --- hostPath --------------------------------------------------------------------------------


def check_host_path(path: str, kind: str) -> None:
    """Upstream's ``checkType`` of a hostPath volume: create what ``...OrCreate`` asks
    for, else require the kind of file ``type`` names (messages as upstream's)."""
    def mode() -> Optional[int]:
        try:
            return os.stat(path).st_mode
        except FileNotFoundError:
            return None

    if kind not in HOST_PATH_TYPES:
        raise plugins.VolumeError(f"{kind} is an invalid volume type")
    if kind == "":
        return
    have = mode()
    if kind == "DirectoryOrCreate" and have is None:
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if kind == "FileOrCreate" and have is None:
        # Upstream does not create the parent directory: that fails the pod.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        except OSError as err:
            raise plugins.VolumeError(f"hostPath type check failed: {path}: "
                                      f"{err.strerror}") from None
        return
    checks = {
        "DirectoryOrCreate": (stat.S_ISDIR, "is not a directory"),
        "Directory": (stat.S_ISDIR, "is not a directory"),
        "FileOrCreate": (stat.S_ISREG, "is not a file"),
        "File": (stat.S_ISREG, "is not a file"),
        "Socket": (stat.S_ISSOCK, "is not a socket file"),
        "CharDevice": (stat.S_ISCHR, "is not a character device"),
        "BlockDevice": (stat.S_ISBLK, "is not a block device"),
    }
    test, words = checks[kind]
    if have is None or not test(have):
        raise plugins.VolumeError(f"hostPath type check failed: {path} {words}")


# --- setting volumes up ----------------------------------------------------------------------


def setup_claim_volume(claim_path: claims.ClaimPath) -> str:
    """A claim's volume: the provisioner's directory, reached without a symbolic link
    (made again, 0777, should it be gone), or a static volume's path as a hostPath."""
    path = claim_path.path
    if not claim_path.provisioned:
        why = capabilities.forbidden_host_path(path)
        if why:
            raise plugins.VolumeError(why)
        check_host_path(path, claim_path.host_path_type)
        return path
    if os.path.realpath(path) != os.path.join(os.path.realpath(os.path.dirname(path)),
                                              os.path.basename(path)):
        raise plugins.VolumeError(f"{path} is a symbolic link")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.mkdir(path, 0o777)
        os.chmod(path, 0o777)
        return path
    if not stat.S_ISDIR(info.st_mode):
        raise plugins.VolumeError(f"hostPath type check failed: {path} is not a directory")
    return path


def setup_volume(pod_dir: Path, volume: Mapping[str, Any], pod: dict[str, Any],
                 ctx: PodContext, sources: envsources.Sources,
                 extra: Optional[Mapping[str, atomic_writer.FileProjection]] = None,
                 claim_path: Optional[claims.ClaimPath] = None) -> str:
    """Make one volume ready; return the host path its mounts bind. ``extra`` adds
    files to a projected volume (a service-account token and CA, once made);
    ``claim_path``: where a claim volume's bound volume is (``claims.resolve``)."""
    kind = plugins.volume_type(volume)
    if kind == claims.PVC:
        if claim_path is None:
            raise plugins.VolumeError(f"claim {claims.claim_name(volume)} not resolved")
        return setup_claim_volume(claim_path)
    if kind == plugins.HOST_PATH:
        src = volume.get(kind) or {}
        path = str(src.get("path") or "")
        why = capabilities.forbidden_host_path(path)
        if why:
            raise plugins.VolumeError(why)
        check_host_path(path, str(src.get("type") or ""))
        return path
    target = volume_dir(pod_dir, volume)
    fs_group = fs_group_of(pod)
    if kind == plugins.EMPTY_DIR:
        src = volume.get(kind) or {}
        memory = src.get("medium") == "Memory"
        if not memory and src.get("medium") not in (None, ""):
            raise plugins.UnsupportedVolume(f"emptyDir medium {src['medium']!r} is not "
                                            "supported (use \"\" or Memory)")
        # Set up once, as upstream's SetUpAt: while its ready file is there (and, for
        # memory, its tmpfs), a sync leaves the directory as the pod made it, mode and
        # group included (a chmod in the pod is not undone every resync).
        ready = _meta_dir(pod_dir, volume) / "ready"
        if ready.exists() and (mounts.is_mountpoint(str(target)) if memory
                               else target.is_dir()):
            return str(target)
        if memory:
            try:
                size = memory_bytes(src["sizeLimit"]) if src.get("sizeLimit") else None
            except QuantityError as err:
                raise plugins.VolumeError(f"sizeLimit: {err}") from None
            mounts.mount_tmpfs(str(target), size)
        else:
            target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, 0o777)  # as upstream: any user of the pod may write
        if fs_group is not None:
            # The directory only: what is in it is the pod's, and walking a tree the
            # pod can change under us as root is how links get followed.
            _own(str(target), fs_group, RW_MASK)
        ready.parent.mkdir(parents=True, exist_ok=True)
        ready.touch()
        return str(target)
    if kind in plugins.ATOMIC:
        files = plugins.payload(volume, pod, ctx, sources, extra)
        if fs_group is not None:
            # The group may read what the writer makes; set here so that an unchanged
            # payload compares equal and is not written again.
            files = {path: atomic_writer.FileProjection(f.data, f.mode | RO_MASK)
                     for path, f in files.items()}
        try:
            changed = atomic_writer.write(target, files)
        except atomic_writer.PayloadError as err:
            raise plugins.VolumeError(str(err)) from None
        if changed and fs_group is not None:
            set_ownership(target, fs_group, read_only=True)
        return str(target)
    raise plugins.UnsupportedVolume(plugins.unsupported_reason(kind))


RW_MASK, RO_MASK, EXEC_MASK = 0o660, 0o440, 0o110


def fs_group_of(pod: Mapping[str, Any]) -> Optional[int]:
    """The pod's ``securityContext.fsGroup``, if any."""
    sc = (pod.get("spec") or {}).get("securityContext") or {}
    value = sc.get("fsGroup") if isinstance(sc, dict) else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def set_ownership(target: Path, gid: int, read_only: bool) -> None:
    """The kubelet's SetVolumeOwnership: everything in the volume belongs to the
    group ``gid`` (fsGroup), which may read it (and write it unless ``read_only``);
    directories get the setgid bit, so what the pod makes there is the group's too.
    Symbolic links are changed themselves, never followed. Only for volumes the
    kubelet alone writes (mounted read-only in the pod)."""
    mask = RO_MASK if read_only else RW_MASK
    for root, dirs, files in os.walk(target):
        for name in [*dirs, *files]:
            _own(os.path.join(root, name), gid, mask)
    _own(str(target), gid, mask)


def _own(path: str, gid: int, mask: int) -> None:
    info = os.lstat(path)
    os.lchown(path, -1, gid)
    if stat.S_ISLNK(info.st_mode):
        return
    mode = stat.S_IMODE(info.st_mode) | mask
    if stat.S_ISDIR(info.st_mode):
        mode |= stat.S_ISGID | EXEC_MASK
    os.chmod(path, mode)


def read_only_volume(volume: Mapping[str, Any]) -> bool:
    """configMap, secret, downwardAPI and projected volumes are always mounted
    read-only (upstream, since 1.10): the atomic writer owns their files."""
    return plugins.volume_type(volume) in plugins.ATOMIC


def _prepare_sub_path(base: str, sub_path: str, create: bool) -> None:
    """Check ``sub_path`` inside ``base`` as the runtime will open it; make it (a
    directory) when missing and the volume is one the kubelet may write."""
    try:
        os.close(mounts.open_beneath(base, sub_path))
        return
    except FileNotFoundError:
        if not create:
            raise
    real_base = os.path.realpath(base)
    resolved = os.path.realpath(os.path.join(real_base, sub_path))
    if os.path.commonpath((resolved, real_base)) != real_base:
        raise mounts.MountError(f"subpath {resolved!r} not within volume path {real_base!r}")
    os.makedirs(resolved, mode=0o755, exist_ok=True)
    os.close(mounts.open_beneath(base, sub_path))


def container_mounts(container: Container, volumes: Mapping[str, Mapping[str, Any]],
                     ready: Mapping[str, str], env: Mapping[str, str] | None = None,
                     host_paths: frozenset[str] = frozenset()
                     ) -> tuple[mounts.VolumeBind, ...]:
    """The mounts of ``container``: each ``volumeMounts`` entry bound to its ready
    volume (``ready``: volume name -> host path); ``host_paths``: the claim volumes
    whose volume is a static hostPath, checked again by the runtime as hostPaths are.
    A claim volume with ``readOnly`` is mounted read-only. ``subPathExpr`` is expanded with the
    container's ``env``. A subPath that leads out of its volume, or an expression
    naming an unset variable, fails the container as upstream's
    ``CreateContainerConfigError``."""
    out = []
    cname = container.get("name", "")
    for vm in container.get("volumeMounts") or []:
        name = str(vm.get("name") or "")
        volume = volumes.get(name)
        if volume is None or name not in ready:
            raise ContainerConfigError(CONFIG_ERROR, f'cannot find volume "{name}" to mount '
                                       f'into container "{cname}"')
        sub_path = str(vm.get("subPath") or "")
        if vm.get("subPathExpr"):
            sub_path = expand_sub_path(str(vm["subPathExpr"]), env or {})
        if sub_path:
            try:
                _prepare_sub_path(ready[name], sub_path, not read_only_volume(volume))
            except OSError:
                raise ContainerConfigError(
                    CONFIG_ERROR, f'failed to prepare subPath for volumeMount "{name}" of '
                    f'container "{cname}"') from None
        out.append(mounts.VolumeBind(
            source=ready[name], destination=str(vm.get("mountPath") or ""),
            read_only=bool(vm.get("readOnly")) or read_only_volume(volume) or
            claims.read_only(volume), sub_path=sub_path,
            host_path=plugins.volume_type(volume) == plugins.HOST_PATH or name in host_paths,
            propagation=str(vm.get("mountPropagation") or "")))
    return tuple(out)


def expand_sub_path(expr: str, env: Mapping[str, str]) -> str:
    """``subPathExpr`` with the container's variables in, as the kubelet expands it
    (ExpandContainerVolumeMounts, then makeMounts' checks): a variable that is unset
    or empty is an error, and so is a result that is absolute or steps back."""
    missing: set[str] = set()
    expanded = expand(expr, env, missing)
    if missing:
        raise ContainerConfigError(CONFIG_ERROR,
                                   f"missing value for {', '.join(sorted(missing))}")
    if expanded.startswith("/"):
        raise ContainerConfigError(CONFIG_ERROR,
                                   f"error SubPath `{expanded}` must not be an absolute path")
    if ".." in expanded.split("/"):
        raise ContainerConfigError(CONFIG_ERROR, f"unable to provision SubPath `{expanded}`: "
                                   "must not contain '..'")
    return expanded


def teardown(pod_dir: Path) -> None:
    """Unmount the pod's memory-backed volumes; the files go with the pod directory."""
    mounts.unmount_below(str(pod_dir / VOLUMES_DIR))
