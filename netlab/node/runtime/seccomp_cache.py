"""Compiled seccomp filters, kept per lab, so that crun compiles each profile once.

At every ``crun create``, crun turns the container's ``linux.seccomp`` into a BPF
program with libseccomp. For containers-common's default profile (some 400 syscall
rules) that takes about 15 ms of CPU, two thirds of all crun does to start a
container. crun keeps its own cache of compiled filters only when it is built with
libgcrypt, and Debian's crun is not. It does take a compiled filter in the annotation
``run.oci.seccomp_bpf_data`` (base64, see crun(1)), and it leaves the filter it
compiled in ``<crun root>/<container id>/seccomp.bpf``, where ``crun exec`` reads it
back.

So the first container of a profile is compiled by crun as before. Its
``seccomp.bpf`` is kept in the lab's runtime directory, named by a digest of the
profile exactly as config.json carries it, of this machine's architecture and of the
crun binary. Later containers with the same profile carry the kept filter in the
annotation, and crun loads it as it stands. Only the runtime writes here: a pod's
spec never reaches the annotation, and the directory is the lab's, removed at
``down``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

ANNOTATION = "run.oci.seccomp_bpf_data"
_INSTRUCTION = 8  # bytes of one struct sock_filter


@lru_cache(maxsize=1)
def _runtime_identity() -> str:
    """What else the compiled program depends on: the architecture, and which crun
    (its path, size and modification time change with the package)."""
    parts = [os.uname().machine]
    path = shutil.which("crun")
    if path is not None:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            parts += [path, str(st.st_size), str(st.st_mtime_ns)]
    return "\0".join(parts)


def digest(seccomp: Mapping[str, Any]) -> str:
    text = json.dumps(seccomp, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{_runtime_identity()}\0{text}".encode()).hexdigest()


class CompiledFilters:
    """The kept filters of one lab, in ``directory`` (one ``<digest>.bpf`` each)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def annotations(self, seccomp: Mapping[str, Any]) -> dict[str, str]:
        """The annotation that hands crun this profile's compiled filter, or nothing
        when none is kept yet (crun compiles it)."""
        try:
            program = (self.directory / f"{digest(seccomp)}.bpf").read_bytes()
        except OSError:
            return {}
        if not program or len(program) % _INSTRUCTION:
            return {}  # a torn or foreign file: let crun compile
        return {ANNOTATION: base64.b64encode(program).decode()}

    def keep(self, seccomp: Mapping[str, Any], compiled: Path) -> None:
        """Keep what crun compiled for ``seccomp`` (its ``seccomp.bpf``). Best
        effort: without it, crun compiles again next time."""
        try:
            program = compiled.read_bytes()
        except OSError:
            return
        if not program or len(program) % _INSTRUCTION:
            return
        target = self.directory / f"{digest(seccomp)}.bpf"
        with contextlib.suppress(OSError):
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(program)
            os.replace(tmp, target)
