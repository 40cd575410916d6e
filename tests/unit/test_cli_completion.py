"""``netlab completion SHELL``: the scripts click generates, and what they complete
without a lab (commands, choices; lab names come from the state directory)."""

from __future__ import annotations

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from netlab.cli.main import main

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("shell, marker", [("bash", "_netlab_completion()"),
                                           ("zsh", "#compdef netlab"),
                                           ("fish", "complete --no-files --command netlab")])
def test_each_shell_gets_its_script(shell, marker):
    out = CliRunner().invoke(main, ["completion", shell])
    assert out.exit_code == 0 and marker in out.output
    assert "_NETLAB_COMPLETE" in out.output


def test_an_unknown_shell_is_refused_with_the_choices():
    out = CliRunner().invoke(main, ["completion", "tcsh"])
    assert out.exit_code == 2 and "'bash', 'zsh', 'fish'" in out.output


def _offers(args: list[str], incomplete: str) -> list[str]:
    shell = ShellComplete(main, {}, "netlab", "_NETLAB_COMPLETE")
    return [c.value for c in shell.get_completions(args, incomplete)]


def test_commands_and_lab_names_complete(monkeypatch, tmp_path):
    assert "trace" in _offers([], "tr") and "completion" in _offers([], "comp")
    assert _offers(["fault"], "li") == ["link-down", "link-up"]
    monkeypatch.setattr("netlab.lab.state.list_labs", lambda: ["alpha", "beta"])
    assert _offers(["down"], "") == ["alpha", "beta"]
    assert _offers(["status"], "b") == ["beta"]


def test_a_failing_source_offers_nothing_instead_of_breaking_the_shell(monkeypatch):
    def broken() -> list[str]:
        raise PermissionError("not root")

    monkeypatch.setattr("netlab.lab.state.list_labs", broken)
    assert _offers(["down"], "") == []
    assert _offers(["shell"], "") == []  # no lab to ask: no nodes, no error


def test_stored_image_names_complete_for_image_rm(monkeypatch):
    monkeypatch.setattr("netlab.images.store.ImageStore.names",
                        lambda self: ["alpine:latest", "busybox:latest"])
    assert _offers(["image", "rm"], "bu") == ["busybox:latest"]
    assert "build-busybox" in _offers(["image"], "bu")
