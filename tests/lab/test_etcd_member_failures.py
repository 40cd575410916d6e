"""etcd members that fail, as a user meets them (issue 17, bad input): two labs.

- A member that cannot start: worker1's data directory, in a 3-member lab, is a
  file put where etcd wants a directory while ``up`` runs. ``netlab up`` exits 1 naming worker1
  and quoting etcd's own error, and leaves nothing behind: no namespace, no
  state or data directory, no process that mentions the lab.
- Corrupt member data after a crash: in a 1-member lab that is up, the member is
  frozen (SIGSTOP, so it writes nothing more), its bbolt database is truncated,
  and it is killed -9. The supervisor restarts it and etcd refuses the database;
  ``netlab status`` shows etcd's own words for that member, and so does the
  member's component log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from labkit import (
    NEEDS_ETCD,
    lab_namespaces,
    netlab_cli,
    topology,
    unique_lab,
    wait_for,
    write_topology,
)

from netlab.lab import lifecycle
from netlab.lab.state import data_dir, lab_dir, log_dir

pytestmark = NEEDS_ETCD


def lab_processes(lab: str) -> list[str]:
    """Live processes whose command line mentions the lab (its supervisor, etcd members,
    API server, kubelets...): the lab's name is unique, so nothing else does."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if lab in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{proc.pid}: {cmdline[:200]}")
    return found


def test_a_member_that_cannot_start_fails_up_which_names_it_and_leaves_nothing(
        tmp_path: Path) -> None:
    name = unique_lab()
    data = topology(name, workers=2, external=False)
    data["cluster"]["store"] = {"etcd": {"members": 3}}
    path = write_topology(tmp_path, data)
    blocked = data_dir(name) / "etcd" / "worker1"
    up = subprocess.Popen([sys.executable, "-m", "netlab.cli.main", "up", "-q", str(path)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        # up refuses a data directory it did not make, so worker1's is blocked in the
        # gap between up making the lab's (just before the PKI and the supervisor,
        # whose start takes a Python start-up) and the supervisor starting etcd: a file
        # where etcd wants a directory, so that member exits at once, every time.
        wait_for(lambda: data_dir(name).exists() or up.poll() is not None, 60, 0.002,
                 "up to make the lab's data directory")
        blocked.parent.mkdir(mode=0o700, exist_ok=True)
        try:
            fd = os.open(blocked, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pytest.fail("etcd made worker1's data directory before the test could block it")
        with os.fdopen(fd, "w") as f:
            f.write("not an etcd data directory\n")
        stdout, message = up.communicate(timeout=300)
        assert up.returncode == 1, (stdout, message)
        assert "failed while waiting for etcd members control-plane, worker1, worker2" in message
        assert "etcd member worker1 " in message, message
        assert "etcd member control-plane " not in message and "etcd member worker2 " not in message
        # why, in etcd's own words, and the member's log by name
        assert f"failed to list data directory: readdirent {blocked}: not a directory" in message
        assert "etcd-worker1.log" in message, message
        assert "Everything it had created has been removed" in message
        # nothing is left
        assert lab_namespaces(f"{name}-") == []
        assert not lab_dir(name).exists(), "state directory left behind"
        assert not data_dir(name).exists(), "data directory left behind"
        assert lab_processes(name) == []
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
        lifecycle.down(name)
        shutil.rmtree(data_dir(name), ignore_errors=True)


def member_status(lab: str) -> dict:
    """The one member as ``netlab status -o json`` shows it (the same call, in-process:
    it is polled)."""
    (member,) = lifecycle.status(lab, probe=True)["store"]["members"]
    return member


def test_corrupt_member_data_after_a_crash_shows_etcds_error_in_status_and_log(
        tmp_path: Path) -> None:
    name = unique_lab()
    data = topology(name, workers=1, external=False)
    data["cluster"]["store"] = "etcd"
    path = write_topology(tmp_path, data)
    try:
        lifecycle.up(path, ready_timeout=120)
        assert member_status(name)["healthy"] is True
        db = data_dir(name) / "etcd" / "control-plane" / "member" / "snap" / "db"
        assert db.is_file()

        def signal_member(signal: str) -> None:
            out = netlab_cli("fault", "kill", "--lab", name, "-s", signal, "etcd",
                             "control-plane")
            assert out.returncode == 0, out.stderr

        # a crash that tears the database: the member is frozen first, so that it writes
        # nothing after the cut, and the supervisor sees it exit only at the kill
        signal_member("STOP")
        os.truncate(db, 100)  # less than bbolt's first page
        signal_member("KILL")
        # the supervisor restarts it; etcd refuses the database, in its own words
        words = "failed to open database: invalid database"

        def reported() -> dict | None:
            member = member_status(name)
            return member if words in (member.get("error") or "") else None

        wait_for(reported, 60, interval=0.2, what="etcd's error in netlab status")
        out = netlab_cli("status", name, "-o", "json")
        assert out.returncode == 0, out.stderr
        (member,) = json.loads(out.stdout)["store"]["members"]
        assert member["healthy"] is False
        assert words in member["error"] and str(db) in member["error"], member
        assert str(log_dir(name) / "etcd-control-plane.log") in member["error"]
        table = netlab_cli("status", name)
        assert table.returncode == 0, table.stderr
        assert f"member control-plane {member['endpoint']} (unhealthy: " in table.stdout
        assert words in table.stdout, table.stdout
        # the member's component log has it, as etcd wrote it
        logged = (log_dir(name) / "etcd-control-plane.log").read_text(errors="replace")
        assert '"msg":"failed to open database"' in logged
        assert '"error":"invalid database"' in logged
    finally:
        lifecycle.down(name)
