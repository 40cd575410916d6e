"""Containers: start, inspect, stop, list, adopt and exec, all from files on disk.

A container is a process tree the shim (``netlab.node.runtime.shim``) starts
in the pod's namespaces. Everything about it lives under its pod directory,
``<pod dir>/<container>/``, one set of files per attempt ``n`` (the restart
count):

- ``n.spec.json``  what to run (written here, read by the shim). Creating it
  with an exclusive link claims the attempt, so two callers never start the
  same attempt twice;
- ``n.shim.json``  the shim's pid, as soon as it runs;
- ``n.run.json``   the container's PID 1 (host pid and start time), once exec'd;
- ``n.exit.json``  exit code, signal, reason, times, written by the shim;
- ``n.log``        stdout and stderr in the CRI log format;
- ``n.rootfs/``    for an image of the store: the container's writable layer
  (``upper``, ``work``) and the overlay's mount point (``root``).

Because the files are the state, a restarted kubelet (``adopt``) sees every
container as it is, with its restart count, without starting anything.
Pids are only ever signalled after checking their start time against the
record (with psutil), and through a pidfd, so a recycled pid is never hit.
Only attempts ``n`` and ``n-1`` are kept: ``kubectl logs --previous`` reads
``n-1``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab.kernel.mounts import VolumeBind
from netlab.kernel.processes import is_running
from netlab.node.runtime import capabilities, cgroups
from netlab.node.runtime.paths import (
    HOSTNAME_FILE,
    HOSTS_FILE,
    RESOLV_FILE,
    read_json,
    write_json,
)
from netlab.node.runtime.sandbox import Sandbox, list_sandboxes
from netlab.paths import STATE_ROOT
from netlab.units import cpu_millis, memory_bytes

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT = 15.0  # a loaded 2-core machine can take seconds to start Python
EXIT_RECORD_TIMEOUT = 5.0
POLL = 0.02  # how often to probe a process or a record file while waiting


class ContainerError(RuntimeError):
    pass


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a pod spec, as the runtime runs it."""

    name: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None
    cpu_request_millis: int | None = None
    # Start the process with SIGTERM and SIGINT blocked: for programs that unblock
    # them once their handler is in place (netlab's built-in images), so a stop that
    # arrives while PID 1 is still starting is deferred instead of dropped.
    stop_signals_blocked: bool = False
    # securityContext: privileged keeps every capability and sees the lab's files;
    # otherwise the default set adjusted by capabilities.add/drop.
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    # An image of the store: its unpacked layers, top first, become the container's own
    # root filesystem (an overlay, see netlab.kernel.rootfs). Empty: the host's files.
    rootfs: tuple[str, ...] = ()
    user: str | None = None  # the image's User: name or uid, [:group]
    image_id: str | None = None  # recorded, for `netlab image rm` to see who uses it
    # The pod's volumes this container mounts (made ready by the kubelet); the shim
    # binds them (netlab.kernel.mounts), subPath resolved there without escapes.
    mounts: tuple[VolumeBind, ...] = ()

    @property
    def argv(self) -> list[str]:
        return [*self.command, *self.args]

    @classmethod
    def from_k8s(cls, container: dict[str, Any]) -> ContainerSpec:
        """From a Pod's ``spec.containers[]`` entry. Only literal ``value`` env
        entries are taken (``valueFrom`` is the kubelet's to resolve)."""
        resources = container.get("resources") or {}
        lim, req = resources.get("limits") or {}, resources.get("requests") or {}
        security = container.get("securityContext") or {}
        caps = security.get("capabilities") or {}
        env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or []
               if "valueFrom" not in e}
        return cls(
            name=container["name"], command=tuple(container.get("command") or ()),
            args=tuple(container.get("args") or ()), env=env,
            working_dir=container.get("workingDir"),
            cpu_limit_millis=cpu_millis(lim["cpu"]) if "cpu" in lim else None,
            memory_limit_bytes=memory_bytes(lim["memory"]) if "memory" in lim else None,
            cpu_request_millis=cpu_millis(req["cpu"]) if "cpu" in req else None,
            privileged=bool(security.get("privileged")),
            cap_add=tuple(str(c) for c in caps.get("add") or ()),
            cap_drop=tuple(str(c) for c in caps.get("drop") or ()))

    def kept_capabilities(self) -> frozenset[str] | None:
        """The capabilities the container runs with; None for all (privileged).
        Raises CapabilityError naming an unknown capability."""
        if self.privileged:
            return None
        return capabilities.container_set(self.cap_add, self.cap_drop)


