"""Pod volumes in the kubelet: the atomic writer's layout and updates, what configMap,
secret, downwardAPI and projected volumes hold (items, modes, optional), hostPath type
checks with upstream's messages, and subPaths that try to leave their volume."""

from __future__ import annotations

import base64
import os
import socket
import stat

import pytest

from netlab.kernel import mounts
from netlab.node.kubelet import atomic_writer, volumemanager
from netlab.node.kubelet import volumes as plugins
from netlab.node.kubelet.atomic_writer import FileProjection
from netlab.node.kubelet.spec import ContainerConfigError, PodContext
from netlab.node.runtime import bundle, capabilities, oci
from netlab.node.runtime.spec import ContainerSpec

CTX = PodContext(node_name="worker1", host_ip="192.168.100.3", pod_ip="10.244.1.7",
                 hostname="web-0", node_cpu_millis=2000, node_memory_bytes=4 << 30)
POD = {"metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1",
                    "labels": {"app": "web", "tier": "front"}, "annotations": {"note": "hi"}},
       "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}]}}
CM = {"metadata": {"name": "cfg"}, "data": {"a.conf": "alpha\n", "b": "beta"},
      "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()}}
SECRET = {"metadata": {"name": "creds"}, "data": {"user": base64.b64encode(b"admin").decode()}}
SOURCES = {("configmap", "cfg"): CM, ("secret", "creds"): SECRET, ("configmap", "gone"): None}


# --- the atomic writer -----------------------------------------------------------------------


def test_atomic_writer_layout(tmp_path):
    target = tmp_path / "vol"
    assert atomic_writer.write(target, {"a": FileProjection(b"1"),
                                        "dir/b": FileProjection(b"2", 0o600)})
    data = os.readlink(target / "..data")
    assert data.startswith("..") and (target / data).is_dir()
    assert os.readlink(target / "a") == "..data/a"
    assert os.readlink(target / "dir") == "..data/dir"
    assert (target / "dir" / "b").read_bytes() == b"2"
    assert stat.S_IMODE((target / data / "dir" / "b").stat().st_mode) == 0o600
    assert sorted(os.listdir(target)) == sorted(["..data", data, "a", "dir"])


def test_atomic_writer_update_swaps_and_cleans(tmp_path):
    target = tmp_path / "vol"
    atomic_writer.write(target, {"a": FileProjection(b"1"), "old": FileProjection(b"x")})
    first = os.readlink(target / "..data")
    assert not atomic_writer.write(target, {"a": FileProjection(b"1"),
                                            "old": FileProjection(b"x")})  # unchanged
    assert os.readlink(target / "..data") == first
    assert atomic_writer.write(target, {"a": FileProjection(b"2"), "new": FileProjection(b"n")})
    second = os.readlink(target / "..data")
    assert second != first and not (target / first).exists()
    assert (target / "a").read_bytes() == b"2" and (target / "new").read_bytes() == b"n"
    assert not os.path.lexists(target / "old")
    assert not os.path.lexists(target / "..data_tmp")
    # A mode change alone is a change.
    assert atomic_writer.write(target, {"a": FileProjection(b"2", 0o400),
                                        "new": FileProjection(b"n")})


@pytest.mark.parametrize("path", ["/abs", "../up", "a/../../b", "..hidden", ""])
def test_atomic_writer_refuses_bad_paths(tmp_path, path):
    with pytest.raises(atomic_writer.PayloadError):
        atomic_writer.write(tmp_path / "vol", {path: FileProjection(b"x")})


# --- payloads --------------------------------------------------------------------------------


def test_configmap_every_key_with_default_mode():
    files = plugins.payload({"name": "v", "configMap": {"name": "cfg"}}, POD, CTX, SOURCES)
    assert files == {"a.conf": FileProjection(b"alpha\n", 0o644), "b": FileProjection(b"beta"),
                     "bin": FileProjection(b"\x00\x01")}


def test_configmap_items_modes_and_default_mode():
    vol = {"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o440, "items": [
        {"key": "a.conf", "path": "conf/a.conf", "mode": 0o400}, {"key": "b", "path": "bee"}]}}
    files = plugins.payload(vol, POD, CTX, SOURCES)
    assert files == {"conf/a.conf": FileProjection(b"alpha\n", 0o400),
                     "bee": FileProjection(b"beta", 0o440)}


