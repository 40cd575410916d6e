"""Ephemeral containers (``kubectl debug``): started once in the pod's sandbox.

The API server adds them to ``spec.ephemeralContainers`` through the
``pods/ephemeralcontainers`` subresource; the pod worker's sync then calls ``sync``
here, after the regular containers, as the kubelet's ``computePodActions`` does:

- an ephemeral container without a state is started, once, in the pod's network
  and UTS namespaces like any container; with ``targetContainerName`` it joins the
  target container's PID namespace (crun joins ``/proc/<target PID 1>/ns/pid``, as
  CRI-O asks it to with ``NamespaceMode_TARGET``), so ``ps`` in it sees the target's
  processes; while the target is not running yet, the start waits for it;
- it is never restarted, whatever the pod's ``restartPolicy``: once exited it stays
  Terminated in ``ephemeralContainerStatuses`` (written by ``status.py``);
- it goes with the pod: the runtime stops every container of the sandbox.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

from netlab.api.views import pod_spec
from netlab.node.runtime import ContainerState

RETRY = 0.5  # seconds: look again for a target that is not running yet


class _Worker(Protocol):
    async def _start(self, pod: dict[str, Any], c: Any, attempt: int, init: bool = False,
                     pid_of: Optional[int] = None) -> None: ...

    def _watch(self, name: str, state: ContainerState) -> None: ...

    def wake_later(self, delay: float) -> None: ...


def pid_namespace(pid: Optional[int]) -> Optional[str]:
    """The PID namespace of the process ``pid`` (the target's PID 1), for crun."""
    return f"/proc/{pid}/ns/pid" if pid else None


async def sync(worker: _Worker, pod: dict[str, Any],
               observed: dict[str, tuple[Optional[ContainerState], Any]]) -> None:
    """Start the ephemeral containers that have not run yet; watch running ones."""
    for c in pod_spec(pod).get("ephemeralContainers") or []:
        name = c.get("name", "")
        cur = observed.get(name, (None, None))[0]
        if cur is None:
            target = c.get("targetContainerName") or ""
            pid = None
            if target:
                found = observed.get(target, (None, None))[0]
                if found is None or found.state != "running" or found.pid is None:
                    worker.wake_later(RETRY)
                    continue
                pid = found.pid
            await worker._start(pod, c, 0, pid_of=pid)
        elif cur.state == "running":
            worker._watch(name, cur)
        elif cur.state == "created":
            worker.wake_later(RETRY)  # the runtime is still starting it
        # exited: ephemeral containers are never restarted
