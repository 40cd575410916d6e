"""Durations as Kubernetes writes them ("10s", "1m30s", "500ms"), for the topology
file and component flags alike."""

from __future__ import annotations

import re

DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` ("10s", "1m30s", "500ms"), in seconds; a bare number
    means seconds. Raises ValueError."""
    text = str(text).strip()
    try:
        seconds = float(text)
    except ValueError:
        if not text or DURATION_PART.sub("", text) != "":
            raise ValueError(f"invalid duration {text!r} (examples: 10s, 1m30s, 500ms)") from None
        seconds = sum(float(n) * UNITS[u] for n, u in DURATION_PART.findall(text))
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"invalid duration {text!r}: must be zero or more")
    return seconds