def test_missing_objects_and_keys_as_upstream():
    with pytest.raises(plugins.VolumeError, match=r'^configmap "gone" not found$'):
        plugins.payload({"name": "v", "configMap": {"name": "gone"}}, POD, CTX, SOURCES)
    assert plugins.payload({"name": "v", "configMap": {"name": "gone", "optional": True}},
                           POD, CTX, SOURCES) == {}
    with pytest.raises(plugins.VolumeError, match=r'^secret "nope" not found$'):
        plugins.payload({"name": "v", "secret": {"secretName": "nope"}}, POD, CTX, SOURCES)
    items = [{"key": "zz", "path": "zz"}]
    with pytest.raises(plugins.VolumeError,
                       match=r"^configmap references non-existent config key: zz$"):
        plugins.payload({"name": "v", "configMap": {"name": "cfg", "items": items}},
                        POD, CTX, SOURCES)
    assert plugins.payload({"name": "v", "configMap": {"name": "cfg", "items": items,
                                                       "optional": True}},
                           POD, CTX, SOURCES) == {}


def test_secret_is_decoded():
    files = plugins.payload({"name": "v", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                            POD, CTX, SOURCES)
    assert files == {"user": FileProjection(b"admin", 0o400)}


def test_downward_api_fields_and_resources():
    vol = {"name": "v", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
        {"path": "note", "fieldRef": {"fieldPath": "metadata.annotations['note']"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                             "divisor": "1Mi"}, "mode": 0o600}]}}
    files = plugins.payload(vol, POD, CTX, SOURCES)
    assert files["labels"].data == b'app="web"\ntier="front"'
    assert files["name"].data == b"web-0" and files["ns"].data == b"shop"
    assert files["uid"].data == b"u-1" and files["note"].data == b"hi"
    assert files["mem"] == FileProjection(b"64", 0o600)


