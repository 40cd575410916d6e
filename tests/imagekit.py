"""Image archives crafted in Python for the tests: layers, configs, ``docker save``
tarballs and OCI image-layout archives, byte for byte what the real tools write,
so no test pulls anything."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

from netlab.images.busybox import docker_archive

Entry = tuple  # (name, kind, payload[, mode]); kind: "file", "dir", "symlink", "hardlink", ...
Blob = Union[bytes, str]


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def layer(entries: Iterable[Entry]) -> bytes:
    """A layer tar. ``("a/b", "file", b"data")``, ``("d", "dir")``, ``("l", "symlink",
    "/target")``, ``("h", "hardlink", "a/b")``, ``("f", "fifo")``, ``("n", "chr")``;
    an optional fourth item is the mode."""
    kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in entries:
            name, kind = item[0], item[1]
            payload = item[2] if len(item) > 2 else None
            info = tarfile.TarInfo(name)
            info.type = kinds[kind]
            info.mode = item[3] if len(item) > 3 else (0o755 if kind == "dir" else 0o644)
            info.mtime = 1_700_000_000
            data = None
            if kind == "file":
                data = payload if isinstance(payload, bytes) else str(payload or "").encode()
                info.size = len(data)
            elif kind in ("symlink", "hardlink"):
                info.linkname = str(payload)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def config(layers: list[bytes], entrypoint: list[str] | None = None,
           cmd: list[str] | None = None, env: list[str] | None = None,
           workdir: str = "", user: str = "") -> bytes:
    """An image config whose diff_ids are those of the (uncompressed) ``layers``."""
    run: dict[str, Any] = {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                          "/usr/bin:/sbin:/bin"]}
    if entrypoint is not None:
        run["Entrypoint"] = entrypoint
    if cmd is not None:
        run["Cmd"] = cmd
    if workdir:
        run["WorkingDir"] = workdir
    if user:
        run["User"] = user
    return json.dumps({"architecture": "amd64", "os": "linux", "config": run,
                       "rootfs": {"type": "layers", "diff_ids": [digest(t) for t in layers]}}
                      ).encode()


def docker_save(path: Path, images: list[tuple[tuple[str, ...], bytes, list[bytes]]]) -> Path:
    """``docker save`` of (names, config, layer tars) images, written to ``path``."""
    path.write_bytes(docker_archive(images))
    return path


def oci_archive(path: Path, name: str | None, config_bytes: bytes, layers: list[bytes],
                compress: bool = True, annotation: str = "org.opencontainers.image.ref.name",
                ) -> Path:
    """An OCI image layout as a tar (what ``skopeo copy ... oci-archive:`` writes), with
    gzip'd layers unless ``compress`` is False."""
    blobs: dict[str, bytes] = {}

    def add(data: bytes) -> str:
        d = digest(data)
        blobs[d] = data
        return d

    descriptors = []
    for tar in layers:
        blob = gzip.compress(tar, mtime=0) if compress else tar
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        descriptors.append({"mediaType": media, "digest": add(blob), "size": len(blob)})
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": add(config_bytes), "size": len(config_bytes)},
        "layers": descriptors}).encode()
    top: dict[str, Any] = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": add(manifest), "size": len(manifest)}
    if name:
        top["annotations"] = {annotation: name}
    index = json.dumps({"schemaVersion": 2, "manifests": [top]}).encode()
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index}
    files |= {f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.items()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as out:
        for name_, data in files.items():
            info = tarfile.TarInfo(name_)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


def store_files(root: Path) -> list[str]:
    """Everything under a store, for "nothing changed" comparisons (the lock file and
    the empty staging directory are the store's own)."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name != "lock" and p.relative_to(root).parts[0] != "tmp")
