"""An ``up`` that runs out of open files or memory says which, where, the limit it hit
and what the lab needs (issue 16): the words, and how each cause is recognised."""

from __future__ import annotations

import errno
import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.lab import exhaustion
from netlab.lab.exhaustion import Exhaustion

pytestmark = pytest.mark.unit

MIB = 2**20


def test_too_many_open_files_in_up_itself_is_found_through_the_exception_chain():
    try:
        try:
            raise OSError(errno.EMFILE, "Too many open files")
        except OSError as inner:
            raise RuntimeError("building the bridge failed") from inner
    except RuntimeError as outer:
        found = exhaustion.from_exception(outer)
    assert found == Exhaustion("files", "netlab up", "[Errno 24] Too many open files")


def test_the_systems_file_table_and_memory_are_told_apart():
    system = exhaustion.from_exception(OSError(errno.ENFILE, "Too many open files in system"))
    assert system is not None and system.resource == "files" and system.system
    assert exhaustion.from_exception(MemoryError()) == Exhaustion("memory", "netlab up",
                                                                  "MemoryError")
    nomem = exhaustion.from_exception(OSError(errno.ENOMEM, "Cannot allocate memory"))
    assert nomem is not None and nomem.resource == "memory"
    assert exhaustion.from_exception(OSError(errno.EEXIST, "File exists")) is None


def test_a_component_log_names_the_line_that_says_so(tmp_path: Path):
    log = tmp_path / "apiserver.log"
    log.write_text("INFO serving\nTraceback (most recent call last):\n"
                   "OSError: [Errno 24] Too many open files: '/var/lib/netlab/x/store.db'\n")
    found = exhaustion.from_log(log, "the API server")
    assert found == Exhaustion("files", "the API server",
                               "OSError: [Errno 24] Too many open files: "
                               "'/var/lib/netlab/x/store.db'")
    (tmp_path / "quiet.log").write_text("INFO serving\nINFO node w1 registered\n")
    assert exhaustion.from_log(tmp_path / "quiet.log", "kubelet-w1") is None


def test_out_of_open_files_names_the_limit_what_the_lab_needs_and_what_to_do():
    found = Exhaustion("files", "the API server", "it holds 35 open files")
    words = exhaustion.describe(found, 2, (35, 35), 440 * MIB, None)
    assert words == ("the API server ran out of open files (ulimit -n 35: it holds 35 open "
                     "files). A lab of 2 cluster nodes needs about 96 open files in its API "
                     "server; raise the limit ('ulimit -n 1024') and try again")
    big = exhaustion.describe(found, 100, (1024, 4096), 0, None)
    assert "(ulimit -n 1024, hard limit 4096:" in big
    assert "needs about 1664 open files" in big and "'ulimit -n 4096'" in big


def test_a_full_system_file_table_is_not_blamed_on_the_ulimit():
    found = Exhaustion("files", "netlab up", "[Errno 23] Too many open files in system",
                       system=True)
    words = exhaustion.describe(found, 2, (1024, 1024), 0, None)
    assert "the system's file table is full (fs.file-max" in words
    assert "ulimit" not in words


def test_out_of_memory_names_the_killed_the_cgroup_limit_and_what_the_lab_needs():
    record = {"apiserver": {"lastExit": -9, "restarts": 1},
              "kubelet-w1": {"lastExit": -9, "restarts": 2},
              "scheduler": {"lastExit": None, "restarts": 0},
              "dns": {"lastExit": 1, "restarts": 1}}
    found = exhaustion.killed_components(record, 3, 5, {"apiserver": "the API server"})
    assert found == Exhaustion("memory", "kubelet-w1, the API server",
                               "the kernel's OOM killer killed 2 processes")
    words = exhaustion.describe(found, 2, (1024, 1024), 440 * MIB, ("/lab/limited", 300 * MIB))
    assert words == ("kubelet-w1, the API server were killed: out of memory (the kernel's OOM "
                     "killer killed 2 processes; its memory cgroup /lab/limited is limited "
                     "to 300 MiB). A lab of 2 cluster nodes needs about 440 MiB; free memory "
                     "or raise the limit, and try again")
    # Without the kernel's count, SIGKILL is all that is known.
    unknown = exhaustion.killed_components(record, None, None)
    assert unknown is not None and unknown.evidence == "killed by SIGKILL"
    assert exhaustion.killed_components({"dns": {"lastExit": 1}}, 3, 5) is None


def test_a_supervisor_the_oom_killer_took_is_named():
    found = exhaustion.oom_killed_meanwhile(7, 9, supervisor_gone=True)
    assert found == Exhaustion("memory", "the supervisor",
                               "the kernel's OOM killer killed 2 processes")
    assert exhaustion.oom_killed_meanwhile(7, 7, supervisor_gone=True) is None
    assert exhaustion.oom_killed_meanwhile(None, 9, supervisor_gone=True) is None


