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
