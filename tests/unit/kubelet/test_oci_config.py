"""The OCI config.json a container runs from, as CRI-O and containerd write it."""

from __future__ import annotations

import json
import os

import pytest

from netlab.node.runtime import capabilities, oci
from netlab.node.runtime.spec import ContainerSpec

pytestmark = pytest.mark.unit

SB = oci.SandboxPaths(netns="/run/netns/lab-w1.p-1234", uts="/run/netlab/lab/pods/x/uts",
                      hosts="/pod/hosts", hostname="/pod/hostname", resolv="/pod/resolv.conf")
PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [],
         "includes": {}, "excludes": {}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["futurecall"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "9.0"}},
    ]}


def _build(spec, **opts):
    opts.setdefault("seccomp_profile", PROFILE)
    return oci.build(spec, SB, oci.BundleOptions(root="/b/rootfs", **opts))


def test_process_and_namespaces():
    spec = ContainerSpec("c", command=("sh", "-c"), args=("echo hi",), env={"A": "1"},
                         working_dir="/srv")
    doc = _build(spec, cgroups_path="/netlab/lab/uid/c")
    assert doc["process"]["args"] == ["sh", "-c", "echo hi"]
    assert "A=1" in doc["process"]["env"] and doc["process"]["cwd"] == "/srv"
    assert doc["process"]["user"] == {"uid": 0, "gid": 0}
    assert doc["process"]["noNewPrivileges"] is False and doc["root"]["readonly"] is False
    ns = {n["type"]: n.get("path") for n in doc["linux"]["namespaces"]}
    assert ns == {"network": SB.netns, "uts": SB.uts, "pid": None, "ipc": None, "mount": None}
    assert doc["linux"]["cgroupsPath"] == "/netlab/lab/uid/c"
    json.dumps(doc)  # a JSON document


def test_capabilities_default_add_drop_and_non_root():
    doc = _build(ContainerSpec("c", command=("x",), cap_add=("NET_ADMIN",), cap_drop=("KILL",)))
    caps = doc["process"]["capabilities"]
    want = {f"CAP_{c}" for c in (capabilities.DEFAULT | {"NET_ADMIN"}) - {"KILL"}}
    assert set(caps["bounding"]) == want == set(caps["effective"]) == set(caps["permitted"])
    assert caps["ambient"] == [] and caps["inheritable"] == []
    user = oci.ProcessUser(1000, 1000)
    doc = oci.build(ContainerSpec("c", command=("x",)), SB,
                    oci.BundleOptions(root="/r", seccomp_profile=PROFILE), user)
    assert doc["process"]["capabilities"]["effective"] == []
    assert len(doc["process"]["capabilities"]["bounding"]) == 14


def test_privileged_has_everything_and_no_masks_or_seccomp():
    doc = _build(ContainerSpec("c", command=("x",), privileged=True))
    assert len(doc["process"]["capabilities"]["bounding"]) == len(capabilities.NUMBERS)
    assert "maskedPaths" not in doc["linux"] and "seccomp" not in doc["linux"]
    sys_mount = next(m for m in doc["mounts"] if m["destination"] == "/sys")
    assert "rw" in sys_mount["options"]


def test_security_context_fields():
    spec = ContainerSpec("c", command=("x",), no_new_privs=True, read_only_root=True)
    doc = _build(spec, masked=("/run/netlab",))
    assert doc["process"]["noNewPrivileges"] is True and doc["root"]["readonly"] is True
    assert "/proc/kcore" in doc["linux"]["maskedPaths"]
    assert "/run/netlab" in doc["linux"]["maskedPaths"]
    assert "/proc/sys" in doc["linux"]["readonlyPaths"]
    sys_mount = next(m for m in doc["mounts"] if m["destination"] == "/sys")
    assert "ro" in sys_mount["options"]


def test_mounts_put_the_pod_files_over_the_host_view():
    binds = oci.host_view_binds(["/opt/venv"], links={"/bin": "usr/bin"})
    assert oci.Bind("/usr", "/usr") in binds and all(b.destination != "/bin" for b in binds)
    doc = _build(ContainerSpec("c", command=("x",)), binds=binds)
    order = [m["destination"] for m in doc["mounts"]]
    for want in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"):
        assert want in order
    assert order.index("/etc") < order.index("/etc/hosts")
    assert order[-3:] == ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
    venv = next(m for m in doc["mounts"] if m["destination"] == "/opt/venv")
    assert "ro" in venv["options"]


def test_resources_as_cgroups_py_sets_them():
    spec = ContainerSpec("c", command=("x",), cpu_limit_millis=250, cpu_request_millis=100,
                         memory_limit_bytes=64 << 20)
    assert oci.resources(spec) == {"cpu": {"quota": 25000, "period": 100000, "shares": 102},
                                   "memory": {"limit": 64 << 20}}
    assert oci.resources(ContainerSpec("c", command=("x",))) == {}


