"""Pulling images from OCI registries: the distribution API v2, over aiohttp.

:func:`pull` fetches one image into the image store, the way containerd's
resolver and fetcher do it:

1. ``GET /v2/<name>/manifests/<tag or digest>`` with an ``Accept`` for the OCI
   index and manifest and Docker's manifest list and schema 2
   (``netlab.images.manifests``); an index is resolved to ``linux/<host arch>``
   and that manifest fetched by digest;
2. the image config, then every layer the store does not already hold
   (``GET /v2/<name>/blobs/<digest>``, redirects followed), each streamed to a
   private download directory and checked against its digest and size;
3. everything handed to the store (``ImageStore.load_pulled``), which unpacks
   and checks the layers exactly as it does an archive's (diff ids, whiteouts,
   no path outside the layer) and commits all or nothing.

**Never Docker Hub.** A reference without a registry (``busybox``,
``nginx:1.25``) or on ``docker.io`` is refused before anything is contacted: a
lab has no way to the internet, and such an image comes into the store with
``netlab image load``.

Every document is checked against the digest it was asked by (or, fetched by
tag, against the registry's ``Docker-Content-Digest``): a registry that sends
other bytes is refused and nothing is stored.

**Authentication.** A request answered ``401`` with ``WWW-Authenticate: Bearer
realm=...,service=...,scope=...`` gets a token from the realm (with the
credential as Basic auth when there is one, anonymously otherwise) and is sent
again with it; ``Basic`` is answered with the credential itself. A token serves
the rest of the pull; a ``401`` while one is held (it expired mid-download) drops
it and meets the new challenge, once per request.

**HTTP or HTTPS.** A registry is spoken to over HTTPS (the host's CAs) unless it
is a lab registry: ``localhost``, a loopback address, or a private or link-local
IP address literal (the lab's own networks: the underlay, pod and service
ranges), which get plain HTTP, as Docker treats 127.0.0.0/8 as insecure by
default. ``plain_http`` adds hosts (``netlab image pull --plain-http``), as an
``insecure-registries`` entry or a containerd ``hosts.toml`` with an
``http://`` server would.

**Timeouts.** Connecting must succeed within ``connect_timeout`` and every read
must bring data within ``read_timeout``, so a registry that hangs fails the pull
instead of holding it (and the kubelet's pod) forever.

Errors are :class:`PullError`, whose message reads as containerd's do in a
kubelet event (``failed to pull and unpack image "REF": failed to resolve
reference "REF": REF: not found``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import shutil
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional

import aiohttp

from netlab.images import manifests
from netlab.images.archive import ArchiveError, ArchiveImage, LayerRef, config_diff_ids
from netlab.images.credentials import Credential, parse_challenge
from netlab.images.reference import DEFAULT_REGISTRY, Reference, ReferenceError, parse
from netlab.images.store import ImageArchiveError, ImageStore, StoredImage

MAX_DOCUMENT = 4 << 20  # bytes: a manifest or config larger than this is not one
CHUNK = 1 << 16
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0


class PullError(Exception):
    """A pull that failed; nothing was stored. ``status`` is the registry's HTTP status
    when it answered with one (401, 404, 500...)."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PullResult:
    image: StoredImage
    reference: str  # normalised, as stored
    digest: str  # the manifest's
    downloaded: int  # bytes of blobs fetched (layers the store had are not)


def uses_plain_http(host: str, extra: Collection[str] = ()) -> bool:
    """Whether the registry ``host[:port]`` is spoken to over plain HTTP (see the module)."""
    if host in extra or host.partition(":")[0] in extra:
        return True
    name = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


