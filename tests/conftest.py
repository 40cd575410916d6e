"""Shared pytest configuration: tiers, root checks and the leftover sweep.

Tiers are markers (``unit``, ``kernel``, ``lab``). A test in ``tests/unit`` is
marked ``unit`` automatically, and likewise for the other two folders, so a
tier cannot be forgotten.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

TIERS = ("unit", "kernel", "lab")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
        if ("kernel" in parts or "lab" in parts) and os.geteuid() != 0:
            if os.environ.get("CI") == "true":
                # CI runs as root; a skip there would hide the core of the suite.
                raise pytest.UsageError("kernel and lab tests must run as root in CI")
            item.add_marker(pytest.mark.skip(
                reason="needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces"))


@pytest.fixture(scope="session", autouse=True)
def sweep_test_leftovers():
    """Remove labs a previous, killed run of this suite left behind: only names with
    the suite's own prefix, and only namespaces tagged as belonging to such a lab.
    NETLAB_TEST_NO_SWEEP=1 turns it off: for a run of the unit tier beside a run of the
    others (scripts/setup.sh test), whose kernel tests' namespaces are not labs yet."""
    if os.geteuid() != 0 or os.environ.get("NETLAB_TEST_NO_SWEEP") == "1":
        yield
        return
    from labkit import TEST_PREFIX

    from netlab.kernel.processes import is_running
    from netlab.lab import lifecycle, network
    from netlab.lab.state import DATA_ROOT, list_labs, load_state
    from netlab.node.runtime import cleanup_lab

    def orphaned(lab: str) -> bool:
        state = load_state(lab)
        if state is None:
            return True
        pid, started = state.creator.get("pid"), state.creator.get("createTime")
        # A lab whose creator still runs belongs to another live run of the suite.
        return pid == os.getpid() or not (pid and is_running(pid, started))

    def sweep() -> None:
        for lab in list_labs():
            if lab.startswith(TEST_PREFIX) and orphaned(lab):
                lifecycle.down(lab)
        for name in network.netns.list_netns():
            lab = name.split("-", 1)[0]
            if name.startswith(TEST_PREFIX) and load_state(lab) is None:
                cleanup_lab(lab)
                network.teardown_network(network.owned_namespaces(lab))
        # A store without a record (up refuses one): never a live run's, since up
        # records the lab before it makes the store and down removes the store first.
        with contextlib.suppress(FileNotFoundError):
            for path in DATA_ROOT.iterdir():
                if path.name.startswith(TEST_PREFIX) and load_state(path.name) is None:
                    lifecycle.down(path.name)

    sweep()
    yield
    sweep()


@pytest.fixture(scope="session")
def root_snapshot_session():
    """The suite as a whole must leave the host's root namespace as it found it."""
    if os.geteuid() != 0:
        yield None
        return
    from netlab.kernel.snapshot import namespace_snapshot

    before = namespace_snapshot()
    yield before
    assert namespace_snapshot() == before, "the test suite changed the root network namespace"