@dataclass
class ContainerState:
    """What ``crictl inspect`` would say, in kubelet's terms."""

    name: str
    restart_count: int
    state: str  # "created" (shim starting), "running" or "exited"
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


def _shim_alive(sb: Sandbox, name: str, n: int) -> bool:
    rec = read_json(_file(sb, name, n, "shim.json")) or {}
    return bool(rec.get("pid")) and is_running(rec["pid"], rec.get("startTime"))


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
        ended = read_json(_file(sb, name, n, "exit.json"))
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
        shim = _shim_alive(sb, name, n)
        if not run and (shim or _launching(sb, name, n)):
            return state  # the shim is still starting it
        if shim and time.monotonic() < deadline:
            time.sleep(POLL)  # PID 1 just died; the shim is writing its exit record
            continue
        break
    # Neither a live process nor an exit record: the shim died (killed) first.
    state.state, state.exit_code, state.finished_at = "exited", 137, time.time()
    if run:
        state.reason = "ContainerStatusUnknown"
        state.message = "the container's shim died before recording how it exited"
    else:
        state.exit_code = 128
        state.reason = "StartError"
        state.message = "the shim exited before starting the container: " + _shim_log_tail(sb, name)
    return state


def _launching(sb: Sandbox, name: str, n: int) -> bool:
    """Claimed so recently that the shim may not have recorded itself yet (a
    Python start on a loaded machine): not a start error, not yet."""
    if _file(sb, name, n, "shim.json").exists():
        return False
    try:
        claimed = _file(sb, name, n, "spec.json").stat().st_mtime
    except FileNotFoundError:
        return False
    return time.time() - claimed < START_TIMEOUT


def _shim_log_tail(sb: Sandbox, name: str, limit: int = 400) -> str:
    try:
        text = (_dir(sb, name) / "shim.log").read_text(errors="replace")
    except OSError:
        return "no shim log"
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


def _prune(sb: Sandbox, name: str, keep_from: int) -> None:
    for n in attempts(sb, name):
        if n < keep_from:
            for kind in ("spec.json", "shim.json", "run.json", "exit.json", "log"):
                with contextlib.suppress(FileNotFoundError):
                    _file(sb, name, n, kind).unlink()
            # The container's writable layer goes with it (its mount went with its
            # mount namespace when the container's last process exited).
            shutil.rmtree(_file(sb, name, n, "rootfs"), ignore_errors=True)


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
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": sb.hostname, "HOME": "/root", **spec.env}
    kept = spec.kept_capabilities()
    record = {
        "pod": {"namespace": sb.namespace, "name": sb.name, "uid": sb.uid},
        "container": spec.name, "restartCount": n, "argv": spec.argv, "env": env,
        "stopSignalsBlocked": spec.stop_signals_blocked,
        # None: every capability (privileged); else the names the container keeps.
        "capabilities": None if kept is None else sorted(kept),
        "maskedPaths": [] if spec.privileged else capabilities.masked_paths(),
        "keepVisible": [] if spec.privileged else capabilities.install_paths(),
        # A minimal /dev (no host disks) and the host's files read-only, /tmp private.
        "contained": not spec.privileged,
        "workingDir": spec.working_dir, "cgroup": cg.to_json() if cg else None,
        # The image's layers under a writable layer of this attempt, removed with it.
        "rootfs": {"lower": list(spec.rootfs), "dir": str(_file(sb, spec.name, n, "rootfs"))}
        if spec.rootfs else None,
        # No image of its own and not privileged: a root of the host's programs and
        # /etc, read-only under a writable layer of this attempt (kernel/rootfs.py).
        "hostRoot": str(_file(sb, spec.name, n, "rootfs"))
        if not spec.rootfs and not spec.privileged else None,
        "user": spec.user, "imageId": spec.image_id,
        "mounts": [m.to_json() for m in spec.mounts],
        "netns": f"/run/netns/{sb.netns}", "uts": sb.uts_pin,
        "hosts": str(sb.path / HOSTS_FILE), "hostname": str(sb.path / HOSTNAME_FILE),
        "resolv": str(sb.path / RESOLV_FILE), "warnings": warnings,
        "logFile": str(_file(sb, spec.name, n, "log")),
        "shimFile": str(_file(sb, spec.name, n, "shim.json")),
        "runFile": str(_file(sb, spec.name, n, "run.json")),
        "exitFile": str(_file(sb, spec.name, n, "exit.json")),
    }
    spec_path = _file(sb, spec.name, n, "spec.json")
    if _claim(spec_path, record):
        _prune(sb, spec.name, n - 1)
        if _launch(spec_path, cdir / "shim.log") != 0 and \
                not _file(sb, spec.name, n, "shim.json").exists():
            _record_start_error(sb, spec.name, n, "the shim failed to start: "
                                + _shim_log_tail(sb, spec.name))
    return _await_start(sb, spec.name, n, timeout)


