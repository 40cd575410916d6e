"""Every command's --help ends with examples, and they name real options."""

from __future__ import annotations

import shlex

import click
import pytest
from click.testing import CliRunner

from netlab.cli.examples import EXAMPLES, commands, has_examples
from netlab.cli.main import main

pytestmark = pytest.mark.unit


def test_every_command_has_examples_in_its_help() -> None:
    bare = [path for path, cmd in commands(main).items() if not has_examples(cmd)]
    assert bare == []
    for path in commands(main):
        out = CliRunner().invoke(main, [*path.split(), "--help"])
        assert out.exit_code == 0 and "Examples:" in out.output, (path, out.output)


def test_no_examples_for_commands_that_do_not_exist() -> None:
    assert set(EXAMPLES) <= set(commands(main))


def _flags(words: list[str]) -> set[str]:
    """The options in ``words`` before a ``--`` (what follows goes to another program);
    ``-it`` counts as ``-i`` and ``-t``, a lone ``-`` is stdin."""
    if "--" in words:
        words = words[:words.index("--")]
    out = set()
    for word in words:
        flag = word.split("=")[0]
        if not flag.startswith("-") or flag == "-":
            continue
        if not flag.startswith("--") and len(flag) > 2:
            out |= {f"-{c}" for c in flag[1:]}
        else:
            out.add(flag)
    return out


@pytest.mark.parametrize("path", sorted(EXAMPLES))
def test_the_examples_options_are_the_commands_own(path: str) -> None:
    cmd = commands(main)[path]
    known = {opt for p in cmd.params if isinstance(p, click.Option)
             for opt in (*p.opts, *p.secondary_opts)}
    for line in EXAMPLES[path]:
        words = shlex.split(line.split("#")[0].split("|")[-1].split("&&")[-1])
        if "netlab" not in words:
            continue  # another program (kubectl, source) in the example
        words = words[words.index("netlab") + 1:]
        assert words[:len(path.split())] == path.split(), line
        assert _flags(words[len(path.split()):]) <= known, (line, known)
