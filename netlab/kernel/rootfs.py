"""A stored image's root filesystem as an overlay mount: its options.

A container of a stored image gets its own root: an overlay whose ``lowerdir`` is
the image's unpacked layers (read-only, shared by every container of the image)
and whose ``upperdir``/``workdir`` are the container's own writable layer. The
container runtime (``netlab.node.runtime.bundle``) mounts it in conmon's private
mount namespace just before ``crun create``; this module says what to mount.

Pure: strings in, a string out.
"""

from __future__ import annotations

import os

OVERLAY_OPTIONS_MAX = 4000  # a mount's data is one page; leave room


class RootfsError(OSError):
    pass


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
