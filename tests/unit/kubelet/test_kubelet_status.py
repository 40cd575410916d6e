"""Pod status as the kubelet reports it: phase, conditions, container states."""

from __future__ import annotations

from datetime import datetime, timezone

from netlab.node.kubelet.status import (
    ContainerObservation,
    PodObservation,
    container_id,
    merge_conditions,
    pod_status,
    rejected_status,
)
from netlab.node.runtime import ContainerState

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
T0 = datetime(2026, 1, 2, 3, 0, 0, tzinfo=timezone.utc).timestamp()


def pod(policy: str = "Always", containers: tuple[str, ...] = ("app",),
        init: tuple[str, ...] = (), status: dict | None = None, gates: tuple[str, ...] = ()):
    spec = {"restartPolicy": policy,
            "containers": [{"name": n, "image": "netlab/echo"} for n in containers]}
    if init:
        spec["initContainers"] = [{"name": n, "image": "busybox"} for n in init]
    if gates:
        spec["readinessGates"] = [{"conditionType": g} for g in gates]
    return {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1"}, "spec": spec,
            "status": status or {"phase": "Pending", "qosClass": "BestEffort"}}


def running(name: str = "app", n: int = 0) -> ContainerState:
    return ContainerState(name, n, "running", pid=42, started_at=T0)


def exited(name: str = "app", n: int = 0, code: int = 1, reason: str = "Error",
           signal: int | None = None) -> ContainerState:
    return ContainerState(name, n, "exited", started_at=T0, finished_at=T0 + 1, exit_code=code,
                          reason=reason, signal=signal)


def status_of(p: dict, containers: dict, init: dict | None = None, terminal: bool = False,
              ip: str | None = "10.244.1.5") -> dict:
    obs = PodObservation(host_ip="192.168.100.3", pod_ip=ip, sandbox_ready=ip is not None,
                         containers=containers, init=init or {}, terminal=terminal)
    return pod_status(p, obs, NOW)


