"""securityContext as the runtime applies it (through crun): runAsUser/runAsGroup, seccomp,
readOnlyRootFilesystem, allowPrivilegeEscalation: false (no_new_privs), and
capabilities.add NET_ADMIN letting `ip link add` work (and its absence refusing it)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from rtkit import log_text, wait_exited, wait_log

from netlab.node.runtime import containers


def _status_field(text: str, name: str) -> str:
    return next(x for x in text.splitlines() if x.startswith(f"{name}:")).split()[1]


def test_run_as_user_and_group(rlab, pods):
    sb, _ = pods.run("worker1", "uid", "sh", "-c", "id -u; id -g; grep CapEff /proc/self/status",
                     run_as_user=1000, run_as_group=3000)
    out = log_text(wait_exited(rlab.runtime("worker1"), sb))
    assert out.splitlines()[:2] == ["1000", "3000"], out
    assert int(_status_field(out, "CapEff"), 16) == 0, out  # no capabilities as non-root


def test_no_new_privs_follows_allow_privilege_escalation(rlab, pods):
    script = "grep NoNewPrivs /proc/self/status"
    sb, _ = pods.run("worker1", "nnp", "sh", "-c", script, no_new_privs=True)
    assert _status_field(log_text(wait_exited(rlab.runtime("worker1"), sb)), "NoNewPrivs") == "1"
    sb, _ = pods.run("worker1", "nnp0", "sh", "-c", script)
    assert _status_field(log_text(wait_exited(rlab.runtime("worker1"), sb)), "NoNewPrivs") == "0"


def test_read_only_root_filesystem_refuses_writes(rlab, pods):
    script = ("touch /tmp/x 2>/dev/null && echo WROTE-TMP || echo RO-TMP; "
              "echo ok > /dev/shm/x && echo SHM-OK")
    sb, _ = pods.run("worker1", "rohost", "sh", "-c", script, read_only_root=True)
    assert log_text(wait_exited(rlab.runtime("worker1"), sb)).split() == ["RO-TMP", "SHM-OK"]


def test_read_only_root_filesystem_of_an_image(rlab, pods, image):
    script = ("touch /x 2>/dev/null && echo WROTE || echo RO-ROOT; "
              "touch /tmp/x 2>/dev/null && echo WROTE-TMP || echo RO-TMP")
    sb, _ = pods.run("worker1", "roimg", "sh", "-c", script, rootfs=image.layer_dirs,
                     read_only_root=True)
    assert log_text(wait_exited(rlab.runtime("worker1"), sb)).split() == ["RO-ROOT", "RO-TMP"]
    sb, _ = pods.run("worker1", "rwimg", "sh", "-c", "touch /x && echo WROTE",
                     rootfs=image.layer_dirs)
    assert log_text(wait_exited(rlab.runtime("worker1"), sb)).split() == ["WROTE"]


def test_net_admin_lets_ip_link_add_work(rlab, pods):
    script = "ip link add nlt0 type veth peer name nlt1 2>/dev/null && echo ADDED || echo REFUSED"
    sb, _ = pods.run("worker2", "admin", "sh", "-c", script, cap_add=("NET_ADMIN",))
    assert log_text(wait_exited(rlab.runtime("worker2"), sb)).split() == ["ADDED"]
    sb, _ = pods.run("worker2", "noadmin", "sh", "-c", script)
    assert log_text(wait_exited(rlab.runtime("worker2"), sb)).split() == ["REFUSED"]


def test_seccomp_is_the_runtime_default_unless_unconfined(rlab, pods):
    script = "grep -E '^Seccomp:' /proc/self/status"
    sb, _ = pods.run("worker1", "sec", "sh", "-c", script)
    assert _status_field(log_text(wait_exited(rlab.runtime("worker1"), sb)), "Seccomp") == "2"
    sb, _ = pods.run("worker1", "unconf", "sh", "-c", script, seccomp="Unconfined")
    assert _status_field(log_text(wait_exited(rlab.runtime("worker1"), sb)), "Seccomp") == "0"
    sb, _ = pods.run("worker1", "privsec", "sh", "-c", script, privileged=True)
    assert _status_field(log_text(wait_exited(rlab.runtime("worker1"), sb)), "Seccomp") == "0"


def test_exec_keeps_the_containers_user_seccomp_and_no_new_privs(rlab, pods):
    import subprocess

    from rtkit import as_kubelet, wait_log

    rt = rlab.runtime("worker1")
    sb, st = pods.run("worker1", "execsec", "sh", "-c",
                      "echo ready $(id -G | tr ' ' ,); exec sleep 600",
                      run_as_user=1000, run_as_group=3000, no_new_privs=True,
                      supplemental_groups=(2000, 4000), working_dir="/tmp/wd")
    wait_log(st, "ready")
    # The container's own groups: its gid and the pod's supplementalGroups (and fsGroup).
    assert "ready 3000,2000,4000" in log_text(st), log_text(st)
    spec = as_kubelet(rt, lambda: rt.exec_in_container(
        sb, "c", ["sh", "-c", "id -u; id -G; pwd; grep -E '^(Seccomp|NoNewPrivs):' "
                  "/proc/self/status"]))
    out = subprocess.run(spec.argv, env=spec.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:3] == ["1000", "3000 2000 4000", "/tmp/wd"], out.stdout
    assert _status_field(out.stdout, "Seccomp") == "2"
    assert _status_field(out.stdout, "NoNewPrivs") == "1"


def test_read_only_root_covers_a_host_programs_host_directories(rlab, pods):
    """A container without an image sees the host's /usr and /etc as overlays below its
    root; readOnlyRootFilesystem must make those read-only too, not only the root."""
    script = "for d in /usr /etc; do touch $d/nlt-ro 2>/dev/null && echo W$d || echo RO$d; done"
    sb, _ = pods.run("worker1", "rousr", "sh", "-c", script, read_only_root=True)
    assert log_text(wait_exited(rlab.runtime("worker1"), sb)).split() == ["RO/usr", "RO/etc"]
    sb, _ = pods.run("worker1", "rwusr", "sh", "-c", script)
    assert log_text(wait_exited(rlab.runtime("worker1"), sb)).split() == ["W/usr", "W/etc"]
    assert not os.path.exists("/usr/nlt-ro") and not os.path.exists("/etc/nlt-ro")


def test_exec_runs_in_the_containers_cgroups(rlab, pods):
    """crun exec with its cgroup manager off joins no cgroup: the runtime's exec must put
    the command in the container's groups, so the container's limits hold for it."""
    import subprocess

    from rtkit import as_kubelet, wait_log

    rt = rlab.runtime("worker1")
    sb, st = pods.run("worker1", "execcg", "sh", "-c", "echo ready; exec sleep 600",
                      memory_limit_bytes=64 * 2**20)
    wait_log(st, "ready")
    spec = as_kubelet(rt, lambda: rt.exec_in_container(
        sb, "c", ["sh", "-c", "cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup"]))
    out = subprocess.run(spec.argv, env=spec.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    mine, pid1 = out.stdout.split("---\n")
    assert "/netlab/" in pid1, pid1
    assert sorted(mine.split()) == sorted(pid1.split()), out.stdout


def test_device_nodes_are_filtered_or_mknod_withheld(rlab, pods):
    """With crun's cgroup manager off, the runtime itself keeps a container from the
    host's disks: the devices controller's default allow-list where the host has it,
    else no MKNOD. Either way a node made for the root disk does not open."""
    disk = os.stat("/").st_dev
    major, minor = os.major(disk), os.minor(disk)
    script = (f"grep CapEff /proc/self/status; mknod /tmp/d b {major} {minor} 2>&1 && "
              "head -c 1 /tmp/d >/dev/null 2>&1 && echo OPENED || echo REFUSED")
    sb, st = pods.run("worker1", "devs", "sh", "-c", script + "; exec sleep 600")
    out = wait_log(st, "ED")
    assert out.splitlines()[-1] == "REFUSED", out
    cg = containers.container_cgroup(sb, "c")
    if cg is not None and "devices" in cg.dirs:
        rules = Path(cg.dirs["devices"], "devices.list").read_text().split("\n")
        assert "a *:* rwm" not in rules and "c 1:3 rwm" in rules, rules
    else:
        assert not int(_status_field(out, "CapEff"), 16) & (1 << 27), out  # CAP_MKNOD


def test_home_is_the_users_own(rlab, pods, image):
    sb, _ = pods.run("worker1", "home", "sh", "-c", "echo $HOME", rootfs=image.layer_dirs,
                     run_as_user=65534, env=image.config.env_map())
    assert log_text(wait_exited(rlab.runtime("worker1"), sb)).split() == ["/home"]


def test_a_localhost_seccomp_profile_is_read_from_the_profiles_root(rlab, pods):
    """``seccompProfile: {type: Localhost, localhostProfile: ...}`` loads the profile from
    /var/lib/netlab/seccomp (the kubelet's <root-dir>/seccomp): this one lets everything
    but mkdir through. A profile that is not there is the runtime's start error."""
    from netlab.paths import SECCOMP_ROOT

    made_root = not SECCOMP_ROOT.exists()
    name = f"nlt-{os.getpid()}-nomkdir.json"
    profile = SECCOMP_ROOT / name
    SECCOMP_ROOT.mkdir(parents=True, exist_ok=True)
    try:
        profile.write_text(json.dumps({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
        script = "mkdir /tmp/d 2>&1 && echo MADE; grep -E '^Seccomp:' /proc/self/status"
        sb, _ = pods.run("worker1", "local", "sh", "-c", script, seccomp=f"Localhost/{name}")
        out = log_text(wait_exited(rlab.runtime("worker1"), sb))
        assert "Operation not permitted" in out and "MADE" not in out, out
        assert _status_field(out, "Seccomp") == "2", out
        sb, _ = pods.run("worker1", "deflt", "sh", "-c", script)
        assert "MADE" in log_text(wait_exited(rlab.runtime("worker1"), sb))
        _, st = pods.run("worker1", "noprof", "true", seccomp="Localhost/nlt-missing.json")
        assert st.reason == "StartError", st
        assert f'cannot load seccomp profile "{SECCOMP_ROOT}/nlt-missing.json": No such file' \
            in (st.message or ""), st
    finally:
        profile.unlink(missing_ok=True)
        if made_root:
            shutil.rmtree(SECCOMP_ROOT, ignore_errors=True)


def test_a_profile_is_compiled_once_and_the_filter_still_applies(rlab, pods):
    """crun compiles a container's seccomp profile at its first container; the runtime
    keeps that filter, and later containers of the same profile hand it to crun in the
    ``run.oci.seccomp_bpf_data`` annotation: their config.json carries it, the filter
    still refuses what the profile refuses (in the container and in ``crun exec``), and
    a different profile is not given it."""
    import subprocess

    from rtkit import as_kubelet

    from netlab.node.runtime import seccomp_cache
    from netlab.node.runtime.paths import runtime_dir
    from netlab.paths import SECCOMP_ROOT

    made_root = not SECCOMP_ROOT.exists()
    name = f"nlt-{os.getpid()}-once.json"
    profile = SECCOMP_ROOT / name
    SECCOMP_ROOT.mkdir(parents=True, exist_ok=True)
    rt = rlab.runtime("worker1")

    def config(sb) -> dict:
        return json.loads((Path(sb.directory) / "c" / "0.rootfs" / "config.json").read_text())

    try:
        profile.write_text(json.dumps({
            "defaultAction": "SCMP_ACT_ALLOW",
            # Not the profile of the test above: the filters are kept by content.
            "syscalls": [{"names": ["mkdir", "mkdirat", "symlinkat"],
                          "action": "SCMP_ACT_ERRNO"}]}))
        script = "mkdir /tmp/d 2>&1 || echo REFUSED; exec sleep 600"
        first, st = pods.run("worker1", "once1", "sh", "-c", script, seccomp=f"Localhost/{name}")
        wait_log(st, "REFUSED")
        assert seccomp_cache.ANNOTATION not in config(first).get("annotations", {})
        kept = runtime_dir(rlab.name) / "seccomp" / (
            seccomp_cache.digest(config(first)["linux"]["seccomp"]) + ".bpf")
        assert kept.is_file(), "the compiled filter was not kept"
        second, st = pods.run("worker1", "once2", "sh", "-c", script,
                              seccomp=f"Localhost/{name}")
        wait_log(st, "REFUSED")
        assert config(second)["annotations"][seccomp_cache.ANNOTATION]
        spec = as_kubelet(rt, lambda: rt.exec_in_container(
            second, "c", ["sh", "-c", "mkdir /tmp/e 2>&1 || echo REFUSED"]))
        out = subprocess.run(spec.argv, env=spec.env, capture_output=True, text=True,
                             timeout=30)
        assert "REFUSED" in out.stdout, out
        # The default profile lets mkdir through: it is not given the other's filter.
        other, st = pods.run("worker1", "once3", "sh", "-c", "mkdir /tmp/d && echo MADE")
        assert "MADE" in log_text(wait_exited(rt, other))
    finally:
        profile.unlink(missing_ok=True)
        if made_root:
            shutil.rmtree(SECCOMP_ROOT, ignore_errors=True)
