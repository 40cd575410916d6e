"""The fork server and the supervisor's launcher: components forked from one
pre-imported Python are processes of their own, with their own log, title, exit
code and signals, and a dead fork server costs nothing but the next start."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import psutil
import pytest

from netlab.lab.components import Component
from netlab.lab.launcher import ForkedProcess, Launcher, python_module


def _component(name: str, module: str, *args: str) -> Component:
    return Component(name=name, netns="", argv=(sys.executable, "-m", module, *args))


async def _eventually(read, needle: str, timeout: float = 10.0) -> str:
    """``read()`` once it contains ``needle`` (the child sets its title after the fork)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while needle not in (value := read()) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    return value


def _waiting_scheduler(tmp_path: Path) -> Component:
    """A long-running component without side effects: a scheduler whose API server
    never answers (its CA file is no certificate) retries with backoff until killed."""
    (tmp_path / "token").write_text("t")
    return _component("scheduler", "netlab.master.scheduler", "--server",
                      "https://127.0.0.1:9", "--token-file", str(tmp_path / "token"),
                      "--ca-file", str(tmp_path / "token"))


def test_only_this_pythons_modules_go_to_the_fork_server():
    assert python_module((sys.executable, "-m", "netlab.node.proxy", "--node", "a")) == (
        "netlab.node.proxy", ["--node", "a"])
    assert python_module(("etcd", "--name", "a")) is None
    assert python_module(("/usr/bin/python3.9", "-m", "netlab.node.proxy")) is None


async def _run(coro_fn):
    launcher = Launcher()
    try:
        return await coro_fn(launcher)
    finally:
        await launcher.close()


def test_a_forked_component_runs_its_main_logs_and_exits_with_its_code(tmp_path: Path):
    log = tmp_path / "proxy.log"

    async def scenario(launcher: Launcher):
        ok = await launcher.start(_component("p", "netlab.node.proxy", "--help"), str(log))
        bad = await launcher.start(_component("q", "netlab.node.proxy", "--no-such-flag"),
                                   str(tmp_path / "bad.log"))
        assert isinstance(ok, ForkedProcess) and isinstance(bad, ForkedProcess)
        return await ok.wait(), await bad.wait(), launcher._server.pid

    ok, bad, server = asyncio.run(_run(scenario))
    assert ok == 0
    assert "usage:" in log.read_text() and "--node" in log.read_text()
    assert bad == 2  # argparse's exit code, reported by the server that reaped it
    assert "the following arguments are required: --server" in (
        tmp_path / "bad.log").read_text()
    assert not psutil.pid_exists(server), "closing the launcher leaves its fork server"


def test_a_forked_component_has_its_own_title_session_and_signals(tmp_path: Path):
    async def scenario(launcher: Launcher):
        proc = await launcher.start(_waiting_scheduler(tmp_path), str(tmp_path / "s.log"))
        me = psutil.Process()
        child = psutil.Process(proc.pid)
        title = await _eventually(lambda: " ".join(child.cmdline()), "netlab.master.scheduler")
        session = os.getsid(proc.pid)
        assert child.ppid() == launcher._server.pid
        server_score = Path(f"/proc/{launcher._server.pid}/oom_score_adj").read_text()
        score = Path(f"/proc/{proc.pid}/oom_score_adj").read_text()
        assert int(score) == min(1000, int(server_score) + 300), (score, server_score)
        proc.kill()
        return title, session, me.pid, await proc.wait()

    title, session, me, code = asyncio.run(_run(scenario))
    assert "-m netlab.master.scheduler --server https://127.0.0.1:9" in title
    assert session != os.getsid(me)
    assert code == -9


def test_a_dead_fork_server_is_replaced_and_its_children_still_tracked(tmp_path: Path):
    async def scenario(launcher: Launcher):
        first = await launcher.start(_waiting_scheduler(tmp_path), str(tmp_path / "s.log"))
        old_server = launcher._server
        old_server.kill()
        await old_server.wait()
        # The orphan is still signalled through its pidfd, and its end still seen.
        first.kill()
        lost = await first.wait()
        second = await launcher.start(_component("p", "netlab.node.proxy", "--help"),
                                      str(tmp_path / "p.log"))
        return lost, await second.wait(), old_server.pid, launcher._server.pid

    lost, code, old, new = asyncio.run(_run(scenario))
    assert lost == -1  # nobody left to report the code: "unknown", not a hang
    assert code == 0 and old != new


def test_the_fork_server_forks_only_component_modules(tmp_path: Path):
    async def scenario(launcher: Launcher):
        proc = await launcher.start(_component("x", "os"), str(tmp_path / "x.log"))
        return proc, await proc.wait()

    proc, code = asyncio.run(_run(scenario))
    # Refused by the server, so started the ordinary way: a plain subprocess.
    assert not isinstance(proc, ForkedProcess) and code == 0


@pytest.fixture(autouse=True)
def _no_stray_children():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    stray = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    for p in stray:
        p.kill()
    assert not stray, f"processes left behind: {stray}"


def test_a_component_whose_namespace_is_gone_says_so_in_its_own_log(tmp_path: Path):
    comp = Component(name="p", netns="netlab-test-no-such-ns",
                     argv=(sys.executable, "-m", "netlab.node.proxy", "--help"))

    async def scenario(launcher: Launcher):
        proc = await launcher.start(comp, str(tmp_path / "p.log"))
        return await proc.wait()

    assert asyncio.run(_run(scenario)) == 1
    assert "netlab-test-no-such-ns" in (tmp_path / "p.log").read_text()
