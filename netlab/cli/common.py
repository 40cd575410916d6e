"""Helpers every ``netlab`` command module shares: the one way to fail, running a
program inside a lab node's namespace, and a module's commands run on their own."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from netlab.cli.complete import complete_labs

# Every command that works on one lab takes it the same way, completed from the labs up.
lab_option = click.option("--lab", help="The lab (implied when only one is up).",
                          shell_complete=complete_labs)


def standalone_group(commands: list[click.Command], help: str) -> click.Group:
    """A group of a command module's ``commands``, for ``python -m netlab.cli.<module>``
    (``netlab`` itself registers the same commands in its own group)."""
    group = click.Group(help=help)
    for command in commands:
        group.add_command(command)
    return group


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def node_namespace(lab: str | None, node: str) -> str:
    from netlab.kernel import netns
    from netlab.lab import lifecycle, state

    try:
        lab = state.implied_lab(lab)
        info = lifecycle.status(lab)
    except lifecycle.LabError as err:
        fail(str(err), 2)
    names = [n["name"] for n in info["nodes"]]
    if node not in names:
        fail(f"lab {lab} has no node {node!r} (nodes: {', '.join(names)})", 2)
    name = f"{lab}-{node}"
    if not netns.exists(name):
        fail(f"the namespace {name} is gone; run 'netlab down {lab}' and bring the lab up again")
    return name


def exec_in(namespace: str, argv: list[str], env: dict[str, str]) -> None:
    from netlab.kernel import netns

    netns.enter_netns(namespace)
    try:
        os.execvpe(argv[0], argv, {**os.environ, **env})
    except FileNotFoundError:
        fail(f"{argv[0]}: command not found", 127)
