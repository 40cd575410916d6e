"""crun and conmon: how the runtime starts, signals, enters and deletes a container.

This is the CRI-O stack under netlab's runtime: Debian's ``crun`` (the OCI runtime)
runs a container from its bundle (``config.json`` from ``oci.py`` and a root
directory), and ``conmon`` (the container monitor) is its parent for its whole life:
it runs ``crun create``, keeps the container's stdout and stderr in the CRI log
format (``k8s-file``), and writes the exit status to ``<exit dir>/<container id>``
when it ends. conmon double-forks, so the container outlives the kubelet.

How it is called, as CRI-O calls it:

- ``conmon --api-version 1 -c ID -u ID -n NAME -r crun -b BUNDLE -p PIDFILE -P
  CONMON_PIDFILE -l k8s-file:LOG --exit-dir DIR --socket-dir-path DIR
  --runtime-arg --root=ROOT ...`` with ``_OCI_SYNCPIPE`` in its environment: a pipe
  on which it reports ``{"data": <container pid>}`` once ``crun create`` is done,
  or ``{"data": -1, "message": ...}`` when it failed;
- then the runtime puts the created container into its cgroups and runs ``crun
  start ID``: the container's process execs its command only then, so nothing of
  it runs outside its limits;
- a container with ``stdin: true`` gets ``-i`` (conmon holds a pipe to its stdin),
  and ``--leave-stdin-open`` unless ``stdinOnce``; ``tty: true`` gets ``-t`` (conmon
  receives the pty's master from crun over its console socket). conmon serves
  attach on ``<socket dir>/<container id>/attach`` (a symlink to the bundle, so the
  path stays short; a unix SEQPACKET socket whose reads carry a one-byte prefix,
  2 stdout and 3 stderr, and whose writes are the container's stdin; the end of an
  attach connection closes the stdin unless ``--leave-stdin-open``) and reads
  ``<bundle>/ctl`` for ``1 HEIGHT WIDTH`` terminal resizes, as CRI-O uses both;
- ``crun exec ID ARGV`` enters it (its user, capabilities, seccomp and env are the
  container's); ``crun delete -f ID`` removes crun's record; ``crun list``/``state``
  read them. crun's state directory is per lab (``/run/netlab/<lab>/runtime/crun``).

Two details of this host family shape the argv:

- cgroups are netlab's own (``cgroups.py``, the layout and limits the kubelet has
  always used), so crun runs with ``--cgroup-manager=disabled`` and the runtime
  moves the created container into its groups itself;
- crun refuses a cgroup v1 host whose v2 ``unified`` hierarchy carries any
  controller ("cgroups in hybrid mode not supported"), which is how netlab's CI
  machines are set up. conmon and crun therefore run in a mount namespace of their
  own, the *shield* (what ``unshare --mount --propagation slave`` makes), where
  ``/sys/fs/cgroup/unified`` is unmounted: crun sees a plain v1 host, and nothing
  changes for anyone else. The same namespace carries the overlays of the
  container's root (a stored image's layers, or the host directories of a host
  view), mounted there before ``crun create``, so they go away with the container.
  A throwaway thread makes the shield with system calls and starts conmon from it
  (``spawn_shielded``): conmon is born there, and no helper program runs.

The shield is a slave of the host's mounts: a hostPath volume with
``mountPropagation: HostToContainer`` receives what the host mounts there later,
and nothing mounted in the shield or a container reaches the host. A Bidirectional
volume must send the container's mounts to the host, and only it: the shield
attaches a copy of its source, a peer of the host's mount, over its bundle mount
point after the slave remount, and crun binds that one.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netlab.kernel import mounts, netns
from netlab.kernel import namespaces as nsutil
from netlab.node.runtime.paths import runtime_dir

CRUN, CONMON = "crun", "conmon"
CGROUP_ROOT = "/sys/fs/cgroup"
SYNC_TIMEOUT = 15.0  # a loaded 2-core machine can take seconds


class OciRuntimeError(RuntimeError):
    pass


def crun_root(lab: str) -> Path:
    return runtime_dir(lab) / "crun"


def exits_dir(lab: str) -> Path:
    return runtime_dir(lab) / "exits"


def sockets_dir(lab: str) -> Path:
    return runtime_dir(lab) / "attach"


def available() -> str | None:
    """None when crun and conmon are installed, else what is missing."""
    missing = [p for p in (CRUN, CONMON) if shutil.which(p) is None]
    return f"not installed: {', '.join(missing)} (scripts/setup.sh installs them)" \
        if missing else None


def _hybrid_with_controllers() -> bool:
    """A v1 host whose unified v2 mount carries controllers: crun refuses it."""
    try:
        with open(os.path.join(CGROUP_ROOT, "unified", "cgroup.controllers")) as f:
            return bool(f.read().strip())
    except OSError:
        return False


_SHIELD = _hybrid_with_controllers()

@dataclass(frozen=True)
class Overlay:
    """Overlays to mount before create. A stored image's root: ``options`` name the
    layers relative to ``layers`` (their shared parent directory), mounted at
    ``root``. A host view: each of ``host_dirs`` (``/usr``, ``/etc``...) mounted at
    ``root`` + dir, the host's directory below and ``upper`` + dir above (``work`` +
    dir its scratch), so writes, and the mount points crun makes for volumes, land
    in the container's layer, never on the host."""

    layers: str = ""
    options: str = ""
    root: str = ""
    host_dirs: tuple[str, ...] = ()
    upper: str = ""
    work: str = ""
    # readOnlyRootFilesystem: crun remounts only the root itself read-only, not the
    # overlays mounted under it, so the host directories' overlays are mounted ro.
    read_only: bool = False
    # Mount points below ``host_dirs`` on the host, bound back over their overlays.
    submounts: tuple[str, ...] = ()
    # Bidirectional volumes: (a detached copy of the source, the bundle path crun binds
    # it from), attached there in the shield (``_shield``); ``create`` closes them.
    peers: tuple[tuple[int, str], ...] = ()


