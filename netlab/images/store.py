"""The image store: images loaded once and shared by every lab on the host.

It lives in ``/var/lib/netlab/images/`` (``NETLAB_DATA_DIR`` moves it with the
rest; the lab name ``images`` is reserved for it) and holds:

- ``blobs/sha256/<hex>``: image configs, content-addressed (an image's id is
  the sha256 of its config, as in Docker and containerd);
- ``layers/sha256/<diff id>/``: each layer unpacked once, whiteouts in overlayfs'
  form (``netlab.images.layers``), named by the sha256 of the uncompressed layer
  tar, so images that share a layer share its directory;
- ``records/<hex>.json``: one per image: its layers in order, with sizes, and
  its config (Entrypoint, Cmd, Env, WorkingDir, User);
- ``index.json``: normalised name -> image id (``docker.io/library/busybox:latest``);
- ``tmp/``: loads in progress; ``downloads/``: pulls in progress (the blobs a
  registry sent, checked against their digests, before they are stored as a load
  stores an archive's); ``lock``: writers take it (``flock``).

A load is all or nothing. Everything is unpacked and checked in ``tmp/`` first:
the digests the archive states for its blobs, and every layer's diff id against
the bytes actually unpacked, so a corrupt or truncated archive fails there and
its staging directory is removed. Only then are layers renamed into place, the
config and record written, and the index replaced (write, fsync, rename), so a
reader sees the old index or the new one. Something left by a crash in the middle
of that is unreferenced, and the next writer's collection removes it.

Readers (the kubelet resolving an image) take no lock: they read the index and a
record, each replaced atomically, and check that the layer directories exist.
A name that moves to another image leaves the old one untagged (``<none>`` in
``netlab image ls``, as ``docker images`` shows it) until ``netlab image rm``;
an image's layers are only removed with the last image that uses them.

Standard library only: the kubelet imports this to look images up.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Callable, Protocol, cast

from netlab import paths
from netlab.fileio import write_atomic
from netlab.images import layers as layerlib
from netlab.images.archive import Archive, ArchiveError, ArchiveImage, LayerRef
from netlab.images.config import ImageConfig
from netlab.images.reference import ReferenceError, familiar, is_image_id, normalise, parse

STORE_DIR = "images"  # under DATA_ROOT; reserved as a lab name (netlab.topology.validate)
READ_CHUNK = 1 << 20
DOWNLOAD_MAX_AGE = 86400.0  # seconds: a pull's leftover downloads (a crash) are collected after


class ImageArchiveError(Exception):
    """An archive that cannot be loaded (corrupt, truncated, unsafe, not an image);
    nothing of it was stored."""


class ImageNotFoundError(LookupError):
    """No stored image has that name or id."""


class ImageInUseError(RuntimeError):
    """The image is the root filesystem of containers that still run."""


def default_root() -> Path:
    return paths.DATA_ROOT / STORE_DIR


@dataclass(frozen=True)
class StoredImage:
    """An image of the store, ready to run: what the kubelet and ``image ls`` need."""

    id: str  # sha256:<hex of the config>
    names: tuple[str, ...]  # normalised references, sorted
    layers: tuple[str, ...]  # diff ids, bottom layer first
    layer_dirs: tuple[str, ...]  # the unpacked layers, TOP first (overlayfs' lowerdir order)
    config: ImageConfig
    size: int  # bytes of file content over all layers
    created: str = ""
    digests: tuple[str, ...] = ()  # manifest digests, when the archive had manifests

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]

    def familiar_names(self) -> list[str]:
        return [familiar(n) for n in self.names]


class BlobSource(Protocol):
    """Where the store reads layer blobs from: an open archive, or a pull's downloads."""

    def open(self, name: str) -> IO[bytes]: ...


class _Readable(Protocol):
    """What :class:`_Hashing` reads from: a file, a GzipFile, another _Hashing."""

    def read(self, n: int = -1, /) -> bytes: ...


class _Hashing:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, raw: _Readable) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass

    def digest(self) -> str:
        return f"sha256:{self.hash.hexdigest()}"


def _hex(image_id: str) -> str:
    return image_id.split(":", 1)[-1]


# What a broken archive raises while being read, unpacked or parsed.
_BROKEN = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, layerlib.LayerError,
           ArchiveError, UnicodeDecodeError, KeyError, TypeError, AttributeError)