def test_the_up_error_puts_the_cause_first_and_what_was_removed_after():
    from netlab.lab.control import ResourceExhausted
    from netlab.lab.lifecycle import LabUpError

    found = Exhaustion("files", "the API server", "it holds 35 open files")
    why = exhaustion.describe(found, 2, (35, 35), 0, None)
    undone = "Everything it had created has been removed: 3 namespaces."
    err = LabUpError("waiting for the nodes to be Ready", ResourceExhausted(found), why, undone)
    assert str(err) == f"netlab up failed while waiting for the nodes to be Ready: {why}.\n{undone}"
    other = LabUpError("waiting for the API server", RuntimeError("the supervisor exited"),
                       why, undone)
    assert str(other).endswith(f"{undone}\nThe error was: the supervisor exited")
    plain = LabUpError("building the network", OSError(errno.EEXIST, "taken"))
    assert str(plain) == ("netlab up failed while building the network: [Errno 17] taken. "
                          "Everything it had created has been removed.")


def test_a_process_holding_all_the_files_its_limit_allows_is_found(tmp_path: Path):
    # What an API server out of descriptors looks like from outside: it may log nothing.
    code = ("import os, resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))\n"
            "fds = []\n"
            "try:\n"
            "    while True: fds.append(os.open(os.devnull, os.O_RDONLY))\n"
            "except OSError: pass\n"
            "print('full', flush=True)\n"
            "sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "full\n"
        found = exhaustion.fds_at_limit(proc.pid, "the API server")
        assert found == Exhaustion("files", "the API server", "it holds 32 open files")
        assert exhaustion.fds_at_limit(os.getpid(), "pytest") is None
    finally:
        proc.communicate("")


def test_up_raises_its_soft_open_file_limit_towards_the_hard_one_as_go_does():
    code = ("import resource\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 256))\n"
            "from netlab.lab import exhaustion\n"
            "print(exhaustion.raise_open_files_limit(), "
            "resource.getrlimit(resource.RLIMIT_NOFILE))\n")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 256:
        pytest.skip(f"the hard open-file limit is {hard}")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "256 (256, 256)"
    capped = code.replace("raise_open_files_limit()", "raise_open_files_limit(128)")
    out = subprocess.run([sys.executable, "-c", capped], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "128 (128, 256)"
    never_lower = code.replace("(64, 256)", "(200, 256)").replace(
        "raise_open_files_limit()", "raise_open_files_limit(128)")
    out = subprocess.run([sys.executable, "-c", never_lower], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "200 (200, 256)"


def test_the_reserve_gives_its_descriptors_back():
    # release() collects garbage, which closes whatever sockets earlier tests left in
    # reference cycles: collect first, or those count as given back too.
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    reserve = exhaustion.FdReserve(4)
    assert len(reserve.fds) == 4 and len(os.listdir("/proc/self/fd")) == before + 4
    reserve.release()
    reserve.release()  # twice is harmless
    assert len(os.listdir("/proc/self/fd")) == before


def test_the_memory_limit_is_read_from_this_process_cgroups():
    limit = exhaustion.memory_limit()
    assert limit is None or (limit[0].startswith("/") and limit[1] > 0)
    assert json.dumps(limit)  # plain data, for the message


def test_the_waits_check_fails_at_once_on_a_component_the_oom_killer_ended(tmp_path, monkeypatch):
    # Restarted by the supervisor and killed again, it never gets ready: up says so at
    # once rather than at its deadline.
    from netlab.lab import control

    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "apiserver.log").write_text("INFO serving\n")
    (tmp_path / "components.json").write_text(json.dumps({
        "apiserver": {"pid": None, "restarts": 1, "lastExit": -9},
        "scheduler": {"pid": None, "restarts": 0, "lastExit": None}}))
    monkeypatch.setattr(control, "components_path", lambda lab: tmp_path / "components.json")
    monkeypatch.setattr(control, "log_dir", lambda lab: tmp_path / "logs")
    monkeypatch.setattr(exhaustion, "oom_kills", lambda: 12)
    check = control.exhaustion_check("lab", since_kills=10)
    with pytest.raises(control.ResourceExhausted) as err:
        check()
    assert err.value.exhaustion == Exhaustion("memory", "the API server",
                                              "the kernel's OOM killer killed 2 processes")
    check()  # within CHECK_INTERVAL: not looked at again
    with pytest.raises(control.ResourceExhausted):
        check(force=True)
    (tmp_path / "components.json").write_text(json.dumps({
        "apiserver": {"pid": None, "restarts": 0, "lastExit": None}}))
    control.exhaustion_check("lab", since_kills=10)(force=True)  # nothing ran out
