"""The pytest plugin seen from outside, as a user's CI sees it: pytest in a subprocess.

- a failing test's report carries the lab's events, the failing pod's log and the
  component logs' tails, and the lab is gone afterwards;
- the session-start sweep removes the plugin's labs whose creating process is
  dead, and nothing else: not a live run's lab, not a lab of another prefix.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psutil
from labkit import lab_namespaces, topology, write_topology

from netlab.lab import lifecycle
from netlab.lab.state import list_labs, load_state
from netlab.testing.host import PREFIX

REPO = Path(__file__).resolve().parents[2]


def run_pytest(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=240, check=False)


def test_a_failing_example_reports_events_pod_logs_and_component_logs():
    before = lab_namespaces(PREFIX)
    out = run_pytest("examples/failing", "-p", "netlab.testing")
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 failed" in out.stdout
    assert "assert 'Failed' == 'Running'" in out.stdout
    # The sections, in the order the plugin adds them.
    events = out.stdout.index(": recent events")
    pods = out.stdout.index(": pods not Running and Ready")
    logs = out.stdout.index(": component logs")
    assert events < pods < logs
    assert "Pod/crasher: Successfully assigned default/crasher" in out.stdout[events:pods]
    assert "--- pod default/crasher on worker" in out.stdout[pods:logs]
    assert "crasher is giving up" in out.stdout[pods:logs]  # the container's own output
    for component in ("apiserver.log", "scheduler.log", "kubelet-worker1.log"):
        assert f"--- {component} (last " in out.stdout[logs:]
    # The plugin brought its lab down, failure or not.
    assert lab_namespaces(PREFIX) == before


def _plugin_lab(directory: Path, name: str) -> str:
    lifecycle.up(write_topology(directory, topology(name, workers=1, external=False)),
                 control_plane=False)
    return name


def _creator_died(lab: str) -> None:
    """Record a creator that has exited, as after a run killed with SIGKILL."""
    proc = subprocess.Popen(["true"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    state = load_state(lab)
    assert state is not None
    state.creator = {"pid": proc.pid, "createTime": started}
    state.save()


def test_the_sweep_removes_only_the_plugins_labs_whose_creator_is_dead(tmp_path):
    orphan = f"{PREFIX}{uuid.uuid4().hex[:7]}"
    live = f"{PREFIX}{uuid.uuid4().hex[:7]}"
    # Another prefix, that no suite sweeps (the suite's own nlt labs are swept by any
    # concurrent run of tests/, so they cannot prove the plugin left one alone).
    other = f"keep{uuid.uuid4().hex[:7]}"
    made = []
    try:
        for name in (orphan, live, other):
            made.append(_plugin_lab(tmp_path, name))
        _creator_died(orphan)
        _creator_died(other)
        project = tmp_path / "project"
        project.mkdir()
        (project / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        out = run_pytest(str(project), cwd=project)
        assert out.returncode == 0, out.stdout
        labs = list_labs()
        assert orphan not in labs
        assert not lab_namespaces(orphan)
        assert live in labs  # its creator (this process) is alive
        assert other in labs
        assert f"netlab: removed 1 lab a killed run left behind: {orphan}" in out.stdout
    finally:
        for name in made:
            lifecycle.down(name)


NETWORK_ONLY = """\
nodes:
  - {name: control-plane, role: control-plane}
  - {name: worker1}
"""


def _write(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))


def test_scopes_share_labs_as_asked_and_every_lab_goes_at_its_scopes_end(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    seen = tmp_path / "seen"
    seen.mkdir()
    record = f"""\
        import os
        from pathlib import Path

        import pytest

        SEEN = Path({str(seen)!r})

        def record(key, lab):
            assert os.path.exists(f"/run/netns/{{lab.name}}-worker1")
            (SEEN / key).write_text(lab.name)
        """
    _write(project, {
        "net.yaml": NETWORK_ONLY,
        "test_a.py": record + """
        @pytest.mark.netlab("net.yaml", scope="session", control_plane=False)
        def test_a(lab):
            record("a", lab)
        """,
        "test_b.py": record + """
        pytestmark = pytest.mark.netlab("net.yaml", scope="session", control_plane=False)

        def test_b(lab):
            record("b", lab)
        """,
        "test_c.py": record + """
        pytestmark = pytest.mark.netlab("net.yaml", control_plane=False)

        def test_c1(lab):
            record("c1", lab)

        def test_c2(lab):
            record("c2", lab)
            first = (SEEN / "c1").read_text()
            assert not os.path.exists(f"/run/netns/{first}-worker1"), "c1's lab outlived c1"
        """,
        "test_d.py": record + """
        from netlab.lab import faults

        pytestmark = pytest.mark.netlab("net.yaml", scope="module", control_plane=False)

        def test_d1_leaves_a_link_down(lab):
            record("d1", lab)
            lab.fault("link-down", "worker1")
            assert faults.link_states(lab.name)["worker1"] is False

        def test_d2_finds_it_up_again(lab):
            record("d2", lab)
            assert faults.link_states(lab.name)["worker1"] is True
        """,
    })
    out = run_pytest("-q", str(project), cwd=project)
    assert out.returncode == 0, out.stdout[-4000:]
    assert "6 passed" in out.stdout
    names = {p.name: p.read_text() for p in seen.iterdir()}
    assert names["a"] == names["b"]  # one session lab for both modules
    assert names["c1"] != names["c2"]  # a lab per test
    assert names["d1"] == names["d2"]  # one lab for the module
    assert len({names["a"], names["c1"], names["c2"], names["d1"]}) == 4
    labs = list_labs()
    for name in names.values():
        assert name.startswith(PREFIX)
        assert name not in labs
        assert not lab_namespaces(name)
