"""Pod status, as the kubelet reports it: computed from what the runtime observes.

``pod_status`` turns a ``PodObservation`` (the sandbox's IP, each container's
current and previous attempt as the runtime reports them, waiting reasons the
kubelet chose, probe results) into the ``status`` Kubernetes clients expect:

- ``phase``: kubelet's ``getPhase`` (a container in back-off counts as stopped,
  so a crash-looping pod with ``restartPolicy: Always`` stays Running);
- ``conditions``: PodReadyToStartContainers, Initialized, ContainersReady,
  Ready, PodScheduled, each ``lastTransitionTime`` kept while its status holds;
- ``hostIP(s)``, ``podIP(s)``, ``startTime``, ``qosClass``;
- ``containerStatuses`` and ``initContainerStatuses``: state running, waiting
  or terminated (reason, exitCode, signal, times), ``lastState``,
  ``restartCount``, ``ready``, ``started``, ``containerID``, ``image(ID)``.

Pure: timestamps come in, nothing is read, so every rule is unit-tested.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional, Protocol

from netlab.api.timefmt import format_time
from netlab.api.views import Container, meta_of, pod_spec, status_of
from netlab.node.kubelet.restarts import ALWAYS, NEVER

RUNNING, PENDING, SUCCEEDED, FAILED = "Running", "Pending", "Succeeded", "Failed"
TERMINAL_PHASES = (SUCCEEDED, FAILED)
CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
CRASH_LOOP = "CrashLoopBackOff"
CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                   "PodScheduled")


class RuntimeContainer(Protocol):
    """What the runtime reports about one attempt (``runtime.ContainerState``)."""

    name: str
    restart_count: int
    state: str
    started_at: Optional[float]
    finished_at: Optional[float]
    exit_code: Optional[int]
    signal: Optional[int]
    reason: Optional[str]
    message: Optional[str]


@dataclass
class ContainerObservation:
    current: Optional[RuntimeContainer] = None  # the latest attempt, if any
    previous: Optional[RuntimeContainer] = None  # the attempt before it, if kept
    waiting: Optional[tuple[str, str]] = None  # (reason, message) the kubelet chose
    ready: bool = False  # readiness (probe result, or running without a probe)
    started: bool = False  # startup probe passed (or none), and running


@dataclass
class PodObservation:
    host_ip: str
    pod_ip: Optional[str] = None
    sandbox_ready: bool = False
    init: dict[str, ContainerObservation] = field(default_factory=dict)
    containers: dict[str, ContainerObservation] = field(default_factory=dict)
    ephemeral: dict[str, ContainerObservation] = field(default_factory=dict)
    terminal: bool = False  # torn down or finished: no container will run again
    start_time: Optional[str] = None  # when the kubelet first took the pod


def container_id(uid: str, name: str, restart_count: int) -> str:
    """A stable, containerd-shaped id: the same after a kubelet restart."""
    digest = hashlib.sha256(f"{uid}/{name}/{restart_count}".encode()).hexdigest()
    return f"netlab://{digest}"


def _ts(epoch: Optional[float]) -> Optional[str]:
    if epoch is None:
        return None
    return format_time(datetime.fromtimestamp(epoch, timezone.utc))


def _terminated(st: RuntimeContainer, uid: str) -> dict[str, Any]:
    out: dict[str, Any] = {"exitCode": st.exit_code if st.exit_code is not None else 0}
    if st.signal:
        out["signal"] = st.signal
    if st.reason:
        out["reason"] = st.reason
    if st.message:
        out["message"] = st.message
    out["startedAt"] = _ts(st.started_at)
    out["finishedAt"] = _ts(st.finished_at)
    out["containerID"] = container_id(uid, st.name, st.restart_count)
    return out


def container_status(spec: Container, obs: ContainerObservation, uid: str,
                     default_waiting: str, image_id: str) -> dict[str, Any]:
    """One entry of ``containerStatuses`` (or ``initContainerStatuses``)."""
    cur, prev = obs.current, obs.previous
    name = spec.get("name", "")
    out: dict[str, Any] = {"name": name, "image": spec.get("image", ""), "imageID": "",
                           "ready": False, "restartCount": cur.restart_count if cur else 0,
                           "started": False, "state": {}, "lastState": {}}
    last = prev
    if obs.waiting is not None:
        reason, message = obs.waiting
        waiting = {"reason": reason}
        if message:
            waiting["message"] = message
        out["state"] = {"waiting": waiting}
        if cur is not None and cur.state == "exited":
            last = cur  # waiting to restart: the exit just seen is the last state
    elif cur is None or cur.state == "created":
        out["state"] = {"waiting": {"reason": default_waiting}}
    elif cur.state == "running":
        out["state"] = {"running": {"startedAt": _ts(cur.started_at)}}
        out["ready"] = obs.ready
        out["started"] = obs.started
    else:
        out["state"] = {"terminated": _terminated(cur, uid)}
    if cur is not None and cur.state != "created":
        out["containerID"] = container_id(uid, name, cur.restart_count)
        out["imageID"] = image_id
    if last is not None and last.state == "exited":
        out["lastState"] = {"terminated": _terminated(last, uid)}
    return out


def _classify(status: dict[str, Any]) -> str:
    state = status.get("state") or {}
    if "running" in state:
        return "running"
    if "terminated" in state:
        return "succeeded" if state["terminated"].get("exitCode") == 0 else "stopped"
    if "waiting" in state:
        last = (status.get("lastState") or {}).get("terminated")
        return "stopped" if last is not None else "waiting"
    return "unknown"


def init_summary(init_statuses: list[dict[str, Any]]) -> tuple[int, int, list[str]]:
    """(pending, failed, names not yet done) over init container statuses."""
    pending = failed = 0
    incomplete = []
    for st in init_statuses:
        state = st.get("state") or {}
        term = state.get("terminated")
        last = (st.get("lastState") or {}).get("terminated")
        if term is not None and term.get("exitCode") == 0:
            continue
        incomplete.append(st.get("name", ""))
        if term is not None:
            failed += 1
        elif "waiting" in state and last is not None:
            if last.get("exitCode") != 0:
                failed += 1
        else:
            pending += 1
    return pending, failed, incomplete


def pod_phase(restart_policy: str, init_statuses: list[dict[str, Any]],
              statuses: list[dict[str, Any]], terminal: bool) -> str:
    """kubelet's getPhase."""
    pending_init, failed_init, _ = init_summary(init_statuses)
    if failed_init and restart_policy == NEVER:
        return FAILED
    counts = {"running": 0, "stopped": 0, "succeeded": 0, "waiting": 0, "unknown": 0}
    for st in statuses:
        kind = _classify(st)
        if kind == "succeeded":
            counts["stopped"] += 1
            counts["succeeded"] += 1
        else:
            counts[kind] += 1
    if pending_init or failed_init or counts["waiting"]:
        return PENDING
    if counts["running"] and not counts["unknown"]:
        return RUNNING
    if not counts["running"] and counts["stopped"] and not counts["unknown"]:
        all_ok = counts["stopped"] == counts["succeeded"]
        if terminal:
            return SUCCEEDED if all_ok else FAILED
        if restart_policy == ALWAYS:
            return RUNNING
        if all_ok:
            return SUCCEEDED
        if restart_policy == NEVER:
            return FAILED
        return RUNNING
    return PENDING


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": "True" if ok else "False",
                            "lastProbeTime": None}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def pod_conditions(pod: dict[str, Any], phase: str, sandbox_ready: bool,
                   init_statuses: list[dict[str, Any]],
                   statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conditions kubelet owns, before transition times are merged in."""
    done = phase in TERMINAL_PHASES
    _, _, incomplete = init_summary(init_statuses)
    unready = [s.get("name", "") for s in statuses if not s.get("ready")]
    conds = [_condition("PodReadyToStartContainers", sandbox_ready and not done)]
    if done:
        conds.append(_condition("Initialized", True, "PodCompleted"))
        conds.append(_condition("Ready", False, "PodCompleted"))
        conds.append(_condition("ContainersReady", False, "PodCompleted"))
    else:
        conds.append(_condition("Initialized", not incomplete, *(
            ("ContainersNotInitialized", f"containers with incomplete status: "
             f"[{' '.join(incomplete)}]") if incomplete else ())))
        gates = [g.get("conditionType") for g in pod_spec(pod).get("readinessGates")
                 or [] if isinstance(g, dict)]
        current = {c.get("type"): c.get("status") for c in
                   status_of(pod).get("conditions") or []}
        gates_off = [g for g in gates if current.get(g) != "True"]
        if unready:
            msg = f"containers with unready status: [{' '.join(unready)}]"
            conds.append(_condition("Ready", False, "ContainersNotReady", msg))
            conds.append(_condition("ContainersReady", False, "ContainersNotReady", msg))
        else:
            if gates_off:
                conds.append(_condition("Ready", False, "ReadinessGatesNotReady",
                                        f"corresponding condition of pod readiness gate "
                                        f'"{gates_off[0]}" does not exist.'))
            else:
                conds.append(_condition("Ready", True))
            conds.append(_condition("ContainersReady", True))
    conds.append(_condition("PodScheduled", True))
    return conds


def merge_conditions(old: list[dict[str, Any]], new: list[dict[str, Any]], now: str,
                     order: tuple[str, ...] = CONDITION_ORDER) -> list[dict[str, Any]]:
    """Keep ``lastTransitionTime`` where a condition's status did not change, and
    conditions the kubelet does not own (readiness gates, DisruptionTarget); sorted
    as ``order`` (the owned ones in the order given when empty)."""
    before = {c.get("type"): c for c in old or [] if isinstance(c, dict)}
    owned = {c["type"] for c in new}
    out = []
    for cond in new:
        prev = before.get(cond["type"])
        when = prev.get("lastTransitionTime") if prev and prev.get("status") == \
            cond["status"] else None
        out.append({**cond, "lastTransitionTime": when or now})
    out += [c for t, c in before.items() if t not in owned]
    if not order:
        return out
    rank: dict[Any, int] = {t: i for i, t in enumerate(order)}
    return sorted(out, key=lambda c: rank.get(c.get("type"), len(rank)))


def pod_status(pod: dict[str, Any], obs: PodObservation, now: datetime,
               image_ids: dict[str, str] | None = None) -> dict[str, Any]:
    """The full ``status`` of ``pod`` as observed."""
    meta, spec = meta_of(pod), pod_spec(pod)
    old = status_of(pod)
    uid = meta.get("uid", "")
    ids = image_ids or {}
    policy = spec.get("restartPolicy") or ALWAYS
    init_specs = spec.get("initContainers") or []
    init_statuses = [container_status(c, obs.init.get(c.get("name") or "", ContainerObservation()),
                                      uid, CONTAINER_CREATING, ids.get(c.get("image", ""), ""))
                     for c in init_specs]
    _, _, incomplete = init_summary(init_statuses)
    default_waiting = POD_INITIALIZING if incomplete else CONTAINER_CREATING
    statuses = [container_status(c, obs.containers.get(c.get("name") or "", ContainerObservation()),
                                 uid, default_waiting, ids.get(c.get("image", ""), ""))
                for c in spec.get("containers") or []]
    phase = pod_phase(policy, init_statuses, statuses, obs.terminal)
    stamp = format_time(now)
    status: dict[str, Any] = {"phase": phase}
    status["conditions"] = merge_conditions(
        old.get("conditions") or [],
        pod_conditions(pod, phase, obs.sandbox_ready, init_statuses, statuses), stamp)
    status["hostIP"] = obs.host_ip
    status["hostIPs"] = [{"ip": obs.host_ip}]
    if obs.pod_ip:
        status["podIP"] = obs.pod_ip
        status["podIPs"] = [{"ip": obs.pod_ip}]
    status["startTime"] = old.get("startTime") or obs.start_time or stamp
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    ephemeral = [container_status(c, obs.ephemeral.get(c.get("name") or "",
                                                       ContainerObservation()),
                                  uid, CONTAINER_CREATING, ids.get(c.get("image", ""), ""))
                 for c in spec.get("ephemeralContainers") or []]
    if ephemeral:  # never restarted, never ready, as the kubelet reports them
        status["ephemeralContainerStatuses"] = ephemeral
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    return status


def rejected_status(pod: dict[str, Any], reason: str, message: str,
                    now: datetime) -> dict[str, Any]:
    """A pod the node will not run (admission failed, e.g. OutOfpods): Failed."""
    old = status_of(pod)
    status = {k: v for k, v in old.items() if k in ("qosClass", "conditions", "startTime")}
    status.update(phase=FAILED, reason=reason, message=message)
    status.setdefault("startTime", format_time(now))
    return status
