"""The image store on its own: references, archives in both formats, layers shared
and unpacked once, names and removal, refused layers and all-or-nothing loads.

Every store here lives in ``tmp_path``; archives are crafted in Python (imagekit).
Whiteouts need root (mknod, trusted.* attributes): the kernel tier tests them.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from imagekit import config, digest, docker_save, layer, oci_archive, store_files

from netlab.images import layers as layerlib
from netlab.images import reference
from netlab.images.store import ImageArchiveError, ImageInUseError, ImageNotFoundError, ImageStore

BASE = layer([("bin", "dir"), ("bin/tool", "file", "#!/bin/sh\necho tool\n", 0o755),
              ("bin/sh", "symlink", "/bin/tool"), ("etc", "dir"),
              ("etc/passwd", "file", "root:x:0:0::/root:/bin/sh\n")])
APP = layer([("app", "dir"), ("app/run", "file", "run", 0o755),
             ("app/again", "hardlink", "app/run"), ("app/fifo", "fifo"),
             ("app/tty", "chr")])


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def _save(tmp_path: Path, name: str, *images) -> Path:
    return docker_save(tmp_path / f"{name}.tar", list(images))


# --- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:latest", "docker.io/library/busybox:latest"),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36"),
    ("someone/app", "docker.io/someone/app:latest"),
    ("localhost:5000/app:v1", "localhost:5000/app:v1"),
    ("registry.example.com/team/app", "registry.example.com/team/app:latest"),
    (f"busybox@sha256:{'a' * 64}", f"docker.io/library/busybox@sha256:{'a' * 64}"),
])
def test_references_normalise_as_docker_does(text, want):
    assert reference.normalise(text) == want


@pytest.mark.parametrize("text", ["", "Busybox", "app:bad tag", "a//b", f"x@sha256:{'g' * 64}"])
def test_bad_references_are_refused(text):
    with pytest.raises(reference.ReferenceError):
        reference.normalise(text)


def test_familiar_names_drop_the_defaults():
    assert reference.familiar("docker.io/library/busybox:latest") == "busybox:latest"
    assert reference.familiar("docker.io/someone/app:v1") == "someone/app:v1"
    assert reference.familiar("localhost:5000/app:v1") == "localhost:5000/app:v1"


# --- loading -----------------------------------------------------------------------------------


def test_a_docker_save_archive_loads_with_its_config(store, tmp_path):
    tars = [BASE, APP]
    cfg = config(tars, entrypoint=["/app/run"], cmd=["--flag"], env=["PATH=/bin", "MODE=x"],
                 workdir="/app", user="nobody")
    (image,) = store.load(_save(tmp_path, "app", (("nlt/app:v1",), cfg, tars)))
    assert image.id == digest(cfg) and image.names == ("docker.io/nlt/app:v1",)
    assert image.layers == (digest(BASE), digest(APP))
    assert [Path(d).name for d in image.layer_dirs] == [digest(APP)[7:], digest(BASE)[7:]]
    c = image.config
    assert (c.entrypoint, c.cmd, c.working_dir, c.user) == (("/app/run",), ("--flag",), "/app",
                                                            "nobody")
    assert c.env_map() == {"PATH": "/bin", "MODE": "x"}
    top, base = (Path(d) for d in image.layer_dirs)
    assert (base / "bin" / "tool").read_text() == "#!/bin/sh\necho tool\n"
    assert os.readlink(base / "bin" / "sh") == "/bin/tool"  # absolute, inside: kept
    assert (top / "app" / "run").stat().st_mode & 0o777 == 0o755
    assert os.path.samefile(top / "app" / "run", top / "app" / "again")
    assert (top / "app" / "fifo").is_fifo() and not (top / "app" / "tty").exists()  # no devices
    for spelling in ("nlt/app:v1", "docker.io/nlt/app:v1", image.id, image.id[7:]):
        found = store.lookup(spelling)
        assert found is not None and found.id == image.id, spelling
    assert store.lookup("nlt/app") is None and store.lookup("nlt/app:v2") is None
    assert store.names() == ["nlt/app:v1"]


@pytest.mark.parametrize("compress", [True, False])
def test_an_oci_archive_loads_and_its_digests_are_checked(store, tmp_path, compress):
    cfg = config([BASE], cmd=["sh"])
    archive = oci_archive(tmp_path / "oci.tar", "nlt/oci:1", cfg, [BASE], compress=compress)
    (image,) = store.load(archive)
    assert image.names == ("docker.io/nlt/oci:1",) and image.layers == (digest(BASE),)
    assert len(image.digests) == 1 and store.lookup(f"nlt/oci@{image.digests[0]}") is not None
    # A gzip'd archive as a whole, fed as a stream (netlab image load -).
    packed = tmp_path / "oci.tar.gz"
    packed.write_bytes(gzip.compress(archive.read_bytes()))
    with open(packed, "rb") as stream:
        (again,) = store.load_stream(stream, names=("nlt/oci:2",))
    assert again.id == image.id and set(again.names) == {"docker.io/nlt/oci:1",
                                                         "docker.io/nlt/oci:2"}


def test_an_archive_without_names_needs_one(store, tmp_path):
    archive = oci_archive(tmp_path / "anon.tar", None, config([BASE]), [BASE])
    with pytest.raises(ImageArchiveError, match="--name"):
        store.load(archive)
    (image,) = store.load(archive, names=("nlt/anon:1",))
    assert image.names == ("docker.io/nlt/anon:1",)


def test_shared_layers_are_unpacked_once_and_kept_while_used(store, tmp_path):
    one = config([BASE], cmd=["one"])
    two = config([BASE, APP], cmd=["two"])
    (first,) = store.load(_save(tmp_path, "one", (("nlt/one:1",), one, [BASE])))
    base_dir = Path(first.layer_dirs[0])
    inode = base_dir.stat().st_ino
    (second,) = store.load(_save(tmp_path, "two", (("nlt/two:1",), two, [BASE, APP])))
    assert second.layer_dirs[1] == str(base_dir) and base_dir.stat().st_ino == inode
    assert store.remove("nlt/one:1") == (first.id, ["docker.io/nlt/one:1"], True)
    assert base_dir.is_dir() and store.lookup("nlt/two:1") is not None  # still used by two
    store.remove(second.id[7:19])
    assert not base_dir.exists() and store.images() == []
    assert store_files(store.root) == ["blobs", "blobs/sha256", "index.json", "layers",
                                       "layers/sha256", "records"]


def test_a_name_moves_and_the_old_image_stays_untagged_until_removed(store, tmp_path):
    old = config([BASE], cmd=["old"])
    new = config([BASE], cmd=["new"])
    (a,) = store.load(_save(tmp_path, "a", (("nlt/x:1", "nlt/x:keep"), old, [BASE])))
    (b,) = store.load(_save(tmp_path, "b", (("nlt/x:1",), new, [BASE])))
    assert store.lookup("nlt/x:1").id == b.id and store.lookup("nlt/x:keep").id == a.id
    assert store.remove("nlt/x:keep") == (a.id, ["docker.io/nlt/x:keep"], True)
    (c,) = store.load(_save(tmp_path, "c", (("nlt/x:1",), old, [BASE])))
    listed = {i.id: i.names for i in store.images()}
    assert listed == {c.id: ("docker.io/nlt/x:1",), b.id: ()}  # b is <none> now
    with pytest.raises(ImageNotFoundError):
        store.remove("nlt/x:2")


def test_an_image_in_use_is_not_deleted(store, tmp_path):
    (image,) = store.load(_save(tmp_path, "u", (("nlt/used:1",), config([BASE]), [BASE])))
    with pytest.raises(ImageInUseError, match="lab/default/web/c"):
        store.remove("nlt/used:1", in_use=lambda i: ["lab/default/web/c"] if i == image.id else [])
    assert store.lookup("nlt/used:1") is not None
    store.remove("nlt/used:1", in_use=lambda i: [])
    assert store.lookup("nlt/used:1") is None


# --- refused layers and broken archives ---------------------------------------------------------


ESCAPES = {
    "dotdot": [("../escaped", "file", "x")],
    "dotdot-inside": [("a", "dir"), ("a/../../escaped", "file", "x")],
    "through-absolute-link": [("evil", "symlink", "{outside}"), ("evil/escaped", "file", "x")],
    "through-relative-link": [("evil", "symlink", "."), ("evil/escaped", "file", "x")],
    "link-climbing-out": [("a", "dir"), ("a/up", "symlink", "../../etc/shadow")],
    "absolute-link-climbing-out": [("up", "symlink", "/../etc/shadow")],
    "hardlink-out": [("h", "hardlink", "../escaped")],
    "hardlink-absolute": [("h", "hardlink", "{outside}/escaped")],
    "hardlink-to-a-link": [("l", "symlink", "/etc/passwd"), ("h", "hardlink", "l")],
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_a_layer_that_escapes_is_refused_and_nothing_is_stored(store, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root).mkdir(parents=True)
    good = store.load(_save(tmp_path, "good", (("nlt/good:1",), config([BASE]), [BASE])))
    before = store_files(store.root)
    entries = [tuple(str(p).format(outside=outside) if isinstance(p, str) else p for p in e)
               for e in ESCAPES[case]]
    bad = layer(entries)
    with pytest.raises(ImageArchiveError) as err:
        store.load(_save(tmp_path, "bad", (("nlt/bad:1",), config([BASE, bad]), [BASE, bad])))
    assert "leave" in str(err.value) or "symbolic link" in str(err.value) \
        or "does not name a file" in str(err.value), err.value
    assert store_files(store.root) == before and not any(outside.iterdir())
    assert not (tmp_path / "escaped").exists() and not (store.root / "escaped").exists()
    assert store.lookup("nlt/bad:1") is None and store.lookup("nlt/good:1").id == good[0].id


@pytest.mark.parametrize("damage", ["truncated", "flipped-layer-byte", "not-a-tar",
                                    "bad-gzip", "wrong-diff-id", "missing-layer"])
def test_a_corrupt_archive_stores_nothing(store, tmp_path, damage):
    store.load(_save(tmp_path, "good", (("nlt/good:1",), config([BASE]), [BASE])))
    before = store_files(store.root)
    tars = [BASE, APP]
    archive = _save(tmp_path, "victim", (("nlt/victim:1",), config(tars), tars))
    data = archive.read_bytes()
    if damage == "truncated":
        archive.write_bytes(data[:len(data) // 2])
    elif damage == "flipped-layer-byte":
        at = data.index(b"run")  # inside the second layer's file
        archive.write_bytes(data[:at] + b"R" + data[at + 1:])
    elif damage == "not-a-tar":
        archive.write_bytes(b"this is not an image archive\n" * 50)
    elif damage == "bad-gzip":
        archive.write_bytes(gzip.compress(data)[:-40] + b"\0" * 40)
    elif damage == "wrong-diff-id":  # the config promises other content than the archive has
        other = layer([("other", "file", "o")])
        _save(tmp_path, "victim", (("nlt/victim:1",), config([BASE, other]), tars))
    else:
        oci_archive(archive, "nlt/victim:1", config(tars), tars)
        import tarfile

        with tarfile.open(archive) as src, tarfile.open(tmp_path / "cut.tar", "w") as dst:
            for m in src.getmembers():
                if m.name != f"blobs/sha256/{digest(gzip.compress(APP, mtime=0))[7:]}":
                    dst.addfile(m, src.extractfile(m))
        archive = tmp_path / "cut.tar"
    with pytest.raises(ImageArchiveError):
        store.load(archive)
    assert store_files(store.root) == before
    assert store.lookup("nlt/victim:1") is None


# --- pure pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "want"), [
    ("a/b", ("entry", "a/b")),
    ("a/.wh.b", ("whiteout", "a/b")),
    (".wh.top", ("whiteout", "top")),
    ("a/.wh..wh..opq", ("opaque", "a")),
])
def test_whiteout_names_are_recognised(path, want):
    assert layerlib.classify(path) == want


@pytest.mark.parametrize(("path", "target", "escapes"), [
    ("bin/sh", "/bin/busybox", False),
    ("bin/sh", "busybox", False),
    ("usr/lib/x", "../../lib/x", False),
    ("usr/lib/x", "../../../lib/x", True),
    ("x", "/../etc", True),
    ("a/b/c", "../../..", True),
])
def test_symlinks_climbing_above_the_root_are_spotted(path, target, escapes):
    assert layerlib.symlink_escapes(path, target) is escapes
