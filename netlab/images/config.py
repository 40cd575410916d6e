"""An image's run configuration, and how a pod's container combines with it.

The OCI image config (and ``docker inspect``'s ``Config``) carries ``Entrypoint``,
``Cmd``, ``Env``, ``WorkingDir`` and ``User``. Kubernetes combines them with the
container's ``command``, ``args`` and ``env`` by fixed rules (the kubelet's
``kuberuntime`` and the CRI runtimes):

- ``command`` replaces ``Entrypoint``, ``args`` replace ``Cmd``; with ``command``
  given and no ``args``, the image's ``Cmd`` is dropped too;
- the image's ``Env`` comes first and the pod's variables override it by name;
- ``workingDir`` replaces ``WorkingDir``; the default is ``/``.

Pure: the kubelet's container spec (``netlab.node.kubelet.spec``) calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImageConfig:
    """The part of an image's config that decides how its containers run."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()  # "KEY=VALUE", in the image's order
    working_dir: str = ""
    user: str = ""

    @classmethod
    def from_image_config(cls, config: Mapping[str, Any]) -> ImageConfig:
        """From a whole OCI/Docker image config (the JSON whose digest is the image id)."""
        run = config.get("config") or {}

        def strings(value: Any) -> tuple[str, ...]:
            if isinstance(value, str):  # Docker accepts a shell-form string; split as it does
                return ("/bin/sh", "-c", value)
            return tuple(str(v) for v in value or ())

        return cls(entrypoint=strings(run.get("Entrypoint")), cmd=strings(run.get("Cmd")),
                   env=tuple(str(e) for e in run.get("Env") or ()),
                   working_dir=str(run.get("WorkingDir") or ""), user=str(run.get("User") or ""))

    def env_map(self) -> dict[str, str]:
        """The image's environment as a dict (a later duplicate wins, as in Docker)."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            if key:
                out[key] = value
        return out


def container_argv(config: ImageConfig, command: Sequence[str] | None,
                   args: Sequence[str] | None) -> list[str]:
    """The argv of a container of this image: Kubernetes' rules (empty lists are unset,
    as the API server drops them). May be empty: the caller reports that."""
    if command:
        return [*command, *(args or ())]
    return [*config.entrypoint, *(args if args else config.cmd)]


def container_env(config: ImageConfig, pod_env: Mapping[str, str]) -> dict[str, str]:
    """The image's ``Env`` overridden by the pod's variables."""
    return {**config.env_map(), **pod_env}


def working_dir(config: ImageConfig, pod_working_dir: str | None) -> str:
    return pod_working_dir or config.working_dir or "/"
