"""What a container may touch on the host: the lab's own files are hidden and root
inside keeps only containerd's default capabilities, unless the spec asks for more
(``privileged``, ``capabilities.add``); ``exec`` gets no more than the container."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from labkit import pod_visible_dir
from rtkit import as_kubelet, log_text, wait_exited, wait_log

from netlab import paths
from netlab.node.runtime import capabilities

# `grep CapEff /proc/self/status` in a default Docker/containerd container.
CONTAINERD_DEFAULT_CAPEFF = 0x00000000A80425FB
PROBE = ("grep CapEff /proc/self/status; "
         "ls -A {state} 2>/dev/null | wc -l; "
         "ls {state}/{lab} >/dev/null 2>&1 && echo READ-STATE || echo NO-STATE; "
         "umount {state} 2>/dev/null && echo UNMOUNTED || echo KEPT-MASK; "
         "touch {state}/{lab}/probe 2>/dev/null && echo WROTE || echo READ-ONLY")


def _capeff(text: str) -> int:
    line = next(x for x in text.splitlines() if x.startswith("CapEff:"))
    return int(line.split()[1], 16)


def _probe(rlab) -> str:
    return PROBE.format(state=paths.STATE_ROOT, lab=rlab.name)


def test_a_default_container_sees_no_lab_files_and_has_default_capabilities(rlab, pods):
    assert any(paths.lab_dir(rlab.name).iterdir())  # the host side is not empty
    sb, _ = pods.run("worker1", "plain", "sh", "-c", _probe(rlab))
    out = log_text(wait_exited(rlab.runtime("worker1"), sb))
    assert _capeff(out) == CONTAINERD_DEFAULT_CAPEFF, out
    lines = out.splitlines()[1:]
    assert lines == ["0", "NO-STATE", "KEPT-MASK", "READ-ONLY"], out


def test_a_default_container_gets_a_minimal_dev(rlab, pods):
    script = ("ls /dev | sort | tr '\\n' ' '; echo; echo hi > /dev/null && echo NULL-OK; "
              "head -c4 /dev/urandom | wc -c; echo x > /dev/shm/f && echo SHM-OK; "
              "ls /dev/pts/ptmx >/dev/null && echo PTS-OK")
    sb, _ = pods.run("worker1", "devs", "sh", "-c", script)
    out = log_text(wait_exited(rlab.runtime("worker1"), sb)).splitlines()
    assert out[0].split() == sorted([
        "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
        "stdin", "stdout", "tty", "urandom", "zero"])
    assert out[1:] == ["NULL-OK", "4", "SHM-OK", "PTS-OK"], out


def test_privileged_keeps_everything_and_sees_the_host(rlab, pods):
    sb, _ = pods.run("worker1", "priv", "sh", "-c", _probe(rlab).replace("umount", "true"),
                     privileged=True)
    out = log_text(wait_exited(rlab.runtime("worker1"), sb))
    with open("/proc/self/status") as mine:  # everything the runtime itself holds
        assert _capeff(out) == _capeff(mine.read()), out
    assert "READ-STATE" in out and int(out.splitlines()[1]) > 0, out


def test_capabilities_add_and_drop_adjust_the_default_set(rlab, pods):
    sb, _ = pods.run("worker2", "netadmin", "sh", "-c",
                     "grep CapEff /proc/self/status; ip link set lo mtu 1400 && echo MTU-SET",
                     cap_add=("NET_ADMIN",), cap_drop=("CAP_NET_RAW", "kill"))
    out = log_text(wait_exited(rlab.runtime("worker2"), sb))
    n = capabilities.NUMBERS
    expected = CONTAINERD_DEFAULT_CAPEFF | 1 << n["NET_ADMIN"]
    expected &= ~(1 << n["NET_RAW"] | 1 << n["KILL"])
    assert _capeff(out) == expected and "MTU-SET" in out, out
    sb, _ = pods.run("worker2", "nonet", "sh", "-c",
                     "ip link set lo mtu 1400 2>&1 && echo MTU-SET || echo REFUSED")
    assert "REFUSED" in log_text(wait_exited(rlab.runtime("worker2"), sb))


def test_exec_gets_no_more_than_the_container(rlab, pods):
    rt = rlab.runtime("worker1")
    sb, st = pods.run("worker1", "execcaps", "sh", "-c", "echo ready; exec sleep 600")
    wait_log(st, "ready")
    spec = as_kubelet(rt, lambda: rt.exec_in_container(sb, "c", ["sh", "-c", _probe(rlab)]))
    out = subprocess.run(spec.argv, env=spec.env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert _capeff(out.stdout) == CONTAINERD_DEFAULT_CAPEFF, out.stdout
    assert out.stdout.splitlines()[1:] == ["0", "NO-STATE", "KEPT-MASK", "READ-ONLY"]


def test_a_default_container_cannot_write_the_host(rlab, pods):
    # Outside /tmp: the container's /tmp is its own, so a directory there would be
    # missing inside, not read-only, and the test could not fail.
    with pod_visible_dir() as host_dir:
        _cannot_write(rlab, pods, host_dir)


def _cannot_write(rlab, pods, host_dir: Path) -> None:
    # A container without an image gets a root of its own: the host's /usr and /etc
    # under a writable layer of its own, nothing else of the host.
    script = (f"test -d {host_dir} || echo NOT-VISIBLE; "
              f"touch {host_dir}/escaped 2>/dev/null && echo HOST-WRITTEN || echo HOST-UNTOUCHED; "
              "echo private > /tmp/note && cat /tmp/note; "
              "touch /root/ESCAPED_FROM_POD /usr/nlt-escaped /etc/nlt-escaped && echo LAYER; "
              "test -r /etc/hostname && echo HOST-READABLE")
    sb, _ = pods.run("worker1", "ro", "sh", "-c", script)
    out = log_text(wait_exited(rlab.runtime("worker1"), sb)).split()
    assert out == ["NOT-VISIBLE", "HOST-UNTOUCHED", "private", "LAYER", "HOST-READABLE"], out
    assert not (host_dir / "escaped").exists() and not any(host_dir.iterdir())
    for written in ("/root/ESCAPED_FROM_POD", "/usr/nlt-escaped", "/etc/nlt-escaped"):
        assert not Path(written).exists(), written
    assert (sb.path / "c" / "0.rootfs" / "upper" / "usr" / "nlt-escaped").exists()
    sb, _ = pods.run("worker1", "rw", "sh", "-c", f"touch {host_dir}/asked", privileged=True)
    wait_exited(rlab.runtime("worker1"), sb)
    assert (host_dir / "asked").exists()  # privileged asked for the host, and got it


def test_netlab_installed_under_tmp_stays_visible_read_only(rlab, pods, monkeypatch):
    """A virtualenv under /tmp (a CI checkout) must not vanish behind the container's
    private /tmp: the built-in images run from it."""
    install = Path(tempfile.mkdtemp(prefix="nlt-venv-", dir="/tmp"))
    try:
        (install / "marker").write_text("installed\n")
        script = (f"cat {install}/marker; touch {install}/w 2>/dev/null && echo WROTE || "
                  "echo READ-ONLY; ls -A /tmp | grep -c nlt-venv-; "
                  f"{sys.executable} -c 'import netlab; print(\"IMPORTS\")'")
        real = capabilities.install_paths()
        monkeypatch.setattr(capabilities, "install_paths", lambda: [*real, str(install)])
        sb, _ = pods.run("worker1", "keep", "sh", "-c", script)
        out = log_text(wait_exited(rlab.runtime("worker1"), sb)).split()
        # Only the kept directory shows in /tmp, read-only; netlab still imports.
        assert out == ["installed", "READ-ONLY", "1", "IMPORTS"], out
        assert not (install / "w").exists()
    finally:
        shutil.rmtree(install, ignore_errors=True)
