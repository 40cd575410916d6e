"""The local-path provisioner's directories: made for a new volume, removed with it.

kind's local-path-provisioner runs a helper pod on the chosen node that makes (and, on
delete, removes) ``<root>/<pv>_<namespace>_<claim>``, mode 0777 so that any user a pod
runs as may write there. In netlab every node is a namespace of one host and shares its
file system, so the controller manager, which decides to provision and to delete, does
both itself: ownership stays in one process (what it made, it alone removes), the
directory exists before the volume object does (the kubelet never meets a volume whose
directory is still to come), and no node agent needs a say in which paths may be removed.

What may be removed is narrow on purpose: a directory directly under the root, named as
the provisioner names them, reached without following a symbolic link; never the root,
never anything outside it. Side effects on the file system only (no kernel calls).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from netlab.api.persistentvolumes import is_local_path_of

DIR_MODE = 0o777


class LocalPathError(Exception):
    """A path the provisioner refuses to make or remove."""


def _check(root: str, path: str) -> None:
    if not root or not is_local_path_of(path, root):
        raise LocalPathError(f"{path} is not a local-path volume directory under {root}")


def make_dir(root: str, path: str) -> None:
    """Make the volume's directory (and the root) with mode 0777, as the helper pod does
    (``mkdir -m 0777 -p``); an existing directory is kept as it is."""
    _check(root, path)
    Path(root).mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise LocalPathError(f"{path} exists and is not a directory") from None
        return
    os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask


def remove_dir(root: str, path: str) -> bool:
    """Remove the volume's directory and what the pods left in it; False when it was not
    there. A symbolic link in its place is removed itself, never followed."""
    _check(root, path)
    real_root = os.path.realpath(root)
    if os.path.realpath(os.path.dirname(path)) != real_root:
        raise LocalPathError(f"{path} does not lie in {real_root}")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return True
    shutil.rmtree(path)  # rmtree never follows links found inside (it unlinks them)
    return True
