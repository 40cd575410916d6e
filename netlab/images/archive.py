"""Reading image archives: ``docker save`` tarballs and OCI image-layout archives.

Both are tar files (optionally gzip-compressed as a whole) that hold JSON
documents and layer blobs:

- ``docker save`` (and ``skopeo copy ... docker-archive:``): ``manifest.json``
  lists each image's ``Config`` file, its ``RepoTags`` and its ``Layers`` in order;
- an OCI image layout (``skopeo copy ... oci-archive:``, ``umoci``, ``docker save``
  since Docker 25): ``oci-layout``, ``index.json`` naming manifests (or nested
  indexes, one per platform) by digest, and every blob under ``blobs/sha256/``.
  Names come from the ``io.containerd.image.name`` or
  ``org.opencontainers.image.ref.name`` annotations.

This module only parses and checks what the archive *says*; the digests of what
it *holds* are checked by the store while it unpacks (``netlab.images.store``).
Every problem raises :class:`ArchiveError`. Standard library only.
"""

from __future__ import annotations

import json
import platform
import re
import tarfile
from dataclasses import dataclass
from typing import IO, Any

from netlab.images.layers import LayerError, member_path

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_BLOB_PATH = re.compile(r"^(?:.*/)?(?:blobs/sha256/)?([0-9a-f]{64})(?:\.json|\.tar)?$")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x"}
MAX_JSON = 16 << 20  # a manifest or config larger than this is not one


class ArchiveError(ValueError):
    """An archive that is not a loadable image; the message says what is wrong."""


@dataclass(frozen=True)
class LayerRef:
    """One layer as the archive describes it."""

    member: str  # the tar member holding the blob
    diff_id: str  # sha256 of the uncompressed layer tar, from the image config
    digest: str | None  # sha256 of the blob as stored, when the archive states it


@dataclass(frozen=True)
class ArchiveImage:
    """One image of an archive: its config document, names and layers."""

    config: bytes
    config_digest: str | None  # as stated by the archive (checked by the store)
    names: tuple[str, ...]
    layers: tuple[LayerRef, ...]
    manifest_digest: str | None = None


def host_architecture() -> str:
    return _ARCH.get(platform.machine(), platform.machine())


