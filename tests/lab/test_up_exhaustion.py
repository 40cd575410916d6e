"""``netlab up`` that runs out of open files or memory partway (issue 16, bad input):
the rollback leaves nothing behind and the message names the cause; and a store left
without a record is not reused."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import lab_namespaces, netlab_cli, topology, unique_lab, write_topology

from netlab.lab import lifecycle
from netlab.lab.state import data_dir, lab_dir


def _nothing_left(lab: str) -> None:
    assert lab_namespaces(f"{lab}-") == [], "namespaces left behind"
    assert not lab_dir(lab).exists(), "state directory left behind"
    assert not data_dir(lab).exists(), "data directory left behind"
    assert not _processes_of(lab), "processes left behind"


def _processes_of(lab: str) -> list[int]:
    """The lab's processes by their command line (a test's look only: netlab itself
    never finds processes by name)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if any(arg == lab or f"/{lab}/" in arg for arg in argv):
            found.append(proc.pid)
    return found


def _up(path: Path, wrap: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([*wrap, sys.executable, "-m", "netlab.cli.main", "up", "-q", str(path)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)


def test_up_out_of_open_files_rolls_back_everything_and_names_the_limit(tmp_path):
    name = unique_lab()
    path = write_topology(tmp_path, topology(name, workers=1, external=False))
    try:
        # 12 descriptors: up runs out while it creates the namespaces.
        out = _up(path, ["prlimit", "--nofile=12:12"])
        assert out.returncode == 1, out.stderr
        assert "error: netlab up failed while building the network: netlab up ran out of " \
               "open files (ulimit -n 12" in out.stderr
        assert "raise the limit ('ulimit -n 1024')" in out.stderr
        assert "Everything it had created has been removed" in out.stderr
        assert "Traceback" not in out.stderr
        _nothing_left(name)
    finally:
        lifecycle.down(name)


def test_up_refuses_a_store_left_without_a_record_and_down_removes_it(tmp_path):
    # An up killed partway, or a reboot (the record is on tmpfs), leaves the store alone.
    name = unique_lab()
    path = write_topology(tmp_path, topology(name, workers=1, external=False))
    store = data_dir(name) / "store.db"
    store.parent.mkdir(parents=True)
    store.write_bytes(b"old objects")
    try:
        out = netlab_cli("up", "-q", str(path))
        assert out.returncode == 1
        assert (f"lab {name} has data from an earlier 'netlab up' that did not finish or was "
                f"not taken down ({data_dir(name)}") in out.stderr
        assert f"run 'netlab down {name}' to remove it" in out.stderr
        assert store.read_bytes() == b"old objects"
        assert lab_namespaces(f"{name}-") == [] and not lab_dir(name).exists()
        down = netlab_cli("down", name)
        assert down.returncode == 0, down.stderr
        _nothing_left(name)
    finally:
        lifecycle.down(name)


@contextlib.contextmanager
def _memory_cgroup(limit: int) -> Iterator[Path]:
    """A memory cgroup with ``limit`` bytes, under this process's own (v1 memory
    controller or v2), removed afterwards; skips where none can be made."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, own = line.split(":", 2)
        if "memory" in controllers.split(","):
            base, limit_file = Path("/sys/fs/cgroup/memory" + own), "memory.limit_in_bytes"
            break
    else:
        own = next(line.split(":", 2)[2] for line in
                   Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
        base, limit_file = Path("/sys/fs/cgroup" + own), "memory.max"
    group = base / f"{unique_lab()}-mem"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot make a memory cgroup under {base}: {exc}")
    try:
        try:
            (group / limit_file).write_text(str(limit))
        except OSError as exc:
            pytest.skip(f"cannot limit memory in {group}: {exc}")
        yield group
    finally:
        group.rmdir()


def test_up_out_of_memory_rolls_back_everything_and_says_so(tmp_path):
    name = unique_lab()
    path = write_topology(tmp_path, topology(name, workers=1, external=False))
    # A lab of 2 nodes takes about 300 MiB with up itself (its components share the
    # fork server's imports): at 200 the OOM killer ends one of its processes (not up:
    # the lab's rank first) while up waits for the API server.
    with _memory_cgroup(200 * 2**20) as group:
        try:
            enter = f"echo $$ > {group}/cgroup.procs && exec \"$@\""
            out = _up(path, ["sh", "-c", enter, "sh"])
            assert out.returncode == 1, out.stderr
            # Killed by the OOM killer, as a rule; a MemoryError in a log would do too.
            assert "out of memory (" in out.stderr
            assert "is limited to 200 MiB" in out.stderr
            assert "A lab of 2 cluster nodes needs about 440 MiB" in out.stderr
            assert "Everything it had created has been removed" in out.stderr
            assert (group / "cgroup.procs").read_text() == ""
            _nothing_left(name)
        finally:
            lifecycle.down(name)  # before the cgroup goes: it must be empty
