"""What ``netlab graph`` draws from: a topology file, or a lab's record and its API.

The one module of ``netlab.graph`` that reads anything. A lab that is up and
answers gives its plan (from the topology recorded at ``up``), its pods and its
Services with their EndpointSlices (read over the lab's unix socket); a lab that
is recorded but does not answer (a network-only lab, a control plane that is
down, a failed ``up``), or a topology file, gives the plan alone, and the caption
says which.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from netlab.graph.labpic import PodInfo, ServiceInfo, pods_from_api, services_from_api
from netlab.topology import LabPlan, load_topology, plan_lab


class GraphSourceError(ValueError):
    """Nothing to draw: an unknown lab or a missing file; the message says what exists."""


@dataclass
class LabSnapshot:
    plan: LabPlan
    caption: list[str]
    live: bool = False  # pods and Services came from a running lab's API
    pods: list[PodInfo] = field(default_factory=list)
    services: list[ServiceInfo] = field(default_factory=list)


def _looks_like_file(target: str) -> bool:
    return target.endswith((".yaml", ".yml")) or os.sep in target or Path(target).is_file()


def snapshot(target: str | None, timeout: float = 5.0) -> LabSnapshot:
    """``target`` is a lab name, a topology file, or None for the only lab up.

    Raises :class:`GraphSourceError`, or ``TopologyError`` for a file (or a
    recorded topology) that does not validate.
    """
    from netlab.lab.state import LabError, implied_lab, list_labs, load_state

    if target is not None and _looks_like_file(target):
        return from_topology_file(target)
    try:
        lab = implied_lab(target)
    except LabError as err:
        raise GraphSourceError(f"{err}; or draw a topology file: netlab graph TOPOLOGY.yaml") \
            from None
    record = load_state(lab)
    if record is None:
        up = list_labs()
        raise GraphSourceError(
            f"no lab named {lab} is up ({'labs up: ' + ', '.join(up) if up else 'none is'}); "
            f"to draw a topology that is not up, pass its file: netlab graph TOPOLOGY.yaml")
    return from_lab(lab, record.plan(), record.phase, timeout)


def from_topology_file(path: str) -> LabSnapshot:
    """The plan of a topology file (``TopologyError`` if it does not validate)."""
    from netlab.lab.state import load_state

    if not Path(path).is_file():
        raise GraphSourceError(f"{path}: no such topology file")
    plan = plan_lab(load_topology(path))
    running = load_state(plan.lab) is not None
    note = (f"lab {plan.lab} is up: 'netlab graph {plan.lab}' draws its pods and Services"
            if running else f"lab {plan.lab} is not running")
    return LabSnapshot(plan, [f"drawn from the topology file {path} alone; {note}"])


def from_lab(lab: str, plan: LabPlan, phase: str = "up", timeout: float = 5.0) -> LabSnapshot:
    """A recorded lab: live from its API when it answers, else from its topology."""
    if phase != "up":
        return LabSnapshot(plan, [f"lab {lab} is {phase}, not running: drawn from its "
                                  "recorded topology alone"])
    from netlab.client import SyncClient, lab_client
    from netlab.paths import socket_path

    if not socket_path(lab).exists():
        return LabSnapshot(plan, [f"lab {lab} runs no control plane (network only): drawn "
                                  "from its topology alone, without pods or Services"])
    with SyncClient(lab_client(lab, timeout=timeout)) as client:
        try:
            answers = client.readyz()
            if answers:
                pods = client.list("pods")["items"]
                services = client.list("services")["items"]
                slices = client.list("endpointslices")["items"]
        except Exception:  # refused, timed out, half up: the topology still draws
            answers = False
    if not answers:
        why = ("only root may use its API socket" if os.geteuid() != 0
               else "its API does not answer")
        return LabSnapshot(plan, [f"lab {lab} is recorded but {why}: drawn from its "
                                  "topology alone, without pods or Services"])
    pod_infos = pods_from_api(pods)
    service_infos = services_from_api(services, slices)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return LabSnapshot(plan, [f"lab {lab} is running: {len(pod_infos)} pods and "
                              f"{len(service_infos)} Services, read from its API at {stamp}"],
                       live=True, pods=pod_infos, services=service_infos)