class Archive:
    """An open image archive (random access)."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in tar.getmembers():
            try:
                self.members[member_path(m.name)] = m
            except LayerError as err:
                raise ArchiveError(str(err)) from None

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> IO[bytes]:
        m = self.members.get(name)
        if m is None or not m.isreg():
            raise ArchiveError(f"the archive has no file {name}")
        f = self.tar.extractfile(m)
        assert f is not None
        return f

    def read(self, name: str) -> bytes:
        m = self.members.get(name)
        if m is not None and m.size > MAX_JSON:
            raise ArchiveError(f"{name} is {m.size} bytes: too large for a JSON document")
        with self.open(name) as f:
            return f.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ArchiveError(f"{name} is not valid JSON: {err}") from None

    def blob_path(self, digest: str) -> str:
        m = _DIGEST.match(str(digest))
        if not m:
            raise ArchiveError(f"unsupported digest {digest!r} (only sha256)")
        return f"blobs/sha256/{m.group(1)}"

    # -- the two formats --------------------------------------------------------------------

    def images(self) -> list[ArchiveImage]:
        if self.has("manifest.json"):
            return self._docker()
        if self.has("index.json"):
            return self._oci()
        raise ArchiveError("neither manifest.json (docker save) nor index.json (OCI image "
                           "layout) is in the archive: not an image archive, or truncated")

    def _docker(self) -> list[ArchiveImage]:
        manifest = self.json("manifest.json")
        if not isinstance(manifest, list) or not manifest:
            raise ArchiveError("manifest.json lists no image")
        out = []
        for entry in manifest:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise ArchiveError("manifest.json: an entry without Config")
            config_name = member_path(entry["Config"])
            config = self.read(config_name)
            stated = _BLOB_PATH.match(config_name)
            diff_ids = _diff_ids(config)
            layers = entry.get("Layers") or []
            if not isinstance(layers, list) or len(layers) != len(diff_ids):
                raise ArchiveError(f"manifest.json names {len(layers)} layers but the image "
                                   f"config has {len(diff_ids)} diff_ids")
            refs = []
            for name, diff_id in zip(layers, diff_ids):
                path = member_path(str(name))
                blob = _BLOB_PATH.match(path)
                # New-style archives keep layers as blobs named by their digest: check it.
                digest = f"sha256:{blob.group(1)}" if blob and "blobs/" in path else None
                refs.append(LayerRef(path, diff_id, digest))
            tags = entry.get("RepoTags") or []
            out.append(ArchiveImage(config, f"sha256:{stated.group(1)}" if stated else None,
                                    tuple(str(t) for t in tags), tuple(refs)))
        return out

    def _oci(self) -> list[ArchiveImage]:
        index = self.json("index.json")
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ArchiveError("index.json has no manifests list")
        out = []
        for descriptor in index["manifests"]:
            names = tuple(_names(descriptor))
            manifest, digest = self._pick(descriptor, depth=0)
            config_desc = manifest.get("config") or {}
            config = self.read(self.blob_path(config_desc.get("digest", "")))
            diff_ids = _diff_ids(config)
            layers = manifest.get("layers") or []
            if len(layers) != len(diff_ids):
                raise ArchiveError(f"manifest {digest} names {len(layers)} layers but the "
                                   f"image config has {len(diff_ids)} diff_ids")
            refs = []
            for layer, diff_id in zip(layers, diff_ids):
                media = str(layer.get("mediaType", ""))
                if "zstd" in media:
                    raise ArchiveError(f"layer {layer.get('digest')} is zstd-compressed "
                                       f"({media}); netlab reads tar and gzip layers")
                refs.append(LayerRef(self.blob_path(layer.get("digest", "")), diff_id,
                                     str(layer["digest"])))
            out.append(ArchiveImage(config, str(config_desc.get("digest")), names,
                                    tuple(refs), digest))
        if not out:
            raise ArchiveError("index.json lists no image")
        return out

    def _pick(self, descriptor: Any, depth: int) -> tuple[dict[str, Any], str]:
        """Follow an index down to the image manifest for this host's platform."""
        if not isinstance(descriptor, dict) or depth > 4:
            raise ArchiveError("index.json: a malformed or too deeply nested descriptor")
        digest = str(descriptor.get("digest", ""))
        document = self.json(self.blob_path(digest))
        media = descriptor.get("mediaType") or document.get("mediaType", "")
        if media in (OCI_INDEX, MANIFEST_LIST_V2) or "manifests" in document:
            arch = host_architecture()
            choices = [d for d in document.get("manifests") or []
                       if (d.get("platform") or {}).get("architecture", arch) == arch
                       and (d.get("platform") or {}).get("os", "linux") == "linux"]
            if not choices:
                raise ArchiveError(f"index {digest} has no image for linux/{arch}")
            return self._pick(choices[0], depth + 1)
        if "config" not in document or "layers" not in document:
            raise ArchiveError(f"{digest} is not an image manifest")
        return document, digest


def _names(descriptor: dict[str, Any]) -> list[str]:
    annotations = descriptor.get("annotations") or {}
    for key in NAME_ANNOTATIONS:
        if annotations.get(key):
            return [str(annotations[key])]
    return []


def config_diff_ids(config: bytes) -> list[str]:
    """An image config's ``rootfs.diff_ids`` (raises :class:`ArchiveError`): the store
    checks every unpacked layer against them, wherever the config came from."""
    return _diff_ids(config)


def _diff_ids(config: bytes) -> list[str]:
    try:
        document = json.loads(config)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArchiveError(f"the image config is not valid JSON: {err}") from None
    rootfs = document.get("rootfs") if isinstance(document, dict) else None
    diff_ids = (rootfs or {}).get("diff_ids")
    if not isinstance(diff_ids, list) or not all(
            isinstance(d, str) and _DIGEST.match(d) for d in diff_ids):
        raise ArchiveError("the image config has no valid rootfs.diff_ids")
    return diff_ids
