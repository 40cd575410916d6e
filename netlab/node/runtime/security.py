"""A container's effective securityContext, as the kubelet computes it before it asks
the runtime to create the container.

Kubernetes lets a pod set ``runAsUser``, ``runAsGroup``, ``runAsNonRoot`` and
``seccompProfile`` for all its containers (``spec.securityContext``) and each
container override them (``containers[].securityContext``); the rest
(``privileged``, ``capabilities``, ``allowPrivilegeEscalation``,
``readOnlyRootFilesystem``) is per container only. ``effective`` merges the two as
``securitycontext.DetermineEffectiveSecurityContext`` does, and
``verify_run_as_non_root`` is the kubelet's ``verifyRunAsNonRoot``: a container that
asks for ``runAsNonRoot`` and would run as root is refused with upstream's message
(the kubelet reports it as ``CreateContainerConfigError``).

Seccomp: ``RuntimeDefault`` (the CRI-O/podman default profile,
``/usr/share/containers/seccomp.json``) unless the pod or container says
``Unconfined`` or ``Localhost``; privileged containers run unconfined, as in
containerd and CRI-O. (Kubernetes itself defaults to Unconfined unless the
kubelet runs with ``--seccomp-default``; netlab's runtime behaves as with that flag.)

Pure: dictionaries in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The fields a pod-level securityContext gives every container that does not set them.
_POD_LEVEL = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")

RUNTIME_DEFAULT, UNCONFINED, LOCALHOST = "RuntimeDefault", "Unconfined", "Localhost"


@dataclass(frozen=True)
class Security:
    """What the runtime applies to one container."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    no_new_privs: bool = False  # allowPrivilegeEscalation: false
    read_only_root: bool = False  # readOnlyRootFilesystem: true
    seccomp: str = RUNTIME_DEFAULT  # RuntimeDefault, Unconfined, or Localhost/<profile>
    # The pod's supplementalGroups, then its fsGroup (pod-level only), as the kubelet's
    # determineEffectiveSecurityContext adds them; the runtime merges them with the
    # groups the image gives the user.
    supplemental_groups: tuple[int, ...] = ()


def supplemental_groups(pod_context: dict[str, Any] | None) -> tuple[int, ...]:
    """``supplementalGroups`` and ``fsGroup`` of a pod's securityContext, in order,
    each once."""
    sc = pod_context or {}
    groups = [g for g in sc.get("supplementalGroups") or [] if isinstance(g, int)]
    if isinstance(sc.get("fsGroup"), int):
        groups.append(sc["fsGroup"])
    return tuple(dict.fromkeys(int(g) for g in groups))


def effective(container: dict[str, Any], pod_context: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """The container's securityContext with the pod's values filled in where the
    container sets none."""
    own = dict(container.get("securityContext") or {})
    for key in _POD_LEVEL:
        if own.get(key) is None and (pod_context or {}).get(key) is not None:
            own[key] = (pod_context or {})[key]
    return own


def _seccomp(profile: dict[str, Any] | None, privileged: bool) -> str:
    if privileged:
        return UNCONFINED
    kind = (profile or {}).get("type") or RUNTIME_DEFAULT
    if kind == LOCALHOST:
        return f"{LOCALHOST}/{(profile or {}).get('localhostProfile') or ''}"
    return UNCONFINED if kind == UNCONFINED else RUNTIME_DEFAULT


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def security_of(container: dict[str, Any], pod_context: dict[str, Any] | None = None
                ) -> Security:
    """The runtime's view of the container's effective securityContext."""
    sc = effective(container, pod_context)
    privileged = bool(sc.get("privileged"))
    return Security(
        run_as_user=_int_or_none(sc.get("runAsUser")),
        run_as_group=_int_or_none(sc.get("runAsGroup")),
        run_as_non_root=bool(sc.get("runAsNonRoot")),
        # Only an explicit false sets no_new_privs (securitycontext.AddNoNewPrivileges).
        no_new_privs=sc.get("allowPrivilegeEscalation") is False and not privileged,
        read_only_root=bool(sc.get("readOnlyRootFilesystem")),
        seccomp=_seccomp(sc.get("seccompProfile"), privileged),
        supplemental_groups=supplemental_groups(pod_context))


def format_pod(pod: dict[str, Any]) -> str:
    """The kubelet's ``format.Pod``: ``name_namespace(uid)``."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def image_uid(user: str | None) -> tuple[int | None, str]:
    """The image's ``User`` as the runtime reports it to the kubelet: a numeric uid,
    or a user name it cannot tell the uid of. No User is root (uid 0)."""
    name = (user or "").partition(":")[0]
    if not name:
        return 0, ""
    return (int(name), "") if name.isdigit() else (None, name)


def verify_run_as_non_root(pod: dict[str, Any], container: dict[str, Any],
                           image_user: str | None) -> str | None:
    """The message of the kubelet's refusal to start a container that must not run as
    root but would; None when it may start."""
    sc = effective(container, (pod.get("spec") or {}).get("securityContext"))
    if not sc.get("runAsNonRoot"):
        return None
    where = f"(pod: \"{format_pod(pod)}\", container: {container.get('name', '')})"
    if sc.get("runAsUser") is not None:
        if int(sc["runAsUser"]) == 0:
            return f"container's runAsUser breaks non-root policy {where}"
        return None
    uid, name = image_uid(image_user)
    if uid is None and name:
        return (f"container has runAsNonRoot and image has non-numeric user ({name}), "
                f"cannot verify user is non-root {where}")
    if uid == 0:
        return f"container has runAsNonRoot and image will run as root {where}"
    return None
