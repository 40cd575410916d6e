"""The image catalog: what a pod's ``image:`` runs.

A pod's container names an image, as in Kubernetes, and netlab runs it in one of
three ways, in this order:

1. an image of the **store** (``netlab.images.store``: loaded with ``netlab image
   load``, or ``busybox``/``alpine`` built at set-up by ``netlab.images.busybox``)
   runs in its own root filesystem, its Entrypoint, Cmd, Env, WorkingDir and User
   combined with the pod's as Kubernetes does (``netlab.images.config``);
2. a **built-in** image (below) runs a program shipped in this package, with the
   host's files seen read-only;
3. any other image with a ``command`` runs that **host program** (the host's
   files, read-only).

The built-in images map to programs shipped in this package; the kubelet asks
:func:`resolve` for the argv to exec, as a container runtime would build it from
the image's ENTRYPOINT and CMD:

- ``netlab/echo``: TCP/UDP/HTTP server answering with pod name, pod IP and client
  address (:mod:`netlab.images.echo`).
- ``netlab/stress``: burns a share of CPU and holds memory (:mod:`netlab.images.stress`).
- ``registry.k8s.io/e2e-test-images/agnhost``: the network subcommands of Kubernetes'
  e2e test image (:mod:`netlab.images.agnhost`); entrypoint ``/agnhost``, default
  argument ``pause``, as in the real image.
- ``registry.k8s.io/pause``: waits for SIGTERM; entrypoint ``/pause``.

Names match whatever the registry, tag and digest: ``netlab/echo:latest``,
``localhost:5000/netlab/echo@sha256:...``. The Kubernetes images match by their last
path component, so ``agnhost``, ``k8s.gcr.io/e2e-test-images/agnhost:2.39`` and
``gcr.io/google_containers/pause-amd64:3.1`` all work.

``command`` and ``args`` follow Kubernetes: ``command`` replaces the image's
entrypoint, and ``args`` its default arguments (and, with ``command`` given, the
image's default arguments are dropped). A ``command`` naming the image's own
entrypoint (``/agnhost``, ``/pause``) runs the built-in; any other ``command`` runs that
host program, whatever the image (unless the store has the image). An unknown image
without ``command`` cannot run: :class:`UnknownImageError` carries the Waiting reason
and message for the pod status, naming what is available.

Every built-in program runs as ``python -m netlab.images PROGRAM``, whose launcher
(``netlab/images/__main__.py``) makes a stop that arrives during start-up end the
program at once, as a compiled entrypoint would; :func:`runs_builtin` tells the
kubelet which argv expects that. A host program keeps its own signal handling as
PID 1, as the same program would have in a real container.

This module only builds argv lists: it imports nothing heavy, because the kubelet
imports it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

__all__ = ["BUILTIN_IMAGES", "UNKNOWN_IMAGE_REASON", "UnknownImageError", "builtin_image",
           "resolve", "runs_builtin"]

# Kubernetes' own reason for "the image is not on the node and will not be pulled",
# which is exactly netlab's situation: kubectl shows it, tools recognise it.
UNKNOWN_IMAGE_REASON = "ErrImageNeverPull"

# Every built-in program starts through netlab/images/__main__.py, which makes a
# stop during start-up end the program at once (see that module).
_LAUNCHER = (sys.executable, "-m", "netlab.images")


@dataclass(frozen=True)
class _Builtin:
    name: str
    description: str
    program: str  # a PROGRAMS key of netlab/images/__main__.py
    # Arguments that are part of the entrypoint, not overridable by ``args``.
    entry_args: tuple[str, ...] = ()
    default_args: tuple[str, ...] = ()
    # command[0] values that stand for the image's own entrypoint.
    entrypoints: tuple[str, ...] = ()

    def entrypoint(self) -> list[str]:
        return [*_LAUNCHER, self.program, *self.entry_args]


_CATALOG = (
    _Builtin("netlab/echo",
             "TCP/UDP/HTTP echo answering with pod name, pod IP and client address "
             "(port 8080; --port, --tcp-port, --udp-port)",
             "echo"),
    _Builtin("netlab/stress",
             "burns CPU and holds memory (--cpu 500m, --memory 100Mi, --workers, --duration)",
             "stress"),
    _Builtin("registry.k8s.io/e2e-test-images/agnhost",
             "Kubernetes e2e network test image: netexec, serve-hostname, connect, pause "
             "(entrypoint /agnhost)",
             "agnhost", default_args=("pause",), entrypoints=("/agnhost",)),
    _Builtin("registry.k8s.io/pause",
             "does nothing until SIGTERM (entrypoint /pause)",
             "agnhost", entry_args=("pause",), entrypoints=("/pause",)),
)

BUILTIN_IMAGES: dict[str, str] = {image.name: image.description for image in _CATALOG}

_BY_PATH = {image.name: image for image in _CATALOG}
# Kubernetes' images live in several registries and projects over the years
# (k8s.gcr.io, gcr.io/kubernetes-e2e-test-images, ...): their last component decides.
_BY_LAST_COMPONENT = {
    "agnhost": _BY_PATH["registry.k8s.io/e2e-test-images/agnhost"],
    "pause": _BY_PATH["registry.k8s.io/pause"],
}
_ARCH_SUFFIX = re.compile(r"-(amd64|arm64|arm|ppc64le|s390x)$")


class UnknownImageError(Exception):
    """An image netlab does not ship, with no ``command`` to run instead.

    ``reason`` and ``message`` are meant for the container's Waiting state.
    """

    def __init__(self, image: str, reason: str = UNKNOWN_IMAGE_REASON,
                 message: str | None = None, stored: tuple[str, ...] = (),
                 pull_policy: str | None = None) -> None:
        self.image = image
        self.reason = reason
        self.message = message or _unknown_message(image, stored, pull_policy)
        super().__init__(self.message)


def _unknown_message(image: str, stored: tuple[str, ...] = (),
                     pull_policy: str | None = None) -> str:
    # Kubernetes' own sentence first (kubelet's image manager), then what to do.
    head = (f'Container image "{image}" is not present with pull policy of {pull_policy}: '
            if pull_policy == "Never" else "")
    return (f'{head}image "{image}" is not in the image store nor built into netlab, and the '
            "container has no command; netlab pulls only from a registry named in the image "
            "(host:port/name), never from Docker Hub: load it with 'netlab image load "
            f"FILE'. Stored images: {', '.join(stored) or 'none'}. Built-in images: "
            f"{', '.join(BUILTIN_IMAGES)}. With a command, any image runs that host program.")


def _repository_path(image: str) -> str:
    """``registry/path:tag@digest`` -> ``path``, lower-cased."""
    name = image.strip().split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    name = f"{head}{slash}{last.split(':', 1)[0]}"
    first, slash, rest = name.partition("/")
    # Docker's rule: a first component with a dot or a port, or "localhost", is a host.
    if slash and ("." in first or ":" in first or first == "localhost"):
        name = rest
    if name.startswith("library/"):
        name = name[len("library/"):]
    return name.lower()


def builtin_image(image: str) -> str | None:
    """The canonical name of the built-in ``image`` stands for, or None."""
    found = _lookup(image)
    return found.name if found else None


def _lookup(image: str) -> _Builtin | None:
    path = _repository_path(image)
    if path in _BY_PATH:
        return _BY_PATH[path]
    last = _ARCH_SUFFIX.sub("", path.rpartition("/")[2])
    return _BY_LAST_COMPONENT.get(last)


def resolve(image: str, command: list[str] | None = None,
            args: list[str] | None = None, stored: tuple[str, ...] = (),
            pull_policy: str | None = None) -> list[str]:
    """The argv that runs a container of the built-in or host-program ``image`` with
    the pod spec's command and args (an image of the store is combined with its
    config instead: :func:`netlab.images.config.container_argv`).

    Empty lists count as unset, as the API server drops them. Raises
    :class:`UnknownImageError` for an unknown image without ``command``; its
    message lists the ``stored`` names, the images that could have run.
    """
    builtin = _lookup(image)
    if command:
        if builtin and command[0] in builtin.entrypoints:
            return [*builtin.entrypoint(), *command[1:], *(args or [])]
        return [*command, *(args or [])]
    if builtin is None:
        raise UnknownImageError(image, stored=stored, pull_policy=pull_policy)
    return [*builtin.entrypoint(), *(args or builtin.default_args)]


def runs_builtin(argv: list[str]) -> bool:
    """Whether ``argv`` (from :func:`resolve`) runs a built-in program, whose SIGTERM
    handler comes only after its start-up (the runtime waits for it before a stop); a
    host program's argv does not."""
    return tuple(argv[:len(_LAUNCHER)]) == _LAUNCHER and len(argv) > len(_LAUNCHER)
