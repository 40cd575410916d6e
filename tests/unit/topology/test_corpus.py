"""The corpus of bad topologies: each file says what the user must be told.

Every ``bad/*.yaml`` starts with comment directives, so a new case needs no code:

- ``# expect: <text>``: the error output contains this text (one line per text);
- ``# line: N``: some problem is reported at ``<file>:N:``; ``# line: none``:
  the problem has no line (an empty file has none to point at).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netlab.topology import TopologyError, load_topology

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yaml"))
# The corpus only grows: a case deleted by mistake must not pass unnoticed.
MIN_CASES = 15

_PATH = r"(?:\(file\)|\(top level\)|[A-Za-z][\w.\[\]/-]*)"


def _directives(case: Path) -> tuple[list[str], list[str]]:
    expects, lines = [], []
    for text in case.read_text().splitlines():
        match = re.match(r"#\s*(expect|line):\s*(.*?)\s*$", text)
        if match:
            (expects if match.group(1) == "expect" else lines).append(match.group(2))
    return expects, lines


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} bad topologies in {BAD}"


def test_corpus_names_follow_the_convention() -> None:
    numbers = [case.name.split("-", 1)[0] for case in CASES]
    assert all(re.fullmatch(r"[0-9]{2}-[a-z0-9-]+\.yaml", case.name) for case in CASES)
    assert len(numbers) == len(set(numbers)), "two corpus files share a number"


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_bad_topology_is_rejected_with_its_message(case: Path) -> None:
    expects, lines = _directives(case)
    assert expects, f"{case.name} has no '# expect:' line"

    with pytest.raises(TopologyError) as info:
        load_topology(case)
    err = info.value
    text = str(err)

    for expected in expects:
        assert expected in text, f"{case.name}: expected {expected!r} in:\n{text}"

    filename = str(case)
    head, *problem_lines = text.splitlines()
    count = len(err.problems)
    assert head == f"{filename}: {count} error{'s' if count != 1 else ''} in the topology"
    assert len(problem_lines) == count >= 1
    shape = re.compile(rf"  {re.escape(filename)}(?::(\d+))?: {_PATH}: \S.*\. Fix: \S.*[.?!]")
    for problem, line_text in zip(err.problems, problem_lines):
        match = shape.fullmatch(line_text)
        assert match, f"{case.name}: not 'file:line: path: message. Fix: ...':\n{line_text}"
        assert match.group(1) == (str(problem.line) if problem.line else None)
        assert problem.fix and problem.message, line_text

    for line in lines:
        if line == "none":
            assert all(p.line is None for p in err.problems), text
        else:
            where = f"{filename}:{int(line)}: "
            assert where in text, f"{case.name}: no problem at line {line}:\n{text}"
    if "none" not in lines:
        # Every problem in a non-empty file points at a line the user can go to.
        assert all(p.line for p in err.problems), text
