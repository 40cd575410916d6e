"""What a container runs: one of a Pod's containers, turned into the runtime's ContainerSpec.

This is the kubelet's part of "create container" that needs no kernel, and it
follows Kubernetes' rules so that manifests behave as on a real cluster:

- the environment starts with netlab's pod identity (``POD_NAME``,
  ``POD_NAMESPACE``, ``POD_IP``, ``NODE_NAME``, ``HOSTNAME``), then the
  container's ``envFrom`` and ``env`` lists in order; each ``env`` value may refer
  to variables defined before it as ``$(VAR)``, and ``valueFrom`` is resolved from
  the pod itself (``fieldRef``, ``resourceFieldRef``: the downward API) or from the
  ConfigMaps and Secrets the worker fetched (``envsources``);
- ``command`` and ``args`` are expanded with the finished environment;
- the image then decides the argv: an image of the store (looked up by the pod
  worker, passed in as ``stored``) is combined with its Entrypoint, Cmd, Env,
  WorkingDir and User as Kubernetes combines them (``netlab.images.config``) and
  gets its own root filesystem; otherwise the built-in catalog or the host
  program (``netlab.images.resolve``).

What cannot be resolved raises ``ContainerConfigError`` with the reason and
message Kubernetes would put in the container's Waiting state
(``CreateContainerConfigError``; ``ErrImageNeverPull`` for an image that is
neither stored nor built in, naming those that are; ``CreateContainerError``
for an image with nothing to run). Pure: no I/O, unit-tested in tests/unit/kubelet.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from netlab.api.views import Container, annotations_of, labels_of, meta_of, pod_spec
from netlab.images import UnknownImageError, builtin_image, resolve, runs_builtin
from netlab.images import config as imageconfig
from netlab.images.store import StoredImage
from netlab.node.kubelet import envsources
from netlab.node.runtime.capabilities import CapabilityError
from netlab.node.runtime.security import verify_run_as_non_root
from netlab.node.runtime.spec import ContainerSpec
from netlab.units import QuantityError, cpu_millis, memory_bytes

CONFIG_ERROR = "CreateContainerConfigError"
CREATE_ERROR = "CreateContainerError"  # the runtime could not create it (containerd's word)
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ContainerConfigError(Exception):
    """A container that cannot be created as specified; ``reason``/``message`` are
    for its Waiting state."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclasses.dataclass(frozen=True)
class PodContext:
    """What the downward API and netlab's own variables need besides the pod."""

    node_name: str
    host_ip: str
    pod_ip: str
    hostname: str
    node_cpu_millis: int = 0  # allocatable: the value of an unset CPU limit
    node_memory_bytes: int = 0
    extra_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # The ConfigMaps and Secrets the pod refers to, as fetched (see envsources).
    sources: envsources.Sources = dataclasses.field(default_factory=dict)


# --- $(VAR) expansion, as k8s.io/kubernetes/third_party/forked/golang/expansion -----------------


def expand(text: str, env: Mapping[str, str], missing: set[str] | None = None) -> str:
    """Replace ``$(VAR)`` with its value when VAR is defined; ``$$`` is a literal ``$``;
    an undefined or unterminated reference stays as written. With ``missing``, a
    reference to an unset or empty VAR is added there and replaced by nothing (how
    the kubelet expands ``subPathExpr``)."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            advance = 1
            if nxt == "$":
                out.append("$")
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                else:
                    name = text[cursor + 2:close]
                    if missing is None:
                        out.append(env.get(name, f"$({name})"))
                    else:
                        if not env.get(name):
                            missing.add(name)
                        out.append(env.get(name, ""))
                    advance = close - cursor
            else:
                out.append("$" + nxt)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


# --- the downward API -----------------------------------------------------------------------


def _format_map(values: Mapping[str, Any]) -> str:
    # fieldpath.FormatMap: sorted key="value" lines.
    return "\n".join(f'{k}="{values[k]}"' for k in sorted(values))


def field_ref(pod: dict[str, Any], path: str, ctx: PodContext) -> str:
    """``env[].valueFrom.fieldRef.fieldPath``: the fields the kubelet resolves."""
    meta, spec = meta_of(pod), pod_spec(pod)
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace") or "default",
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or ctx.node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": ctx.host_ip,
        "status.hostIPs": ctx.host_ip,
        "status.podIP": ctx.pod_ip,
        "status.podIPs": ctx.pod_ip,
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        return _format_map(labels_of(pod) if path == "metadata.labels" else annotations_of(pod))
    m = _SUBSCRIPT.match(path)
    if m:
        values = labels_of(pod) if m.group(1) == "labels" else annotations_of(pod)
        return str(values.get(m.group(2), ""))
    raise ContainerConfigError(CONFIG_ERROR, f'unsupported fieldRef fieldPath "{path}"')


def resource_field_ref(container: Container, ref: dict[str, Any], ctx: PodContext) -> str:
    """``resourceFieldRef``: a limit or request, in units of ``divisor`` (rounded up).
    An unset limit reads as the node's allocatable, as in Kubernetes."""
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    values = resources.get(kind) or {}
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise ContainerConfigError(CONFIG_ERROR, f'unsupported resourceFieldRef "{resource}"')
    divisor = ref.get("divisor") or "1"
    try:
        if name == "cpu":
            have = cpu_millis(values["cpu"]) if "cpu" in values else (
                ctx.node_cpu_millis if kind == "limits" else 0)
            return str(math.ceil(have / max(cpu_millis(divisor), 1)))
        if name == "memory":
            have = memory_bytes(values["memory"]) if "memory" in values else (
                ctx.node_memory_bytes if kind == "limits" else 0)
            return str(math.ceil(have / max(memory_bytes(divisor), 1)))
        have = memory_bytes(values[name]) if name in values else 0
        return str(math.ceil(have / max(memory_bytes(divisor), 1)))
    except QuantityError as err:
        raise ContainerConfigError(CONFIG_ERROR, f"resourceFieldRef {resource}: {err}") from None


