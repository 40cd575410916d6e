"""Ending an exec: the runtime's exec helper and everything its command started,
killed once and reaped.

An ``ExecSpec``'s argv is a helper (``crun exec``) that runs the command in the
container as its child and reaps it as it exits. Whoever spawns it gives it a
session of its own (``start_new_session``, or ``setsid`` for a tty). To end it:
every process of the exec but the helper is killed (its descendants, and the
members of any session or process group one of them leads, which is where a
command's daemonised children go), in one pass over ``/proc``; the helper gets
a grace period to reap the command and exit, or the command would stay a zombie
of the container's PID 1; then whatever is left of its process group, the helper
included, is killed, and the helper is reaped. The kubelet's exec streams and
exec probes both end their commands this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

# How long the helper gets to reap its killed command before it is killed too.
KILL_GRACE = 2.0


def exec_tree(leader: int) -> set[int]:
    """The processes of the exec whose helper is ``leader`` (a session leader): it, its
    descendants, and every process in a session or group one of them leads."""
    parents: dict[int, int] = {}
    leaders: dict[int, tuple[int, int]] = {}  # pid: (process group, session)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            # After "pid (comm) ": state ppid pgrp session ...; comm may hold anything.
            fields = stat[stat.rindex(b")") + 2:].split()
            pid = int(entry)
            parents[pid] = int(fields[1])
            leaders[pid] = (int(fields[2]), int(fields[3]))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {leader}, [leader]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    heads = set(found)
    found |= {pid for pid, (pgrp, sid) in leaders.items() if pgrp in heads or sid in heads}
    return found


def kill_tree(leader: int) -> None:
    """SIGKILL every process of the exec but its helper ``leader``."""
    for pid in exec_tree(leader) - {leader}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def kill_group(leader: int) -> None:
    """SIGKILL what is left of the helper's process group, the helper included. The
    group outlives its leader only while a member lives: this signals nothing else."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)


async def end(proc: asyncio.subprocess.Process, grace: float = KILL_GRACE) -> None:
    """Kill the exec whose helper is ``proc`` and reap the helper (see the module
    docstring). A helper that exited already still names its session and group:
    what the command left there is killed."""
    exited = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.to_thread(kill_tree, proc.pid)  # off the loop: it reads /proc
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), grace)
    finally:
        kill_group(proc.pid)
        with contextlib.suppress(Exception):
            await exited
