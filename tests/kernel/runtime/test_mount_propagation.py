"""A volume's mountPropagation, as the runtime applies it: HostToContainer shows
the container what the host mounts in a shared hostPath later, None does not, and
neither is undone on the host when the pod goes; a source on a private mount is
refused with CRI-O's error; Bidirectional lets a privileged container's mount reach
the host, and nothing else of the container's mounts.

This host's ``/`` is private, so each test makes its own shared mount (a directory
bound onto itself, made shared) and removes it, and what was mounted below it, in
``finally``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import wait_for
from rtkit import as_kubelet

from netlab.kernel import mounts
from netlab.kernel.mounts import VolumeBind
from netlab.node.runtime import ContainerSpec, CreateError

IDLE = ("sh", "-c", "exec sleep 300")


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Path]:
    """A directory that is a shared mount of its own."""
    d = tmp_path / "shared"
    d.mkdir()
    (d / "sub").mkdir()
    _sh("mount", "--bind", str(d), str(d))
    try:
        _sh("mount", "--make-shared", str(d))
        yield d
    finally:
        mounts.unmount_below(str(d))


def _host_tmpfs(path: Path) -> None:
    _sh("mount", "-t", "tmpfs", "-o", "size=64k", "nlt-propagation", str(path))
    (path / "marker").write_text("from the host\n")


def _container_sees(pid: int, path: str) -> bool:
    return os.path.exists(f"/proc/{pid}/root{path}")


def test_host_to_container_shows_a_later_host_mount_and_leaves_it_on_the_host(
        rlab, pods, shared):
    sb, st = pods.run("worker1", "h2c", *IDLE, mounts=(
        VolumeBind(str(shared), "/vol", host_path=True, propagation="HostToContainer"),))
    assert st.state == "running" and st.pid, st
    _host_tmpfs(shared / "sub")
    wait_for(lambda: _container_sees(st.pid, "/vol/sub/marker"), 10,
             what="the host's tmpfs in the container")
    rt = rlab.runtime("worker1")
    as_kubelet(rt, lambda: rt.remove_pod_sandbox(sb, grace_seconds=0))
    # The pod's bind of the volume received the tmpfs too; its teardown must not
    # unmount the host's own.
    assert mounts.is_mountpoint(str(shared / "sub"))
    assert (shared / "sub" / "marker").read_text() == "from the host\n"


def test_without_propagation_a_later_host_mount_stays_out(rlab, pods, shared):
    sb, st = pods.run("worker1", "none", *IDLE,
                      mounts=(VolumeBind(str(shared), "/vol", host_path=True),))
    assert st.state == "running" and st.pid, st
    _host_tmpfs(shared / "sub")
    assert _container_sees(st.pid, "/vol/sub")
    assert not _container_sees(st.pid, "/vol/sub/marker")
    rt = rlab.runtime("worker1")
    as_kubelet(rt, lambda: rt.remove_pod_sandbox(sb, grace_seconds=0))
    assert mounts.is_mountpoint(str(shared / "sub"))


def test_host_to_container_from_a_private_mount_is_a_create_error(rlab, pods, tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    point, _ = mounts.source_mount(str(private))
    rt = rlab.runtime("worker2")
    sb = pods.sandbox("worker2", "private")
    with pytest.raises(CreateError) as failed:
        as_kubelet(rt, lambda: rt.start_container(sb, ContainerSpec("c", command=IDLE, mounts=(
            VolumeBind(str(private), "/vol", host_path=True, propagation="HostToContainer"),
        )), 0))
    assert str(failed.value) == (f'path "{private}" is mounted on "{point}" but it is not '
                                 "a shared or slave mount")
    assert rt.container_status(sb, "c") is None  # nothing was created


def test_bidirectional_needs_a_shared_mount(rlab, pods, tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    rt = rlab.runtime("worker2")
    sb = pods.sandbox("worker2", "bidiprivate")
    with pytest.raises(CreateError, match=r"but it is not a shared mount$"):
        as_kubelet(rt, lambda: rt.start_container(sb, ContainerSpec(
            "c", command=IDLE, privileged=True, mounts=(
                VolumeBind(str(private), "/vol", host_path=True, propagation="Bidirectional"),
            )), 0))


@pytest.mark.parametrize("root", ["host view", "image"])
def test_bidirectional_sends_the_containers_mount_to_the_host_and_nothing_else(
        rlab, pods, shared, image, root):
    # Mounted on the host before the container: crun's teardown of the old root in
    # the container must not unmount it (the container's copy is a peer).
    _host_tmpfs(shared / "sub")
    script = ("mkdir -p /vol/inner && mount -t tmpfs -o size=64k inner /vol/inner && "
              "echo from the container > /vol/inner/f && exec sleep 300")
    own = {"rootfs": image.layer_dirs, "env": image.config.env_map()} if root == "image" \
        else {}
    sb, st = pods.run("worker2", "bidi", "sh", "-c", script, privileged=True, mounts=(
        VolumeBind(str(shared), "/vol", host_path=True, propagation="Bidirectional"),), **own)
    assert st.state == "running", st
    wait_for(lambda: (shared / "inner" / "f").exists(), 10,
             what="the container's tmpfs on the host")
    assert mounts.is_mountpoint(str(shared / "inner"))
    assert (shared / "sub" / "marker").read_text() == "from the host\n"
    # Of the container's own mounts (its root's overlays, /proc, /dev...), none is on
    # the host: below the container's directory the host has only the volume's bind.
    below = [p for p in mounts._mount_points() if p.startswith(f"{sb.path / 'c'}/")]
    assert below and all("/volumes/" in p for p in below), below