def conds(status: dict) -> dict:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_a_running_ready_container():
    st = status_of(pod(), {"app": ContainerObservation(running(), ready=True, started=True)})
    assert st["phase"] == "Running"
    assert conds(st) == {"PodReadyToStartContainers": "True", "Initialized": "True",
                         "Ready": "True", "ContainersReady": "True", "PodScheduled": "True"}
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"running": {"startedAt": "2026-01-02T03:00:00Z"}}
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
    assert cs["containerID"] == container_id("uid-1", "app", 0)
    assert st["podIP"] == "10.244.1.5" and st["podIPs"] == [{"ip": "10.244.1.5"}]
    assert st["hostIP"] == "192.168.100.3" and st["qosClass"] == "BestEffort"
    assert [c["type"] for c in st["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]


def test_not_ready_says_which_containers():
    st = status_of(pod(containers=("a", "b")), {
        "a": ContainerObservation(running("a"), ready=True, started=True),
        "b": ContainerObservation(running("b"), ready=False, started=True)})
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [b]"


def test_crash_loop_stays_running_with_the_last_exit_as_last_state():
    waiting = ("CrashLoopBackOff", "back-off 2s restarting failed container=app pod=p")
    st = status_of(pod(), {"app": ContainerObservation(exited(n=3), previous=exited(n=2),
                                                       waiting=waiting)})
    assert st["phase"] == "Running"
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["containerID"] == container_id("uid-1", "app", 3)
    assert cs["restartCount"] == 3 and not cs["ready"]


def test_restart_policies_decide_the_finished_phase():
    assert status_of(pod("Never"), {"app": ContainerObservation(exited(code=2))})[
        "phase"] == "Failed"
    assert status_of(pod("Never"), {"app": ContainerObservation(
        exited(code=0, reason="Completed"))})["phase"] == "Succeeded"
    assert status_of(pod("OnFailure"), {"app": ContainerObservation(
        exited(code=0, reason="Completed"))})["phase"] == "Succeeded"
    assert status_of(pod("OnFailure"), {"app": ContainerObservation(exited(code=1))})[
        "phase"] == "Running"  # about to restart
    # A deleted pod with restartPolicy Always ends Failed when killed (143), not Running.
    killed = exited(code=143, reason="Error")
    assert status_of(pod(), {"app": ContainerObservation(killed)}, terminal=True)[
        "phase"] == "Failed"
    done = status_of(pod("Never"), {"app": ContainerObservation(exited(code=2))})
    assert conds(done)["Ready"] == "False"
    assert next(c for c in done["conditions"] if c["type"] == "Ready")["reason"] == \
        "PodCompleted"


def test_oom_killed_is_reported_with_signal():
    st = status_of(pod("Never"), {"app": ContainerObservation(
        exited(code=137, reason="OOMKilled", signal=9))})
    term = st["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137 and term["signal"] == 9


def test_waiting_for_an_image_and_for_a_sandbox():
    st = status_of(pod(), {"app": ContainerObservation(waiting=("ErrImageNeverPull", "msg"))})
    assert st["phase"] == "Pending"
    assert st["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "ErrImageNeverPull", "message": "msg"}}
    assert "containerID" not in st["containerStatuses"][0]
    st = status_of(pod(), {}, ip=None)
    assert st["phase"] == "Pending" and "podIP" not in st
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert conds(st)["PodReadyToStartContainers"] == "False"


def test_init_containers_gate_the_pod():
    p = pod(init=("setup",))
    st = status_of(p, {}, init={"setup": ContainerObservation(running("setup"))})
    assert st["phase"] == "Pending" and conds(st)["Initialized"] == "False"
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert next(c for c in st["conditions"] if c["type"] == "Initialized")["message"] == \
        "containers with incomplete status: [setup]"
    st = status_of(p, {"app": ContainerObservation(running(), ready=True, started=True)},
                   init={"setup": ContainerObservation(exited("setup", code=0,
                                                              reason="Completed"))})
    assert st["phase"] == "Running" and conds(st)["Initialized"] == "True"
    failed = status_of(pod("Never", init=("setup",)), {},
                       init={"setup": ContainerObservation(exited("setup", code=1))})
    assert failed["phase"] == "Failed"


def test_readiness_gates_hold_ready():
    p = pod(gates=("example.com/feature",))
    st = status_of(p, {"app": ContainerObservation(running(), ready=True, started=True)})
    assert conds(st)["Ready"] == "False" and conds(st)["ContainersReady"] == "True"
    p["status"]["conditions"] = [{"type": "example.com/feature", "status": "True"}]
    st = status_of(p, {"app": ContainerObservation(running(), ready=True, started=True)})
    assert conds(st)["Ready"] == "True"
    assert conds(st)["example.com/feature"] == "True"  # kept: not the kubelet's


def test_transition_times_are_kept_while_a_condition_holds():
    old = [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
           {"type": "Initialized", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    new = [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]
    merged = {c["type"]: c for c in merge_conditions(old, new, "2026-01-01T00:00:00Z")}
    assert merged["Ready"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert merged["Initialized"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_start_time_is_kept_and_rejection_is_failed():
    p = pod(status={"phase": "Running", "startTime": "2020-01-01T00:00:00Z"})
    assert status_of(p, {})["startTime"] == "2020-01-01T00:00:00Z"
    st = rejected_status(pod(), "OutOfpods", "Node didn't have enough resource: pods", NOW)
    assert st["phase"] == "Failed" and st["reason"] == "OutOfpods"


def test_ephemeral_container_statuses_leave_the_pod_phase_and_readiness_alone():
    p = pod()
    p["spec"]["ephemeralContainers"] = [
        {"name": "debugger-a", "image": "busybox", "targetContainerName": "app"},
        {"name": "debugger-b", "image": "busybox"}]
    obs = PodObservation(
        host_ip="192.168.100.3", pod_ip="10.244.1.5", sandbox_ready=True,
        containers={"app": ContainerObservation(running(), ready=True, started=True)},
        ephemeral={"debugger-a": ContainerObservation(exited("debugger-a", code=0,
                                                             reason="Completed"))})
    st = pod_status(p, obs, NOW)
    assert st["phase"] == "Running" and conds(st)["Ready"] == "True"
    done, waiting = st["ephemeralContainerStatuses"]
    assert done["name"] == "debugger-a" and done["restartCount"] == 0 and not done["ready"]
    assert done["state"]["terminated"]["reason"] == "Completed"
    assert done["state"]["terminated"]["exitCode"] == 0
    assert waiting["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert "ephemeralContainerStatuses" not in status_of(
        pod(), {"app": ContainerObservation(running(), ready=True, started=True)})
