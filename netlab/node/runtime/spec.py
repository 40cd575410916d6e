"""``ContainerSpec``: one container of a pod spec, as the runtime runs it.

What the kubelet asks the runtime for (command, env, limits, image root, the
effective securityContext); ``containers`` starts it, ``oci`` turns it into an OCI
config. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlab.kernel.mounts import VolumeBind
from netlab.node.runtime import capabilities, security
from netlab.node.runtime.security import security_of
from netlab.units import cpu_millis, memory_bytes

CONTAINER_LOG_MAX_SIZE = 10 * 1024 * 1024  # the kubelet's containerLogMaxSize, 10Mi


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
    # The program installs its SIGTERM handler only after its start-up (netlab's
    # built-in images, Python): a stop waits for the handler to be there
    # (containers._await_handler), since the kernel drops a signal sent to a PID
    # namespace's init that does not handle it. (The name is the shim's era's, when
    # the signals were blocked at start instead.)
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
    # The pod's volumes this container mounts (made ready by the kubelet): bind mounts
    # in its config.json, subPath resolved inside the volume (netlab.kernel.mounts).
    mounts: tuple[VolumeBind, ...] = ()
    # The rest of the effective securityContext (pod's and container's, see security.py):
    # runAsUser/runAsGroup override the image's User; no_new_privs is
    # allowPrivilegeEscalation: false; read_only_root is readOnlyRootFilesystem.
    run_as_user: int | None = None
    run_as_group: int | None = None
    no_new_privs: bool = False
    read_only_root: bool = False
    seccomp: str = security.RUNTIME_DEFAULT
    supplemental_groups: tuple[int, ...] = ()  # the pod's supplementalGroups and fsGroup
    # stdin: conmon keeps the container's stdin open for attach (``-i``); stdin_once:
    # closed when the first attach ends (no ``--leave-stdin-open``); tty: a terminal
    # (``process.terminal``, conmon ``-t``), its output the log's stdout.
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    # An ephemeral container with targetContainerName: the target's PID namespace
    # (``/proc/<its PID 1>/ns/pid``) to join, as CRI-O asks crun to.
    pid_namespace: str | None = None
    # The log's bound (conmon's --log-size-max): past it conmon starts a new file, so
    # a container's output never fills the host (the lab's files are on a tmpfs).
    # The kubelet's containerLogMaxSize default; 0 for none.
    log_size_max: int = CONTAINER_LOG_MAX_SIZE

    @property
    def process_user(self) -> str | None:
        """``user[:group]`` the process runs as: runAsUser and runAsGroup where set,
        else the image's User (its group kept unless runAsGroup replaces it)."""
        name, _, group = (self.user or "").partition(":")
        if self.run_as_user is not None:
            name, group = str(self.run_as_user), ""
        if self.run_as_group is not None:
            group = str(self.run_as_group)
        if not name and not group:
            return None
        return f"{name or '0'}:{group}" if group else name

    @property
    def argv(self) -> list[str]:
        return [*self.command, *self.args]

    @classmethod
    def from_k8s(cls, container: dict[str, Any],
                 pod_security: dict[str, Any] | None = None) -> ContainerSpec:
        """From a Pod's ``spec.containers[]`` entry (and the pod's
        ``spec.securityContext``). Only literal ``value`` env entries are taken
        (``valueFrom`` is the kubelet's to resolve)."""
        resources = container.get("resources") or {}
        lim, req = resources.get("limits") or {}, resources.get("requests") or {}
        security = container.get("securityContext") or {}
        sc = security_of(container, pod_security)
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
            cap_drop=tuple(str(c) for c in caps.get("drop") or ()),
            run_as_user=sc.run_as_user, run_as_group=sc.run_as_group,
            no_new_privs=sc.no_new_privs, read_only_root=sc.read_only_root,
            seccomp=sc.seccomp, supplemental_groups=sc.supplemental_groups,
            stdin=bool(container.get("stdin")),
            stdin_once=bool(container.get("stdinOnce")), tty=bool(container.get("tty")))

    def kept_capabilities(self) -> frozenset[str] | None:
        """The capabilities the container runs with; None for all (privileged).
        Raises CapabilityError naming an unknown capability."""
        if self.privileged:
            return None
        return capabilities.container_set(self.cap_add, self.cap_drop)
