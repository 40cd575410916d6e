"""``up``, ``down`` and ``status`` of a lab: the orchestration behind the CLI.

``up`` validates, records its intent in the state directory, then runs its
named steps in order (``up_steps``: an external etcd's check, network,
supervisor, etcd, API, nodes, workloads, record); on any failure it removes
everything it created before reporting the failing step.
``down`` works from the record when there is one and from the lab's tagged
namespaces when there is not, so it succeeds after any crash and twice in a
row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil
import yaml

from netlab.kernel import netns
from netlab.lab import control, exhaustion, network
from netlab.lab.components import EtcdClient, etcd_client, etcd_endpoints, etcd_member_name
from netlab.lab.network import Progress
from netlab.lab.state import (
    LabError,
    LabState,
    components_path,
    data_dir,
    lab_lock,
    list_labs,
    load_state,
    make_lab_dir,
    read_json,
    remove_state,
)
from netlab.master.store.etcd_server import INSTALL_HINT, etcd_binary
from netlab.node.runtime import cleanup_lab
from netlab.topology import LabPlan, NodePlan, Topology, load_topology, plan_lab

# How long ``up`` waits for an etcd outside the lab to answer before it gives up.
EXTERNAL_ETCD_TIMEOUT = 10.0
# Memory (PSS) a running lab takes: each cluster node's agents (kubelet, kube-proxy,
# NetworkPolicy agent) and the control plane's processes, as bench/scale_lab.py
# measures them (docs/benchmarks.md), with some margin: 59-63 MiB per node and about
# 300 MiB for the control plane, supervisor and fork server at 3 to 100 nodes with the
# components forked from the fork server (120 MiB per node when each is exec'd,
# NETLAB_FORKSERVER=0). ``up`` refuses a lab that would not fit.
NODE_MEMORY_MIB = 70
CONTROL_PLANE_MEMORY_MIB = 300


class LabUpError(LabError):
    """``up`` failed at ``step`` because of ``cause``. ``why`` names a resource that
    ran out (open files, memory) when one did, and ``undone`` what the rollback
    removed, or that it could not finish and ``netlab down`` must."""

    def __init__(self, step: str, cause: BaseException, why: str | None = None,
                 undone: str = "Everything it had created has been removed."):
        self.step, self.cause, self.why = step, cause, why
        # A bare TimeoutError has no words of its own.
        words = str(cause) or repr(cause)
        if why is None:
            super().__init__(f"netlab up failed while {step}: {words}. {undone}")
        elif isinstance(cause, control.ResourceExhausted) or words in why:
            super().__init__(f"netlab up failed while {step}: {why}.\n{undone}")
        else:
            super().__init__(f"netlab up failed while {step}: {why}.\n{undone}\n"
                             f"The error was: {words}")


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
    # A store without a record: an up or down killed partway, or a reboot (the record
    # is on tmpfs). Reused, the new lab would start with the old one's objects; as
    # kubeadm refuses a /var/lib/etcd that is not empty, up refuses and down removes it.
    data = data_dir(lab)
    if data.exists():
        raise LabError(f"lab {lab} has data from an earlier 'netlab up' that did not finish "
                       f"or was not taken down ({data}, {_age(data)}); "
                       f"run 'netlab down {lab}' to remove it")


def _age(path: Path) -> str:
    try:
        seconds = time.time() - path.stat().st_mtime
    except OSError:
        return "gone"
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"last written {seconds // size:.0f} {unit} ago"
    return f"last written {seconds:.0f} seconds ago"


def _spec(source: Path, lab: str) -> str:
    """The topology to record: the file as written (it validated), with the name made
    explicit and no workloads. Components re-read this, not the file."""
    data = yaml.safe_load(source.read_text())
    data = {k: v for k, v in data.items() if k != "workloads"}
    return yaml.safe_dump({**data, "name": lab}, sort_keys=False)


def memory_needed(plan: LabPlan) -> int:
    """Bytes of memory the lab's processes take once it runs (without its pods)."""
    nodes = sum(1 for n in plan.nodes if n.in_cluster)
    return (nodes * NODE_MEMORY_MIB + CONTROL_PLANE_MEMORY_MIB) * 2**20


