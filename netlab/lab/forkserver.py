"""The fork server: one pre-imported Python that forks every Python component.

Each component (API server, scheduler, controller manager, DNS, and on every
node a kubelet, a kube-proxy and a NetworkPolicy agent) used to start as its
own ``python -m ...``: about 0.3 s of CPU to import netlab, aiohttp,
cryptography and pyroute2, and some 35 MiB of private memory holding the same
module objects in every process. A 100-node lab paid that 300 times. The
supervisor now starts this server once per lab; it imports every component's
modules, freezes them out of the garbage collector's reach (``gc.freeze``, so
collections in the children do not dirty the shared pages) and forks a child per
request. A child costs a fork, not an import, and shares the imported modules
copy-on-write with its siblings.

Each component stays a process of its own, as before: ``netlab fault kill
kubelet NODE`` still kills exactly one, its pid is in ``components.json``, and it
shows in ``ps`` under its module name and arguments (setproctitle). Only how it
starts changes. The server stays single-threaded, which is what makes forking
it safe.

The protocol, over a ``SOCK_SEQPACKET`` socket pair to the supervisor, one JSON
message per packet:

- the supervisor sends ``{"id", "module", "args", "netns", "log", "fds"}``;
- the server answers ``{"id", "pid"}`` or ``{"id", "error"}``;
- when a child exits, the server reaps it and sends ``{"exited", "code"}`` with
  ``subprocess``'s return code convention (a negative signal number).

Run as ``python -m netlab.lab.forkserver FD [LAB]`` with FD the server's end of the
pair (LAB only names the server in ``ps``).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import traceback
from typing import Any

from netlab.kernel.processes import raise_oom_score

# Everything a component imports, lazily imported parts included: whatever is
# missing here still works, the child just imports it itself.
PRELOAD = (
    "netlab.master.apiserver.__main__", "netlab.master.apiserver.app",
    "netlab.master.apiserver.storage", "netlab.master.store",
    "netlab.master.scheduler.__main__", "netlab.master.scheduler.scheduler",
    "netlab.master.controllers.__main__", "netlab.master.controllers.manager",
    "netlab.master.nodelifecycle.controller",
    "netlab.dns.__main__",
    "netlab.node.kubelet.__main__", "netlab.node.kubelet.kubelet",
    "netlab.node.proxy.__main__", "netlab.node.proxy.hostnet",
    "netlab.node.netpol.__main__",
    "netlab.kernel.nft", "netlab.kernel.conntrack", "netlab.api.openapi",
    "setproctitle", "uvloop",
)
# The modules a request may name: each has ``main(argv)``.
COMPONENT_MODULES = frozenset({
    "netlab.master.apiserver", "netlab.master.scheduler", "netlab.master.controllers",
    "netlab.dns", "netlab.node.kubelet", "netlab.node.proxy", "netlab.node.netpol",
})
MAX_MESSAGE = 64 * 1024
# Components rank this much above the supervisor and this server for the OOM killer:
# out of memory, the kernel ends a component, which the supervisor records (-9) and
# ``up`` names, rather than the supervisor, whose death orphans them all.
COMPONENT_OOM_SCORE_BONUS = 300


def preload(modules: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import ``modules``; the names of those that failed (their components will
    import them in the child and report the error in their own log)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # a component's own start reports it
            failed.append(name)
    return failed


def _title(module: str, args: list[str]) -> None:
    with contextlib.suppress(ImportError):
        import setproctitle
        setproctitle.setproctitle(" ".join([sys.executable, "-m", module, *args]))


def _exec_component(request: dict[str, Any], channel: socket.socket) -> int:
    """The child's side of a fork: become the component and run it; its exit code."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    # The server's own fds (the channel, the wakeup pipe, the selector) go with the
    # sweep below; the channel's object must not close its number again later.
    channel.detach()
    raise_oom_score(by=COMPONENT_OOM_SCORE_BONUS)
    module, args = request["module"], list(request["args"])
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    keep = sorted({0, 1, 2, *(int(fd) for fd in request.get("fds", ()))})
    low = 3
    for fd in [*keep[3:], os.sysconf("SC_OPEN_MAX")]:
        os.closerange(low, fd)
        low = fd + 1
    for fd in keep[3:]:
        os.set_inheritable(fd, True)
    # A fresh logging setup for the component (the server configured none, but be sure).
    logging.root.handlers.clear()
    sys.argv = [module, *args]
    _title(module, args)
    try:
        netns = request.get("netns")
        if netns:  # after the redirection, so a failure lands in the component's log
            from netlab.kernel import netns as kernel_netns
            kernel_netns.join_netns(netns)
        entry = importlib.import_module(module + ".__main__")
        # What ``python -m`` makes it: the process's __main__ (default_user_agent, for
        # one, names the component after it).
        sys.modules["__main__"] = entry
        code = entry.main(args)
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # the child must never return into the server
        traceback.print_exc()
        code = 1
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    return int(code or 0)


class ForkServer:
    """The server's loop: requests in, pids and exit codes out."""

    def __init__(self, channel: socket.socket):
        self.channel = channel
        self.children: set[int] = set()
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)

    def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.channel.send(json.dumps(message).encode())

    def _fork(self, request: dict[str, Any]) -> None:
        if request.get("module") not in COMPONENT_MODULES:
            self._send({"id": request.get("id"),
                        "error": f"not a component module: {request.get('module')!r}"})
            return
        try:
            pid = os.fork()
        except OSError as exc:
            self._send({"id": request.get("id"), "error": str(exc)})
            return
        if pid == 0:
            code = 1
            try:
                code = _exec_component(request, self.channel)
            finally:
                with contextlib.suppress(Exception):
                    logging.shutdown()
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        self.children.add(pid)
        self._send({"id": request.get("id"), "pid": pid})

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self._send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wakeup_w)
        # The supervisor stops the components itself; the server only ends with it.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        selector = selectors.DefaultSelector()
        selector.register(self.channel, selectors.EVENT_READ, "request")
        selector.register(self.wakeup_r, selectors.EVENT_READ, "child")
        while True:
            for key, _ in selector.select():
                if key.data == "child":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wakeup_r, 512):
                            pass
                    self._reap()
                    continue
                data = self.channel.recv(MAX_MESSAGE)
                if not data:  # the supervisor is gone: so is the lab
                    return
                try:
                    request = json.loads(data)
                except ValueError:
                    continue
                self._fork(request)
            # A SIGCHLD that raced the selector still leaves its byte in the pipe.
            self._reap()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    channel = socket.socket(fileno=int(args[0]))
    preload()
    if threading.active_count() != 1:
        # Forking a threaded process can deadlock its children: refuse, the
        # supervisor then starts components the slow way.
        sys.exit("fork server: a preloaded module started a thread")
    gc.collect()
    gc.freeze()
    ForkServer(channel).serve()


if __name__ == "__main__":
    main()
