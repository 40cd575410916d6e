"""Validation of ephemeral containers: a pod's ``pods/ephemeralcontainers`` writes.

Upstream's rules (k8s.io/kubernetes/pkg/apis/core/validation:
``validateEphemeralContainers`` and ``ValidatePodEphemeralContainersUpdate``), with
their field paths and wording:

- a pod cannot be created with ephemeral containers (``cannot be set on create``);
- through the subresource, existing ephemeral containers may be neither removed nor
  changed; every one is checked as a container is (``validate_container``: name,
  image, env, mounts and their propagation, seccomp profile), with a name unique
  across all the pod's containers, a ``targetContainerName`` naming
  one of its (init) containers, and only the fields an ephemeral container may
  have: ports, probes, lifecycle, resources and the like are ``Forbidden: cannot be
  set for an Ephemeral Container``, as are volume mounts' ``subPath``.

``kubectl debug`` adds its container with a strategic merge patch of this
subresource. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from netlab.api.errors import duplicate, field_not_found, forbidden_field
from netlab.api.validation_base import _V
from netlab.api.validation_pod import validate_container

# upstream's allowedEphemeralContainerFields: anything else set is Forbidden.
ALLOWED_FIELDS = frozenset({
    "name", "image", "command", "args", "workingDir", "envFrom", "env", "volumeMounts",
    "volumeDevices", "terminationMessagePath", "terminationMessagePolicy",
    "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
    "targetContainerName",
})
FORBIDDEN_MSG = "cannot be set for an Ephemeral Container"


def _names(spec: dict[str, Any], key: str) -> list[str]:
    items = spec.get(key)
    return [c["name"] for c in items if isinstance(c, dict) and isinstance(c.get("name"), str)] \
        if isinstance(items, list) else []


def _empty(value: Any) -> bool:
    """Go's zero value: what upstream's allow-list check does not count as set."""
    return value is None or value is False or value in ("", 0) or value == [] or value == {}


def validate_on_create(v: _V, spec: Any) -> None:
    if isinstance(spec, dict) and spec.get("ephemeralContainers"):
        v.add(forbidden_field("spec.ephemeralContainers", "cannot be set on create"))


def validate_containers(v: _V, spec: dict[str, Any]) -> None:
    """Every ephemeral container of ``spec``, as ``validateEphemeralContainers``."""
    others = set(_names(spec, "containers")) | set(_names(spec, "initContainers"))
    seen = set(others)
    volumes = set(_names(spec, "volumes"))
    for path, c in v.objs(spec, "ephemeralContainers", "spec.ephemeralContainers"):
        validate_container(v, c, path, volumes)
        name = c.get("name")
        if isinstance(name, str) and name:
            if name in seen:
                v.add(duplicate(f"{path}.name", name))
            seen.add(name)
        target = v.string(c, "targetContainerName", f"{path}.targetContainerName")
        if target and target not in others:
            v.add(field_not_found(f"{path}.targetContainerName", target))
        for key in sorted(c):
            if key not in ALLOWED_FIELDS and not _empty(c[key]):
                v.add(forbidden_field(f"{path}.{key}", FORBIDDEN_MSG))
        for mpath, mount in v.objs(c, "volumeMounts", f"{path}.volumeMounts"):
            for key in ("subPath", "subPathExpr"):
                if mount.get(key):
                    v.add(forbidden_field(f"{mpath}.{key}", FORBIDDEN_MSG))


def validate_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A write of ``pods/ephemeralcontainers``: the new containers' rules, and
    existing ones neither removed nor changed (checked by name: a patch does not
    keep the order)."""
    new_spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return
    meta = old.get("metadata") or {}
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        v.add(forbidden_field("", "static pods do not support ephemeral containers"))
        return
    validate_containers(v, new_spec)
    by_name = {c.get("name"): c for c in new_spec.get("ephemeralContainers") or []
               if isinstance(c, dict)}
    for c in old_spec.get("ephemeralContainers") or []:
        name = c.get("name")
        if name not in by_name:
            v.add(forbidden_field("spec.ephemeralContainers",
                                  f'existing ephemeral containers "{name}" may not be removed\n'))
        elif by_name[name] != c:
            v.add(forbidden_field("spec.ephemeralContainers",
                                  f'existing ephemeral containers "{name}" may not be changed\n'))