def crun_argv(lab: str, *args: str) -> list[str]:
    return [crun_binary(lab), f"--root={crun_root(lab)}", "--cgroup-manager=disabled", *args]


_BINARIES: dict[str, str] = {}


def crun_binary(lab: str) -> str:
    """The crun the lab runs: a read-only bind of the host's crun in the lab's
    runtime directory (``bin/crun``), made once.

    At every start, crun copies itself into a sealed memfd and executes that copy
    instead (its guard against CVE-2019-5736: a container must not be able to
    overwrite the host's binary through ``/proc/<crun>/exe``), unless the binary it
    runs from is on a read-only mount, which guards the same way: crun then skips the
    copy and the second exec (about 1.7 of 4 ms of CPU per crun command here, and
    each container takes two). Where the bind cannot be made, the host's crun."""
    made = _BINARIES.get(lab)
    if made is not None and os.path.exists(made):  # gone with a lab of that name
        return made
    host = shutil.which(CRUN)
    if host is None:
        return CRUN
    target = runtime_dir(lab) / "bin" / CRUN
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.parent / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # kubelets of one lab run side by side
            if not mounts.is_read_only(str(target)):
                target.touch()  # the mount point
                source = os.open(os.path.realpath(host), os.O_PATH | os.O_CLOEXEC)
                try:
                    mounts.bind(source, str(target), read_only=True)
                finally:
                    os.close(source)
    except OSError:
        return host
    _BINARIES[lab] = str(target)
    return str(target)


UNIFIED = os.path.join(CGROUP_ROOT, "unified")


def _shield(overlay: Overlay | None) -> None:
    """Give the calling thread (a throwaway one: ``spawn_shielded``) the mount
    namespace conmon and crun run in: a copy of the caller's, every mount a slave of
    its original (``unshare --mount --propagation slave``), without the unified
    cgroup hierarchy when crun would refuse it, with ``overlay`` mounted. What is
    mounted here stays here. Raises ``OSError``."""
    nsutil.unshare(nsutil.CLONE_NEWNS)  # the thread's fs (cwd, root) goes private too
    nsutil.mount(None, "/", None, nsutil.MS_REC | nsutil.MS_SLAVE)
    if _SHIELD and not nsutil.umount(UNIFIED):
        raise OSError(ctypes.get_errno(), f"cannot hide {UNIFIED} from crun")
    if overlay is None:
        return
    if overlay.options:
        # The layers are named relative to their parent: a long image's options would
        # not fit in a page otherwise. The thread's cwd is its own since the unshare.
        os.chdir(overlay.layers)
        try:
            _mount_overlay(overlay.root, overlay.options)
        finally:
            os.chdir("/")
    for d in overlay.host_dirs:
        _mount_overlay(overlay.root + d, f"{'ro,' if overlay.read_only else ''}nodev,"
                       f"lowerdir={d},upperdir={overlay.upper}{d},workdir={overlay.work}{d}")
    for m in overlay.submounts:
        nsutil.mount(m, overlay.root + m, None, nsutil.MS_BIND | nsutil.MS_REC)
    for fd, path in overlay.peers:
        # After the slave remount above, or it would be made a slave with the rest:
        # the copy of a Bidirectional volume's source stays a peer of the host's.
        try:
            nsutil.attach_tree(fd, path)
        except OSError as err:
            raise OSError(err.errno, f"cannot attach the Bidirectional volume at {path}: "
                                     f"{err.strerror}") from None


