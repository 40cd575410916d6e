"""Reading the components' logs (``/run/netlab/<lab>/logs/<component>.log``) to
explain a failure: the last lines, and what an etcd member says went wrong, in
etcd's own words.

etcd logs JSON lines (zap); the supervisor starts each run of a component with a
``--- ... starting`` line. ``up`` quotes these when a member never gets healthy, and
``netlab status`` when a member stops answering (``control.wait_etcd`` and
``control.etcd_status``).
"""

from __future__ import annotations

import json
import os
from typing import Any


def log_tail(path: os.PathLike, lines: int = 15) -> str:
    """The last ``lines`` lines of a log, or "(no log)"."""
    try:
        with open(path, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode(errors="replace").strip()
    except OSError:
        return "(no log)"

# The levels of etcd's (zap) log that say why it failed or stopped.
_ETCD_ERROR_LEVELS = ("error", "dpanic", "panic", "fatal")
# etcd fields that are no part of what went wrong.
_ETCD_NOISE = ("level", "ts", "caller", "msg", "error", "stacktrace")


def _etcd_entry(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _etcd_words(entry: dict[str, Any]) -> str:
    words = str(entry.get("msg", ""))
    if entry.get("error"):
        words += f": {entry['error']}"
    extra = [f"{k}={v}" for k, v in entry.items() if k not in _ETCD_NOISE]
    return words + (f" ({', '.join(extra)})" if extra else "")


def etcd_log_error(path: os.PathLike, runs: int = 2) -> str | None:
    """etcd's own words for what went wrong, from a member's component log: the last
    entry at level error or worse (its message, error and fields, not the stack trace),
    else a bare Go panic line, from the newest of the last ``runs`` runs (the
    supervisor's ``--- ... starting`` lines part them) that logged one. Two runs, so
    that a member restarted a moment ago and still starting is explained by the run
    that failed before it. None when there is no such line."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 256 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    parts: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("--- ") and " starting " in line:
            parts.append([])
        else:
            parts[-1].append(line)
    for lines in reversed(parts[-runs:]):
        entries = [e for e in map(_etcd_entry, lines) if e is not None]
        errors = [e for e in entries if e.get("level") in _ETCD_ERROR_LEVELS]
        if errors:
            return _etcd_words(errors[-1])
        panics = [line for line in lines if line.startswith(("panic: ", "fatal error: "))]
        if panics:
            return panics[0]
    return None


def etcd_log_tail(path: os.PathLike, lines: int = 6) -> str:
    """The last ``lines`` lines of a member's last run (the supervisor's ``--- ...
    starting`` line begins a run), without Go stack traces: none in etcd's entries,
    and no goroutine dump after a panic (it would fill the tail)."""
    out: list[str] = []
    in_dump = False
    for line in log_tail(path, 200).splitlines():
        if line.startswith("goroutine ") and line.endswith("]:"):
            in_dump = True
        elif line.startswith(("{", "--- ")):
            in_dump = False
        if in_dump:
            continue
        entry = _etcd_entry(line)
        if entry is not None and "stacktrace" in entry:
            line = json.dumps({k: v for k, v in entry.items() if k != "stacktrace"},
                              separators=(",", ":"))
        if line.startswith("--- ") and " starting " in line:
            out = []  # an earlier run's lines repeat or mislead
        out.append(line)
    return "\n".join(out[-lines:]).strip()