def _value_from(pod: dict[str, Any], container: Container, name: str,
                source: dict[str, Any], ctx: PodContext) -> str | None:
    if "fieldRef" in source:
        return field_ref(pod, (source["fieldRef"] or {}).get("fieldPath", ""), ctx)
    if "resourceFieldRef" in source:
        return resource_field_ref(container, source["resourceFieldRef"] or {}, ctx)
    for key, kind in (("configMapKeyRef", envsources.CONFIGMAP),
                      ("secretKeyRef", envsources.SECRET)):
        if key in source:
            namespace = meta_of(pod).get("namespace") or "default"
            try:
                return envsources.key_ref(kind, source[key] or {}, namespace, ctx.sources)
            except envsources.SourceError as err:
                raise ContainerConfigError(CONFIG_ERROR, str(err)) from None
    raise ContainerConfigError(CONFIG_ERROR, f"env {name}: unsupported valueFrom "
                               f"{', '.join(sorted(source)) or '(empty)'}")


def container_env(pod: dict[str, Any], container: Container,
                  ctx: PodContext) -> dict[str, str]:
    """The container's environment, in Kubernetes' order and with its expansion rules."""
    meta = meta_of(pod)
    env: dict[str, str] = {
        "POD_NAME": meta.get("name", ""),
        "POD_NAMESPACE": meta.get("namespace") or "default",
        "POD_IP": ctx.pod_ip,
        "NODE_NAME": ctx.node_name,
        "HOSTNAME": ctx.hostname,
        **ctx.extra_env,
    }
    try:
        env.update(envsources.env_from(container.get("envFrom") or [],
                                       meta.get("namespace") or "default", ctx.sources))
    except envsources.SourceError as err:
        raise ContainerConfigError(CONFIG_ERROR, str(err)) from None
    for item in container.get("env") or []:
        name = item.get("name", "")
        if "valueFrom" in item and item["valueFrom"] is not None:
            value = _value_from(pod, container, name, item["valueFrom"], ctx)
            if value is None:
                continue
        else:
            value = expand(str(item.get("value") or ""), env)
        env[name] = value
    return env


def container_spec(pod: dict[str, Any], container: Container, ctx: PodContext,
                   stored: StoredImage | None = None,
                   available: tuple[str, ...] = ()) -> ContainerSpec:
    """The runtime's spec for ``container`` of ``pod``: env, expanded argv, limits, and
    for an image of the store (``stored``) its root filesystem. ``available`` names
    the stored images, for the error when the image is nowhere."""
    env = container_env(pod, container, ctx)
    command = [expand(str(c), env) for c in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    image = container.get("image") or ""
    try:
        base = ContainerSpec.from_k8s({**container, "env": []},
                                      pod_spec(pod).get("securityContext"))
    except (QuantityError, KeyError, TypeError, ValueError) as err:
        raise ContainerConfigError(CONFIG_ERROR, f"invalid resources: {err}") from None
    # runAsNonRoot: refused before anything is created, as the kubelet does.
    refusal = verify_run_as_non_root(pod, dict(container),
                                     stored.config.user if stored is not None else None)
    if refusal is not None:
        raise ContainerConfigError(CONFIG_ERROR, refusal)
    try:
        base.kept_capabilities()
    except CapabilityError as err:
        raise ContainerConfigError(CONFIG_ERROR, f"securityContext.capabilities: {err}") from None
    if stored is not None:
        argv = imageconfig.container_argv(stored.config, command, args)
        if not argv:  # no command, no args, and an image with neither Entrypoint nor Cmd
            raise ContainerConfigError(CREATE_ERROR, f'image "{image}" has no Entrypoint or '
                                       "Cmd and the container gives no command: no command "
                                       "specified")
        return dataclasses.replace(
            base, command=tuple(argv), args=(), env=imageconfig.container_env(stored.config, env),
            working_dir=imageconfig.working_dir(stored.config, container.get("workingDir")),
            rootfs=stored.layer_dirs, user=stored.config.user or None, image_id=stored.id)
    try:
        argv = resolve(image, command, args, stored=available,
                       pull_policy=container.get("imagePullPolicy"))
    except UnknownImageError as err:
        raise ContainerConfigError(err.reason, err.message) from None
    if runs_builtin(argv) and "PYTHONPATH" in os.environ:
        # Built-in images are Python modules of this netlab: let them import it as we did.
        env.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
    return dataclasses.replace(base, command=tuple(argv), args=(), env=env,
                               stop_signals_blocked=runs_builtin(argv))


def image_id(image: str, stored: StoredImage | None = None) -> str:
    """``imageID`` in container statuses: a stored image's id (``sha256:...``, as
    containerd reports an image loaded with ``kind load``), the built-in's canonical
    name, else the image as given (whose ``command`` runs on the host)."""
    if stored is not None:
        return stored.id
    builtin = builtin_image(image)
    return f"netlab-builtin://{builtin}" if builtin else f"host-command://{image}"
