"""Build the ``busybox`` and ``alpine`` images from Debian's busybox-static, locally.

Nothing can be pulled here, yet ``kubectl run --image=busybox`` is in every
tutorial. So the set-up builds the image itself, into the image store, from the
static busybox binary Debian ships (package ``busybox-static``):

- ``busybox`` (``busybox:latest``, ``docker.io/library/busybox:latest``): one
  layer with ``/bin/busybox``, a symbolic link for each applet where ``busybox
  --install -s`` would put it (``/bin/sh``, ``/usr/bin/wget``, ``/sbin/ip`` ...),
  a minimal ``/etc/passwd`` and ``/etc/group``, ``/root``, ``/tmp``; ``Cmd sh``;
- ``alpine`` (``alpine:latest``, ``docker.io/library/alpine:latest``): the same
  layer plus one with an ``/etc/os-release`` that says what it is. It is not
  Alpine (there is no ``apk``), but ``sh -c`` scripts written for it run.

The build is deterministic (fixed times, sorted entries), so the same binary
always gives the same layer and image ids: building again changes nothing. The
images go through the store's ordinary loader, as a ``docker save`` archive.

``python -m netlab.images.busybox`` and ``netlab image build-busybox`` run it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from netlab.images.store import ImageStore, StoredImage

BUSYBOX_NAMES = ("docker.io/library/busybox:latest",)
ALPINE_NAMES = ("docker.io/library/alpine:latest",)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "nobody:x:65534:65534:nobody:/home:/bin/false\n")
GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"
DIRECTORIES = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555,
               "root": 0o700, "sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755,
               "usr/bin": 0o755, "usr/sbin": 0o755, "var": 0o755, "var/tmp": 0o1777}
SEARCH = ("/usr/bin/busybox", "/bin/busybox")


class BusyboxError(RuntimeError):
    """No static busybox to build from; the message says what to install."""


def find_busybox() -> Path:
    """Debian's static busybox (package busybox-static). A dynamically linked one
    would not run in an image without a C library, so it is refused."""
    for candidate in (shutil.which("busybox"), *SEARCH):
        if candidate and Path(candidate).is_file():
            path = Path(candidate).resolve()
            if is_static_elf(path.read_bytes()[:4096]):
                return path
            raise BusyboxError(f"{path} is dynamically linked; install Debian's busybox-static "
                               "(apt-get install busybox-static)")
    raise BusyboxError("no busybox binary; install Debian's busybox-static "
                       "(apt-get install busybox-static)")


def is_static_elf(head: bytes) -> bool:
    """A 64-bit little-endian ELF without a PT_INTERP program header."""
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return False
    phoff = int.from_bytes(head[32:40], "little")
    entsize = int.from_bytes(head[54:56], "little")
    count = int.from_bytes(head[56:58], "little")
    for i in range(count):
        start = phoff + i * entsize
        if start + 4 > len(head):
            return False  # headers beyond what was read: be safe, call it dynamic
        if int.from_bytes(head[start:start + 4], "little") == 3:  # PT_INTERP
            return False
    return True


def applets(binary: Path) -> list[str]:
    """Where ``busybox --install -s`` puts each applet: ``bin/sh``, ``usr/bin/wget`` ..."""
    out = subprocess.run([str(binary), "--list-full"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return sorted({line.strip().lstrip("/") for line in out.splitlines()
                   if line.strip() and line.strip().lstrip("/") != "bin/busybox"})


def _entry(name: str, kind: bytes, mode: int, mtime: int, size: int = 0,
           link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, mtime, size, link
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in sorted(entries, key=lambda e: e[0].name):
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def busybox_layer(binary: Path) -> tuple[bytes, int]:
    """The busybox layer tar, and the time stamped on everything in it (the binary's)."""
    mtime = int(binary.stat().st_mtime)
    content = binary.read_bytes()
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [
        (_entry(d, tarfile.DIRTYPE, mode, mtime), None) for d, mode in DIRECTORIES.items()]
    entries.append((_entry("bin/busybox", tarfile.REGTYPE, 0o755, mtime, len(content)), content))
    for path in applets(binary):
        parent = path.rpartition("/")[0]
        if parent and parent not in DIRECTORIES:
            raise BusyboxError(f"busybox installs {path} in an unexpected directory")
        entries.append((_entry(path, tarfile.SYMTYPE, 0o777, mtime, link="/bin/busybox"), None))
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
        data = text.encode()
        entries.append((_entry(name, tarfile.REGTYPE, 0o644, mtime, len(data)), data))
    return _tar(entries), mtime


def release_layer(mtime: int) -> bytes:
    text = (b'NAME="Alpine-like (netlab, BusyBox)"\nID=alpine\nPRETTY_NAME="netlab\'s '
            b'alpine stand-in: BusyBox from Debian\'s busybox-static, no apk"\n')
    return _tar([(_entry("etc", tarfile.DIRTYPE, 0o755, mtime), None),
                 (_entry("etc/os-release", tarfile.REGTYPE, 0o644, mtime, len(text)), text)])


@dataclass(frozen=True)
class Built:
    names: tuple[str, ...]
    image: StoredImage
    changed: bool  # False: the store already had this exact image under these names


def _config(layers: list[bytes], mtime: int, cmd: list[str], comment: str) -> bytes:
    created = _rfc3339(mtime)
    document = {
        "architecture": _arch(), "os": "linux", "created": created,
        "config": {"Env": [f"PATH={PATH}"], "Cmd": cmd},
        "rootfs": {"type": "layers",
                   "diff_ids": [f"sha256:{hashlib.sha256(t).hexdigest()}" for t in layers]},
        "history": [{"created": created, "created_by": comment}] * len(layers),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _rfc3339(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _arch() -> str:
    from netlab.images.archive import host_architecture

    return host_architecture()


def docker_archive(images: Sequence[tuple[tuple[str, ...], bytes, list[bytes]]]) -> bytes:
    """A ``docker save`` tarball: for each image, its names, config and layer tars."""
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
    manifest, written = [], set()
    for names, config, layers in images:
        config_name = f"{hashlib.sha256(config).hexdigest()}.json"
        entries.append((_entry(config_name, tarfile.REGTYPE, 0o644, 0, len(config)), config))
        paths = []
        for layer in layers:
            path = f"{hashlib.sha256(layer).hexdigest()}/layer.tar"
            paths.append(path)
            if path not in written:
                written.add(path)
                entries.append((_entry(path, tarfile.REGTYPE, 0o644, 0, len(layer)), layer))
        manifest.append({"Config": config_name, "RepoTags": list(names), "Layers": paths})
    data = json.dumps(manifest).encode()
    entries.append((_entry("manifest.json", tarfile.REGTYPE, 0o644, 0, len(data)), data))
    return _tar(entries)


def build(store: ImageStore | None = None, binary: Path | None = None) -> list[Built]:
    """Build ``busybox`` and ``alpine`` into ``store`` (default: the host's);
    idempotent: images the store already has under their names are left alone."""
    store = store or ImageStore()
    binary = binary or find_busybox()
    base, mtime = busybox_layer(binary)
    release = release_layer(mtime)
    wanted = [
        (BUSYBOX_NAMES, _config([base], mtime, ["sh"], "netlab image build-busybox"), [base]),
        (ALPINE_NAMES, _config([base, release], mtime, ["/bin/sh"],
                               "netlab image build-busybox (alpine stand-in)"), [base, release]),
    ]
    missing = []
    results = []
    for names, config, layers in wanted:
        image_id = f"sha256:{hashlib.sha256(config).hexdigest()}"
        have = store.lookup(names[0])
        if have is not None and have.id == image_id:
            results.append(Built(names, have, changed=False))
        else:
            missing.append((names, config, layers))
    if missing:
        with tempfile.TemporaryDirectory(prefix="netlab-busybox-") as tmp:
            path = Path(tmp) / "busybox.tar"
            path.write_bytes(docker_archive(missing))
            loaded = {i.id: i for i in store.load(path)}
        for names, config, _ in missing:
            image_id = f"sha256:{hashlib.sha256(config).hexdigest()}"
            results.append(Built(names, loaded[image_id], changed=True))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netlab.images.busybox",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--busybox", type=Path, help="the static busybox binary to use")
    args = parser.parse_args(argv)
    try:
        built = build(binary=args.busybox)
    except BusyboxError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for item in built:
        state = "built" if item.changed else "already present"
        print(f"{', '.join(item.image.familiar_names())}: {item.image.short_id} ({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
