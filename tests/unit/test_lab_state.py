"""A recorded lab's plan comes from its recorded topology, parsed once per process."""

from __future__ import annotations

import pytest

from netlab.lab.state import LabState
from netlab.topology import TopologyError

SPEC = """\
name: rec
nodes:
  - name: cp
    role: control-plane
  - name: w1
"""


def test_the_plan_is_the_recorded_topologys():
    plan = LabState(lab="rec", spec=SPEC).plan()
    assert plan.lab == "rec"
    assert [n.name for n in plan.nodes] == ["cp", "w1"]


def test_the_record_is_parsed_once_per_process():
    first = LabState(lab="rec", spec=SPEC).plan()
    assert LabState(lab="rec", spec=SPEC).plan() is first  # another load_state, same record
    assert LabState(lab="rec", spec=SPEC.replace("w1", "w2")).plan() is not first


def test_a_record_that_does_not_parse_says_so():
    with pytest.raises(TopologyError, match="rec \\(recorded topology\\)"):
        LabState(lab="rec", spec="nodes: 3\n").plan()


def test_a_lock_left_by_a_killed_command_goes_with_the_last_lab(tmp_path, monkeypatch):
    import fcntl
    import os

    from netlab import paths
    from netlab.lab import state

    root = tmp_path / "run"
    monkeypatch.setattr(paths, "STATE_ROOT", root)
    monkeypatch.setattr(state, "STATE_ROOT", root)
    root.mkdir()
    (root / ".killed.lock").touch()  # its holder was SIGKILLed: nobody holds it now
    held = os.open(root / ".busy.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)  # a command still working on lab busy
    try:
        with state.lab_lock("other"):
            pass
        assert sorted(p.name for p in root.iterdir()) == [".busy.lock"]
    finally:
        os.close(held)
    with state.lab_lock("other"):
        pass
    assert not root.exists(), "the state root stays after the last lab is down"