_FLAG_WORDS = {"ro": nsutil.MS_RDONLY, "nodev": nsutil.MS_NODEV, "nosuid": nsutil.MS_NOSUID,
               "noexec": nsutil.MS_NOEXEC}


def _mount_overlay(target: str, options: str) -> None:
    """``mount -t overlay -o OPTIONS overlay TARGET``: the generic words of
    ``options`` become mount flags, as mount(8) makes them; the rest is overlayfs'."""
    words = options.split(",")
    flags = 0
    for word in words:
        flags |= _FLAG_WORDS.get(word, 0)
    nsutil.mount("overlay", target, "overlay", flags,
                 ",".join(w for w in words if w not in _FLAG_WORDS))


def spawn_shielded(argv: list[str], overlay: Overlay | None = None,
                   **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv, **popen)`` (a conmon or crun command line) born in a
    mount namespace of its own (``_shield``): made on a throwaway thread by system
    calls, not by the ``unshare``, ``sh``, ``umount`` and ``mount`` programs, each of
    which cost about a millisecond of CPU here just to start. Raises ``OSError`` when
    the namespace or a mount cannot be made; nothing has started then."""
    def launch() -> subprocess.Popen:
        _shield(overlay)
        return subprocess.Popen(argv, **popen)

    return netns.run_on_own_thread(launch)


def shield_env() -> dict[str, str]:
    """The environment conmon and crun get: the caller's ``PATH`` only."""
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}


def in_cgroups(lab: str) -> str:
    """conmon's runtime for a container born in its cgroups (cgroup v1): a script
    that moves itself into each of ``$NL_CGROUP_DIRS`` and then execs crun, so that
    ``crun create`` and the container it forks start there and nothing has to move
    the container afterwards. It writes ``0`` to each group's ``tasks``: a thread
    that moves itself is moved without the kernel's global lock, which a write of
    another pid to ``cgroup.procs`` takes and which waits for an RCU grace period
    unless another move just happened (6-15 ms here, most of it for the first
    controller). crun leaves at the end of create; conmon stays where it was."""
    script = runtime_dir(lab) / "bin" / "crun-in-cgroups"
    if not script.exists():
        script.parent.mkdir(parents=True, exist_ok=True)
        tmp = script.with_name(f".{script.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text("#!/bin/sh\n"
                       "# netlab: crun create in the container's cgroups (oci_runtime.in_cgroups)\n"
                       'for d in $NL_CGROUP_DIRS; do echo 0 > "$d/tasks" || exit 125; done\n'
                       f'exec {crun_binary(lab)} "$@"\n')
        tmp.chmod(0o755)
        os.replace(tmp, script)
    return str(script)


@dataclass(frozen=True)
class Created:
    pid: int | None  # the container's process, None when create failed
    message: str  # why it failed
    conmon_pid: int | None = None


def stdio_args(stdin: bool, stdin_once: bool, tty: bool) -> list[str]:
    """conmon's stdio options, as CRI-O passes them for a container's spec."""
    args = ["-t"] if tty else []
    if stdin:
        args.append("-i")
        if not stdin_once:
            args.append("--leave-stdin-open")
    return args


