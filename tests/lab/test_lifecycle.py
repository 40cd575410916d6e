"""up and down as a user lives them: refusals, rollback, crashes, repeats, two labs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from labkit import lab_namespaces, netlab_cli, ping, topology, unique_lab, wait_for, write_topology

from netlab.kernel import netns
from netlab.kernel.mounts import filesystem_type
from netlab.lab import lifecycle
from netlab.lab.state import lab_dir, load_state


def _gone(lab: str) -> None:
    assert lab_namespaces(f"{lab}-") == [], "namespaces left behind"
    assert not lab_dir(lab).exists(), "state directory left behind"
    assert not _mounted_at_or_below(lab_dir(lab)), "the state tmpfs is still mounted"


def _mounted_at_or_below(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def test_down_removes_namespaces_state_and_processes(make_lab):
    lab = make_lab()
    # Pod records, bundles and container layers are written there: a tmpfs, as /run is
    # on a standard host, or the lab's own where the host's /run is on a disk.
    assert filesystem_type(str(lab_dir(lab.name))) == "tmpfs"
    sleeper = subprocess.Popen(["ip", "netns", "exec", lab.ns("worker1"), "sleep", "300"],
                               start_new_session=True)
    try:
        wait_for(lambda: netns.pids_in_netns([lab.ns("worker1")]), 5, what="sleep in worker1")
        result = lifecycle.down(lab.name)
        assert result.found and sleeper.pid in result.processes
        assert sleeper.wait(timeout=5) is not None
        _gone(lab.name)
        again = netlab_cli("down", lab.name)
        assert again.returncode == 0 and f"no lab named {lab.name} is up" in again.stdout
    finally:
        if sleeper.poll() is None:
            sleeper.kill()


def test_second_up_is_refused_and_the_lab_is_untouched(make_lab):
    lab = make_lab(workers=1, external=False)
    with pytest.raises(lifecycle.LabError, match="already up"):
        lifecycle.up(lab.path)
    out = netlab_cli("up", str(lab.path))
    assert out.returncode == 1 and "already up" in out.stderr
    assert ping(lab.ns("worker1"), str(lab.plan.node("control-plane").gateway.ip))


def test_failed_up_rolls_back_and_spares_a_namespace_it_did_not_make(tmp_path):
    name = unique_lab()
    foreign = f"{name}-worker2"
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        path = write_topology(tmp_path, topology(name))
        with pytest.raises(lifecycle.LabUpError, match="building the network") as err:
            lifecycle.up(path)
        assert "removed" in str(err.value)
        assert lab_namespaces(f"{name}-") == [foreign], "rollback left or took namespaces"
        assert not lab_dir(name).exists()
        assert not _mounted_at_or_below(lab_dir(name))
    finally:
        netns.delete_netns(foreign)


def test_down_after_kill_9_during_up(tmp_path):
    name = unique_lab()
    data = topology(name, workers=19, external=False)
    path = write_topology(tmp_path, data)
    proc = subprocess.Popen([sys.executable, "-m", "netlab.cli.main", "up", "-q", str(path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: netns.exists(f"{name}-net") or proc.poll() is not None, 30,
                 interval=0.001, what="up to start creating namespaces")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        state = load_state(name)
        assert state is not None, "up must record the lab before creating anything"
        out = netlab_cli("down", name)
        assert out.returncode == 0, out.stderr
        _gone(name)
    finally:
        if proc.poll() is None:
            proc.kill()
        lifecycle.down(name)


KILLED_AFTER_STARTING_THE_SUPERVISOR = """
import os, signal, sys
from netlab.lab import lifecycle
from netlab.lab.state import LabState

save = LabState.save

def save_or_die(self):
    if "supervisor" in self.processes:  # started, not yet recorded: the worst moment
        os.kill(os.getpid(), signal.SIGKILL)
    save(self)