def _launch(spec_path: Path, shim_log: Path) -> int:
    """Start the shim; return its first half's exit status (0: the shim runs)."""
    with open(shim_log, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netlab.node.runtime.shim", "run", str(spec_path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True, cwd="/",
            start_new_session=True)
    # The shim's first half exits as soon as it has forked its detached second half.
    try:
        return proc.wait(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


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
    # The shim hangs before exec (a blocked mount, a stuck disk): give up on it,
    # and on a container it may have exec'd at the last moment.
    for kind in ("run.json", "shim.json"):
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
        if _file(sb, name, n, "exit.json").exists() or not is_running(pid, start_time):
            return True
        time.sleep(POLL)
    return False


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
    if grace_seconds > 0 and _signal_verified(pid, started, signal.SIGTERM):
        _wait_exit(sb, name, n, pid, started, grace_seconds)
    if is_running(pid, started):
        killed = _signal_verified(pid, started, signal.SIGKILL)
        _wait_exit(sb, name, n, pid, started, EXIT_RECORD_TIMEOUT)
    deadline = time.monotonic() + EXIT_RECORD_TIMEOUT
    exit_file = _file(sb, name, n, "exit.json")
    while not exit_file.exists() and _shim_alive(sb, name, n) and time.monotonic() < deadline:
        time.sleep(POLL)  # the shim is writing the exit record
    if not exit_file.exists():  # the shim is gone: record the stop ourselves
        write_json(exit_file, {
            "restartCount": n, "exitCode": 137 if killed else 143,
            "signal": int(signal.SIGKILL if killed else signal.SIGTERM), "reason": "Error",
            "message": "stopped; the shim was not there to record the exit",
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
    the lab is going away. Their shims reap them and record the exit; only a
    shim that does not leave by itself is killed too."""
    killed = []

    def records(kind: str) -> list[tuple[int, float]]:
        recs = [read_json(_file(sb, name, n, kind)) or {}
                for name in container_names(sb) for n in attempts(sb, name)]
        return [(r["pid"], r["startTime"]) for r in recs if r.get("pid")]

    for pid, started in records("run.json"):
        if _signal_verified(pid, started, signal.SIGKILL):
            killed.append(pid)
    if not wait_shims(sb, timeout=3.0):
        for pid, started in records("shim.json"):
            if _signal_verified(pid, started, signal.SIGKILL):
                killed.append(pid)
        wait_shims(sb, timeout=3.0)
    return killed


def wait_shims(sb: Sandbox, timeout: float) -> bool:
    """Wait until every shim of the pod has exited; True if they all did.

    An exited shim counts as gone while still a zombie: it is init's to reap,
    and some inits (this project's CI VMs) take over a second to do it.
    """
    recs = [read_json(_file(sb, name, n, "shim.json")) or {}
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


def exec_spec(sb: Sandbox, name: str, argv: list[str]) -> ExecSpec:
    """How to run ``argv`` inside the running container ``name`` (its net, uts,
    pid and mount namespaces, its cgroup, its env), for ``netlab exec``."""
    st = container_state(sb, name)
    if st is None or not st.running:
        raise ContainerError(f"container {name} of pod {sb.namespace}/{sb.name} is not running")
    spec = read_json(_file(sb, name, st.restart_count, "spec.json")) or {}
    cg = cgroups.Cgroup.from_json(spec.get("cgroup"))
    helper = [sys.executable, "-m", "netlab.node.runtime.shim", "exec", "--pid", str(st.pid),
              "--start-time", repr(st.pid_start_time), "--cwd", spec.get("workingDir") or "/"]
    for directory in cg.unique_dirs() if cg else []:
        helper += ["--cgroup", directory]
    if spec.get("capabilities") is not None:  # an exec gets no more than the container
        helper += ["--capabilities", ",".join(spec["capabilities"])]
    if spec.get("user"):
        helper += ["--user", spec["user"]]
    env = dict(spec.get("env") or {"PATH": DEFAULT_PATH})
    # The helper is Python: let it find netlab the way this process did.
    if "PYTHONPATH" in os.environ:
        env.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
    return ExecSpec(argv=[*helper, "--", *argv], env=env)


def container_cgroup(sb: Sandbox, name: str) -> cgroups.Cgroup | None:
    st = container_state(sb, name, settle=0)
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
