"""Files replaced atomically: write a temporary file beside it, then rename it over.

Readers never see half a file, and a crash leaves either the old file or the
new one (with ``fsync``, also after a power loss). The image store, the
container runtime's records and the lab's own records are all written so;
``read_json`` reads such a record back, None when it is missing or unreadable.
Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None,
                 fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` (a str is written as UTF-8). ``mode``: the new
    file's permissions; ``fsync=False`` for files that need not outlive a power loss."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_json(path: Path) -> Any:
    """The JSON in ``path``; None if it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON with sorted keys, replaced atomically."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True))
