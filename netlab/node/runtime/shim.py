"""The container shim, netlab's conmon: one small process per running container.

Why a shim at all: a container must outlive the kubelet (a kubelet restart may
not kill pods), yet someone has to be its parent, to collect its exit status
and to turn its output into log lines. If the kubelet were that parent, its
death would take the exit code with it. So the runtime starts this program
detached, and it:

1. forks once more and lets its first half exit, so it is nobody's child to
   reap (it is reparented to init) and the runtime's ``Popen`` returns at once;
2. joins the pod's network and UTS namespaces (pinned files made by the sandbox);
3. unshares a PID namespace and forks the container, which is PID 1 there;
   the child joins the container's cgroup, unshares a mount namespace and makes
   every mount a *slave* (host mount events, like an unmounted pod netns, still
   reach it; nothing it mounts leaks out), then
   - for an image of the store: builds the container's own root filesystem and
     pivots into it (``netlab.kernel.rootfs``: an overlay of the image's layers
     with a writable layer of this attempt, ``/proc``, ``/sys`` read-only, a
     minimal ``/dev``, the pod's ``/etc/hosts``, ``/etc/hostname`` and
     ``/etc/resolv.conf``, the pod's volumes); the host's filesystem is gone;
   - a built-in image or a host program, not privileged: a root of its own too
     (``rootfs.enter_host``): the host's ``/usr`` and ``/etc`` (and ``/bin``,
     ``/lib``...) as overlays under a writable layer of this attempt, netlab's
     install read-only, the same standard mounts and volumes; nothing else of
     the host;
   - privileged without an image (or a spec written before own roots): mounts a
     fresh ``/proc`` and ``/sys``, bind-mounts the pod's ``/etc`` files and
     volumes (at existing paths) on the host's own filesystem, masks the lab's
     own directories (``capabilities.py``) unless privileged;
   starts its own session, drops the capabilities the container does not keep,
   becomes the image's ``User``, and execs the command with the container's env
   and working directory;
4. copies the container's stdout and stderr into ``<n>.log`` in the CRI format
   (``<RFC3339Nano> stdout F <line>``), so ``kubectl logs`` can read it and
   ``--timestamps`` can show it;
5. waits for the container and writes ``<n>.exit.json`` (exit code, signal,
   times, OOM kill seen in the memory cgroup) atomically, then exits.

``python -m netlab.node.runtime.shim exec ...`` is the other entry point:
``netlab exec`` / ``kubectl exec`` run it to enter a running container (its
net, uts, pid and mount namespaces, from ``/proc/<pid>/ns`` of the container's
PID 1, and its cgroup), forking once so the command lands inside the PID
namespace; joining the mount namespace puts it in the container's own root, if
it has one. Given a terminal on stdin but no controlling terminal (the kubelet's
``exec -t``), the command gets a session of its own inside the container with
that terminal as its controlling one, as runc's ``exec --tty`` does, so a shell's
job control and ^C work as in a real cluster.

Standard library only: this runs once per container start, and pyroute2 and
psutil would add a third of a second to each.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import select
import signal
import sys
import termios
import time
from pathlib import Path
from typing import Any, NoReturn

from netlab.kernel import mounts, rootfs
from netlab.kernel import namespaces as nsutil
from netlab.node.runtime import capabilities, cgroups
from netlab.node.runtime.paths import cri_timestamp, process_start_time, same_process, write_json

MAX_LINE = 16 * 1024  # longer lines are split into partial (P) records, as CRI does
START_ERROR_EXIT = 128  # containerd's exit code for a container that never ran


def _exit_record(spec: dict[str, Any], **fields: Any) -> None:
    write_json(Path(spec["exitFile"]), {"restartCount": spec["restartCount"], **fields})


def _volume_sources(spec: dict[str, Any]) -> list[tuple[mounts.VolumeBind, int, bool]]:
    """The pod's volumes this container mounts (``spec["mounts"]``, made by the
    kubelet), their sources opened now: they live in the pod's directory, which the
    container's view of the host hides."""
    return mounts.open_sources([mounts.VolumeBind.from_json(m)
                                for m in spec.get("mounts") or ()])


