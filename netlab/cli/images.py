"""``netlab image``: the host's image store, shared by every lab.

- ``load FILE|-``: a ``docker save`` tarball or an OCI image-layout archive (as
  ``skopeo copy ... docker-archive:`` or ``oci-archive:`` write them, gzip'd or
  not); ``--name`` tags the one image it holds. All or nothing: a corrupt,
  truncated or unsafe archive exits 2 and stores nothing.
- ``pull REF``: from its registry (``netlab.images.registry``: the distribution
  API, plain HTTP for lab registries or with ``--plain-http``, ``--creds``).
- ``ls``: the stored images (as ``crictl images`` shows them) and the built-in ones.
- ``rm NAME|ID``: a name removes that name, and the image with its last name; an
  id removes the image. An image that running containers use is kept (exit 1).
- ``build-busybox``: build ``busybox`` and ``alpine`` from Debian's
  busybox-static (what the set-up does; idempotent).

Exit codes: 0 done, 1 it failed, 2 bad input (an archive or name that is wrong).
Thin: parse, call ``netlab.images.store``, render.
"""

from __future__ import annotations

import json
import sys

import click

from netlab.cli.common import fail
from netlab.cli.complete import complete_images
from netlab.cli.render import columns


def _size(n: int) -> str:
    """As ``crictl images`` prints sizes: 1.98MB."""
    size: float = n
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.3g}{unit}" if unit != "B" else f"{n}B"
        size /= 1000
    return f"{size}B"


@click.group()
def image() -> None:
    """The image store: load, list and remove container images."""


@image.command()
@click.argument("archive")
@click.option("--name", "names", multiple=True,
              help="Name the image (the archive must hold exactly one), e.g. myapp:v1.")
def load(archive: str, names: tuple[str, ...]) -> None:
    """Load ARCHIVE (a docker save tarball or an OCI image archive; - for stdin)."""
    from pathlib import Path

    from netlab.images.store import ImageArchiveError, ImageStore

    store = ImageStore()
    try:
        if archive == "-":
            loaded = store.load_stream(sys.stdin.buffer, names)
        else:
            if not Path(archive).is_file():
                fail(f"{archive}: not a file (give a docker save tarball or an OCI image "
                     "archive, or - for stdin)", 2)
            loaded = store.load(Path(archive), names)
    except ImageArchiveError as err:
        fail(f"{err}; nothing was stored", 2)
    except PermissionError as err:
        fail(f"{err} (the image store needs root)")
    for item in loaded:
        for name in item.familiar_names():
            click.echo(f"Loaded image: {name}")
        click.echo(f"  id {item.short_id}, {len(item.layers)} layer(s), {_size(item.size)}")


@image.command()
@click.argument("reference")
@click.option("--creds", metavar="USER:PASSWORD",
              help="Credentials for the registry (Basic, or for its token server).")
@click.option("--plain-http", is_flag=True,
              help="Speak plain HTTP to this registry (lab registries on localhost or a "
                   "private address always are).")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds the registry may stay silent before the pull fails.")
def pull(reference: str, creds: str | None, plain_http: bool, timeout: float) -> None:
    """Pull REFERENCE from its registry into the store (e.g. localhost:5000/app:v1)."""
    import asyncio

    from netlab.images import registry
    from netlab.images.credentials import Credential
    from netlab.images.reference import ReferenceError, parse
    from netlab.images.store import ImageStore

    try:
        ref = parse(reference)
    except ReferenceError as err:
        fail(str(err), 2)
    credential = None
    if creds is not None:
        user, colon, password = creds.partition(":")
        if not colon:
            fail("--creds wants USER:PASSWORD", 2)
        credential = Credential(user, password)

    async def run() -> registry.PullResult:
        async with registry.session(read_timeout=timeout) as http:
            return await registry.pull(reference, ImageStore(), [credential] if credential
                                       else [], http,
                                       plain_http={ref.registry} if plain_http else ())

    try:
        result = asyncio.run(run())
    except registry.PullError as err:
        fail(str(err))
    except PermissionError as err:
        fail(f"{err} (the image store needs root)")
    from netlab.images.reference import familiar

    click.echo(f"Pulled image: {familiar(result.reference)}")
    click.echo(f"  digest {result.digest}, id {result.image.short_id}, "
               f"{len(result.image.layers)} layer(s), {_size(result.image.size)} "
               f"({_size(result.downloaded)} downloaded)")


@image.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only the names.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def list_images(quiet: bool, output: str) -> None:
    """List the stored images, then the built-in ones."""
    from netlab.images import BUILTIN_IMAGES
    from netlab.images.reference import familiar
    from netlab.images.store import ImageStore

    if output == "json":
        stored = [{"id": item.id, "names": list(item.names), "layers": list(item.layers),
                   "size": item.size, "created": item.created}
                  for item in ImageStore().images()]
        click.echo(json.dumps({"stored": stored, "builtin": sorted(BUILTIN_IMAGES)},
                              indent=2))
        return
    rows = []
    for item in ImageStore().images():
        for name in item.names or ["<none>:<none>"]:
            repo, _, tag = familiar(name).rpartition(":")
            rows.append([repo, tag, item.short_id, _size(item.size)])
    rows += [[name, "built-in", "-", "-"] for name in BUILTIN_IMAGES]
    if quiet:
        click.echo("\n".join(f"{r[0]}:{r[1]}" if r[2] != "-" else r[0] for r in rows))
        return
    click.echo(columns(["IMAGE", "TAG", "IMAGE ID", "SIZE"], rows))


@image.command("rm")
@click.argument("names", nargs=-1, required=True, shell_complete=complete_images)
def remove(names: tuple[str, ...]) -> None:
    """Remove images by name or id (an image still used by a running container stays)."""
    from netlab.images.store import ImageInUseError, ImageNotFoundError, ImageStore
    from netlab.node.runtime.containers import image_users

    store = ImageStore()
    code = 0
    for name in names:
        try:
            image_id, removed, deleted = store.remove(name, in_use=image_users)
        except ImageNotFoundError as err:
            click.echo(f"error: {err.args[0]}", err=True)
            code = max(code, 2)
            continue
        except ImageInUseError as err:
            click.echo(f"error: {err}", err=True)
            code = max(code, 1)
            continue
        except PermissionError as err:
            fail(f"{err} (the image store needs root)")
        from netlab.images.reference import familiar

        for n in removed:
            click.echo(f"Untagged: {familiar(n)}")
        if deleted:
            click.echo(f"Deleted: {image_id}")
    sys.exit(code)


@image.command("build-busybox")
def build_busybox() -> None:
    """Build busybox and alpine from Debian's busybox-static into the store."""
    from netlab.images import busybox

    try:
        built = busybox.build()
    except busybox.BusyboxError as err:
        fail(str(err))
    except PermissionError as err:
        fail(f"{err} (the image store needs root)")
    for item in built:
        state = "built" if item.changed else "already present"
        click.echo(f"{', '.join(item.image.familiar_names())}: {item.image.short_id} ({state})")


COMMANDS = [image]
