"""Containers: start, inspect, stop, list, adopt and exec, all from files on disk.

A container is run by crun under conmon (``oci_runtime``), from an OCI bundle of
its own (``bundle``, ``oci``), in the pod's network and UTS namespaces. Everything
about it lives under its pod directory, ``<pod dir>/<container>/``, one set of
files per attempt ``n`` (the restart count):

- ``n.spec.json``   what to run and where its records are (crun's container id,
  conmon's exit file, the cgroup). Creating it with an exclusive link claims the
  attempt, so two callers never start the same attempt twice;
- ``n.rootfs/``     the bundle: ``config.json``, the root (an overlay of a stored
  image's layers with the writable ``upper``/``work`` beside it, or the host view's
  directory), conmon's pid files and its own messages (``conmon.log``);
- ``n.conmon.json`` conmon's pid (the container's monitor);
- ``n.run.json``    the container's PID 1 (host pid and start time), written once
  crun has created it and it is in its cgroups, just before ``crun start``;
- ``n.exit.json``   exit code, signal, reason (OOMKilled from the memory cgroup's
  OOM count), times: conmon's exit file turned into the record, once;
- ``n.log``         stdout and stderr in the CRI log format, written by conmon.

Because the files are the state, a restarted kubelet (``adopt``) sees every
container as it is, with its restart count, without starting anything.
Pids are only ever signalled after checking their start time against the
record (with psutil), and through a pidfd, so a recycled pid is never hit.
Only attempts ``n`` and ``n-1`` are kept: ``kubectl logs --previous`` reads
``n-1``; older ones are deleted from crun too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab.kernel import mounts
from netlab.kernel.processes import is_running
from netlab.node.runtime import bundle, capabilities, cgroups, oci, oci_runtime, seccomp_cache
from netlab.node.runtime.paths import process_start_time, read_json, runtime_dir, write_json
from netlab.node.runtime.sandbox import Sandbox, list_sandboxes
from netlab.node.runtime.spec import ContainerSpec
from netlab.paths import STATE_ROOT

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT = 15.0  # a loaded 2-core machine can take seconds to start Python
EXIT_RECORD_TIMEOUT = 5.0
POLL = 0.02  # how often to probe a process or a record file while waiting


class ContainerError(RuntimeError):
    pass


class CreateError(ContainerError):
    """The runtime cannot create the container at all (CRI's CreateContainer fails):
    no attempt is recorded, and the kubelet shows ``CreateContainerError``."""


@dataclass
class ContainerState:
    """What ``crictl inspect`` would say, in kubelet's terms."""

    name: str
    restart_count: int
    state: str  # "created" (being started), "running" or "exited"
    pid: int | None = None  # host pid of the container's PID 1 while running
    pid_start_time: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None  # Completed, Error, OOMKilled, StartError, ContainerStatusUnknown
    message: str | None = None
    log_path: str = ""
    warnings: list[str] = field(default_factory=list)  # limits not enforced, and why

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class ExecSpec:
    """How to run a command inside a container: ``subprocess.run(spec.argv, env=spec.env)``."""

    argv: list[str]
    env: dict[str, str]


def _dir(sb: Sandbox, name: str) -> Path:
    return sb.path / name


def _file(sb: Sandbox, name: str, n: int, kind: str) -> Path:
    return _dir(sb, name) / f"{n}.{kind}"


def attempts(sb: Sandbox, name: str) -> list[int]:
    """Restart counts that have a spec on disk, ascending."""
    try:
        entries = os.listdir(_dir(sb, name))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(e.split(".")[0]) for e in entries
                  if e.endswith(".spec.json") and e.split(".")[0].isdigit())


def container_names(sb: Sandbox) -> list[str]:
    try:
        return sorted(e.name for e in sb.path.iterdir() if e.is_dir() and attempts(sb, e.name))
    except FileNotFoundError:
        return []


def _conmon_alive(sb: Sandbox, name: str, n: int) -> bool:
    """Whether the attempt's conmon (its monitor) still runs."""
    rec = read_json(_file(sb, name, n, "conmon.json")) or {}
    return bool(rec.get("pid")) and is_running(rec["pid"], rec.get("startTime"))