def _host_view(spec: dict[str, Any], binds: list[tuple[str, str]], stage: list[str],
               volumes: list[tuple[mounts.VolumeBind, int, bool]]) -> None:
    """A container without an image of its own (a built-in image, a host program):
    the host's filesystem, read-only unless privileged, the lab's files masked.
    ``stage[0]`` names the step under way, for the start error."""
    safe = nsutil.MS_NOSUID | nsutil.MS_NODEV | nsutil.MS_NOEXEC
    stage[0] = "/proc"
    nsutil.mount("proc", "/proc", "proc", safe)
    if nsutil.umount("/sys"):  # a sysfs of the pod's netns: /sys/class/net shows eth0
        nsutil.mount("sysfs", "/sys", "sysfs", safe)
    for source, target in binds:
        stage[0] = f"bind-mount {target}"
        if os.path.exists(source) and os.path.exists(target):
            nsutil.mount(source, target, None, nsutil.MS_BIND)
    for path in spec.get("maskedPaths") or ():  # after the binds: their sources live there
        stage[0] = f"mask {path}"
        if os.path.isdir(path):
            nsutil.mask(path)
    if spec.get("contained"):
        stage[0] = "/dev"
        nsutil.minimal_dev()
        stage[0] = "read-only host"
        nsutil.read_only_host(keep=tuple(spec.get("keepVisible") or ()))
    stage[0] = "volume mounts"
    mounts.bind_in_host_view(volumes, ("/tmp", "/var/tmp") if spec.get("contained") else ())


def _user_ids(user: str) -> tuple[int, int, list[int]]:
    """``user[:group]`` (names or numbers) as the image's own /etc/passwd and
    /etc/group define them, read inside the container's root, as runc resolves
    an image's ``User``."""
    name, _, group = user.partition(":")

    def table(path: str) -> list[list[str]]:
        try:
            with open(path) as f:
                return [line.rstrip("\n").split(":") for line in f if line.count(":") >= 2]
        except OSError:
            return []

    passwd, groups = table("/etc/passwd"), table("/etc/group")
    row = next((r for r in passwd if name in (r[0], r[2]) and len(r) > 3), None)
    if row is not None:
        uid, gid = int(row[2]), int(row[3])
    elif name.isdigit():
        uid, gid = int(name), 0
    else:
        raise LookupError(f"user {name!r} is not in the image's /etc/passwd")
    if group:
        found = next((r for r in groups if group in (r[0], r[2])), None)
        if found is not None:
            gid = int(found[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise LookupError(f"group {group!r} is not in the image's /etc/group")
    user_name = row[0] if row is not None else None
    extra = sorted({int(r[2]) for r in groups if len(r) > 3 and user_name
                    and user_name in r[3].split(",")} - {gid})
    return uid, gid, extra


def _become(user: str) -> None:
    uid, gid, extra = _user_ids(user)
    os.setgroups(extra)
    os.setgid(gid)
    os.setuid(uid)


def _container(spec: dict[str, Any], out_w: int, err_w: int, error_w: int) -> NoReturn:
    """The forked child, PID 1 of the new PID namespace: finish isolating, then exec."""
    stage = "setup"
    current = ["setup"]  # what _host_view is doing
    try:
        if spec.get("stopSignalsBlocked"):
            # Kept across exec: the program unblocks once it handles them (a signal
            # blocked in PID 1 stays pending; one ignored by default is dropped).
            signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGTERM, signal.SIGINT))
        stage = "cgroup"  # first: the fresh /sys below no longer shows /sys/fs/cgroup
        cg = cgroups.Cgroup.from_json(spec.get("cgroup"))
        if cg is not None:
            cgroups.join(cg)
        stage = "mount namespace"
        nsutil.unshare(nsutil.CLONE_NEWNS)
        nsutil.mount("none", "/", None, nsutil.MS_REC | nsutil.MS_SLAVE)
        binds = [(spec["hosts"], "/etc/hosts"), (spec["hostname"], "/etc/hostname"),
                 (spec["resolv"], "/etc/resolv.conf")]
        stage = "volumes"
        volumes = _volume_sources(spec)
        if spec.get("rootfs"):
            stage = "root filesystem"
            rootfs.enter(spec["rootfs"]["lower"], spec["rootfs"]["dir"], binds,
                         privileged=not spec.get("contained"), volumes=volumes)
        elif spec.get("hostRoot"):  # no image of its own: a read-only view of the host's
            stage = "root filesystem"
            rootfs.enter_host(spec["hostRoot"], list(spec.get("keepVisible") or ()), binds,
                              volumes)
        else:
            stage = "host view"
            _host_view(spec, binds, current, volumes)
        mounts.close_sources(volumes)
        os.setsid()
        stage = "stdio"
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        stage = "working directory"
        if spec.get("rootfs") or spec.get("hostRoot"):  # made if missing, as runc does
            os.makedirs(spec.get("workingDir") or "/", exist_ok=True)
        os.chdir(spec.get("workingDir") or "/")
        if spec.get("capabilities") is not None:
            stage = "capabilities"
            nsutil.drop_bounding(capabilities.bounding_drops(spec["capabilities"],
                                                             capabilities.last_cap()))
        if spec.get("user"):
            stage = f"user {spec['user']}"
            _become(spec["user"])
        stage = "exec"
        argv = spec["argv"]
        os.execvpe(argv[0], argv, spec["env"])
    except BaseException as exc:
        if stage == "exec" and isinstance(exc, FileNotFoundError):
            message = f'exec: "{spec["argv"][0]}": executable file not found in $PATH'
        else:
            message = f"{current[0] if stage == 'host view' else stage}: {exc}"
        with contextlib.suppress(OSError):
            os.write(error_w, message.encode())
    os._exit(127)


