"""``up``, ``down`` and ``status`` of a lab: the orchestration behind the CLI.

``up`` validates, records its intent in the state directory, builds, and on
any failure removes everything it created before reporting the failing step.
``down`` works from the record when there is one and from the lab's tagged
namespaces when there is not, so it succeeds after any crash and twice in a
row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netlab.kernel import netns
from netlab.lab import control, network
from netlab.lab.components import etcd_endpoint
from netlab.lab.network import Progress
from netlab.lab.state import (
    LabError,
    LabState,
    data_dir,
    lab_lock,
    list_labs,
    load_state,
    remove_state,
)
from netlab.master.store.etcd_server import INSTALL_HINT, etcd_binary
from netlab.node.runtime import cleanup_lab
from netlab.topology import LabPlan, Topology, load_topology, plan_lab


class LabUpError(LabError):
    def __init__(self, step: str, cause: BaseException):
        self.step, self.cause = step, cause
        super().__init__(f"netlab up failed while {step}: {cause}. "
                         "Everything it had created has been removed.")


def node_rows(plan: LabPlan) -> list[dict[str, Any]]:
    return [{"name": n.name, "role": n.role, "namespace": n.netns,
             "underlayIP": str(n.underlay.ip),
             "podSubnet": str(n.pod_subnet) if n.pod_subnet else ""} for n in plan.nodes]


def _refuse_if_present(lab: str) -> None:
    state = load_state(lab)
    if state is not None and state.phase == "up":
        raise LabError(f"lab {lab} is already up (see 'netlab status {lab}'); "
                       f"run 'netlab down {lab}' first")
    if state is not None:
        raise LabError(f"a previous 'netlab up' of lab {lab} did not finish; "
                       f"run 'netlab down {lab}' to clean it up")
    leftovers = network.owned_namespaces(lab)
    if leftovers:
        raise LabError(f"namespaces of lab {lab} already exist ({', '.join(leftovers)}); "
                       f"run 'netlab down {lab}' to remove them")


def _spec(source: Path, lab: str) -> str:
    """The topology to record: the file as written (it validated), with the name made
    explicit and no workloads. Components re-read this, not the file."""
    data = yaml.safe_load(source.read_text())
    data = {k: v for k, v in data.items() if k != "workloads"}
    return yaml.safe_dump({**data, "name": lab}, sort_keys=False)


def up(topology: Topology | str | Path, progress: Progress = lambda _: None,
       control_plane: bool = True, ready_timeout: float = 60.0) -> LabState:
    """Bring a lab up from a topology: validated already (``load_topology``), so it is
    parsed once, or a file's path. ``TopologyError`` means nothing was touched.

    ``control_plane=False`` builds the network only (what the network tests and
    benchmarks measure).
    """
    if not isinstance(topology, Topology):
        topology = load_topology(topology)
    if topology.source is None:
        raise LabError(f"lab {topology.name}: the topology has no file to record; "
                       "load it with netlab.topology.load_topology")
    source = topology.source
    plan = plan_lab(topology)
    lab = plan.lab
    etcd = control_plane and topology.cluster.store == "etcd"
    if etcd and etcd_binary() is None:
        raise LabError(f"lab {lab} keeps its store in etcd (cluster.store: etcd), and there is "
                       f"no etcd binary on PATH; {INSTALL_HINT}. Nothing was created")
    with lab_lock(lab):
        _refuse_if_present(lab)
        state = LabState(lab=lab, topology=str(source.resolve()),
                         namespaces=list(plan.namespaces), nodes=node_rows(plan),
                         overlay=plan.overlay, spec=_spec(source, lab))
        state.save()  # before anything exists, so a killed up can be cleaned up
        step = "building the network"
        try:
            network.build_network(plan, progress)
            if control_plane:
                step = "starting the control plane"
                progress("starting the supervisor and the API server")
                control_node = plan.node(topology.control_plane.name)
                control.start(state, [str(control_node.underlay.ip)] if etcd else None)
                if etcd:
                    step = f"waiting for etcd member {control_node.name}"
                    progress(f"waiting for etcd member {control_node.name} to be healthy")
                    control.wait_etcd(lab, control_node.name, etcd_endpoint(plan),
                                      control_node.netns, ready_timeout, state)
                step = "waiting for the API server"
                control.wait_ready(lab, ready_timeout, state)
                step = "waiting for the nodes to be Ready"
                progress("waiting for the nodes to register and be Ready")
                control.wait_nodes_ready(lab, [n.name for n in plan.nodes if n.in_cluster],
                                         ready_timeout)
                if topology.workloads:
                    step = "applying the workloads"
                    progress(f"applying {len(topology.workloads)} workloads")
                    control.apply_workloads(lab, topology.workloads)
            step = "recording the lab"
            state.phase = "up"
            state.save()
        except BaseException as exc:
            progress(f"failed while {step}; removing what was created")
            control.stop(state)
            cleanup_lab(lab)
            # Only what carries our tag: a name clash must not cost someone their namespace.
            network.teardown_network(network.owned_namespaces(lab, trust_record=False))
            remove_state(lab)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise LabUpError(step, exc) from exc
    return state


@dataclass
class DownResult:
    lab: str
    found: bool
    namespaces: list[str]
    processes: list[int]


def down(lab: str, progress: Progress = lambda _: None) -> DownResult:
    with lab_lock(lab):
        state = load_state(lab)
        recorded = state.namespaces if state else []
        names = network.owned_namespaces(lab, recorded)
        if state is None and not names:
            return DownResult(lab=lab, found=False, namespaces=[], processes=[])
        if state is not None:
            control.stop(state)
        pods = cleanup_lab(lab)  # pods: processes, namespaces, cgroups, IPAM
        if pods.namespaces:
            progress(f"removed {len(pods.namespaces)} pods")
        names = network.owned_namespaces(lab, recorded)
        progress(f"removing {len(names)} namespaces")
        killed = network.teardown_network(names, progress)
        remove_state(lab)
    return DownResult(lab=lab, found=True, namespaces=names, processes=killed)


def status(lab: str, probe: bool = False) -> dict[str, Any]:
    """The lab's record and its namespaces' presence; ``probe`` also asks the etcd
    member for its health (a subprocess in its namespace: ``netlab status`` only)."""
    state = load_state(lab)
    if state is None:
        raise LabError(f"no lab named {lab} is up")
    present = set(netns.list_netns())
    nodes = [{**row, "present": row["namespace"] in present} for row in state.nodes]
    healthy = state.phase == "up" and all(n["present"] for n in nodes)
    return {"lab": lab, "phase": state.phase if healthy or state.phase != "up" else "degraded",
            "topology": state.topology, "overlay": state.overlay,
            "age": round(time.time() - state.created, 1),
            "underlayNamespace": f"{lab}-net", "nodes": nodes, "store": store_status(state, probe)}


def store_status(state: LabState, probe: bool = False) -> dict[str, Any]:
    """The API server's store: SQLite, or etcd with its member's health and leadership."""
    plan = state.plan()
    if plan.topology.cluster.store != "etcd":
        return {"backend": "sqlite", "path": str(data_dir(state.lab) / "store.db")}
    node = plan.node(plan.topology.control_plane.name)
    member = {"name": node.name, "endpoint": etcd_endpoint(plan)}
    if (probe and state.phase == "up" and "supervisor" in state.processes
            and node.netns in set(netns.list_netns())):
        member.update(control.etcd_status(state.lab, etcd_endpoint(plan), node.netns))
    return {"backend": "etcd", "members": [member]}


def labs() -> list[dict[str, Any]]:
    out = []
    for lab in list_labs():
        state = load_state(lab)
        if state is not None:
            out.append({"lab": lab, "phase": state.phase, "nodes": len(state.nodes),
                        "topology": state.topology, "created": state.created})
    return out