def _collect_exit(sb: Sandbox, name: str, n: int, spec: dict[str, Any],
                  run: dict[str, Any]) -> dict[str, Any] | None:
    """conmon's exit file as the attempt's exit record (``n.exit.json``, written once):
    the status, the signal of a 128+N status, and OOMKilled when the container's
    memory cgroup counted an OOM kill during this attempt."""
    path = spec.get("conmonExitFile")
    if not path:
        return None
    try:
        code = int(Path(path).read_text().strip())
        finished = Path(path).stat().st_mtime
    except (OSError, ValueError):
        return None
    cg = cgroups.Cgroup.from_json(spec.get("cgroup"))
    oom_after = cgroups.oom_kills(cg) if cg is not None else None
    oom_before = run.get("oomBefore")
    oom = oom_before is not None and oom_after is not None and oom_after > oom_before
    record = {"restartCount": n, "exitCode": code, "signal": code - 128 if code > 128 else None,
              "reason": "Completed" if code == 0 else ("OOMKilled" if oom else "Error"),
              "message": "", "startedAt": run.get("startedAt"), "finishedAt": finished,
              "oomKilled": oom}
    if not _claim(_file(sb, name, n, "exit.json"), record):
        return read_json(_file(sb, name, n, "exit.json"))
    return record


def container_state(sb: Sandbox, name: str, restart_count: int | None = None,
                    settle: float = 1.0) -> ContainerState | None:
    """The state of attempt ``restart_count`` (default: the latest), from its files
    and a liveness check of the recorded pids."""
    if restart_count is None:
        have = attempts(sb, name)
        if not have:
            return None
        restart_count = have[-1]
    n = restart_count
    spec = read_json(_file(sb, name, n, "spec.json"))
    if spec is None:
        return None
    state = ContainerState(name=name, restart_count=n, state="created",
                           log_path=str(_file(sb, name, n, "log")),
                           warnings=list(spec.get("warnings") or []))
    run = read_json(_file(sb, name, n, "run.json")) or {}
    state.pid_start_time = run.get("startTime")
    state.started_at = run.get("startedAt")
    deadline = time.monotonic() + settle
    while True:
        ended = read_json(_file(sb, name, n, "exit.json")) or _collect_exit(sb, name, n, spec, run)
        if ended is not None:
            state.state = "exited"
            state.exit_code, state.signal = ended.get("exitCode"), ended.get("signal")
            state.reason, state.message = ended.get("reason"), ended.get("message") or None
            state.started_at = ended.get("startedAt", state.started_at)
            state.finished_at = ended.get("finishedAt")
            return state
        if run and is_running(run["pid"], run.get("startTime")):
            state.state, state.pid = "running", run["pid"]
            return state
        monitor = _conmon_alive(sb, name, n)
        if not run and (monitor or _launching(sb, name, n)):
            return state  # still being started
        if monitor and time.monotonic() < deadline:
            time.sleep(POLL)  # PID 1 just died; conmon is writing its exit file
            continue
        break
    # Neither a live process nor an exit record: conmon died (killed) first.
    state.state, state.exit_code, state.finished_at = "exited", 137, time.time()
    if run:
        state.reason = "ContainerStatusUnknown"
        state.message = "the container's conmon died before recording how it exited"
    else:
        state.exit_code = 128
        state.reason = "StartError"
        state.message = "the container was never started: " + _conmon_log_tail(sb, name, n)
    return state


def _launching(sb: Sandbox, name: str, n: int) -> bool:
    """Claimed so recently that the start may still be under way (another thread or
    process is creating it): not a start error, not yet."""
    if _file(sb, name, n, "run.json").exists():
        return False
    try:
        claimed = _file(sb, name, n, "spec.json").stat().st_mtime
    except FileNotFoundError:
        return False
    return time.time() - claimed < START_TIMEOUT


def _conmon_log_tail(sb: Sandbox, name: str, n: int, limit: int = 400) -> str:
    try:
        text = (_file(sb, name, n, "rootfs") / "conmon.log").read_text(errors="replace")
    except OSError:
        return "no conmon log"
    return text.strip()[-limit:] or "no output"


