"""A container's volume mounts, as the shim binds them: into a stored image's own root
(mount points made inside the image), read-only when asked, a subPath resolved inside
its volume and never through a symbolic link out of it; and for a container without an
image of its own, at paths its read-only view of the host has or under its /tmp."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rtkit import PY, as_kubelet, log_text, wait_exited

from netlab import paths
from netlab.kernel import mounts
from netlab.kernel.mounts import VolumeBind
from netlab.node.kubelet import volumemanager
from netlab.node.kubelet.spec import PodContext
from netlab.node.runtime import ContainerSpec


@pytest.fixture
def volumes(tmp_path: Path) -> Path:
    (tmp_path / "rw").mkdir()
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "hello").write_text("from the host\n")
    (tmp_path / "rw" / "sub").mkdir()
    (tmp_path / "rw" / "sub" / "f").write_text("sub file\n")
    return tmp_path


def _busybox(pods, node, name, image, script, mounts):
    return pods.run(node, name, "sh", "-c", script, rootfs=image.layer_dirs,
                    env=image.config.env_map(), mounts=tuple(mounts))


def test_binds_into_an_image_root_read_write_and_read_only(rlab, pods, image, volumes):
    script = ("echo written > /data/new && echo RW-OK; cat /conf/hello; "
              "touch /conf/x 2>&1 | grep -q 'Read-only file system' && echo RO-REFUSED; "
              "cat /one/f; ls -d /deep/er/dir >/dev/null && echo MADE")
    mounts = [VolumeBind(str(volumes / "rw"), "/data"),
              VolumeBind(str(volumes / "ro"), "/conf", read_only=True),
              VolumeBind(str(volumes / "rw"), "/one", sub_path="sub"),
              VolumeBind(str(volumes / "rw"), "/deep/er/dir")]
    sb, _ = _busybox(pods, "worker1", "binds", image, script, mounts)
    out = log_text(wait_exited(rlab.runtime("worker1"), sb)).splitlines()
    assert out == ["RW-OK", "from the host", "RO-REFUSED", "sub file", "MADE"], out
    assert (volumes / "rw" / "new").read_text() == "written\n"  # the volume, not the layer
    assert not (volumes / "ro" / "x").exists()


def test_a_sub_path_through_a_symbolic_link_out_is_refused(rlab, pods, image, volumes):
    os.symlink("/", volumes / "rw" / "escape")
    sb, st = _busybox(pods, "worker2", "escape", image, "ls /host",
                      [VolumeBind(str(volumes / "rw"), "/host", sub_path="escape")])
    st = wait_exited(rlab.runtime("worker2"), sb)
    assert st.reason == "StartError" and "not within volume path" in (st.message or ""), st


def test_a_container_without_an_image_mounts_into_its_own_root(rlab, pods, volumes):
    script = (f"{PY} -c \"print(open('/etc/app/hello').read().strip())\"; "
              "echo w > /data/f && echo RW-OK; touch /etc/app/x 2>/dev/null || echo RO")
    sb, _ = pods.run("worker1", "hostview", "sh", "-c", script,
                     mounts=(VolumeBind(str(volumes / "ro"), "/etc/app", read_only=True),
                             VolumeBind(str(volumes / "rw"), "/data")))
    out = log_text(wait_exited(rlab.runtime("worker1"), sb)).splitlines()
    assert out == ["from the host", "RW-OK", "RO"], out
    assert (volumes / "rw" / "f").read_text() == "w\n"
    assert not os.path.exists("/etc/app") and not os.path.exists("/data/f")


def test_a_privileged_host_view_never_makes_mount_points_on_the_host(rlab, pods, volumes):
    # Mount points the host lacks are made in the container's own layer: under a
    # directory of its own root (/no), or in an overlay of the host's directory (/run,
    # where the service-account token goes), never on the host.
    sb, _ = pods.run("worker2", "nowhere", "sh", "-c",
                     "cat /no/such/dir/hello /run/nlt-volume-probe/hello", privileged=True,
                     mounts=(VolumeBind(str(volumes / "ro"), "/no/such/dir"),
                             VolumeBind(str(volumes / "ro"), "/run/nlt-volume-probe")))
    st = wait_exited(rlab.runtime("worker2"), sb)
    assert st.reason == "Completed", st
    assert log_text(st).split() == ["from", "the", "host"] * 2
    assert not os.path.exists("/no/such") and not os.path.exists("/run/nlt-volume-probe")


def test_a_memory_emptydir_is_a_tmpfs_of_its_size_and_goes_with_the_pod(rlab, pods, image):
    rt = rlab.runtime("worker1")
    sb = pods.sandbox("worker1", "memory")
    volume = {"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    ctx = PodContext(node_name="worker1", host_ip="", pod_ip="", hostname="memory")
    path = volumemanager.setup_volume(sb.path, volume, {}, ctx, {})
    assert mounts.is_mountpoint(path)
    script = ("grep ' /scratch ' /proc/mounts | cut -d' ' -f3; "
              "dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>/dev/null || echo FULL")
    st = as_kubelet(rt, lambda: rt.start_container(sb, ContainerSpec(
        "c", command=("sh", "-c", script), rootfs=image.layer_dirs,
        env=image.config.env_map(), mounts=(VolumeBind(path, "/scratch"),)), 0))
    out = log_text(wait_exited(rt, sb)).split()
    assert out == ["tmpfs", "FULL"], (out, st)
    as_kubelet(rt, lambda: rt.remove_pod_sandbox(sb, grace_seconds=0))
    assert not mounts.is_mountpoint(path) and not sb.path.exists()


def test_a_host_path_swapped_for_a_link_to_the_lab_is_refused_at_mount(rlab, pods, image,
                                                                       volumes):
    """The kubelet checked the hostPath when it set the volume up; by the time the
    container starts it has become a link to netlab's state directory. The runtime
    checks where the opened source really leads, and refuses."""
    os.symlink(str(paths.lab_dir(rlab.name)), volumes / "swapped")
    sb, _ = _busybox(pods, "worker1", "swapped", image, "ls /h",
                     [VolumeBind(str(volumes / "swapped"), "/h", host_path=True)])
    st = wait_exited(rlab.runtime("worker1"), sb)
    assert st.reason == "StartError", st
    assert "would expose netlab's own files" in (st.message or ""), st


def test_a_privileged_host_views_layered_run_keeps_what_is_mounted_below_it(rlab, pods,
                                                                            volumes):
    """The overlay that makes a missing mount point under /run in the container's layer
    must not hide what is mounted below the host's /run: the network namespaces pinned
    in /run/netns stay there, as a privileged container expects of the host."""
    pin = f"/run/netns/{rlab.runtime('worker2').node.netns}"  # the node's namespace
    sb, _ = pods.run("worker2", "netnsview", "stat", "-f", "-c", "%T", pin, privileged=True,
                     mounts=(VolumeBind(str(volumes / "ro"), "/run/nlt-volume-probe2"),))
    st = wait_exited(rlab.runtime("worker2"), sb)
    assert st.reason == "Completed", st
    assert log_text(st).split() == ["nsfs"], log_text(st)  # the pin, not its mount point


def test_a_host_mount_whose_path_has_a_space_is_kept_below_a_layered_run(rlab, pods, volumes):
    """What the host mounts below /run stays visible under the container's layered /run,
    a mount point with a space in its path too (the shield binds them back by system
    call; when they travelled to a shell as a word list, such a one was left hidden)."""
    point = Path(f"/run/nlt space {os.getpid()}")
    mounts.mount_tmpfs(str(point), 1 << 20, mode=0o755)
    try:
        (point / "probe").write_text("below run\n")
        sb, _ = pods.run("worker1", "spaced", "cat", f"{point}/probe", privileged=True,
                         mounts=(VolumeBind(str(volumes / "ro"), "/run/nlt-volume-probe3"),))
        st = wait_exited(rlab.runtime("worker1"), sb)
        assert st.reason == "Completed", (st, log_text(st))
        assert log_text(st) == "below run\n"
    finally:
        mounts.unmount_below(str(point))
        point.rmdir()
