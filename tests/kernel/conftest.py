"""Kernel-tier fixtures: bare namespaces with the suite's prefix, removed in ``finally``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest
from labkit import unique_lab

from netlab.kernel import netns
from netlab.kernel.processes import kill_in_netns
from netlab.kernel.snapshot import namespace_snapshot


@pytest.fixture(autouse=True)
def root_namespace_unchanged(root_snapshot_session: Any) -> Iterator[None]:
    before = namespace_snapshot()
    yield
    assert namespace_snapshot() == before, "the test changed the host's root network namespace"


@pytest.fixture
def make_netns() -> Iterator[Callable[..., str]]:
    created: list[str] = []
    base = unique_lab()

    def make(suffix: str, setup: Callable[[], Any] | None = None) -> str:
        name = f"{base}-{suffix}"
        created.append(name)
        netns.create_netns(name, setup)
        return name

    try:
        yield make
    finally:
        kill_in_netns(created)
        for name in created:
            netns.delete_netns(name)