def _refuse_if_too_big(plan: LabPlan) -> None:
    """A lab that would exhaust the machine's memory is refused before anything is
    built, rather than half-built and killed by the OOM killer."""
    need, available = memory_needed(plan), psutil.virtual_memory().available
    if need > available:
        nodes = sum(1 for n in plan.nodes if n.in_cluster)
        gib = 2**30
        raise LabError(
            f"lab {plan.lab} has {nodes} cluster nodes and needs about {need / gib:.1f} GiB "
            f"of memory ({NODE_MEMORY_MIB} MiB for each node's kubelet, proxy and "
            f"NetworkPolicy agent, {CONTROL_PLANE_MEMORY_MIB} MiB for the control plane), "
            f"and this machine has {available / gib:.1f} GiB available; use at most "
            f"{max(0, (available // 2**20 - CONTROL_PLANE_MEMORY_MIB) // NODE_MEMORY_MIB)} "
            "cluster nodes, or free memory. Nothing was created")


@dataclass
class UpContext:
    """What the steps of one ``up`` share."""

    topology: Topology
    plan: LabPlan
    state: LabState
    progress: Progress
    ready_timeout: float
    # Called while waiting: raises when a component ran out of open files or memory.
    check: Callable[..., None] | None = None

    @property
    def etcd(self) -> EtcdClient | None:
        return etcd_client(self.plan)

    @property
    def control_node(self) -> NodePlan:
        return self.plan.node(self.topology.control_plane.name)


@dataclass(frozen=True)
class UpStep:
    """One named step of ``up``, as kind's create actions are: the name is what a
    failure reports ("failed while waiting for the API server")."""

    name: str
    run: Callable[[UpContext], None]


def _network(ctx: UpContext) -> None:
    network.build_network(ctx.plan, ctx.progress)


def _supervisor(ctx: UpContext) -> None:
    ctx.progress("starting the supervisor and the API server")
    members = [str(ctx.plan.node(n.name).underlay.ip) for n in ctx.topology.etcd_member_nodes]
    control.start(ctx.state, members or None)


def _etcd(ctx: UpContext) -> None:
    """Each member healthy in turn, under one deadline: a member answers healthy once
    the cluster has a leader, so the first waits for quorum and a later one that never
    starts is named (and ``up`` rolls back)."""
    deadline = time.monotonic() + ctx.ready_timeout
    client = ctx.etcd
    assert client is not None
    nodes = ctx.topology.etcd_member_nodes
    for node, endpoint in zip(nodes, etcd_endpoints(ctx.plan)):
        ctx.progress(f"waiting for etcd member {node.name} to be healthy")
        control.wait_etcd(client, node.name, endpoint, ctx.plan.node(node.name).netns,
                          max(1.0, deadline - time.monotonic()), ctx.state,
                          component=etcd_member_name(node.name), check=ctx.check)


def _external_etcd(ctx: UpContext) -> None:
    """Before the network: an etcd of the user's that does not answer costs nothing."""
    client = ctx.etcd
    assert client is not None
    ctx.progress(f"checking the etcd at {', '.join(client.endpoints)}")
    control.check_external_etcd(client, min(ctx.ready_timeout, EXTERNAL_ETCD_TIMEOUT))


def _api(ctx: UpContext) -> None:
    control.wait_ready(ctx.plan.lab, ctx.ready_timeout, ctx.state, check=ctx.check)


def _nodes(ctx: UpContext) -> None:
    ctx.progress("waiting for the nodes to register and be Ready")
    control.wait_nodes_ready(ctx.plan.lab, [n.name for n in ctx.plan.nodes if n.in_cluster],
                             ctx.ready_timeout, check=ctx.check)
    control.wait_components_started(ctx.plan.lab, ctx.ready_timeout, check=ctx.check)