def list_containers(sb: Sandbox) -> list[ContainerState]:
    out = []
    for name in container_names(sb):
        st = container_state(sb, name)
        if st is not None:
            out.append(st)
    return out


def _running_attempt(sb: Sandbox, name: str) -> ContainerState | None:
    for n in reversed(attempts(sb, name)):
        st = container_state(sb, name, n, settle=0)
        if st is not None and st.state in ("running", "created"):
            return st
    return None


def _claim(path: Path, data: dict[str, Any]) -> bool:
    """Write ``path`` only if it does not exist yet, atomically (link is exclusive)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_native_id()}.tmp")
    write_json(tmp, data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def _forget(lab: str, spec: dict[str, Any]) -> None:
    """crun's record of the attempt and conmon's exit file."""
    cid = spec.get("containerId")
    if cid:
        oci_runtime.delete(lab, cid)
        oci_runtime.forget_exit(lab, cid)


def _prune(lab: str, sb: Sandbox, name: str, keep_from: int) -> None:
    for n in attempts(sb, name):
        if n < keep_from:
            _forget(lab, read_json(_file(sb, name, n, "spec.json")) or {})
            for kind in ("spec.json", "conmon.json", "run.json", "exit.json", "log"):
                with contextlib.suppress(FileNotFoundError):
                    _file(sb, name, n, kind).unlink()
            # The bundle and the container's writable layer go with it (its overlay
            # went with conmon's mount namespace when the container exited).
            mounts.unmount_below(str(_file(sb, name, n, "rootfs")))  # its volumes' binds
            shutil.rmtree(_file(sb, name, n, "rootfs"), ignore_errors=True)


def forget_all(lab: str, sb: Sandbox) -> None:
    """Delete crun's records of every attempt of the pod (the pod is going away)."""
    for name in container_names(sb):
        for n in attempts(sb, name):
            _forget(lab, read_json(_file(sb, name, n, "spec.json")) or {})


def start_container(lab: str, sb: Sandbox, spec: ContainerSpec, restart_count: int,
                    host: cgroups.CgroupHost,
                    timeout: float = START_TIMEOUT) -> ContainerState:
    """Start attempt ``restart_count`` of the container and return its state once it
    runs (or has failed to start). Idempotent: asking again for an attempt that
    exists returns it, and nothing starts while another attempt still runs."""
    if not spec.name or "/" in spec.name or spec.name.startswith("."):
        raise ContainerError(f"invalid container name {spec.name!r}")
    if not spec.argv:
        raise ContainerError(f"container {spec.name} has no command to run")
    if sb.state != "ready":
        raise ContainerError(f"the sandbox of pod {sb.namespace}/{sb.name} is not ready")
    live = _running_attempt(sb, spec.name)
    if live is not None and live.restart_count != restart_count:
        raise ContainerError(f"container {spec.name} is still running as attempt "
                             f"{live.restart_count}; stop it first")
    n = restart_count
    if not _file(sb, spec.name, n, "spec.json").exists():
        try:
            bundle.check_propagation(spec)
        except oci.OciConfigError as err:
            raise CreateError(str(err)) from None
    cdir = _dir(sb, spec.name)
    cdir.mkdir(parents=True, exist_ok=True)
    cg: cgroups.Cgroup | None = None
    warnings: list[str] = []
    if host.version != "none":
        cg, warnings = cgroups.create(host, lab, sb.uid, spec.name)
        warnings += cgroups.set_limits(host, cg, spec.cpu_limit_millis, spec.memory_limit_bytes,
                                       spec.cpu_request_millis)
    elif spec.cpu_limit_millis is not None or spec.memory_limit_bytes is not None:
        warnings = [f"limits not enforced: {r}" for r in dict.fromkeys(host.missing.values())]
    filtered = False
    if cg is not None:
        try:
            filtered = cgroups.restrict_devices(cg, spec.privileged)
        except OSError as err:
            warnings.append(f"device nodes not filtered: {err}")
    if not filtered and not spec.privileged and not _asks_for(spec, "MKNOD"):
        # Nothing filters device nodes here: a node made for the host's disk would
        # open, so the container does not get to make one.
        spec = dataclasses.replace(spec, cap_drop=(*spec.cap_drop, "MKNOD"))
    kept = spec.kept_capabilities()
    cid = f"{sb.uid}-{spec.name}-{n}"
    record = {
        "pod": {"namespace": sb.namespace, "name": sb.name, "uid": sb.uid},
        "container": spec.name, "restartCount": n, "argv": spec.argv,
        "containerId": cid, "stopSignalsBlocked": spec.stop_signals_blocked,
        # None: every capability (privileged); else the names the container keeps.
        "capabilities": None if kept is None else sorted(kept),
        "workingDir": spec.working_dir, "cgroup": cg.to_json() if cg else None,
        "user": spec.process_user, "imageId": spec.image_id,
        "noNewPrivs": spec.no_new_privs, "readOnlyRoot": spec.read_only_root,
        "seccomp": spec.seccomp, "warnings": warnings,
        "stdin": spec.stdin, "stdinOnce": spec.stdin_once, "tty": spec.tty,
        "logFile": str(_file(sb, spec.name, n, "log")),
        "bundle": str(_file(sb, spec.name, n, "rootfs")),
        "conmonExitFile": str(oci_runtime.exits_dir(lab) / cid),
    }
    spec_path = _file(sb, spec.name, n, "spec.json")
    if _claim(spec_path, record):
        _prune(lab, sb, spec.name, n - 1)
        _launch(lab, sb, spec, n, cid, cg)
    return _await_start(sb, spec.name, n, timeout)


