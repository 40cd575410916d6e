"""A container of a stored image runs in its own root filesystem: it sees only its
image's files (whiteouts applied), writes land in its own layer and vanish with
it, the pod's /etc files are there, and the host's filesystem is out of reach."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from imagekit import config, docker_save, layer
from rtkit import as_kubelet, log_text, wait_exited, wait_log

from netlab.images import busybox
from netlab.images.store import ImageStore, StoredImage
from netlab.node.runtime.paths import RESOLV_FILE

WHITEOUT_LAYER = layer([
    ("data", "dir"), ("data/a", "file", "A"), ("data/b", "file", "B"),
    ("gone", "dir"), ("gone/old", "file", "old"), ("keep", "dir"), ("keep/x", "file", "x")])
DELETING_LAYER = layer([
    ("data", "dir"), ("data/.wh.a", "file"), ("gone", "dir"), ("gone/.wh..wh..opq", "file"),
    ("gone/new", "file", "new")])


@pytest.fixture(scope="module")
def deleting(store: ImageStore, tmp_path_factory: pytest.TempPathFactory) -> StoredImage:
    base = store.lookup("busybox")
    assert base is not None
    base_tar = busybox.busybox_layer(busybox.find_busybox())[0]
    tars = [base_tar, WHITEOUT_LAYER, DELETING_LAYER]
    archive = docker_save(tmp_path_factory.mktemp("wh") / "wh.tar",
                          [(("nlt/whiteouts:1",), config(tars, cmd=["sh"]), tars)])
    (image,) = store.load(archive)
    return image


def _run(pods, node: str, name: str, image: StoredImage, script: str, **spec):
    return pods.run(node, name, "sh", "-c", script, rootfs=image.layer_dirs,
                    env=image.config.env_map(), **spec)


def test_the_layers_hold_overlay_whiteouts(deleting):
    top = Path(deleting.layer_dirs[0])
    st = os.lstat(top / "data" / "a")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0  # a whiteout, overlayfs' way
    assert os.getxattr(top / "gone", "trusted.overlay.opaque") == b"y"


def test_a_container_sees_only_its_image_with_whiteouts_applied(rlab, pods, deleting):
    script = ("ls /data | tr '\\n' ' '; echo; ls /gone | tr '\\n' ' '; echo; cat /keep/x; echo; "
              "test -e /usr/lib/python3 -o -e /run/netlab -o -e /var/lib/netlab "
              "&& echo HOST-VISIBLE || echo HOST-HIDDEN; "
              "ls / | tr '\\n' ' '")
    sb, _ = _run(pods, "worker1", "only", deleting, script)
    out = log_text(wait_exited(rlab.runtime("worker1"), sb)).splitlines()
    assert out[0].split() == ["b"] and out[1].split() == ["new"] and out[2] == "x", out
    assert out[3] == "HOST-HIDDEN", out
    assert set(out[4].split()) == {"bin", "data", "dev", "etc", "gone", "home", "keep", "linuxrc",
                                   "proc", "root", "sbin", "sys", "tmp", "usr", "var"}, out


def test_the_pods_etc_files_and_standard_mounts(rlab, pods, store):
    image = store.lookup("busybox")
    script = ("cat /etc/resolv.conf; echo ---; hostname; cat /etc/hostname; "
              "grep -c \"$(hostname)\" /etc/hosts; "
              "ls /dev | sort | tr '\\n' ' '; echo; "
              "touch /sys/x 2>/dev/null && echo SYS-WRITABLE || echo SYS-RO; "
              "ls /sys/class/net | tr '\\n' ' '; echo; cat /proc/1/cmdline | tr '\\0' ' '; echo; "
              "echo x > /dev/shm/f && echo SHM-OK; echo hi > /dev/null && echo NULL-OK")
    sb, _ = _run(pods, "worker2", "etc", image, script)
    text = log_text(wait_exited(rlab.runtime("worker2"), sb))
    resolv, _, rest = text.partition("---\n")
    assert resolv == (sb.path / RESOLV_FILE).read_text()
    lines = rest.splitlines()
    assert lines[0] == lines[1] == sb.hostname and int(lines[2]) >= 1, lines
    assert lines[3].split() == sorted([
        "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
        "stdin", "stdout", "tty", "urandom", "zero"])
    assert lines[4] == "SYS-RO" and lines[5].split() == ["eth0", "lo"], lines
    assert lines[6].startswith("sh -c "), lines
    assert lines[7:] == ["SHM-OK", "NULL-OK"], lines


def test_writes_land_in_the_containers_layer_and_vanish_with_it(rlab, pods, store):
    image = store.lookup("busybox")
    assert not Path("/root/ESCAPED_FROM_POD").exists()
    rt = rlab.runtime("worker1")
    sb, _ = _run(pods, "worker1", "writer", image,
                 "touch /root/ESCAPED_FROM_POD && echo > /bin/busybox.new && echo WROTE")
    assert log_text(wait_exited(rt, sb)).split() == ["WROTE"]
    upper = sb.path / "c" / "0.rootfs" / "upper"
    assert (upper / "root" / "ESCAPED_FROM_POD").exists()
    assert not Path("/root/ESCAPED_FROM_POD").exists()  # the host's /root is untouched
    assert not any((Path(d) / "root" / "ESCAPED_FROM_POD").exists() for d in image.layer_dirs)
    # The next attempt is a new container: a fresh layer, without the file.
    st = as_kubelet(rt, lambda: rt.start_container(sb, _spec(image, "test -e /root/ESCAPED_FROM_POD"
                                                              " && echo KEPT || echo FRESH"), 1))
    assert log_text(wait_exited(rt, sb)).split() == ["FRESH"], st
    as_kubelet(rt, lambda: rt.start_container(sb, _spec(image, "true"), 2))
    wait_exited(rt, sb)
    assert not (sb.path / "c" / "0.rootfs").exists()  # pruned with attempt 0's files
    as_kubelet(rt, lambda: rt.remove_pod_sandbox(sb, grace_seconds=0))
    assert not sb.path.exists()


def _spec(image: StoredImage, script: str):
    from netlab.node.runtime import ContainerSpec

    return ContainerSpec("c", command=("sh", "-c", script), rootfs=image.layer_dirs,
                         env=image.config.env_map())


def test_device_nodes_made_inside_open_nothing(rlab, pods, store):
    image = store.lookup("busybox")
    disk = next((d for d in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0")
                 if os.path.exists(d)), None)
    if disk is None:
        pytest.skip("no block device to try")
    major, minor = os.major(os.stat(disk).st_rdev), os.minor(os.stat(disk).st_rdev)
    script = "; ".join(f"mknod {p} b {major} {minor} && (head -c1 {p} >/dev/null 2>&1 "
                       f"&& echo READ || echo DENIED)" for p in ("/dev/disk", "/root/disk"))
    sb, _ = _run(pods, "worker1", "mknod", image, script)
    assert log_text(wait_exited(rlab.runtime("worker1"), sb)).split() == ["DENIED", "DENIED"]


def test_exec_enters_the_image_root(rlab, pods, store):
    image = store.lookup("busybox")
    rt = rlab.runtime("worker2")
    sb, st = _run(pods, "worker2", "exec", image, "echo ready; echo inside > /tmp/mark; "
                  "exec sleep 600")
    wait_log(st, "ready")
    probe = "cat /tmp/mark; test -e /usr/lib/python3 && echo HOST || echo IMAGE"
    spec = as_kubelet(rt, lambda: rt.exec_in_container(sb, "c", ["sh", "-c", probe]))
    out = subprocess.run(spec.argv, env=spec.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["inside", "IMAGE"]


def test_image_user_and_working_dir(rlab, pods, store):
    image = store.lookup("busybox")
    sb, _ = _run(pods, "worker1", "user", image, "id -u; id -g; pwd; touch /root/x 2>&1 "
                 "| grep -c denied", user="nobody", working_dir="/work/dir")
    out = log_text(wait_exited(rlab.runtime("worker1"), sb)).split()
    assert out == ["65534", "65534", "/work/dir", "1"], out


def test_alpine_shares_busybox_layer_and_runs(rlab, pods, store):
    alpine, base = store.lookup("alpine:latest"), store.lookup("docker.io/library/busybox")
    assert alpine is not None and base is not None
    assert alpine.layer_dirs[1:] == base.layer_dirs  # one unpacked busybox layer for both
    sb, _ = _run(pods, "worker2", "alpine", alpine, "grep ^ID= /etc/os-release; readlink /bin/ls")
    out = log_text(wait_exited(rlab.runtime("worker2"), sb)).split()
    assert out == ["ID=alpine", "/bin/busybox"], out


def test_privileged_keeps_its_image_root_with_the_hosts_devices(rlab, pods, store):
    image = store.lookup("busybox")
    script = ("test -e /usr/lib/python3 && echo HOST-ROOT || echo OWN-ROOT; "
              "ls /dev | wc -l; touch /sys/x 2>&1 | grep -c 'Read-only' || true")
    sb, _ = _run(pods, "worker1", "privimg", image, script, privileged=True)
    out = log_text(wait_exited(rlab.runtime("worker1"), sb)).split()
    assert out[0] == "OWN-ROOT" and int(out[1]) > len(os.listdir("/dev")) // 2, out
    assert out[2] == "0", out  # /sys is writable for a privileged container
