"""Runtime fixtures: a network-only lab per test module, pods removed after
each test, and an image store of the module's own with busybox in it. Everything
is torn down in ``finally``, with ``cleanup_lab`` before ``netlab down``, the order
``down`` is to use.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import TEST_PREFIX
from rtkit import Pods, RuntimeLab, new_lab

from netlab.images import busybox
from netlab.images.store import ImageStore, StoredImage
from netlab.kernel.netns import list_netns
from netlab.lab.state import load_state
from netlab.node.runtime import cgroups, cleanup_lab
from netlab.node.runtime.cgroups import NETLAB_GROUP
from netlab.paths import DATA_ROOT, STATE_ROOT


def _dead_test_labs() -> list[str]:
    """Labs of this suite (by prefix) with pod leftovers but no state and no
    namespace: a killed run's, since a live lab records its state first."""
    names: set[str] = set()
    for root in (STATE_ROOT, DATA_ROOT, *(Path(p, NETLAB_GROUP)
                                         for p in cgroups.detect().parents.values())):
        if root.is_dir():
            names |= {d.name for d in root.glob(f"{TEST_PREFIX}*") if d.is_dir()}
    spaces = list_netns()
    return sorted(lab for lab in names if load_state(lab) is None
                  and not any(ns.startswith(f"{lab}-") for ns in spaces))


@pytest.fixture(scope="session", autouse=True)
def sweep_runtime_leftovers() -> Iterator[None]:
    if os.geteuid() != 0:
        yield
        return
    for lab in _dead_test_labs():
        cleanup_lab(lab)
    yield
    for lab in _dead_test_labs():
        cleanup_lab(lab)


@pytest.fixture(scope="module")
def rlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeLab]:
    yield from new_lab(tmp_path_factory.mktemp("runtime"))


@pytest.fixture
def pods(rlab: RuntimeLab) -> Iterator[Pods]:
    made = Pods(rlab)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageStore]:
    """An image store of the module's own with busybox built in: the host's store,
    and every other module's, stay as they were."""
    root = tmp_path_factory.mktemp("store") / "images"
    try:
        made = ImageStore(root)
        busybox.build(made)
        yield made
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def image(store: ImageStore) -> StoredImage:
    """busybox, from the module's own store."""
    found = store.lookup("busybox")
    assert found is not None
    return found