def _launch(lab: str, sb: Sandbox, spec: ContainerSpec, n: int, cid: str,
            cg: cgroups.Cgroup | None) -> None:
    """Write the bundle, have conmon create the container, put it into its cgroups,
    start it, and record its pid (``n.run.json``); a failure is a start error."""
    missing = oci_runtime.available()
    if missing is not None:
        _record_start_error(sb, spec.name, n, f"crun and conmon are {missing}")
        return
    directory = _file(sb, spec.name, n, "rootfs")
    filters = seccomp_cache.CompiledFilters(runtime_dir(lab) / "seccomp")
    try:
        config, overlay = bundle.prepare(sb, spec, directory, filters=filters)
    except (oci.OciConfigError, OSError) as err:
        _record_start_error(sb, spec.name, n, str(err))
        return
    oom_before = cgroups.oom_kills(cg) if cg is not None else None
    # cgroup v1: the container is born in its groups (oci_runtime.in_cgroups); v2 moves
    # it below, before its command runs.
    born_in = tuple(cg.unique_dirs()) if cg is not None and cg.version == "v1" else ()
    created = oci_runtime.create(lab, cid, spec.name, directory, _file(sb, spec.name, n, "log"),
                                 directory / "pid", directory / "conmon.pid", overlay,
                                 stdio=tuple(oci_runtime.stdio_args(spec.stdin, spec.stdin_once,
                                                                    spec.tty)),
                                 log_size_max=spec.log_size_max,
                                 cgroup_dirs=born_in)
    if created.pid is None:
        _record_start_error(sb, spec.name, n, created.message)
        return
    seccomp = config["linux"].get("seccomp")
    if seccomp is not None and seccomp_cache.ANNOTATION not in config.get("annotations", {}):
        filters.keep(seccomp, oci_runtime.crun_root(lab) / cid / "seccomp.bpf")
    write_json(_file(sb, spec.name, n, "conmon.json"), {
        "pid": created.conmon_pid, "startTime": process_start_time(created.conmon_pid)
        if created.conmon_pid else None})
    try:
        if cg is not None and not born_in:  # before its command runs: nothing escapes
            cgroups.add_process(cg, created.pid)
    except OSError as err:
        oci_runtime.delete(lab, cid)
        _record_start_error(sb, spec.name, n, f"cgroup: {err}")
        return
    started = time.time()
    write_json(_file(sb, spec.name, n, "run.json"), {
        "pid": created.pid, "startTime": process_start_time(created.pid),
        "startedAt": started, "oomBefore": oom_before})
    failure = oci_runtime.start(lab, cid)
    if failure is not None:
        oci_runtime.delete(lab, cid)
        _record_start_error(sb, spec.name, n, failure)