def _workloads(ctx: UpContext) -> None:
    ctx.progress(f"applying {len(ctx.topology.workloads)} workloads")
    control.apply_workloads(ctx.plan.lab, ctx.topology.workloads)


def _record(ctx: UpContext) -> None:
    if ctx.check is not None:
        # A component the OOM killer ended while the others got ready, restarted by
        # the supervisor, will be again: a lab that does not fit is no lab.
        ctx.check(force=True)
    ctx.state.phase = "up"
    ctx.state.save()


def up_steps(topology: Topology, control_plane: bool = True) -> list[UpStep]:
    """The steps ``up`` takes for ``topology``, in order."""
    steps = [UpStep("building the network", _network)]
    if control_plane and topology.cluster.etcd_external is not None:
        steps.insert(0, UpStep("checking the external etcd", _external_etcd))
    if control_plane:
        steps.append(UpStep("starting the control plane", _supervisor))
        members = [n.name for n in topology.etcd_member_nodes]
        if members:
            steps.append(UpStep(f"waiting for etcd member{'s' if len(members) > 1 else ''} "
                                f"{', '.join(members)}", _etcd))
        steps += [UpStep("waiting for the API server", _api),
                  UpStep("waiting for the nodes to be Ready", _nodes)]
        if topology.workloads:
            steps.append(UpStep("applying the workloads", _workloads))
    steps.append(UpStep("recording the lab", _record))
    return steps


