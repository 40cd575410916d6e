"""Ephemeral containers (``kubectl debug``): started once in the pod's sandbox.

The API server adds them to ``spec.ephemeralContainers`` through the
``pods/ephemeralcontainers`` subresource; the pod worker's sync then calls ``sync``
here, after the regular containers, as the kubelet's ``computePodActions`` does:

- an ephemeral container without a state is started, once, in the pod's network
  and UTS namespaces like any container; with ``targetContainerName`` it joins the
  target container's PID namespace (crun joins ``/proc/<target PID 1>/ns/pid``, as
  CRI-O asks it to with ``NamespaceMode_TARGET``), so ``ps`` in it sees the target's
  processes; while the target is not running yet, the start waits for it. The
  target's PID was observed before the image pull: it is checked again (same start
  time, not the kubelet's own namespace) when the spec is made, since a PID reused by
  another process would put the debugger in that process's namespace;
- it is never restarted, whatever the pod's ``restartPolicy``: once exited it stays
  Terminated in ``ephemeralContainerStatuses`` (written by ``status.py``);
- it goes with the pod: the runtime stops every container of the sandbox.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Protocol

from netlab.api.views import pod_spec
from netlab.node.kubelet.spec import CONFIG_ERROR, ContainerConfigError
from netlab.node.runtime import ContainerState
from netlab.node.runtime.paths import same_process

RETRY = 0.5  # seconds: look again for a target that is not running yet


class _Worker(Protocol):
    async def _start(self, pod: dict[str, Any], c: Any, attempt: int, init: bool = False,
                     target: Optional[ContainerState] = None) -> None: ...

    def _watch(self, name: str, state: ContainerState) -> None: ...

    def wake_later(self, delay: float) -> None: ...


def pid_namespace(target: Optional[ContainerState]) -> Optional[str]:
    """The PID namespace of the ``target`` container's PID 1, for crun; None without a
    target. ContainerConfigError when that PID is no longer the target's PID 1 (it
    exited, the number may be another process's now) or is in the kubelet's own PID
    namespace (every container has one of its own): the next sync looks again."""
    if target is None:
        return None
    path = f"/proc/{target.pid}/ns/pid"
    try:
        alive = same_process(target.pid, target.pid_start_time)
        ns, own = os.stat(path), os.stat("/proc/self/ns/pid")
    except OSError:
        alive = False
    if not alive:
        raise ContainerConfigError(CONFIG_ERROR, f'target container "{target.name}" is not '
                                   "running")
    if (ns.st_dev, ns.st_ino) == (own.st_dev, own.st_ino):
        raise ContainerConfigError(CONFIG_ERROR, f'target container "{target.name}": its '
                                   "PID namespace is the node's")
    return path


async def sync(worker: _Worker, pod: dict[str, Any],
               observed: dict[str, tuple[Optional[ContainerState], Any]]) -> None:
    """Start the ephemeral containers that have not run yet; watch running ones."""
    for c in pod_spec(pod).get("ephemeralContainers") or []:
        name = c.get("name", "")
        cur = observed.get(name, (None, None))[0]
        if cur is None:
            target = c.get("targetContainerName") or ""
            found = None
            if target:
                found = observed.get(target, (None, None))[0]
                if found is None or found.state != "running" or found.pid is None:
                    worker.wake_later(RETRY)
                    continue
            await worker._start(pod, c, 0, target=found)
        elif cur.state == "running":
            worker._watch(name, cur)
        elif cur.state == "created":
            worker.wake_later(RETRY)  # the runtime is still starting it
        # exited: ephemeral containers are never restarted