class ImageStore:
    """The store at ``root`` (default: ``/var/lib/netlab/images``)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # -- layout ----------------------------------------------------------------------------

    @property
    def index_file(self) -> Path:
        return self.root / "index.json"

    def _blob(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(digest)

    def layer_dir(self, diff_id: str) -> Path:
        return self.root / "layers" / "sha256" / _hex(diff_id)

    def _record(self, image_id: str) -> Path:
        return self.root / "records" / f"{_hex(image_id)}.json"

    def _ensure(self) -> None:
        for sub in ("blobs/sha256", "layers/sha256", "records", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True, mode=0o755)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure()
        with open(self.root / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def download_dir(self) -> Path:
        """A fresh directory for one pull's blobs, outside ``tmp/`` (which every load
        clears, and a pull downloads without the lock). The caller removes it; one
        left by a crash is collected after a day."""
        self._ensure()
        (self.root / "downloads").mkdir(exist_ok=True, mode=0o700)
        return Path(tempfile.mkdtemp(prefix="pull-", dir=self.root / "downloads"))

    # -- reading (no lock) -----------------------------------------------------------------

    def _index(self) -> dict[str, str]:
        try:
            data = json.loads(self.index_file.read_text())
        except (OSError, ValueError):
            return {}
        images = data.get("images") if isinstance(data, dict) else None
        return {str(k): str(v) for k, v in (images or {}).items()}

    def _load_record(self, image_id: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._record(image_id).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _image(self, image_id: str, index: dict[str, str]) -> StoredImage | None:
        record = self._load_record(image_id)
        if record is None:
            return None
        diff_ids = tuple(str(layer["diffID"]) for layer in record.get("layers") or [])
        dirs = [self.layer_dir(d) for d in diff_ids]
        if not all(d.is_dir() for d in dirs):
            return None  # a load or a removal is half-way: not runnable
        config = record.get("config") or {}
        return StoredImage(
            id=image_id, names=tuple(sorted(n for n, i in index.items() if i == image_id)),
            layers=diff_ids, layer_dirs=tuple(str(d) for d in reversed(dirs)),
            config=ImageConfig.from_image_config(config),
            size=sum(int(layer.get("size") or 0) for layer in record.get("layers") or []),
            created=str(config.get("created") or ""),
            digests=tuple(record.get("digests") or ()))

    def _ids(self) -> list[str]:
        try:
            return sorted(f"sha256:{p.stem}" for p in (self.root / "records").glob("*.json"))
        except OSError:
            return []

    def lookup(self, name: str) -> StoredImage | None:
        """The stored image ``name`` stands for (any spelling of a reference, a
        ``name@sha256:`` digest, or a full image id), or None."""
        index = self._index()
        text = name.strip()
        if is_image_id(text):
            return self._image(f"sha256:{_hex(text)}", index)
        try:
            ref = parse(text)
        except ReferenceError:
            return None
        image_id = index.get(str(ref))  # a name, or name@digest as a pull by digest stores it
        if image_id or ref.digest is None:
            return self._image(image_id, index) if image_id else None
        for image_id in self._ids():  # name@digest: the manifest's digest, or the id
            image = self._image(image_id, index)
            if image is not None and ref.digest in (image.id, *image.digests) and any(
                    n.startswith((ref.repository + ":", ref.repository + "@"))
                    for n in image.names):
                return image
        return None

    def images(self) -> list[StoredImage]:
        """Every stored image (untagged ones too), by first name."""
        index = self._index()
        found = [image for image in map(lambda i: self._image(i, index), self._ids())
                 if image is not None]
        return sorted(found, key=lambda i: (not i.names, i.names[:1], i.id))

    def names(self) -> list[str]:
        """Every stored name, in the familiar form (``busybox:latest``)."""
        return sorted(familiar(n) for n in self._index())

    # -- loading -----------------------------------------------------------------------------

    def load(self, archive: Path, names: tuple[str, ...] = ()) -> list[StoredImage]:
        """Load every image of the archive at ``archive`` (docker save or OCI layout,
        optionally gzip'd); ``names`` tag the one image it holds. All or nothing:
        raises :class:`ImageArchiveError` and stores nothing."""
        with self._locked():
            self._collect()
            return self._load(Path(archive), names)

    def load_stream(self, stream: BinaryIO, names: tuple[str, ...] = ()) -> list[StoredImage]:
        """As :meth:`load`, from a stream (``netlab image load -``): spooled first,
        since an archive's index may come after its layers."""
        with self._locked():
            self._collect()  # first: it clears tmp/, where the spool goes
            fd, spool = tempfile.mkstemp(prefix="stdin-", dir=self.root / "tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(stream, out, READ_CHUNK)
                return self._load(Path(spool), names)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(spool)

    def _load(self, archive: Path, names: tuple[str, ...]) -> list[StoredImage]:
        try:
            wanted = tuple(normalise(n) for n in names)
        except ReferenceError as err:
            raise ImageArchiveError(str(err)) from None
        staging = Path(tempfile.mkdtemp(prefix="load-", dir=self.root / "tmp"))
        try:
            try:
                with tarfile.open(archive, "r:*") as tar:
                    opened = Archive(tar)
                    staged = self._stage(opened.images(), opened, staging, wanted)
            except _BROKEN as err:
                raise ImageArchiveError(f"{archive.name}: {_describe(err)}") from None
            except ValueError as err:  # a bad reference or document
                raise ImageArchiveError(f"{archive.name}: {err}") from None
            return self._commit(staged, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def load_pulled(self, images: list[ArchiveImage], blobs: BlobSource) -> list[StoredImage]:
        """Store images fetched from a registry (``netlab.images.registry``): their
        configs and layer descriptors as an archive would state them, the layer blobs
        opened by ``blobs`` (a member name is a layer's digest). The same checks and
        the same all-or-nothing as :meth:`load`: raises :class:`ImageArchiveError`."""
        with self._locked():
            self._collect()
            staging = Path(tempfile.mkdtemp(prefix="pull-", dir=self.root / "tmp"))
            try:
                try:
                    staged = self._stage(images, blobs, staging, ())
                except _BROKEN as err:
                    raise ImageArchiveError(_describe(err)) from None
                except ValueError as err:
                    raise ImageArchiveError(str(err)) from None
                except FileNotFoundError:  # a layer it meant to reuse was removed meanwhile
                    raise ImageArchiveError("a layer was removed from the store during the "
                                            "pull: pull again") from None
                return self._commit(staged, staging)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def _stage(self, images: list[ArchiveImage], archive: BlobSource, staging: Path,
               wanted: tuple[str, ...]) -> list[_Staged]:
        if wanted and len(images) != 1:
            raise ArchiveError(f"the archive holds {len(images)} images: --name needs exactly one")
        out: list[_Staged] = []
        unpacked: dict[str, tuple[Path | None, int]] = {}
        for image in images:
            config = image.config
            image_id = f"sha256:{hashlib.sha256(config).hexdigest()}"
            if image.config_digest and image.config_digest != image_id:
                raise ArchiveError(f"the image config's digest is {image_id}, not "
                                   f"{image.config_digest} as the archive says")
            refs = tuple(dict.fromkeys([*(normalise(n) for n in image.names), *wanted]))
            if not refs:
                raise ArchiveError("the archive names no image (no RepoTags or ref.name "
                                   "annotation): load it with --name NAME")
            layer_rows = []
            for layer in image.layers:
                if layer.diff_id not in unpacked:
                    unpacked[layer.diff_id] = self._stage_layer(archive, layer, staging)
                layer_rows.append({"diffID": layer.diff_id, "size": unpacked[layer.diff_id][1]})
            out.append(_Staged(image_id, config, refs, layer_rows, image.manifest_digest,
                               {d: p for d, (p, _) in unpacked.items()}))
        return out

    def _stage_layer(self, archive: BlobSource, layer: LayerRef,
                     staging: Path) -> tuple[Path | None, int]:
        """Unpack one layer into ``staging`` and check its digests; a layer already in
        the store is not unpacked again (None)."""
        final = self.layer_dir(layer.diff_id)
        if final.is_dir():
            return None, _tree_size(final)
        dest = staging / _hex(layer.diff_id)
        dest.mkdir()
        with archive.open(layer.member) as blob:
            head = blob.read(4)
            blob.seek(0)
            if head[:4] == b"\x28\xb5\x2f\xfd":
                raise ArchiveError(f"layer {layer.member} is zstd-compressed; netlab reads "
                                   "tar and gzip layers")
            # GzipFile and unpack only read these streams, never seek them: _Hashing
            # has what they use of a binary file, though it is not one.
            stored = _Hashing(blob)
            plain: _Readable = gzip.GzipFile(fileobj=cast(IO[bytes], stored), mode="rb") \
                if head[:2] == b"\x1f\x8b" else stored
            content = _Hashing(plain)
            stats = layerlib.unpack(cast(BinaryIO, content), dest)
            stored.drain()
        if layer.digest and stored.digest() != layer.digest:
            raise ArchiveError(f"layer {layer.member}: its digest is {stored.digest()}, not "
                               f"{layer.digest}: the archive is corrupt")
        if content.digest() != layer.diff_id:
            raise ArchiveError(f"layer {layer.member}: its content hashes to {content.digest()}, "
                               f"not the diff_id {layer.diff_id}: the archive is corrupt")
        return dest, stats.size

    def _commit(self, staged: list[_Staged], staging: Path) -> list[StoredImage]:
        for image in staged:
            for diff_id, path in image.unpacked.items():
                final = self.layer_dir(diff_id)
                if path is not None and path.exists() and not final.exists():
                    os.rename(path, final)
            write_atomic(self._blob(image.id), image.config)
            record = {"id": image.id, "layers": image.layers,
                      "config": json.loads(image.config),
                      "digests": [image.manifest_digest] if image.manifest_digest else [],
                      "loaded": time.time()}
            write_atomic(self._record(image.id),
                         json.dumps(record, indent=1, sort_keys=True).encode())
        index = self._index()
        for image in staged:
            index.update({name: image.id for name in image.names})
        self._write_index(index)
        index = self._index()
        return [i for i in (self._image(s.id, index) for s in staged) if i is not None]

    def _write_index(self, index: dict[str, str]) -> None:
        write_atomic(self.index_file, json.dumps({"images": dict(sorted(index.items()))},
                                                 indent=1).encode())

    # -- removing ------------------------------------------------------------------------------

    def resolve(self, name: str) -> tuple[str, list[str]]:
        """(image id, the names to remove) for ``name``: a name removes only itself, an
        id or an id prefix (as ``docker rmi`` takes them) removes the image with all
        its names. Raises :class:`ImageNotFoundError`."""
        index = self._index()
        text = name.strip()
        hexes = [_hex(i) for i in self._ids()]
        bare = _hex(text) if text.startswith("sha256:") else text
        matches = [h for h in hexes if h.startswith(bare)] if len(bare) >= 4 and all(
            c in "0123456789abcdef" for c in bare) else []
        try:
            ref = normalise(text)
        except ReferenceError:
            ref = None
        if ref is not None and ref in index:
            return index[ref], [ref]
        if len(matches) == 1:
            image_id = f"sha256:{matches[0]}"
            return image_id, sorted(n for n, i in index.items() if i == image_id)
        if len(matches) > 1:
            raise ImageNotFoundError(f"{name!r} is the prefix of {len(matches)} image ids")
        raise ImageNotFoundError(f"no image {name!r} in the store ({self.root})")

    def remove(self, name: str,
               in_use: Callable[[str], list[str]] | None = None) -> tuple[str, list[str], bool]:
        """Remove ``name`` (see :meth:`resolve`); the image goes with its last name.
        Returns (image id, names removed, whether the image itself was deleted).
        ``in_use(id)`` names the containers running it: an image still used is not
        deleted (:class:`ImageInUseError`)."""
        with self._locked():
            image_id, removed = self.resolve(name)
            index = self._index()
            left = [n for n, i in index.items() if i == image_id and n not in removed]
            deleting = not left
            if deleting and in_use is not None:
                users = in_use(image_id)
                if users:
                    raise ImageInUseError(f"image {_hex(image_id)[:12]} is the root filesystem "
                                          f"of running containers: {', '.join(users)}")
            for n in removed:
                index.pop(n, None)
            self._write_index(index)
            if deleting:
                with contextlib.suppress(FileNotFoundError):
                    self._record(image_id).unlink()
            self._collect()
            return image_id, removed, deleting

    def _collect(self) -> None:
        """Remove what no image references: layers, config blobs, staging left by a
        crash. Called with the lock held, so nothing is being loaded."""
        for entry in (self.root / "tmp").iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
        stale = time.time() - DOWNLOAD_MAX_AGE
        downloads = self.root / "downloads"
        for entry in downloads.iterdir() if downloads.is_dir() else ():
            with contextlib.suppress(OSError):
                if entry.lstat().st_mtime < stale:
                    shutil.rmtree(entry, ignore_errors=True)
        ids = set(self._ids())
        live_layers: set[str] = set()
        for image_id in ids:
            record = self._load_record(image_id) or {}
            live_layers |= {_hex(str(layer.get("diffID"))) for layer in record.get("layers") or []}
        for layer in (self.root / "layers" / "sha256").iterdir():
            if layer.name not in live_layers:
                shutil.rmtree(layer, ignore_errors=True)
        live_blobs = {_hex(i) for i in ids}
        for blob in (self.root / "blobs" / "sha256").iterdir():
            if blob.name not in live_blobs:
                with contextlib.suppress(FileNotFoundError):
                    blob.unlink()


@dataclass
class _Staged:
    id: str
    config: bytes
    names: tuple[str, ...]
    layers: list[dict[str, Any]]
    manifest_digest: str | None
    unpacked: dict[str, Path | None]


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(directory, name))
                if st.st_mode & 0o170000 == 0o100000:
                    total += st.st_size
    return total


def _describe(err: BaseException) -> str:
    if isinstance(err, (EOFError, tarfile.ReadError)):
        return f"the archive is truncated or not a tar file ({err or type(err).__name__})"
    if isinstance(err, (zlib.error, gzip.BadGzipFile)):
        return f"corrupt compressed data ({err})"
    if isinstance(err, KeyError):
        return f"a document lacks the field {err}"
    return str(err) or type(err).__name__
