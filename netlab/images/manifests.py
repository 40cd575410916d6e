"""Registry manifests: what a distribution-API ``GET /v2/<name>/manifests/<ref>`` returns.

A registry answers a manifest request with one of four documents, chosen by the
request's ``Accept`` header (:data:`ACCEPT` asks for all four):

- an **index** (OCI ``image.index``, or Docker's ``manifest.list.v2``): one
  descriptor per platform, each naming an image manifest by digest;
- an **image manifest** (OCI ``image.manifest``, or Docker's schema 2): the
  image config's descriptor and the layers', bottom layer first.

An index is resolved to the manifest of ``linux/<host architecture>``
(:func:`choose_platform`), as containerd's default platform matcher does:
attestation entries (``unknown/unknown``) never match, a variant that matches
the host's beats none, and among equals the first listed wins. Docker's schema
1 and zstd-compressed layers are refused with a message saying so.

Pure and standard library only: ``netlab.images.registry`` fetches, this parses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Union

from netlab.images.archive import (
    MANIFEST_LIST_V2,
    MANIFEST_V2,
    OCI_INDEX,
    OCI_MANIFEST,
    host_architecture,
)

ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, MANIFEST_LIST_V2, MANIFEST_V2))
INDEX_TYPES = (OCI_INDEX, MANIFEST_LIST_V2)
MANIFEST_TYPES = (OCI_MANIFEST, MANIFEST_V2)
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# The variant a host of each architecture runs when an index names several
# (containerd's platforms.Normalize: arm64 is v8, 32-bit arm v7).
_HOST_VARIANT = {"arm64": "v8", "arm": "v7"}


class ManifestError(ValueError):
    """A manifest or index that cannot be pulled; the message says why."""


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest says about a blob or another manifest."""

    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any, what: str) -> Descriptor:
        if not isinstance(value, dict):
            raise ManifestError(f"{what}: not a descriptor")
        digest = value.get("digest")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise ManifestError(f"{what}: unsupported digest {digest!r} (only sha256)")
        size = value.get("size", -1)
        if not isinstance(size, int) or isinstance(size, bool) or size < -1:
            raise ManifestError(f"{what}: invalid size {size!r}")
        platform = value.get("platform")
        return cls(str(value.get("mediaType") or ""), digest, size,
                   platform if isinstance(platform, dict) else {})


@dataclass(frozen=True)
class Index:
    """An OCI index or Docker manifest list."""

    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageManifest:
    """An OCI image manifest or Docker schema 2 manifest."""

    config: Descriptor
    layers: tuple[Descriptor, ...]


Document = Union[Index, ImageManifest]


def parse(body: bytes, content_type: str = "") -> Document:
    """Parse a manifest response; ``content_type`` is the response's, the document's
    own ``mediaType`` decides when the header is missing or generic."""
    media = content_type.split(";", 1)[0].strip()
    if media in SCHEMA1:
        raise ManifestError(f"{media}: Docker schema 1 manifests are not supported")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"the manifest is not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise ManifestError("the manifest is not a JSON object")
    own = document.get("mediaType")
    if isinstance(own, str) and own:
        if own in SCHEMA1:
            raise ManifestError(f"{own}: Docker schema 1 manifests are not supported")
        if media in (*INDEX_TYPES, *MANIFEST_TYPES) and own != media:
            raise ManifestError(f"the registry sent {media} but the document says {own}")
        media = own
    if document.get("schemaVersion") == 1:
        raise ManifestError("Docker schema 1 manifests are not supported")
    if media in INDEX_TYPES or (media not in MANIFEST_TYPES and "manifests" in document):
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("the index has no manifests list")
        return Index(tuple(Descriptor.parse(d, f"manifests[{i}]") for i, d in enumerate(entries)))
    if media in MANIFEST_TYPES or ("config" in document and "layers" in document):
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise ManifestError("the manifest has no layers list")
        return ImageManifest(Descriptor.parse(document.get("config"), "config"),
                             tuple(Descriptor.parse(d, f"layers[{i}]")
                                   for i, d in enumerate(layers)))
    raise ManifestError(f"not an image manifest or index (media type {media or 'unknown'!r})")


def choose_platform(index: Index, arch: str | None = None, os: str = "linux",
                    variant: str | None = None) -> Descriptor:
    """The entry of ``index`` for ``os``/``arch`` (default: this host); raises
    :class:`ManifestError` naming the platforms it has when none fits."""
    arch = arch or host_architecture()
    want_variant = variant if variant is not None else _HOST_VARIANT.get(arch, "")
    candidates = []
    for position, entry in enumerate(index.manifests):
        p = entry.platform
        if str(p.get("os", "")) != os or str(p.get("architecture", "")) != arch:
            continue
        have = str(p.get("variant") or "")
        # An exact variant first, then an entry without one, then any other.
        rank = 0 if have == want_variant else 1 if not have else 2
        candidates.append((rank, position, entry))
    if not candidates:
        listed = sorted({f"{d.platform.get('os', '?')}/{d.platform.get('architecture', '?')}"
                         for d in index.manifests})
        raise ManifestError(f"no matching manifest for {os}/{arch} in the manifest list "
                            f"entries (it has: {', '.join(listed) or 'none'})")
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def check_layers(manifest: ImageManifest) -> None:
    """Refuse layers netlab cannot unpack before anything is downloaded."""
    for layer in manifest.layers:
        media = layer.media_type
        if "zstd" in media:
            raise ManifestError(f"layer {layer.digest} is zstd-compressed ({media}); netlab "
                                "reads tar and gzip layers")
        if "nondistributable" in media or "foreign" in media:
            raise ManifestError(f"layer {layer.digest} is a foreign layer ({media}) that "
                                "this registry does not serve")