def create(lab: str, cid: str, name: str, bundle: Path, log: Path, pid_file: Path,
           conmon_pid_file: Path, overlay: Overlay | None = None,
           timeout: float = SYNC_TIMEOUT, stdio: tuple[str, ...] = (),
           log_size_max: int = 0, cgroup_dirs: tuple[str, ...] = ()) -> Created:
    """Have conmon run ``crun create`` for the bundle; returns the container's pid
    (created, not started) or crun's error. ``stdio``: ``stdio_args`` of the
    container; ``log_size_max``: the log's bound in bytes (0: none);
    ``cgroup_dirs``: cgroup v1 groups the container is born in (``in_cgroups``)."""
    for d in (crun_root(lab), exits_dir(lab), sockets_dir(lab)):
        d.mkdir(parents=True, exist_ok=True)
    runtime = in_cgroups(lab) if cgroup_dirs else crun_binary(lab)
    conmon = [CONMON, "--api-version", "1", "-c", cid, "-u", cid, "-n", name,
              "-r", runtime, "-b", str(bundle), "-p", str(pid_file),
              "-P", str(conmon_pid_file), "-l", f"k8s-file:{log}",
              "--exit-dir", str(exits_dir(lab)), "--socket-dir-path", str(sockets_dir(lab)),
              "--log-level", "error", "--runtime-arg", f"--root={crun_root(lab)}",
              "--runtime-arg", "--cgroup-manager=disabled", *stdio,
              *(["--log-size-max", str(log_size_max)] if log_size_max > 0 else [])]
    peers = tuple(fd for fd, _ in overlay.peers) if overlay is not None else ()
    read_end, write_end = os.pipe()
    env = shield_env()
    env["_OCI_SYNCPIPE"] = str(write_end)
    if cgroup_dirs:
        env["NL_CGROUP_DIRS"] = " ".join(cgroup_dirs)
    try:
        try:
            with open(bundle / "conmon.log", "ab") as errors:
                proc = spawn_shielded(conmon, overlay, env=env, pass_fds=(write_end,),
                                      stdin=subprocess.DEVNULL, stdout=errors,
                                      stderr=errors, cwd="/", start_new_session=True)
        except OSError as err:
            return Created(None, f"cannot start conmon: {err}")
        finally:
            for fd in peers:
                os.close(fd)
        os.close(write_end)
        write_end = -1
        report = _read_sync(read_end, timeout)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # conmon's launcher hung: take its process group and whatever crun made.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            delete(lab, cid)
            return Created(None, "conmon did not detach within "
                           f"{timeout:g}s: " + _tail(bundle / "conmon.log"))
    finally:
        if write_end >= 0:
            os.close(write_end)
        os.close(read_end)
    if report is None:
        return Created(None, "conmon did not report the container: "
                       + _tail(bundle / "conmon.log"))
    pid = int(str(report.get("data", -1)))
    if pid <= 0:
        return Created(None, _crun_message(str(report.get("message") or "")) or
                       "crun create failed: " + _tail(bundle / "conmon.log"))
    conmon_pid = _read_int(conmon_pid_file)
    return Created(pid, "", conmon_pid)


def _read_sync(fd: int, timeout: float) -> dict[str, object] | None:
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
        if data.endswith(b"\n"):
            break
    try:
        found = json.loads(data.decode(errors="replace").splitlines()[0])
    except (ValueError, IndexError):
        return None
    return found if isinstance(found, dict) else None


def _crun_message(text: str) -> str:
    """crun's error without conmon's and crun's prefixes."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last[len("crun: "):] if last.startswith("crun: ") else last


def _tail(path: Path, limit: int = 400) -> str:
    try:
        return path.read_text(errors="replace").strip()[-limit:] or "no output"
    except OSError:
        return "no output"


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def start(lab: str, cid: str) -> str | None:
    """``crun start``: the created container execs its command. None, or the error."""
    done = subprocess.run(crun_argv(lab, "start", cid), capture_output=True, text=True,
                          timeout=SYNC_TIMEOUT)
    return None if done.returncode == 0 else _crun_message(done.stderr) or "crun start failed"


def delete(lab: str, cid: str) -> None:
    """``crun delete -f``: kill what is left and forget the container. Idempotent."""
    if not crun_root(lab).is_dir():
        return
    subprocess.run(crun_argv(lab, "delete", "-f", cid), capture_output=True,
                   timeout=SYNC_TIMEOUT)


def list_ids(lab: str) -> list[str]:
    """The containers crun knows in this lab (``crun list``)."""
    if not crun_root(lab).is_dir():
        return []
    done = subprocess.run(crun_argv(lab, "list", "-q"), capture_output=True, text=True,
                          timeout=SYNC_TIMEOUT)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def forget_exit(lab: str, cid: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (exits_dir(lab) / cid).unlink()


def attach_socket_dir(lab: str, cid: str) -> Path:
    """Where conmon's ``attach`` socket is: the symlink to the bundle it makes."""
    return sockets_dir(lab) / cid


EXEC_PROCESS_FD = 3


def exec_argv(lab: str, cid: str) -> list[str]:
    """``crun exec`` of the process spec read from fd ``EXEC_PROCESS_FD`` (as CRI-O
    runs ``crun exec --process FILE``): the container's process with the command's
    args, so it runs as the container's user with its supplementary groups, with its
    capabilities, no_new_privs, working directory and environment; crun applies the
    container's seccomp profile itself."""
    return crun_argv(lab, "exec", "--process", f"/dev/fd/{EXEC_PROCESS_FD}", cid)
