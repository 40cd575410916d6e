"""Breaking a lab on purpose: cut a node off the physical network, kill a component.

Users and tests use these to watch the cluster heal, as one pulls a cable or
crashes a daemon on a real cluster:

- ``link_down(lab, node)`` / ``link_up``: set the node's underlay port down
  (or up). That port is the bridge-side end of the node's veth, in the lab's
  ``<lab>-net`` namespace, so the node keeps its own ``eth0`` configuration
  and simply loses carrier, like an unplugged cable: its kubelet stops
  reaching the API server, its pods stop being reachable from other nodes.
  Nothing outside the lab's namespaces is touched;
- ``kill_component(lab, component, node)``: SIGKILL (by default) one
  component of the supervisor's table (``components.json``), found by the
  pid recorded there and checked with psutil (the process must be the one
  the supervisor started, inside the expected namespace), never by name. The
  supervisor notices the exit and restarts it with its usual backoff.

Both are idempotent where that makes sense (a link already down stays down)
and explain every refusal in a ``FaultError`` meant for the user.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any, Optional

import psutil

from netlab.kernel import netns, wiring
from netlab.lab.state import components_path, load_state, read_json
from netlab.topology import LabPlan

# How far a recorded component's process start may lie from the supervisor's note of
# it: the note is taken just before the fork, so a larger gap means a reused pid.
START_TOLERANCE = 5.0
_SEPARATORS = ("-", "@", "/", ":")


class FaultError(RuntimeError):
    """A fault that cannot be injected, with a message for the user."""


@dataclass(frozen=True)
class LinkChange:
    node: str
    port: str  # the bridge-side veth in <lab>-net (a router's: one per network, spaced)
    netns: str
    was_up: bool
    up: bool

    @property
    def changed(self) -> bool:
        return self.was_up != self.up


@dataclass(frozen=True)
class Killed:
    component: str  # the supervisor's name for it, e.g. kubelet-worker2
    node: str
    pid: int
    signal: str


def lab_plan(lab: str) -> LabPlan:
    """The address plan of a lab that is up (from the topology recorded at ``up``)."""
    state = load_state(lab)
    if state is None:
        raise FaultError(f"no lab named {lab} is up")
    return state.plan()


def _node(plan: LabPlan, node: str) -> Any:
    try:
        return plan.node(node)
    except KeyError:
        names = ", ".join(n.name for n in plan.nodes)
        raise FaultError(f"lab {plan.lab} has no node {node!r} (nodes: {names})") from None


# --- links ------------------------------------------------------------------------------------


def set_link(lab: str, node: str, up: bool) -> LinkChange:
    plan = lab_plan(lab)
    target = _node(plan, node)
    if not netns.exists(plan.underlay_netns):
        raise FaultError(f"the lab's network namespace {plan.underlay_netns} is gone; "
                         f"run 'netlab down {lab}'")
    # A router is unplugged from every network it joins.
    ports = _ports(target)
    was_up = True
    for port in ports:
        try:
            was_up = wiring.set_link_up(plan.underlay_netns, port, up) and was_up
        except LookupError:
            raise FaultError(f"the node's port {port} is missing from the underlay bridge"
                             ) from None
    return LinkChange(node=node, port=" ".join(ports), netns=plan.underlay_netns,
                      was_up=was_up, up=up)


def _ports(node: Any) -> list[str]:
    """A node's bridge-side veths in ``<lab>-net``: one, or a router's one per network."""
    return [u.port for u in node.uplinks] or [node.port]


def link_down(lab: str, node: str) -> LinkChange:
    """Unplug ``node`` from the physical network."""
    return set_link(lab, node, False)


def link_up(lab: str, node: str) -> LinkChange:
    """Plug ``node`` back in."""
    return set_link(lab, node, True)


def link_states(lab: str) -> dict[str, bool]:
    """Each node's underlay port: up (True) or down."""
    plan = lab_plan(lab)
    ports = wiring.links_up(plan.underlay_netns, [p for n in plan.nodes for p in _ports(n)])
    return {n.name: all(ports[p] for p in _ports(n)) for n in plan.nodes}


# --- components -------------------------------------------------------------------------------


def _base_name(name: str, node: str) -> str:
    """``kubelet-worker2`` -> ``kubelet`` for node ``worker2`` (any of the separators)."""
    for sep in _SEPARATORS:
        if node and name.endswith(sep + node):
            return name[: -len(sep + node)]
        if node and name.startswith(node + sep):
            return name[len(node + sep):]
    return name


def _table(lab: str) -> dict[str, dict[str, Any]]:
    table = read_json(components_path(lab))
    if not isinstance(table, dict):
        raise FaultError(f"lab {lab} has no running components (no supervisor record); "
                         "was it brought up with --network-only?")
    return table


def find_component(lab: str, component: str, node: Optional[str] = None
                   ) -> tuple[str, str, dict[str, Any]]:
    """(supervisor name, node, record) of ``component`` [on ``node``]."""
    plan = lab_plan(lab)
    by_netns = {n.netns: n.name for n in plan.nodes}
    wanted_netns = _node(plan, node).netns if node else None
    matches = []
    for name, record in _table(lab).items():
        where = by_netns.get(record.get("netns") or "", "")
        if wanted_netns is not None and record.get("netns") != wanted_netns:
            continue
        if name == component or (where and _base_name(name, where) == component):
            matches.append((name, where, record))
    if not matches:
        known = sorted({_base_name(n, by_netns.get(r.get("netns") or "", ""))
                        for n, r in _table(lab).items()})
        where = f" on node {node}" if node else ""
        raise FaultError(f"lab {lab} runs no component {component!r}{where} "
                         f"(components: {', '.join(known)})")
    if len(matches) > 1:
        nodes = ", ".join(sorted(m[1] for m in matches))
        raise FaultError(f"{component} runs on several nodes ({nodes}); name one, e.g. "
                         f"'netlab fault kill {component} {matches[0][1]}'")
    return matches[0]


def _verified_process(name: str, record: dict[str, Any]) -> psutil.Process:
    pid = record.get("pid")
    if not pid:
        raise FaultError(f"{name} is not running right now (restarts so far: "
                         f"{record.get('restarts', 0)}); the supervisor is restarting it")
    try:
        proc = psutil.Process(pid)
        started = proc.create_time()
        alive = proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        alive, started = False, 0.0
    recorded = float(record.get("started") or 0.0)
    if not alive or not recorded - 1.0 <= started <= recorded + START_TOLERANCE:
        raise FaultError(f"{name}'s recorded pid {pid} is no longer that process; "
                         "it has exited (the supervisor will record its successor)")
    expected = netns.netns_inode(record.get("netns") or "")
    actual = netns.process_netns(pid)
    if expected is not None and actual != expected:
        raise FaultError(f"pid {pid} is not inside {record.get('netns')}; refusing to signal it")
    return proc


def kill_component(lab: str, component: str, node: Optional[str] = None,
                   sig: int = signal.SIGKILL) -> Killed:
    """Signal one component process (SIGKILL: ``kill -9``); the supervisor restarts it."""
    name, where, record = find_component(lab, component, node)
    proc = _verified_process(name, record)
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        raise FaultError(f"{name} exited before it could be signalled") from None
    return Killed(component=name, node=where, pid=proc.pid, signal=signal.Signals(sig).name)
