"""Lab-tier fixtures: labs with unique names, always torn down in ``finally``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from labkit import topology, unique_lab, write_kubeconfig, write_topology

from netlab.kernel.snapshot import namespace_snapshot
from netlab.lab import lifecycle
from netlab.topology import LabPlan, load_topology, plan_lab


@dataclass
class Lab:
    name: str
    path: Path
    plan: LabPlan

    def ns(self, node: str) -> str:
        return self.plan.node(node).netns


@pytest.fixture(autouse=True)
def root_namespace_unchanged(root_snapshot_session: Any) -> Iterator[None]:
    before = namespace_snapshot()
    yield
    assert namespace_snapshot() == before, "the test changed the host's root network namespace"


def _factory(directory: Path, created: list[str]) -> Callable[..., Lab]:
    def make(data: dict[str, Any] | None = None, control_plane: bool = False,
             **kwargs: Any) -> Lab:
        data = data or topology(unique_lab(), **kwargs)
        path = write_topology(directory, data)
        created.append(data["name"])
        lifecycle.up(path, control_plane=control_plane)
        return Lab(data["name"], path, plan_lab(load_topology(path)))
    return make


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    created: list[str] = []
    try:
        yield _factory(tmp_path, created)
    finally:
        for name in created:
            lifecycle.down(name)


def _module_lab(factory: pytest.TempPathFactory, control_plane: bool,
                store: str = "sqlite") -> Iterator[Lab]:
    data = load_demo()
    data["name"] = unique_lab()
    if store != "sqlite":
        data.setdefault("cluster", {})["store"] = store
    created: list[str] = []
    try:
        yield _factory(factory.mktemp("demo"), created)(data, control_plane=control_plane)
    finally:
        for name in created:
            lifecycle.down(name)


@pytest.fixture(scope="module")
def demo_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The demo topology's network (control-plane, two workers, an external client),
    under a unique name, without the control plane's processes."""
    yield from _module_lab(tmp_path_factory, control_plane=False)


@pytest.fixture(scope="module")
def lab_store() -> str:
    """``cluster.store`` of ``cluster_lab``. A module overrides it with a fixture
    parametrized over ``labkit.BOTH_STORES`` to run its tests against both stores."""
    return "sqlite"


@pytest.fixture(scope="module")
def cluster_lab(tmp_path_factory: pytest.TempPathFactory, lab_store: str) -> Iterator[Lab]:
    """The demo topology with its control plane running: what ``netlab up`` gives."""
    yield from _module_lab(tmp_path_factory, control_plane=True, store=lab_store)


@pytest.fixture(scope="module")
def kubeconfig(cluster_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for ``cluster_lab``, as ``netlab kubeconfig`` writes it."""
    return write_kubeconfig(cluster_lab.name, tmp_path_factory.mktemp("kube"))


def load_demo() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((Path(__file__).parents[2] / "topologies" / "demo.yaml").read_text())