def _pump(streams: dict[int, str], log_fd: int) -> None:
    """Copy the container's output into the log, one CRI record per line, until
    every writer is gone (PID 1's exit kills the whole PID namespace)."""
    pending = {fd: b"" for fd in streams}

    def emit(name: str, tag: str, line: bytes) -> None:
        os.write(log_fd, f"{cri_timestamp()} {name} {tag} ".encode() + line + b"\n")

    while streams:
        ready, _, _ = select.select(list(streams), [], [])
        for fd in ready:
            data = os.read(fd, 65536)
            name = streams[fd]
            if not data:
                if pending[fd]:
                    emit(name, "F", pending[fd])
                os.close(fd)
                del streams[fd]
                continue
            buf = pending[fd] + data
            while True:
                cut = buf.find(b"\n")
                if cut < 0:
                    break
                emit(name, "F", buf[:cut])
                buf = buf[cut + 1:]
            while len(buf) >= MAX_LINE:
                emit(name, "P", buf[:MAX_LINE])
                buf = buf[MAX_LINE:]
            pending[fd] = buf


def run(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    # Detach: this first half exits at once, so the runtime reaps it and the
    # second half belongs to no component. The first half records the second's
    # pid before exiting, so the runtime always knows whom to wait for.
    child = os.fork()
    if child > 0:
        write_json(Path(spec["shimFile"]), {"pid": child, "startTime": process_start_time(child)})
        os._exit(0)
    for ignored in (signal.SIGHUP, signal.SIGINT):
        signal.signal(ignored, signal.SIG_IGN)
    me = os.getpid()
    started = time.time()
    try:
        nsutil.setns_path(spec["netns"], nsutil.CLONE_NEWNET)
        nsutil.setns_path(spec["uts"], nsutil.CLONE_NEWUTS)
        nsutil.unshare(nsutil.CLONE_NEWPID)
        cg = cgroups.Cgroup.from_json(spec.get("cgroup"))
        oom_before = cgroups.oom_kills(cg) if cg is not None else None
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        error_r, error_w = os.pipe()  # close-on-exec: EOF means exec succeeded
        log_fd = os.open(spec["logFile"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                         0o640)
        started = time.time()
        pid = os.fork()
    except BaseException as exc:
        _exit_record(spec, exitCode=START_ERROR_EXIT, signal=None, reason="StartError",
                     message=f"shim: {exc}", startedAt=started, finishedAt=time.time(),
                     oomKilled=False)
        raise
    if pid == 0:
        _container(spec, out_w, err_w, error_w)
    for fd in (out_w, err_w, error_w):
        os.close(fd)
    failure = b""
    while True:
        chunk = os.read(error_r, 4096)
        if not chunk:
            break
        failure += chunk
    os.close(error_r)
    if failure:
        os.waitpid(pid, 0)
        os.write(log_fd, f"{cri_timestamp()} stderr F {failure.decode(errors='replace')}\n"
                 .encode())
        _exit_record(spec, exitCode=START_ERROR_EXIT, signal=None, reason="StartError",
                     message=failure.decode(errors="replace"), startedAt=started,
                     finishedAt=time.time(), oomKilled=False)
        return
    write_json(Path(spec["runFile"]), {
        "pid": pid, "startTime": process_start_time(pid), "startedAt": started,
        "shimPid": me, "shimStartTime": process_start_time(me)})
    _pump({out_r: "stdout", err_r: "stderr"}, log_fd)
    _, status = os.waitpid(pid, 0)
    finished = time.time()
    sig: int | None = None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        code = 128 + sig
    else:
        code = os.WEXITSTATUS(status)
    oom_after = cgroups.oom_kills(cg) if cg is not None else None
    oom = oom_before is not None and oom_after is not None and oom_after > oom_before
    reason = "Completed" if code == 0 else ("OOMKilled" if oom else "Error")
    _exit_record(spec, exitCode=code, signal=sig, reason=reason, message="",
                 startedAt=started, finishedAt=finished, oomKilled=oom)


def _has_controlling_terminal() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def exec_in(pid: int, start_time: float, cgroup_dirs: list[str], cwd: str,
            argv: list[str], keep: list[str] | None = None, user: str | None = None) -> int:
    """Enter the container whose PID 1 is ``pid`` and run ``argv`` there; return
    its exit status (128+N for a signal), as ``kubectl exec`` reports it."""
    if not same_process(pid, start_time):
        print("netlab exec: the container is not running", file=sys.stderr)
        return 126
    # Open every namespace first: after entering the mount namespace, /proc is
    # the container's, where ``pid`` means something else.
    fds = {kind: os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
           for kind in ("net", "uts", "pid", "mnt")}
    take_terminal = os.isatty(0) and not _has_controlling_terminal()
    for directory in cgroup_dirs:  # before the mount namespace hides /sys/fs/cgroup
        with contextlib.suppress(OSError), open(os.path.join(directory, "cgroup.procs"), "w") as f:
            f.write("0")
    for kind, flag in (("net", nsutil.CLONE_NEWNET), ("uts", nsutil.CLONE_NEWUTS),
                       ("pid", nsutil.CLONE_NEWPID), ("mnt", nsutil.CLONE_NEWNS)):
        nsutil.setns_fd(fds[kind], flag, kind)
        os.close(fds[kind])
    child = os.fork()  # setns(pid) applies to children only
    if child == 0:
        try:
            if take_terminal:
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            if keep is not None:
                nsutil.drop_bounding(capabilities.bounding_drops(keep, capabilities.last_cap()))
            if user:  # as the container runs: its image's User
                _become(user)
            os.chdir(cwd or "/")
            os.execvp(argv[0], argv)
        except LookupError as exc:
            print(f"netlab exec: {exc}", file=sys.stderr)
        except OSError as exc:
            print(f"netlab exec: {argv[0]}: {exc.strerror}", file=sys.stderr)
        os._exit(127)
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            return 1
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="netlab-shim")
    sub = parser.add_subparsers(dest="mode", required=True)
    run_p = sub.add_parser("run", help="start and watch one container")
    run_p.add_argument("spec")
    exec_p = sub.add_parser("exec", help="run a command inside a running container")
    exec_p.add_argument("--pid", type=int, required=True)
    exec_p.add_argument("--start-time", type=float, required=True)
    exec_p.add_argument("--cgroup", action="append", default=[])
    exec_p.add_argument("--cwd", default="/")
    exec_p.add_argument("--capabilities", default=None,
                        help="comma-separated capabilities to keep (default: all)")
    exec_p.add_argument("--user", default=None, help="user[:group] to run as (the image's)")
    exec_p.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.mode == "run":
        run(args.spec)
        return
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("exec needs a command after --")
    keep = None if args.capabilities is None else [c for c in args.capabilities.split(",") if c]
    sys.exit(exec_in(args.pid, args.start_time, args.cgroup, args.cwd, command, keep,
                     args.user))


if __name__ == "__main__":
    main()