LabState.save = save_or_die
lifecycle.up(sys.argv[1])
"""


def _supervisors_of(lab: str) -> list[psutil.Process]:
    """The lab's supervisor by its command line: the test's look only (netlab finds
    processes by record and namespace, never by name)."""
    return [p for p in psutil.process_iter(["cmdline"])
            if (p.info["cmdline"] or [])[-2:] == ["netlab.lab.supervisor", lab]]


def test_up_killed_between_starting_the_supervisor_and_recording_it(tmp_path):
    name = unique_lab()
    path = write_topology(tmp_path, topology(name, workers=1, external=False))
    try:
        proc = subprocess.run([sys.executable, "-c", KILLED_AFTER_STARTING_THE_SUPERVISOR,
                               str(path)], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        out = netlab_cli("down", name)
        assert out.returncode == 0, out.stderr
        _gone(name)
        # A supervisor no record names would restart components forever.
        wait_for(lambda: not _supervisors_of(name), 10, interval=0.1,
                 what="no supervisor of the lab left")
    finally:
        for sup in _supervisors_of(name):
            sup.kill()
        lifecycle.down(name)


def test_down_without_state_directory_finds_the_lab_by_its_tags(make_lab):
    lab = make_lab(workers=1)
    # What `rm -rf` manages: the directory itself stays where it is a mount point.
    shutil.rmtree(lab_dir(lab.name), ignore_errors=True)
    assert load_state(lab.name) is None
    result = lifecycle.down(lab.name)
    assert result.found and len(result.namespaces) == 4
    _gone(lab.name)


def test_down_of_one_lab_spares_a_lab_whose_name_extends_it(make_lab):
    short = make_lab(workers=1, external=False)
    longer_topo = topology(short.name + "-b", workers=1, external=False)
    longer = make_lab(longer_topo)
    shutil.rmtree(lab_dir(short.name), ignore_errors=True)  # force the prefix search
    lifecycle.down(short.name)
    assert lab_namespaces(f"{short.name}-") == sorted(longer.plan.namespaces)
    assert ping(longer.ns("worker1"), str(longer.plan.node("control-plane").gateway.ip))


def test_two_labs_with_identical_subnets_run_side_by_side(make_lab):
    small = make_lab(workers=1, external=False)
    big = make_lab(workers=3, external=False)
    assert small.plan.node("worker1").underlay == big.plan.node("worker1").underlay
    assert ping(small.ns("worker1"), str(small.plan.node("control-plane").gateway.ip))
    assert ping(big.ns("worker3"), str(big.plan.node("worker1").gateway.ip))
    # worker3's address exists only in the big lab: the small lab cannot see it.
    w3 = big.plan.node("worker3")
    assert not ping(small.ns("worker1"), str(w3.underlay.ip), timeout=1)
    assert not ping(small.ns("worker1"), str(w3.gateway.ip), timeout=1)
    lifecycle.down(small.name)
    assert ping(big.ns("worker3"), str(big.plan.node("control-plane").gateway.ip))


def test_build_is_an_idempotent_reconcile(make_lab):
    from netlab.lab import network

    lab = make_lab(workers=2)
    before = {ns: _links(ns) for ns in lab.plan.namespaces}
    network.build_network(lab.plan)  # converge again: nothing to do
    changes = network.configure_node(lab.plan, lab.plan.node("worker1"))
    assert changes is not None and not changes.changed
    assert {ns: _links(ns) for ns in lab.plan.namespaces} == before


def _links(ns: str) -> list[tuple]:
    from pyroute2 import IPRoute

    def read():
        with IPRoute() as ipr:
            return sorted((link.get("IFLA_IFNAME"), link["index"], link.get("IFLA_MTU"))
                          for link in ipr.get_links())
    return netns.run_in_netns(ns, read)


def test_no_process_of_a_lab_outlives_down(make_lab):
    lab = make_lab(workers=1, external=False)
    mine = psutil.Process(os.getpid())
    lifecycle.down(lab.name)
    assert mine.is_running()
    assert netns.pids_in_netns(lab.plan.namespaces) == {}


def test_the_root_namespace_is_unchanged_by_up_and_down(tmp_path):
    from netlab.kernel.snapshot import namespace_snapshot

    before = namespace_snapshot()
    name = unique_lab()
    path = write_topology(tmp_path, topology(name))
    try:
        lifecycle.up(path)
        during = namespace_snapshot()
    finally:
        lifecycle.down(name)
    assert during == before
    assert namespace_snapshot() == before


def test_dry_run_touches_nothing(tmp_path):
    name = unique_lab()
    path = write_topology(tmp_path, topology(name))
    out = netlab_cli("up", "--dry-run", str(path))
    assert out.returncode == 0, out.stderr
    assert f"netns {name}-net" in out.stdout
    assert "type vxlan id 1 dstport 4789" in out.stdout and "nud permanent" in out.stdout
    # Only this lab's names: other labs may come and go meanwhile (a parallel run).
    assert [n for n in netns.list_netns() if n.startswith(f"{name}-")] == []
    assert not lab_dir(name).exists()


def _corpus() -> list[Path]:
    return sorted((Path(__file__).parents[1] / "unit" / "topology" / "bad").glob("*.yaml"))


def _lab_names(path: Path) -> set[str]:
    """Every name a lab from this file could get: its stem, and its name: if readable."""
    import yaml

    names = {path.stem}
    try:
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            names.add(data["name"])
    except yaml.YAMLError:
        pass
    return names


def test_every_bad_topology_is_refused_with_exit_2_and_creates_nothing():
    files = _corpus()
    assert len(files) >= 15
    for path in files:
        out = netlab_cli("up", str(path))
        assert out.returncode == 2, f"{path.name}: exit {out.returncode}\n{out.stderr}"
        assert "Fix:" in out.stderr, f"{path.name}: the error must say how to fix it"
        for name in _lab_names(path):
            assert lab_namespaces(f"{name}-") == [], f"{path.name} created namespaces"
            assert not lab_dir(name).exists(), f"{path.name} created a state directory"