def test_projected_unites_sources_and_accepts_extra_files():
    vol = {"name": "v", "projected": {"defaultMode": 0o400, "sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "b"}]}},
        {"secret": {"name": "creds"}},
        {"downwardAPI": {"items": [{"path": "name",
                                    "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}
    extra = {"token": FileProjection(b"t0k", 0o600)}
    files = plugins.payload(vol, POD, CTX, SOURCES, extra=extra)
    assert files == {"b": FileProjection(b"beta", 0o400),
                     "user": FileProjection(b"admin", 0o400),
                     "name": FileProjection(b"web-0", 0o400),
                     "token": FileProjection(b"t0k", 0o600)}
    missing = {"name": "v", "projected": {"sources": [{"configMap": {"name": "gone"}}]}}
    with pytest.raises(plugins.VolumeError, match='configmap "gone" not found'):
        plugins.payload(missing, POD, CTX, SOURCES)


def test_unsupported_volumes_say_why(tmp_path):
    vol = {"name": "data", "nfs": {"server": "x", "path": "/"}}
    assert plugins.volume_type(vol) == "nfs"
    with pytest.raises(plugins.UnsupportedVolume, match="nfs volumes are not supported"):
        volumemanager.setup_volume(tmp_path, vol, POD, CTX, SOURCES)


# --- hostPath --------------------------------------------------------------------------------


def test_host_path_types(tmp_path):
    d, f = tmp_path / "d", tmp_path / "f"
    d.mkdir()
    f.write_text("x")
    volumemanager.check_host_path(str(d), "Directory")
    volumemanager.check_host_path(str(f), "File")
    volumemanager.check_host_path(str(tmp_path / "none"), "")  # no type: no check
    volumemanager.check_host_path("/dev/null", "CharDevice")
    made = tmp_path / "new" / "deep"
    volumemanager.check_host_path(str(made), "DirectoryOrCreate")
    assert made.is_dir()
    volumemanager.check_host_path(str(tmp_path / "newfile"), "FileOrCreate")
    assert (tmp_path / "newfile").is_file()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s"))
        volumemanager.check_host_path(str(tmp_path / "s"), "Socket")
    finally:
        sock.close()
    cases = [(f, "Directory", "is not a directory"), (f, "DirectoryOrCreate", "is not a directory"),
             (d, "File", "is not a file"), (d, "FileOrCreate", "is not a file"),
             (f, "Socket", "is not a socket file"), (f, "CharDevice", "is not a character device"),
             (f, "BlockDevice", "is not a block device"),
             (tmp_path / "none", "Directory", "is not a directory")]
    for path, kind, words in cases:
        with pytest.raises(plugins.VolumeError) as err:
            volumemanager.check_host_path(str(path), kind)
        assert str(err.value) == f"hostPath type check failed: {path} {words}"
    with pytest.raises(plugins.VolumeError, match=r"^Dir is an invalid volume type$"):
        volumemanager.check_host_path(str(d), "Dir")


def test_host_path_never_reaches_netlab_state():
    for path in ("/", "/run", "/run/netlab", "/var/lib/netlab/x"):
        assert capabilities.forbidden_host_path(path), path
    assert capabilities.forbidden_host_path("/tmp/x") is None


# --- subPath ---------------------------------------------------------------------------------


def test_sub_path_escapes_are_refused(tmp_path):
    vol = tmp_path / "vol"
    (vol / "inside").mkdir(parents=True)
    (tmp_path / "secret").write_text("host")
    os.symlink("../secret", vol / "out-rel")
    os.symlink(str(tmp_path / "secret"), vol / "out-abs")
    os.symlink("inside", vol / "in")
    ready = {"v": str(vol)}
    volumes = {"v": {"name": "v", "emptyDir": {}}}

    def mount(sub: str):
        c = {"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/m", "subPath": sub}]}
        return volumemanager.container_mounts(c, volumes, ready)

    assert mount("inside")[0] == mounts.VolumeBind(str(vol), "/m", False, "inside")
    assert mount("in")[0].sub_path == "in"  # a link that stays inside is fine
    mount("made/here")  # created when missing (an emptyDir is the kubelet's to write)
    assert (vol / "made" / "here").is_dir()
    for sub in ("out-rel", "out-abs", "../secret", "/etc"):
        with pytest.raises(ContainerConfigError) as err:
            mount(sub)
        assert err.value.message == 'failed to prepare subPath for volumeMount "v" of container "c"'
    with pytest.raises(mounts.MountError, match="not within volume path"):
        mounts.open_beneath(str(vol), "out-abs")


def test_atomic_volumes_mount_read_only():
    c = {"name": "c", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"},
                                       {"name": "scratch", "mountPath": "/s", "readOnly": True},
                                       {"name": "rw", "mountPath": "/rw"}]}
    volumes = {"cfg": {"name": "cfg", "configMap": {"name": "x"}},
               "scratch": {"name": "scratch", "emptyDir": {}}, "rw": {"name": "rw", "emptyDir": {}}}
    got = volumemanager.container_mounts(c, volumes, {"cfg": "/a", "scratch": "/b", "rw": "/c"})
    assert [m.read_only for m in got] == [True, True, False]



def test_sub_path_expr_expands_the_container_env_as_the_kubelet_does(tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    volumes = {"v": {"name": "v", "emptyDir": {}}}

    def mount(expr: str, env: dict[str, str]):
        c = {"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/m",
                                            "subPathExpr": expr}]}
        return volumemanager.container_mounts(c, volumes, {"v": str(vol)}, env)

    got = mount("$(POD_NAME)/logs-$$x", {"POD_NAME": "web-0"})
    assert got[0].sub_path == "web-0/logs-$x" and (vol / "web-0" / "logs-$x").is_dir()
    for expr, env, message in [
            ("$(NOPE)/$(EMPTY)/$(A)", {"EMPTY": "", "A": "a"}, "missing value for EMPTY, NOPE"),
            ("$(A)", {"A": "/etc"}, "error SubPath `/etc` must not be an absolute path"),
            ("x/$(A)", {"A": ".."}, "unable to provision SubPath `x/..`: must not contain '..'")]:
        with pytest.raises(ContainerConfigError) as err:
            mount(expr, env)
        assert err.value.message == message


def test_projected_volume_on_disk_takes_extra_files(tmp_path):
    vol = {"name": "kube-api-access", "projected": {"sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "ca.crt"}]}},
        {"serviceAccountToken": {"path": "token"}}]}}
    path = volumemanager.setup_volume(tmp_path, vol, POD, CTX, SOURCES,
                                      extra={"token": FileProjection(b"jwt", 0o600)})
    assert path == str(tmp_path / "volumes" / "kubernetes.io~projected" / "kube-api-access")
    assert (tmp_path / "volumes" / "kubernetes.io~projected" / "kube-api-access" / "token"
            ).read_bytes() == b"jwt"
    with pytest.raises(plugins.VolumeError, match="serviceAccountToken projections"):
        volumemanager.setup_volume(tmp_path, vol, POD, CTX, SOURCES)


# --- emptyDir: set up once --------------------------------------------------------------------


def test_an_empty_dir_is_set_up_once_and_a_resync_keeps_what_the_pod_made_of_it(tmp_path):
    # Upstream's SetUpAt returns early while the volume's ready file is there: the mode
    # and group are set at setup, and a pod's chmod of its emptyDir is not undone by the
    # kubelet's periodic resync.
    pod = {**POD, "spec": {**POD.get("spec", {}), "securityContext": {"fsGroup": 2000}}}
    vol = {"name": "scratch", "emptyDir": {}}
    path = volumemanager.setup_volume(tmp_path, vol, pod, CTX, SOURCES)
    info = os.stat(path)
    assert stat.S_IMODE(info.st_mode) == 0o2777 and info.st_gid == 2000
    os.chmod(path, 0o700)  # what the pod's own user did
    assert volumemanager.setup_volume(tmp_path, vol, pod, CTX, SOURCES) == path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    # Gone (a pod directory rebuilt): made again.
    os.rmdir(path)
    volumemanager.setup_volume(tmp_path, vol, pod, CTX, SOURCES)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o2777


def test_mount_propagation_reaches_the_runtime_as_cri_o_maps_it():
    c = {"name": "c", "volumeMounts": [
        {"name": "h", "mountPath": "/a"},
        {"name": "h", "mountPath": "/b", "mountPropagation": "None"},
        {"name": "h", "mountPath": "/c", "mountPropagation": "HostToContainer"},
        {"name": "h", "mountPath": "/d", "mountPropagation": "Bidirectional"}]}
    volumes = {"h": {"name": "h", "hostPath": {"path": "/srv"}}}
    got = volumemanager.container_mounts(c, volumes, {"h": "/srv"})
    assert [m.oci_propagation for m in got] == ["rprivate", "rprivate", "rslave", "rshared"]
    assert all(mounts.VolumeBind.from_json(m.to_json()) == m for m in got)


def test_a_volume_inside_a_bidirectional_one_is_refused():
    spec = ContainerSpec("c", command=("x",), privileged=True, mounts=(
        mounts.VolumeBind("/srv", "/data", propagation="Bidirectional"),
        mounts.VolumeBind("/etc", "/data/conf/")))
    with pytest.raises(oci.OciConfigError, match='volume mount "/data/conf/" is inside the '
                       'Bidirectional mount "/data"'):
        bundle.check_propagation(spec)
