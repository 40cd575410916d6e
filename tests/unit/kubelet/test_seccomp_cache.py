"""The runtime's compiled seccomp filters: kept by the profile's content, handed back
as crun's ``run.oci.seccomp_bpf_data`` annotation, and never a torn file."""

from __future__ import annotations

import base64

import pytest

from netlab.node.runtime import seccomp_cache
from netlab.node.runtime.seccomp_cache import ANNOTATION, CompiledFilters

pytestmark = pytest.mark.unit

PROFILE = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}
PROGRAM = bytes(range(8)) * 5  # five 8-byte instructions


def test_a_kept_filter_comes_back_as_the_annotation(tmp_path):
    filters = CompiledFilters(tmp_path / "seccomp")
    assert filters.annotations(PROFILE) == {}
    compiled = tmp_path / "seccomp.bpf"
    compiled.write_bytes(PROGRAM)
    filters.keep(PROFILE, compiled)
    got = filters.annotations(PROFILE)
    assert base64.b64decode(got[ANNOTATION]) == PROGRAM
    # Key order does not matter; content does.
    assert filters.annotations(dict(reversed(list(PROFILE.items())))) == got
    other = {**PROFILE, "defaultAction": "SCMP_ACT_ALLOW"}
    assert filters.annotations(other) == {}


@pytest.mark.parametrize("content", [b"", PROGRAM[:-3]])
def test_an_empty_or_torn_program_is_neither_kept_nor_handed_out(tmp_path, content):
    filters = CompiledFilters(tmp_path / "seccomp")
    compiled = tmp_path / "seccomp.bpf"
    compiled.write_bytes(content)
    filters.keep(PROFILE, compiled)
    assert filters.annotations(PROFILE) == {}
    (tmp_path / "seccomp").mkdir(exist_ok=True)
    (tmp_path / "seccomp" / f"{seccomp_cache.digest(PROFILE)}.bpf").write_bytes(content)
    assert filters.annotations(PROFILE) == {}


def test_a_missing_compiled_file_keeps_nothing(tmp_path):
    filters = CompiledFilters(tmp_path / "seccomp")
    filters.keep(PROFILE, tmp_path / "absent.bpf")
    assert filters.annotations(PROFILE) == {}
    assert not (tmp_path / "seccomp").exists() or not any((tmp_path / "seccomp").iterdir())
