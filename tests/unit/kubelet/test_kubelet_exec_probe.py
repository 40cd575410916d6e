"""An exec probe that times out ends everything it started, not only the runtime's exec
helper: the fake runtime's "container" is this host, its helper a shell that runs the
command as its child (as crun exec does)."""

from __future__ import annotations

import asyncio
import os
import time
import types
from pathlib import Path
from typing import Any

import psutil
from labkit import process_gone

from netlab.node.kubelet.prober import PodProber
from netlab.node.runtime import ExecSpec, execs


class FakeCri:
    runtime = types.SimpleNamespace(exec_in_container=lambda uid, name, argv: ExecSpec(
        argv=["sh", "-c", '"$@"; exit $?', "helper", *argv],
        env={"PATH": os.environ.get("PATH", "/bin")}))

    async def call(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


def _prober() -> PodProber:
    return PodProber(types.SimpleNamespace(uid="uid-1", s=types.SimpleNamespace(
        cri=FakeCri())))  # type: ignore[arg-type]


def test_a_timed_out_exec_probe_leaves_no_process_behind(tmp_path: Path):
    pids = tmp_path / "pids"
    # The probe command, its child and a daemonised grandchild in a session of its own.
    script = (f'sleep 1000 & echo $! >> {pids}; setsid sleep 1001 & echo $! >> {pids}; '
              f'echo $$ >> {pids}; exec sleep 1002')

    async def main() -> None:
        code, out = await _prober()._exec("c", ["sh", "-c", script], 1.0)
        assert (code, out) == (-1, "")
        others: set[Any] = asyncio.all_tasks() - {asyncio.current_task()}
        assert not others, others
    asyncio.run(main())
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 3
    for pid in started:
        assert process_gone(pid), psutil.Process(pid).cmdline()


def test_a_probe_that_ends_in_time_gives_its_status_and_output():
    async def main() -> None:
        assert await _prober()._exec("c", ["sh", "-c", "echo hi; exit 3"], 10) == (3, "hi\n")
    asyncio.run(main())


def test_exec_tree_finds_descendants_and_their_sessions():
    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "sleep 1000 & setsid sleep 1001 & echo ready; wait",
            stdout=asyncio.subprocess.PIPE, start_new_session=True)
        try:
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"ready\n"
            deadline = time.monotonic() + 10
            while len(psutil.Process(proc.pid).children(recursive=True)) < 2:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            tree = execs.exec_tree(proc.pid)
            assert tree >= {proc.pid, *(c.pid for c in psutil.Process(proc.pid).children())}
            assert os.getpid() not in tree
        finally:
            await execs.end(proc)
        assert proc.returncode is not None
    asyncio.run(main())
