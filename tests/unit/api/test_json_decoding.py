"""``objects.decoding_many``: the garbage collector paused while big lists decode.

A list of 10,000 pods decoded three to four times slower with the collector
running (docs/benchmarks.md, "A list of 10,000 pods, again"), so the API server's
Table and metadata lists and the client's response decoding pause it. These
tests pin what makes that safe: it is paused inside, and afterwards it is as it
was before, however the block is left or nested.
"""

from __future__ import annotations

import gc

import pytest

from netlab.api.objects import decoding_many


@pytest.fixture
def collector_enabled():
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if not was:
            gc.disable()


def test_paused_inside_and_running_after(collector_enabled) -> None:
    with decoding_many():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_running_again_after_an_error(collector_enabled) -> None:
    with pytest.raises(ValueError), decoding_many():
        raise ValueError("bad JSON")
    assert gc.isenabled()


def test_nested_blocks_leave_it_paused_until_the_outer_one_ends(collector_enabled) -> None:
    with decoding_many():
        with decoding_many():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_paused_by_someone_else_stays_paused(collector_enabled) -> None:
    gc.disable()
    with decoding_many():
        pass
    assert not gc.isenabled()
