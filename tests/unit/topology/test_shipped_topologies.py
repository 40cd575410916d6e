"""Every topology shipped in topologies/ validates, plans, and says what it teaches."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.topology import load_topology, plan_lab

TOPOLOGIES = sorted((Path(__file__).resolve().parents[3] / "topologies").glob("*.yaml"))


def test_the_teaching_topologies_are_there():
    names = {p.name for p in TOPOLOGIES}
    assert {"demo.yaml", "flat.yaml", "three-tier.yaml", "big.yaml", "multi-rack.yaml"} <= names


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_a_shipped_topology_validates_and_plans(path: Path):
    topology = load_topology(path)
    plan = plan_lab(topology)
    assert topology.name == path.stem
    assert len({n.netns for n in plan.nodes}) == len(plan.nodes)
    # A header comment says what the topology shows.
    assert path.read_text().startswith("#")


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_a_shipped_topology_shows_commands_to_try(path: Path):
    header = path.read_text().split("\nname:")[0]
    assert "# Try:" in header
    assert f"netlab up topologies/{path.name}" in header
    assert f"netlab down {path.stem}" in header


def test_what_the_teaching_topologies_are_made_of():
    flat = load_topology(Path(TOPOLOGIES[0].parent / "flat.yaml"))
    assert flat.cluster.overlay == "none"
    tiers = load_topology(TOPOLOGIES[0].parent / "three-tier.yaml")
    services = {w.manifest["metadata"]["name"] for w in tiers.workloads
                if w.manifest["kind"] == "Service"}
    assert services == {"web", "app", "db"}
    big = load_topology(TOPOLOGIES[0].parent / "big.yaml")
    assert sum(n.role == "worker" for n in big.nodes) == 20
    racks = load_topology(TOPOLOGIES[0].parent / "multi-rack.yaml")
    assert [n.name for n in racks.networks] == ["rack1", "rack2"]
    assert [n.networks for n in racks.nodes if n.role == "router"] == [("rack1", "rack2")]