def _record_start_error(sb: Sandbox, name: str, n: int, message: str) -> None:
    write_json(_file(sb, name, n, "exit.json"), {
        "restartCount": n, "exitCode": 128, "signal": None, "reason": "StartError",
        "message": message, "startedAt": None, "finishedAt": time.time(), "oomKilled": False})


def _await_start(sb: Sandbox, name: str, n: int, timeout: float) -> ContainerState:
    deadline = time.monotonic() + timeout
    while True:
        st = container_state(sb, name, n)
        if st is None:
            raise ContainerError(f"attempt {n} of container {name} has no record")
        if st.state != "created":
            return st
        if time.monotonic() > deadline:
            break
        time.sleep(POLL)
    # The start hangs (a blocked mount, a stuck disk): give up on it, and on a
    # container it may have exec'd at the last moment.
    for kind in ("run.json", "conmon.json"):
        rec = read_json(_file(sb, name, n, kind)) or {}
        _signal_verified(rec.get("pid"), rec.get("startTime"), signal.SIGKILL)
    _record_start_error(sb, name, n, f"the container did not start within {timeout:.0f}s")
    return container_state(sb, name, n) or ContainerState(name, n, "exited")


def _signal_verified(pid: int | None, start_time: float | None, sig: int) -> bool:
    """Signal ``pid`` only if it is still the process that started at ``start_time``.

    The pidfd pins the process: once the check passes on it, a recycled pid
    cannot receive the signal.
    """
    if not pid or start_time is None:
        return False
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError:
            pidfd = None
    try:
        if not is_running(pid, start_time):
            return False
        if pidfd is not None and hasattr(signal, "pidfd_send_signal"):
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _wait_exit(sb: Sandbox, name: str, n: int, pid: int, start_time: float,
               timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _exit_recorded(sb, name, n) or not is_running(pid, start_time):
            return True
        time.sleep(POLL)
    return False


def _exit_recorded(sb: Sandbox, name: str, n: int) -> bool:
    """Ours (``n.exit.json``) or conmon's exit file exists."""
    if _file(sb, name, n, "exit.json").exists():
        return True
    spec = read_json(_file(sb, name, n, "spec.json")) or {}
    return bool(spec.get("conmonExitFile")) and os.path.exists(spec["conmonExitFile"])


SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler (``SigCgt`` in its status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & SIGTERM_BIT)
    except (OSError, ValueError):
        pass
    return True  # gone or unreadable: nothing to wait for


def _await_handler(pid: int, start_time: float, deadline: float) -> None:
    """A built-in image is a Python program whose SIGTERM handler comes after
    interpreter start-up; until then the kernel would drop a SIGTERM to it (a PID
    namespace's init ignores signals it does not handle). The stop is deferred
    until the handler is there, instead of letting the kernel drop it."""
    while time.monotonic() < deadline and is_running(pid, start_time) \
            and not _catches_sigterm(pid):
        time.sleep(POLL)


def stop_container(sb: Sandbox, name: str, grace_seconds: float) -> ContainerState | None:
    """Kubernetes' termination: SIGTERM to the container's PID 1, up to
    ``grace_seconds`` for it to exit, then SIGKILL (which, sent to a PID
    namespace's init, kills everything in it). Returns the final state.

    As in any container runtime, a PID 1 without a SIGTERM handler ignores it,
    so such a container takes the whole grace period.
    """
    st = container_state(sb, name)
    if st is None or st.state == "exited":
        return st
    if st.state == "created":
        st = _await_start(sb, name, st.restart_count, START_TIMEOUT)
        if st.state != "running":
            return st
    assert st.pid is not None and st.pid_start_time is not None
    n, pid, started = st.restart_count, st.pid, st.pid_start_time
    killed = False
    spec = read_json(_file(sb, name, n, "spec.json")) or {}
    grace_end = time.monotonic() + grace_seconds
    if grace_seconds > 0 and spec.get("stopSignalsBlocked"):
        _await_handler(pid, started, grace_end)
    if grace_seconds > 0 and _signal_verified(pid, started, signal.SIGTERM):
        _wait_exit(sb, name, n, pid, started, max(0.0, grace_end - time.monotonic()))
    if is_running(pid, started):
        killed = _signal_verified(pid, started, signal.SIGKILL)
        _wait_exit(sb, name, n, pid, started, EXIT_RECORD_TIMEOUT)
    deadline = time.monotonic() + EXIT_RECORD_TIMEOUT
    exit_file = _file(sb, name, n, "exit.json")
    while not _exit_recorded(sb, name, n) and _conmon_alive(sb, name, n) \
            and time.monotonic() < deadline:
        time.sleep(POLL)  # conmon is writing the exit file
    if not _exit_recorded(sb, name, n):  # conmon is gone: record the stop ourselves
        write_json(exit_file, {
            "restartCount": n, "exitCode": 137 if killed else 143,
            "signal": int(signal.SIGKILL if killed else signal.SIGTERM), "reason": "Error",
            "message": "stopped; conmon was not there to record the exit",
            "startedAt": st.started_at, "finishedAt": time.time(), "oomKilled": False})
    return container_state(sb, name, n)


def stop_all(sb: Sandbox, grace_seconds: float) -> list[ContainerState]:
    """Stop every running container of the pod in parallel (each gets the full grace)."""
    names = [st.name for st in list_containers(sb) if st.state != "exited"]
    results: list[ContainerState | None] = []

    def stop(name: str) -> None:
        results.append(stop_container(sb, name, grace_seconds))

    threads = [threading.Thread(target=stop, args=(n,), daemon=True) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def kill_recorded(sb: Sandbox) -> list[int]:
    """SIGKILL every recorded container PID 1 of the pod (verified pids): no grace,
    the lab is going away. Their conmons record the exit and leave; only a conmon
    that does not leave by itself is killed too."""
    killed = []

    def records(kind: str) -> list[tuple[int, float]]:
        recs = [read_json(_file(sb, name, n, kind)) or {}
                for name in container_names(sb) for n in attempts(sb, name)]
        return [(r["pid"], r["startTime"]) for r in recs if r.get("pid")]

    for pid, started in records("run.json"):
        if _signal_verified(pid, started, signal.SIGKILL):
            killed.append(pid)
    if not wait_conmons(sb, timeout=3.0):
        for pid, started in records("conmon.json"):
            if _signal_verified(pid, started, signal.SIGKILL):
                killed.append(pid)
        wait_conmons(sb, timeout=3.0)
    return killed


def wait_conmons(sb: Sandbox, timeout: float) -> bool:
    """Wait until every conmon of the pod has exited; True if they all did.

    An exited conmon counts as gone while still a zombie: it is init's to reap,
    and some inits (this project's CI VMs) take over a second to do it.
    """
    recs = [read_json(_file(sb, name, n, "conmon.json")) or {}
            for name in container_names(sb) for n in attempts(sb, name)]
    live = [(r["pid"], r.get("startTime")) for r in recs if r.get("pid")]
    deadline = time.monotonic() + timeout
    while live:
        live = [(pid, t) for pid, t in live if is_running(pid, t)]
        if not live:
            break
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def _asks_for(spec: ContainerSpec, capability: str) -> bool:
    """Whether ``capabilities.add`` names ``capability``, in any spelling, or ALL."""
    added = set()
    for name in spec.cap_add:
        with contextlib.suppress(capabilities.CapabilityError):
            added.add(capabilities.normalise(name))
    return bool(added & {capability, "ALL"})


def exec_spec(sb: Sandbox, name: str, argv: list[str]) -> ExecSpec:
    """How to run ``argv`` inside the running container ``name`` (its net, uts,
    pid and mount namespaces, its cgroup, its env), for ``netlab exec``."""
    st = container_state(sb, name)
    if st is None or not st.running:
        raise ContainerError(f"container {name} of pod {sb.namespace}/{sb.name} is not running")
    spec = read_json(_file(sb, name, st.restart_count, "spec.json")) or {}
    cid = spec.get("containerId")
    if not cid:
        raise ContainerError(f"container {name} of pod {sb.namespace}/{sb.name} has no "
                             "crun record")
    lab = sb.path.parent.parent.name  # /run/netlab/<lab>/pods/<pod>
    # crun exec --process: the container's own process (user and supplementary groups,
    # capabilities, no_new_privs, cwd, env) running argv; crun adds the namespaces and
    # the seccomp profile. The process is handed over on a here-document: no file to
    # clean up, and a JSON line cannot end it.
    config = read_json(Path(spec.get("bundle") or "/nonexistent") / "config.json") or {}
    process = dict(config.get("process") or {})
    process.pop("consoleSize", None)
    # The caller gives the command its stdio (a pty of its own for kubectl exec -t).
    process.update(args=list(argv), terminal=False)
    cg = cgroups.Cgroup.from_json(spec.get("cgroup"))
    # With its cgroup manager off, crun exec joins no cgroup: the launcher moves itself
    # into the container's groups first, so the command counts against the container's
    # limits and usage, as in CRI-O.
    script = ('for d in $0; do echo $$ > "$d/cgroup.procs" || exit 125; done; '
              f'exec "$@" {oci_runtime.EXEC_PROCESS_FD}<<\'NLPROCESS\'\n'
              f'{json.dumps(process)}\nNLPROCESS\n')
    groups = " ".join(cg.unique_dirs()) if cg is not None else ""
    return ExecSpec(argv=["sh", "-c", script, groups, *oci_runtime.exec_argv(lab, cid)],
                    env={"PATH": DEFAULT_PATH})


@dataclass(frozen=True)
class AttachInfo:
    """How to attach to a running container: conmon's socket directory (``attach``
    in it) and control fifo, and the container's stdio settings."""

    socket_dir: Path
    ctl: Path
    stdin: bool
    stdin_once: bool
    tty: bool
    restart_count: int


def attach_info(sb: Sandbox, name: str) -> AttachInfo | None:
    """The running attempt's attach endpoints; None when it is not running."""
    st = container_state(sb, name, settle=0)
    if st is None or not st.running:
        return None
    spec = read_json(_file(sb, name, st.restart_count, "spec.json")) or {}
    cid = spec.get("containerId")
    if not cid:
        return None
    lab = sb.path.parent.parent.name  # /run/netlab/<lab>/pods/<pod>
    return AttachInfo(socket_dir=oci_runtime.attach_socket_dir(lab, cid),
                      ctl=Path(spec.get("bundle") or "/nonexistent") / "ctl",
                      stdin=bool(spec.get("stdin")), stdin_once=bool(spec.get("stdinOnce")),
                      tty=bool(spec.get("tty")), restart_count=st.restart_count)


def container_cgroup(sb: Sandbox, name: str, st: ContainerState | None = None
                     ) -> cgroups.Cgroup | None:
    """The container's cgroup, from the record of its latest attempt (``st``, when the
    caller has read its state already)."""
    st = st or container_state(sb, name, settle=0)
    if st is None:
        return None
    spec = read_json(_file(sb, name, st.restart_count, "spec.json")) or {}
    return cgroups.Cgroup.from_json(spec.get("cgroup"))


def log_path(sb: Sandbox, name: str, previous: bool = False) -> Path | None:
    """The log of the current attempt, or of the one before (``--previous``)."""
    have = attempts(sb, name)
    if previous:
        have = have[:-1]
    return _file(sb, name, have[-1], "log") if have else None


def image_users(image_id: str) -> list[str]:
    """``lab/namespace/pod/container`` of every running container, in any lab on this
    host, whose root filesystem is the stored image ``image_id``: what ``netlab image
    rm`` must not pull the layers from under."""
    users = []
    try:
        labs = sorted(p.name for p in STATE_ROOT.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []
    for lab in labs:
        for sb in list_sandboxes(lab):
            for name in container_names(sb):
                st = container_state(sb, name, settle=0)
                if st is None or st.state == "exited":
                    continue
                spec = read_json(_file(sb, name, st.restart_count, "spec.json")) or {}
                if spec.get("imageId") == image_id:
                    users.append(f"{lab}/{sb.namespace}/{sb.name}/{name}")
    return users