def test_seccomp_conversion_follows_arch_caps_and_kernel():
    doc = oci.seccomp_for(PROFILE, ["CAP_CHOWN"], machine="x86_64", kernel="6.1.0-amd64")
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO" and doc["defaultErrnoRet"] == 38
    assert doc["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    rules = {(tuple(r["names"]), r["action"]) for r in doc["syscalls"]}
    assert (("arch_prctl",), "SCMP_ACT_ALLOW") in rules
    assert (("mount",), "SCMP_ACT_ERRNO") in rules and (("mount",), "SCMP_ACT_ALLOW") not in rules
    assert not any("futurecall" in r["names"] for r in doc["syscalls"])
    personality = next(r for r in doc["syscalls"] if r["names"] == ["personality"])
    assert personality["args"] == [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]
    admin = oci.seccomp_for(PROFILE, ["CAP_SYS_ADMIN"], machine="aarch64", kernel="6.1")
    assert admin["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert (["mount"], "SCMP_ACT_ALLOW") in [(r["names"], r["action"]) for r in admin["syscalls"]]
    assert not any(r["names"] == ["arch_prctl"] for r in admin["syscalls"])


def test_seccomp_per_security_context():
    assert "seccomp" in _build(ContainerSpec("c", command=("x",)))["linux"]
    unconfined = ContainerSpec("c", command=("x",), seccomp="Unconfined")
    assert "seccomp" not in _build(unconfined)["linux"]
    with pytest.raises(oci.OciConfigError, match="containers-common"):
        _build(ContainerSpec("c", command=("x",)), seccomp_profile=None)


@pytest.mark.skipif(not os.path.exists(oci.DEFAULT_SECCOMP_PROFILE),
                    reason="containers-common's seccomp profile is not installed")
def test_the_installed_default_profile_converts():
    with open(oci.DEFAULT_SECCOMP_PROFILE) as f:
        profile = json.load(f)
    doc = oci.seccomp_for(profile, [f"CAP_{c}" for c in capabilities.DEFAULT])
    names = {n for r in doc["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    assert {"read", "write", "execve", "clone"} <= names
    assert doc["architectures"]


def test_users_resolve_in_the_images_files():
    passwd = ("root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
              "app:x:1000:1000::/:/bin/sh\n")
    group = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\n"
    assert oci.resolve_user(None) == oci.ProcessUser(0, 0)
    assert oci.resolve_user("app", passwd, group) == oci.ProcessUser(1000, 1000, (10,))
    assert oci.resolve_user("1234", passwd, group) == oci.ProcessUser(1234, 0)
    assert oci.resolve_user("nobody:wheel", passwd, group) == oci.ProcessUser(65534, 10)
    with pytest.raises(oci.OciConfigError, match="unable to find user ghost"):
        oci.resolve_user("ghost", passwd, group)


def test_nothing_to_run_is_refused():
    with pytest.raises(oci.OciConfigError, match="no command"):
        _build(ContainerSpec("c"))


def test_stdin_and_tty_from_the_pod_spec_as_cri_o_passes_them():
    from netlab.node.runtime import oci_runtime

    spec = ContainerSpec.from_k8s({"name": "c", "command": ["sh"], "stdin": True,
                                   "stdinOnce": True, "tty": True})
    assert (spec.stdin, spec.stdin_once, spec.tty) == (True, True, True)
    cfg = _build(spec)
    assert cfg["process"]["terminal"] is True and "TERM=xterm" in cfg["process"]["env"]
    assert not _build(ContainerSpec("c", command=("sh",)))["process"]["terminal"]
    assert oci_runtime.stdio_args(True, True, True) == ["-t", "-i"]
    assert oci_runtime.stdio_args(True, False, False) == ["-i", "--leave-stdin-open"]
    assert oci_runtime.stdio_args(False, False, False) == []


def test_volume_propagation_as_cri_o_maps_it():
    def doc(*propagations):
        return _build(ContainerSpec("c", command=("x",)), volumes=tuple(
            oci.Bind(f"/v/{i}", f"/m{i}", read_only=False, propagation=p)
            for i, p in enumerate(propagations)))

    plain = doc("rprivate")
    assert next(m for m in plain["mounts"] if m["destination"] == "/m0")["options"] == \
        ["rbind", "rprivate", "rw"]
    assert "rootfsPropagation" not in plain["linux"]
    h2c = doc("rprivate", "rslave")
    assert "rslave" in next(m for m in h2c["mounts"] if m["destination"] == "/m1")["options"]
    assert h2c["linux"]["rootfsPropagation"] == "rslave"
    assert doc("rslave", "rshared")["linux"]["rootfsPropagation"] == "rshared"
