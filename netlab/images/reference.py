"""Image references as Docker and containerd normalise them.

``busybox``, ``busybox:latest`` and ``docker.io/library/busybox:latest`` name one
image: a reference without a registry is on ``docker.io``, a one-component name
there lives under ``library/``, and a reference without a tag or digest means
``:latest``. The image store keys its index by the normalised form
(:func:`normalise`) and shows the familiar one (:func:`familiar`), as ``docker
images`` and ``crictl images`` do.

Pure and standard library only: the kubelet imports it through the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

# distribution/reference's grammar, in short: lower-case path components separated
# by '/', each of alphanumerics joined by '.', '_', '__' or dashes.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ID = re.compile(r"^(?:sha256:)?[0-9a-f]{64}$")


class ReferenceError(ValueError):
    """Not an image reference; the message says why."""


@dataclass(frozen=True)
class Reference:
    """A parsed reference: ``registry/path[:tag][@digest]``."""

    registry: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.path}"

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse(text: str) -> Reference:
    """Parse and normalise ``text``; raises :class:`ReferenceError`."""
    ref = text.strip()
    if not ref:
        raise ReferenceError("empty image reference")
    name, at, digest = ref.partition("@")
    if at and not _DIGEST.match(digest):
        raise ReferenceError(f"invalid digest {digest!r} in {text!r}")
    head, slash, last = name.rpartition("/")
    last, colon, tag = last.partition(":")
    if colon and not _TAG.match(tag):
        raise ReferenceError(f"invalid tag {tag!r} in {text!r}")
    name = f"{head}{slash}{last}"
    first, slash, rest = name.partition("/")
    # Docker's rule: a first component with a dot or a port, or "localhost", is a host.
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.match(first):
            raise ReferenceError(f"invalid registry {first!r} in {text!r}")
        registry, path = first, rest
    else:
        registry, path = DEFAULT_REGISTRY, name
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = OFFICIAL_PREFIX + path
    if not _PATH.match(path):
        raise ReferenceError(f"invalid image name {text!r}: repository names are lower case "
                             "letters, digits and separators (. _ -) between '/'")
    if not colon and not at:
        tag = DEFAULT_TAG
    return Reference(registry, path, tag or None, digest or None)


def normalise(text: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest``; raises :class:`ReferenceError`."""
    return str(parse(text))


def familiar(normalised: str) -> str:
    """The short form people type: ``docker.io/library/busybox:latest`` -> ``busybox:latest``."""
    for prefix in (f"{DEFAULT_REGISTRY}/{OFFICIAL_PREFIX}", f"{DEFAULT_REGISTRY}/"):
        if normalised.startswith(prefix):
            return normalised[len(prefix):]
    return normalised


def is_image_id(text: str) -> bool:
    """A full image id, ``sha256:<64 hex>`` or the bare 64 hex digits."""
    return bool(_ID.match(text.strip()))