def _roll_back(state: LabState) -> str:
    """Remove everything ``up`` may have created, whichever step it reached, and say
    what that was. Each part is tried even when one before it failed; when one did,
    the record stays (phase "failed") so that ``netlab down`` finds what is left."""
    lab = state.lab
    done: list[str] = []
    errors: list[str] = []

    def attempt(what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            errors.append(f"{what}: {exc}")
            return None

    components = len(read_json(components_path(lab)) or {})
    if attempt("stopping the supervisor", lambda: control.stop(state)):
        done.append(f"the supervisor and its {components} components" if components
                    else "the supervisor")
    pods = attempt("removing pods", lambda: cleanup_lab(lab))
    if pods is not None and pods.namespaces:
        done.append(f"{len(pods.namespaces)} pods")
    # Only what carries our tag: a name clash must not cost someone their namespace.
    names = attempt("finding the lab's namespaces",
                    lambda: network.owned_namespaces(lab, trust_record=False)) or []
    killed = attempt("removing the namespaces", lambda: network.teardown_network(names))
    if names and killed is not None:
        done.append(f"{len(names)} namespaces" + (f" and {len(killed)} processes in them"
                                                  if killed else ""))
    dirs = [str(d) for d in (data_dir(lab), state.directory) if d.exists()]
    if errors:
        state.phase = "failed"
        attempt("recording what is left", state.save)
        return (f"Removing what it had created did not finish ({'; '.join(errors)}); "
                f"'netlab down {lab}' removes what is left.")
    attempt("removing the lab's files", lambda: remove_state(lab))
    if errors:
        return f"Removing the lab's files failed ({errors[0]}); 'netlab down {lab}' retries."
    if dirs:
        done.append(f"the lab's files ({', '.join(dirs)})")
    return "Everything it had created has been removed: " + ", ".join(done) + "."


def _exhaustion(exc: BaseException, ctx: UpContext, since_kills: int | None) -> str | None:
    """The resource that ran out behind ``exc``, in words, or None: in ``up`` itself
    (the exception), in a component that said so in its log, or in one the OOM
    killer ended. Read before the rollback removes the logs."""
    lab = ctx.plan.lab
    try:
        found = (getattr(exc, "exhaustion", None) or exhaustion.from_exception(exc)
                 or control.exhaustion_in_lab(lab, since_kills, every_log=True))
        if found is None:
            return None
        nodes = sum(1 for n in ctx.plan.nodes if n.in_cluster)
        return exhaustion.describe(found, nodes, exhaustion.open_files_limit(),
                                   memory_needed(ctx.plan), exhaustion.memory_limit())
    except Exception:  # an explanation that fails must not cost the rollback
        return None


def up(topology: Topology | str | Path, progress: Progress = lambda _: None,
       control_plane: bool = True, ready_timeout: float = 60.0) -> LabState:
    """Bring a lab up from a topology: validated already (``load_topology``), so it is
    parsed once, or a file's path. ``TopologyError`` means nothing was touched.

    Runs ``up_steps`` in order; when one fails, everything created so far is removed
    and ``LabUpError`` names the step. ``control_plane=False`` builds the network only
    (what the network tests and benchmarks measure).
    """
    if not isinstance(topology, Topology):
        topology = load_topology(topology)
    if topology.source is None:
        raise LabError(f"lab {topology.name}: the topology has no file to record; "
                       "load it with netlab.topology.load_topology")
    source = topology.source
    plan = plan_lab(topology)
    lab = plan.lab
    if control_plane and topology.etcd_member_nodes and etcd_binary() is None:
        raise LabError(f"lab {lab} keeps its store in etcd (cluster.store: etcd), and there is "
                       f"no etcd binary on PATH; {INSTALL_HINT}. Nothing was created")
    if control_plane:
        _refuse_if_too_big(plan)
    # Every process of the lab inherits this limit; 1024, a common soft default, is
    # less than the API server of a lab of 60 nodes holds.
    exhaustion.raise_open_files_limit()
    with lab_lock(lab):
        _refuse_if_present(lab)
        make_lab_dir(lab)
        state = LabState(lab=lab, topology=str(source.resolve()),
                         namespaces=list(plan.namespaces), nodes=node_rows(plan),
                         overlay=plan.overlay, spec=_spec(source, lab))
        state.save()  # before anything exists, so a killed up can be cleaned up
        ctx = UpContext(topology, plan, state, progress, ready_timeout)
        since_kills = exhaustion.oom_kills()
        ctx.check = control.exhaustion_check(lab, since_kills)
        reserve = exhaustion.FdReserve()
        try:
            for step in up_steps(topology, control_plane):
                try:
                    step.run(ctx)
                except BaseException as exc:
                    reserve.release()  # the diagnosis and the rollback need descriptors
                    progress(f"failed while {step.name}; removing what was created")
                    interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
                    why = None if interrupted else _exhaustion(exc, ctx, since_kills)
                    undone = _roll_back(state)
                    if interrupted:
                        raise
                    raise LabUpError(step.name, exc, why, undone) from exc
        finally:
            reserve.release()
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
        if state is None and not names and not data_dir(lab).exists():
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
    """The API server's store: SQLite, or etcd with each member's health and which one
    leads (each probed from inside its node's namespace; an etcd outside the lab,
    ``external``, from the host's)."""
    plan = state.plan()
    client = etcd_client(plan)
    if client is None:
        return {"backend": "sqlite", "path": str(data_dir(state.lab) / "store.db")}
    probing = probe and state.phase == "up" and "supervisor" in state.processes
    if client.external:
        members = [{"name": endpoint, "endpoint": endpoint,
                    **(control.etcd_status(client, endpoint, None) if probing else {})}
                   for endpoint in client.endpoints]
        return {"backend": "etcd", "external": True, "members": members}
    present = set(netns.list_netns()) if probe else set()
    members = []
    for node, endpoint in zip(plan.topology.etcd_member_nodes, etcd_endpoints(plan)):
        member = {"name": node.name, "endpoint": endpoint}
        netns_name = plan.node(node.name).netns
        if probing and netns_name in present:
            member.update(control.etcd_status(client, endpoint, netns_name, state.lab,
                                              etcd_member_name(node.name)))
        members.append(member)
    return {"backend": "etcd", "members": members}


def labs() -> list[dict[str, Any]]:
    out = []
    for lab in list_labs():
        state = load_state(lab)
        if state is not None:
            out.append({"lab": lab, "phase": state.phase, "nodes": len(state.nodes),
                        "topology": state.topology, "created": state.created})
    return out