class _Blobs:
    """The store's view of a pull's downloads: a layer blob by its digest."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def open(self, name: str) -> IO[bytes]:
        return open(self.directory / name.split(":", 1)[-1], "rb")


def _describe_status(status: int, reason: str, body: bytes) -> str:
    text = f"{status} {reason}".strip()
    with contextlib.suppress(ValueError, UnicodeDecodeError, AttributeError, TypeError):
        errors = json.loads(body).get("errors") or []
        said = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
                         for e in errors if isinstance(e, dict))
        if said:
            text += f" ({said})"
    return text


class Registry:
    """One repository of one registry, with its authentication state."""

    def __init__(self, session: aiohttp.ClientSession, ref: Reference,
                 credential: Optional[Credential] = None,
                 plain_http: Collection[str] = ()) -> None:
        self.session = session
        self.ref = ref
        self.credential = credential
        scheme = "http" if uses_plain_http(ref.registry, plain_http) else "https"
        self.base = f"{scheme}://{ref.registry}/v2/{ref.path}"
        self._auth: Optional[str] = None  # the Authorization header, once a challenge is met

    async def _get(self, url: str, accept: str = "") -> aiohttp.ClientResponse:
        """GET ``url``, meeting one authentication challenge (a held token the registry
        refuses, expired, is dropped and the challenge met again); the caller reads and
        releases the response. Raises PullError for a transport failure or a status
        other than 200."""
        for attempt in (0, 1):
            headers = {"Accept": accept} if accept else {}
            if self._auth:
                headers["Authorization"] = self._auth
            try:
                resp = await self.session.get(url, headers=headers)
            except asyncio.TimeoutError:
                raise PullError(f"failed to do request: GET {url}: the registry did not answer "
                                "in time (timeout)") from None
            except aiohttp.ClientError as err:
                raise PullError(f"failed to do request: GET {url}: {err}") from None
            # Basic credentials refused once are refused again: only a token is renewed.
            renew = not self._auth or self._auth.startswith("Bearer ")
            if resp.status == 401 and attempt == 0 and renew:
                challenge = resp.headers.get("WWW-Authenticate", "")
                body = await _read_small(resp)
                resp.release()
                self._auth = None
                if not await self._authenticate(challenge):
                    raise PullError(f"unexpected status from GET request to {url}: "
                                    f"{_describe_status(401, 'Unauthorized', body)}", 401)
                continue
            if resp.status != 200:
                body = await _read_small(resp)
                resp.release()
                raise PullError(f"unexpected status from GET request to {url}: "
                                f"{_describe_status(resp.status, resp.reason or '', body)}",
                                resp.status)
            return resp
        raise AssertionError("unreachable")

    async def _authenticate(self, header: str) -> bool:
        """Meet a challenge: True when there is something to send again with."""
        for challenge in parse_challenge(header):
            if challenge.scheme == "basic":
                if self.credential is None:
                    return False
                self._auth = self.credential.basic()
                return True
            if challenge.scheme == "bearer" and challenge.params.get("realm"):
                self._auth = f"Bearer {await self._token(challenge.params)}"
                return True
        return False

    async def _token(self, params: dict[str, str]) -> str:
        realm = params["realm"]
        query = {"scope": params.get("scope") or f"repository:{self.ref.path}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        headers = {"Authorization": self.credential.basic()} if self.credential else {}
        who = "oauth" if self.credential else "anonymous"
        try:
            async with self.session.get(realm, params=query, headers=headers) as resp:
                if resp.status == 200:
                    body = await _read_limited(resp, MAX_DOCUMENT, realm)
                else:
                    body = await _read_small(resp)
                    raise PullError(f"failed to authorize: failed to fetch {who} token: "
                                    f"unexpected status from GET request to {realm}: "
                                    f"{_describe_status(resp.status, resp.reason or '', body)}",
                                    resp.status)
        except asyncio.TimeoutError:
            raise PullError(f"failed to authorize: GET {realm}: the token server did not "
                            "answer in time (timeout)") from None
        except aiohttp.ClientError as err:
            raise PullError(f"failed to authorize: GET {realm}: {err}") from None
        try:
            document = json.loads(body)
            token = document.get("token") or document.get("access_token")
        except (ValueError, UnicodeDecodeError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise PullError(f"failed to authorize: {realm} answered without a token")
        return token

    async def manifest(self, reference: str) -> tuple[manifests.Document, str, bytes]:
        """The manifest or index ``reference`` (a tag or digest) names: the parsed
        document, its digest, its bytes."""
        url = f"{self.base}/manifests/{reference}"
        resp = await self._get(url, manifests.ACCEPT)
        try:
            body = await _read_limited(resp, MAX_DOCUMENT, url)
            content_type = resp.headers.get("Content-Type", "")
            stated = resp.headers.get("Docker-Content-Digest", "")
        finally:
            resp.release()
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        expected = reference if reference.startswith("sha256:") else stated
        if expected and expected.startswith("sha256:") and expected != digest:
            raise PullError(f"manifest {reference}: the registry sent content with digest "
                            f"{digest}, not {expected}: refused")
        try:
            return manifests.parse(body, content_type), digest, body
        except manifests.ManifestError as err:
            raise PullError(f"manifest {reference}: {err}") from None

    async def blob(self, descriptor: manifests.Descriptor) -> bytes:
        """A small blob (the image config), checked against its digest."""
        url = f"{self.base}/blobs/{descriptor.digest}"
        resp = await self._get(url)
        try:
            body = await _read_limited(resp, MAX_DOCUMENT, url)
        finally:
            resp.release()
        _check(descriptor, hashlib.sha256(body).hexdigest(), len(body))
        return body

    async def blob_to_file(self, descriptor: manifests.Descriptor, path: Path) -> int:
        """Stream a layer blob to ``path``, checking its digest and size; returns its size."""
        url = f"{self.base}/blobs/{descriptor.digest}"
        resp = await self._get(url)
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "wb") as out:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if 0 <= descriptor.size < size:
                        raise PullError(f"blob {descriptor.digest}: the registry sent more "
                                        f"than its {descriptor.size} bytes: refused")
                    digest.update(chunk)
                    out.write(chunk)
        except asyncio.TimeoutError:
            raise PullError(f"GET {url}: the registry stopped sending (timeout)") from None
        except aiohttp.ClientError as err:
            raise PullError(f"GET {url}: {err}") from None
        finally:
            resp.release()
        _check(descriptor, digest.hexdigest(), size)
        return size


def _check(descriptor: manifests.Descriptor, hexdigest: str, size: int) -> None:
    got = f"sha256:{hexdigest}"
    if got != descriptor.digest:
        raise PullError(f"blob {descriptor.digest}: the registry sent content with digest "
                        f"{got}: refused")
    if descriptor.size >= 0 and size != descriptor.size:
        raise PullError(f"blob {descriptor.digest}: the registry sent {size} bytes, not "
                        f"{descriptor.size}: refused")


async def _read_small(resp: aiohttp.ClientResponse) -> bytes:
    """An error body, for its message; never more than a few kB, never fatal."""
    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
        return await resp.content.read(8192)
    return b""


async def _read_limited(resp: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    chunks, size = [], 0
    try:
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > limit:
                raise PullError(f"GET {url}: more than {limit} bytes for a JSON document: "
                                "refused")
            chunks.append(chunk)
    except asyncio.TimeoutError:
        raise PullError(f"GET {url}: the registry stopped sending (timeout)") from None
    except aiohttp.ClientError as err:
        raise PullError(f"GET {url}: {err}") from None
    return b"".join(chunks)


def session(connect_timeout: float = CONNECT_TIMEOUT,
            read_timeout: float = READ_TIMEOUT) -> aiohttp.ClientSession:
    """A client session with the pull's timeouts (no total: a big layer may take long,
    as long as data keeps coming)."""
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                    sock_connect=connect_timeout, sock_read=read_timeout)
    return aiohttp.ClientSession(timeout=timeout, trust_env=False)


async def pull(image: str, store: ImageStore, credentials: Sequence[Optional[Credential]] = (),
               http: Optional[aiohttp.ClientSession] = None,
               plain_http: Collection[str] = ()) -> PullResult:
    """Pull ``image`` into ``store``, trying each credential in turn (anonymously when
    there are none), as the kubelet tries a pod's pull secrets. Raises
    :class:`PullError` (for the last credential tried) and stores nothing then."""
    try:
        ref = parse(image)
    except ReferenceError as err:
        raise PullError(f"failed to pull and unpack image \"{image}\": {err}") from None
    if ref.registry == DEFAULT_REGISTRY:
        raise PullError(f"failed to pull and unpack image \"{ref}\": {ref} is on Docker Hub, "
                        "and netlab never pulls from it (a lab has no way to the internet): "
                        "load the image with 'netlab image load FILE', or name a registry "
                        "in the reference (host:port/name)")
    own = http is None
    session_ = http if http is not None else session()
    try:
        last: Optional[PullError] = None
        for credential in list(credentials) or [None]:
            try:
                return await _pull_one(ref, store, Registry(session_, ref, credential,
                                                            plain_http))
            except PullError as err:
                last = err
        assert last is not None
        raise last
    finally:
        if own:
            await session_.close()


async def _pull_one(ref: Reference, store: ImageStore, registry: Registry) -> PullResult:
    name = str(ref)
    head = f"failed to pull and unpack image \"{name}\""
    reference = ref.digest or ref.tag or "latest"
    try:
        document, digest, _ = await registry.manifest(reference)
    except PullError as err:
        if err.status == 404:
            raise PullError(f"{head}: failed to resolve reference \"{name}\": {name}: not found",
                            404) from None
        raise PullError(f"{head}: failed to resolve reference \"{name}\": {err}",
                        err.status) from None
    try:
        if isinstance(document, manifests.Index):
            entry = manifests.choose_platform(document)
            document, digest, _ = await registry.manifest(entry.digest)
            if not isinstance(document, manifests.ImageManifest):
                raise PullError(f"manifest {entry.digest}: an index inside an index")
        manifests.check_layers(document)
        config = await registry.blob(document.config)
        try:
            diff_ids = config_diff_ids(config)
        except ArchiveError as err:
            raise PullError(f"config {document.config.digest}: {err}") from None
        if len(diff_ids) != len(document.layers):
            raise PullError(f"manifest {digest} names {len(document.layers)} layers but the "
                            f"image config has {len(diff_ids)} diff_ids")
        downloads = store.download_dir()
        try:
            fetched = 0
            for layer, diff_id in zip(document.layers, diff_ids):
                if store.layer_dir(diff_id).is_dir():
                    continue  # the store has it unpacked: it reads nothing of this blob
                fetched += await registry.blob_to_file(
                    layer, downloads / layer.digest.split(":", 1)[1])
            staged = ArchiveImage(
                config, document.config.digest, (name,),
                tuple(LayerRef(layer.digest, diff_id, layer.digest)
                      for layer, diff_id in zip(document.layers, diff_ids)), digest)
            # Unpacking is disk and CPU work: off the caller's event loop.
            stored = await asyncio.to_thread(store.load_pulled, [staged], _Blobs(downloads))
        finally:
            await asyncio.to_thread(shutil.rmtree, downloads, True)
    except manifests.ManifestError as err:
        raise PullError(f"{head}: {err}") from None
    except ImageArchiveError as err:
        raise PullError(f"{head}: {err}; nothing was stored") from None
    except PullError as err:
        raise PullError(f"{head}: {err}", err.status) from None
    return PullResult(stored[0], name, digest, fetched)

