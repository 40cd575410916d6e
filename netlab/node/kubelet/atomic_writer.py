"""The kubelet's atomic writer: a volume's files replaced all at once, as a reader
inside the pod sees them.

configMap, secret, downwardAPI and projected volumes are written this way (upstream
``pkg/volume/util/atomic_writer.go``), so a program reading several files of a volume
never sees half of an update:

- the files of one version live in a timestamped directory ``..2026_12_07_10_04_05.123``;
- ``..data`` is a symbolic link to that directory; a new version is written in full
  into a new timestamped directory, then ``..data_tmp`` is made to point at it and
  renamed over ``..data`` (``rename`` replaces a link atomically);
- what the user sees at the top (``key``, or ``dir`` for ``dir/key``) is a symbolic
  link to ``..data/key``, made once and left alone across updates;
- the old timestamped directory goes afterwards, and user-visible links of paths no
  longer in the payload are removed.

A payload equal to what is there writes nothing. Paths are checked as upstream does:
relative, no ``..`` element, not starting with ``..`` (those names are the writer's).

File I/O only, in the pod's volume directory; no mounts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = "..data"
DATA_TMP = "..data_tmp"
MAX_PATH = 4096
MAX_NAME = 255


class PayloadError(ValueError):
    """A payload path the writer refuses; the message says why (upstream's words)."""


@dataclass(frozen=True)
class FileProjection:
    """One file of a volume: its bytes and its permission bits."""

    data: bytes
    mode: int = 0o644


def validate_path(path: str) -> None:
    """Upstream's ``validatePath``: relative, no ``..`` element, no leading ``..``."""
    if len(path) > MAX_PATH:
        raise PayloadError(f"payload path {path} must be less than {MAX_PATH} characters")
    if not path:
        raise PayloadError("payload path must not be empty")
    if path.startswith("/"):
        raise PayloadError(f"payload path {path} is absolute")
    parts = path.split("/")
    if ".." in parts:
        raise PayloadError(f"payload path {path} contains '..'")
    if path.startswith(".."):
        raise PayloadError(f"payload path {path} must not start with '..'")
    if any(len(p) > MAX_NAME for p in parts):
        raise PayloadError(f"payload path {path} has an element longer than {MAX_NAME}")


def _clean(path: str) -> str:
    return os.path.normpath(path).lstrip("/")


def _current(target: Path) -> Path | None:
    try:
        name = os.readlink(target / DATA_DIR)
    except OSError:
        return None
    return target / name


def _same(directory: Path, payload: dict[str, FileProjection]) -> bool:
    """True when ``directory`` holds exactly ``payload`` (bytes and modes)."""
    found: set[str] = set()
    for root, _dirs, files in os.walk(directory):
        for name in files:
            found.add(os.path.relpath(os.path.join(root, name), directory))
    if found != set(payload):
        return False
    for rel, proj in payload.items():
        path = directory / rel
        try:
            st = path.lstat()
            if (st.st_mode & 0o7777) != proj.mode or path.read_bytes() != proj.data:
                return False
        except OSError:
            return False
    return True


def _user_visible(payload: dict[str, FileProjection]) -> set[str]:
    return {rel.split("/", 1)[0] for rel in payload}


def write(target: Path | str, payload: dict[str, FileProjection],
          now: float | None = None) -> bool:
    """Make ``target`` show ``payload`` (relative path -> file) through the
    ``..data`` swap; returns True when anything changed."""
    target = Path(target)
    clean: dict[str, FileProjection] = {}
    for path, proj in payload.items():
        validate_path(path)
        clean[_clean(path)] = proj
    target.mkdir(parents=True, exist_ok=True)
    old = _current(target)
    if old is not None and old.is_dir() and _same(old, clean):
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime(now if now is not None
                                                                else time.time()))
    new = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    os.chmod(new, 0o755)
    try:
        for rel, proj in clean.items():
            file = new / rel
            file.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(proj.data)
            os.chmod(file, proj.mode)  # exactly the mode asked, whatever the umask
        tmp_link = target / DATA_TMP
        with contextlib.suppress(FileNotFoundError):
            tmp_link.unlink()
        os.symlink(new.name, tmp_link)
        os.rename(tmp_link, target / DATA_DIR)  # the atomic step
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    visible = _user_visible(clean)
    for name in sorted(visible):
        link = target / name
        if not link.is_symlink():
            if link.exists():  # a real file from an older layout: replace it
                if link.is_dir():
                    shutil.rmtree(link)
                else:
                    link.unlink()
            os.symlink(f"{DATA_DIR}/{name}", link)
    for entry in os.listdir(target):
        if entry.startswith(".."):
            continue
        if entry not in visible and (target / entry).is_symlink():
            (target / entry).unlink()
    if old is not None and old != new:
        shutil.rmtree(old, ignore_errors=True)
    return True
