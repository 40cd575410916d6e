"""Pulling from a registry: manifests and platform choice, auth challenges, pull
secrets, and whole pulls against an in-process distribution-API server on 127.0.0.1
(anonymous, bearer token, basic; 401, 404, 500, a hang, bytes that are not what
their digest says), each into a store in ``tmp_path``."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from imagekit import config, digest, layer, store_files

from netlab.images import credentials, manifests, registry
from netlab.images.archive import MANIFEST_LIST_V2, MANIFEST_V2, OCI_INDEX, OCI_MANIFEST
from netlab.images.credentials import Credential, Keyring
from netlab.images.reference import parse
from netlab.images.store import ImageStore

pytestmark = pytest.mark.unit

BASE = layer([("bin", "dir"), ("bin/tool", "file", "#!/bin/sh\necho tool\n", 0o755)])
APP = layer([("app", "dir"), ("app/run", "file", "run", 0o755)])


def _desc(media: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media, "digest": digest(data), "size": len(data), **extra}


# --- manifests and platforms ------------------------------------------------------------------


def _index(*platforms: dict[str, str], media: str = OCI_INDEX) -> manifests.Index:
    entries = [_desc(OCI_MANIFEST, json.dumps(p).encode(), platform=p) for p in platforms]
    document = manifests.parse(json.dumps({"schemaVersion": 2, "mediaType": media,
                                           "manifests": entries}).encode(), media)
    assert isinstance(document, manifests.Index)
    return document


def test_manifest_kinds_parse():
    cfg = config([BASE])
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V2,
                       "config": _desc("application/vnd.docker.container.image.v1+json", cfg),
                       "layers": [_desc("application/vnd.docker.image.rootfs.diff.tar.gzip",
                                        BASE)]}).encode()
    document = manifests.parse(body, MANIFEST_V2)
    assert isinstance(document, manifests.ImageManifest)
    assert document.config.digest == digest(cfg) and document.layers[0].size == len(BASE)
    # Without a useful Content-Type, the document's shape decides.
    assert isinstance(manifests.parse(body, "application/octet-stream"),
                      manifests.ImageManifest)
    assert isinstance(_index({"os": "linux", "architecture": "amd64"}, media=MANIFEST_LIST_V2),
                      manifests.Index)


@pytest.mark.parametrize("body, content_type, message", [
    (b'{"schemaVersion": 1, "name": "x"}', "application/vnd.docker.distribution.manifest.v1"
     "+prettyjws", "schema 1"),
    (b'{"schemaVersion": 1, "fsLayers": []}', "", "schema 1"),
    (b"not json", OCI_MANIFEST, "not valid JSON"),
    (b'{"mediaType": "' + OCI_INDEX.encode() + b'", "manifests": []}', OCI_MANIFEST,
     "but the document says"),
    (b'{"config": {"digest": "md5:00"}, "layers": []}', OCI_MANIFEST, "only sha256"),
    (b'{"hello": 1}', "application/json", "not an image manifest"),
])
def test_bad_manifests_are_refused(body, content_type, message):
    with pytest.raises(manifests.ManifestError, match=message):
        manifests.parse(body, content_type)


def test_platform_choice():
    index = _index({"os": "linux", "architecture": "arm64", "variant": "v8"},
                   {"os": "unknown", "architecture": "unknown"},
                   {"os": "linux", "architecture": "amd64"},
                   {"os": "windows", "architecture": "amd64"},
                   {"os": "linux", "architecture": "arm", "variant": "v6"},
                   {"os": "linux", "architecture": "arm", "variant": "v7"})
    assert manifests.choose_platform(index, "amd64").platform["architecture"] == "amd64"
    assert manifests.choose_platform(index, "arm64").platform["variant"] == "v8"
    assert manifests.choose_platform(index, "arm").platform["variant"] == "v7"
    with pytest.raises(manifests.ManifestError,
                       match=r"no matching manifest for linux/s390x in the manifest list "
                             r"entries \(it has: linux/amd64, linux/arm, linux/arm64, "
                             r"unknown/unknown, windows/amd64\)"):
        manifests.choose_platform(index, "s390x")


def test_zstd_layers_are_refused_before_download():
    document = manifests.ImageManifest(
        manifests.Descriptor(OCI_MANIFEST, digest(b"c"), 1),
        (manifests.Descriptor("application/vnd.oci.image.layer.v1.tar+zstd", digest(b"l"), 1),))
    with pytest.raises(manifests.ManifestError, match="zstd"):
        manifests.check_layers(document)


# --- challenges and pull secrets ------------------------------------------------------------


def test_challenge_parsing():
    [bearer] = credentials.parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:team/app:pull,push"')
    assert bearer.scheme == "bearer"
    assert bearer.params == {"realm": "https://auth.example/token",
                             "service": "registry.example",
                             "scope": "repository:team/app:pull,push"}
    both = credentials.parse_challenge('Basic realm="Registry Realm", Bearer realm=http://t/x')
    assert [c.scheme for c in both] == ["basic", "bearer"]
    assert both[0].params == {"realm": "Registry Realm"}
    assert both[1].params == {"realm": "http://t/x"}
    assert credentials.parse_challenge("") == []


def _dockerconfigjson(auths: dict[str, Any]) -> bytes:
    return json.dumps({"auths": auths}).encode()


def test_dockerconfigjson_and_dockercfg():
    auth = base64.b64encode(b"alice:s3cret:with:colons").decode()
    parsed = credentials.parse_docker_config(_dockerconfigjson({
        "registry.example:5000": {"auth": auth},
        "https://index.docker.io/v1/": {"username": "bob", "password": "pw"},
        "mail.example": {"email": "only@example"}}))
    assert parsed == {"registry.example:5000": Credential("alice", "s3cret:with:colons"),
                      "https://index.docker.io/v1/": Credential("bob", "pw")}
    assert "s3cret" not in repr(parsed)
    legacy = credentials.parse_docker_config(json.dumps({"10.0.0.5:5000": {"auth": auth}})
                                             .encode(), legacy=True)
    assert legacy["10.0.0.5:5000"].username == "alice"
    secret = {"metadata": {"name": "pull", "namespace": "team"},
              "type": "kubernetes.io/dockerconfigjson",
              "data": {".dockerconfigjson": base64.b64encode(_dockerconfigjson(
                  {"r.example": {"auth": auth}})).decode()}}
    assert credentials.from_secret(secret)["r.example"].password == "s3cret:with:colons"


@pytest.mark.parametrize("secret, message", [
    ({"type": "Opaque", "data": {}}, "is not kubernetes.io/dockerconfigjson"),
    ({"type": "kubernetes.io/dockerconfigjson", "data": {}}, "no .dockerconfigjson key"),
    ({"type": "kubernetes.io/dockercfg", "data": {".dockercfg": "@@"}}, "not base64"),
    ({"type": "kubernetes.io/dockerconfigjson",
      "data": {".dockerconfigjson": base64.b64encode(b'{"auths": {"r": {"auth": "bm9jb2xvbg=="'
                                                     b'}}}').decode()}}, "has no ':'"),
    ({"type": "kubernetes.io/dockerconfigjson",
      "data": {".dockerconfigjson": base64.b64encode(b"[]").decode()}}, "not a JSON object"),
])
def test_bad_pull_secrets(secret, message):
    with pytest.raises(credentials.CredentialError, match=message):
        credentials.from_secret({"metadata": {"name": "s", "namespace": "ns"}, **secret})


def test_keyring_matches_as_the_kubelet():
    a, b, c, d, hub = (Credential(n, "pw") for n in ("a", "b", "c", "d", "hub"))
    ring = Keyring([("registry.example:5000", a), ("registry.example:5000/team", b),
                    ("*.example", c), ("http://10.0.0.5:5000/v2/", d),
                    ("https://index.docker.io/v1/", hub)])
    assert ring.lookup(parse("registry.example:5000/team/app:v1")) == [b, a]
    assert ring.lookup(parse("registry.example:5000/other/app")) == [a]
    assert ring.lookup(parse("registry.example/app")) == [c]  # no port: only the glob
    assert ring.lookup(parse("a.b.example/app")) == []  # a glob stands for one label
    assert ring.lookup(parse("10.0.0.5:5000/app")) == [d]
    assert ring.lookup(parse("busybox")) == [hub]
    assert ring.lookup(parse("10.0.0.6:5000/app")) == []


def test_plain_http_for_lab_registries():
    for host in ("localhost:5000", "127.0.0.1:5000", "192.168.100.2:5000", "10.96.0.20",
                 "[::1]:5000", "169.254.1.1"):
        assert registry.uses_plain_http(host), host
    for host in ("registry.example", "8.8.8.8:5000", "docker.io"):
        assert not registry.uses_plain_http(host), host
    assert registry.uses_plain_http("registry.example:5000", {"registry.example:5000"})


# --- whole pulls against a fake registry ----------------------------------------------------


class FakeRegistry:
    """The distribution API's read side for one repository, with switchable faults."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}  # tag or digest -> (type, body)
        self.auth = "none"  # none | basic | bearer
        self.user = Credential("alice", "pw")
        self.token = "tok-123"
        self.fault = ""  # "" | corrupt-layer | wrong-manifest-digest | 500 | hang
        self.token_in_two_writes = False  # the token answer in two parts, apart in time
        self.token_uses = 0  # > 0: a token expires after this many requests
        self.tokens_issued = 0
        self._uses = 0
        self.blob_gets: list[str] = []
        self.token_auth: list[str] = []
        self.base = ""

    def app(self) -> web.Application:
        """A new application each time: one serves one event loop."""
        app = web.Application()
        app.router.add_get("/v2/{name:.+}/manifests/{ref}", self._manifest)
        app.router.add_get("/v2/{name:.+}/blobs/{digest}", self._blob)
        app.router.add_get("/token", self._token)
        return app

    def add_blob(self, data: bytes) -> str:
        self.blobs[digest(data)] = data
        return digest(data)

    def add_image(self, tag: str, layers: list[bytes], **cfg: Any) -> bytes:
        """Push an image as an OCI index with an amd64 and an arm64 manifest (gzip'd
        layers); returns the amd64 config."""
        out = b""
        entries = []
        for arch in ("arm64", "amd64"):
            cfg_bytes = json.loads(config(layers, **cfg))
            cfg_bytes["architecture"] = arch
            blob = json.dumps(cfg_bytes).encode()
            self.add_blob(blob)
            zipped = [gzip.compress(t, mtime=0) for t in layers]
            for z in zipped:
                self.add_blob(z)
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": _desc("application/vnd.oci.image.config.v1+json", blob),
                "layers": [_desc("application/vnd.oci.image.layer.v1.tar+gzip", z)
                           for z in zipped]}).encode()
            self.manifests[digest(manifest)] = (OCI_MANIFEST, manifest)
            entries.append(_desc(OCI_MANIFEST, manifest,
                                 platform={"os": "linux", "architecture": arch}))
            if arch == "amd64":
                out = blob
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": entries}).encode()
        self.manifests[tag] = (OCI_INDEX, index)
        self.manifests[digest(index)] = (OCI_INDEX, index)
        return out

    def _authorized(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("Authorization", "")
        if self.auth == "basic" and given != self.user.basic():
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                status=401, headers={"WWW-Authenticate": 'Basic realm="Registry Realm"'})
        if self.auth == "bearer" and given == f"Bearer {self.token}" and self.token_uses:
            self._uses += 1
            if self._uses > self.token_uses:  # expired: the next token is another one
                self.token, self._uses = f"{self.token}+", 0
        if self.auth == "bearer" and given != f"Bearer {self.token}":
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                status=401, headers={"WWW-Authenticate": f'Bearer realm="{self.base}/token",'
                                     'service="fake",scope="repository:team/app:pull"'})
        return None

    async def _token(self, request: web.Request) -> web.StreamResponse:
        self.token_auth.append(request.headers.get("Authorization", ""))
        assert request.query["scope"] == "repository:team/app:pull"
        assert request.query["service"] == "fake"
        if request.headers.get("Authorization") != self.user.basic():
            return web.json_response({"errors": [{"code": "DENIED"}]}, status=401)
        self.tokens_issued += 1
        body = json.dumps({"token": self.token}).encode()
        if not self.token_in_two_writes:
            return web.Response(body=body, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[:len(body) // 2])
        # The rest comes later, as over a slow network: the client has the first part
        # buffered and must wait for the second.
        await asyncio.sleep(0.2)
        await resp.write(body[len(body) // 2:])
        await resp.write_eof()
        return resp

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        if self.fault == "500":
            return web.Response(status=500, text="boom")
        if self.fault == "hang":
            await asyncio.sleep(30)
        denied = self._authorized(request)
        if denied is not None:
            return denied
        found = self.manifests.get(request.match_info["ref"])
        if request.match_info["name"] != "team/app" or found is None:
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN",
                                                  "message": "manifest unknown"}]}, status=404)
        media, body = found
        if self.fault == "wrong-manifest-digest" and media == OCI_MANIFEST:
            body = body + b" "
        return web.Response(body=body, headers={"Content-Type": media,
                                                "Docker-Content-Digest": digest(body)})

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        wanted = request.match_info["digest"]
        self.blob_gets.append(wanted)
        data = self.blobs.get(wanted)
        if data is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
        if self.fault == "corrupt-layer" and data[:2] == b"\x1f\x8b":
            data = gzip.compress(layer([("evil", "file", "x")]), mtime=0)
        return web.Response(body=data)


@asynccontextmanager
async def serving(fake: FakeRegistry) -> AsyncIterator[str]:
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        fake.base = f"http://127.0.0.1:{server.port}"
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.close()


def _pull(fake: FakeRegistry, store: ImageStore, image: str,
          creds: list[Credential | None] | None = None, read_timeout: float = 10.0,
          ) -> registry.PullResult:
    async def run() -> registry.PullResult:
        async with serving(fake) as host, registry.session(5.0, read_timeout) as http:
            return await registry.pull(image.format(host=host), store, creds or [], http)
    return asyncio.run(run())


def _stored_files(store: ImageStore) -> list[str]:
    """The store's files (its empty directories are not content)."""
    return [f for f in store_files(store.root) if (store.root / f).is_file()]


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


@pytest.fixture
def fake() -> FakeRegistry:
    reg = FakeRegistry()
    reg.add_image("v1", [BASE, APP], entrypoint=["/app/run"], env=["A=1"])
    return reg


def test_anonymous_pull_picks_the_host_platform(fake, store, monkeypatch):
    monkeypatch.setattr(manifests, "host_architecture", lambda: "amd64")
    result = _pull(fake, store, "{host}/team/app:v1")
    image = result.image
    assert image.names[0].endswith("/team/app:v1")
    assert image.config.entrypoint == ("/app/run",) and image.config.env == ("A=1",)
    cfg = json.loads(store._blob(image.id).read_bytes())
    assert cfg["architecture"] == "amd64"
    assert store.lookup(image.names[0]) == image
    assert (Path(image.layer_dirs[0]) / "app" / "run").read_text() == "run"
    # The same image again: nothing of its layers is fetched, the store has them.
    fake.blob_gets.clear()
    again = _pull(fake, store, "{host}/team/app:v1")
    assert again.image.id == image.id and again.downloaded == 0
    assert fake.blob_gets == [digest(cfg_bytes) for cfg_bytes in [store._blob(image.id)
                                                                  .read_bytes()]]


def test_pull_by_digest(fake, store):
    index_digest = digest(fake.manifests["v1"][1])
    result = _pull(fake, store, "{host}/team/app@" + index_digest)
    assert store.lookup(result.reference) == result.image
    assert result.reference.endswith("@" + index_digest)


def test_bearer_token_with_credentials(fake, store):
    fake.auth = "bearer"
    result = _pull(fake, store, "{host}/team/app:v1", [Credential("alice", "pw")])
    assert result.image.config.entrypoint == ("/app/run",)
    assert fake.token_auth == [Credential("alice", "pw").basic()]  # one token for the pull


def test_a_token_that_arrives_in_two_parts(fake, store):
    fake.auth = "bearer"
    fake.token = "t" * 6000  # Docker Hub's tokens are JWTs of several kB
    fake.token_in_two_writes = True
    result = _pull(fake, store, "{host}/team/app:v1", [Credential("alice", "pw")])
    assert result.image.config.entrypoint == ("/app/run",)
    assert fake.tokens_issued == 1


def test_a_token_that_expires_mid_pull_is_renewed(fake, store):
    fake.auth = "bearer"
    fake.token_uses = 2  # the manifest index and one more request, then it is refused
    result = _pull(fake, store, "{host}/team/app:v1", [Credential("alice", "pw")])
    assert result.image.config.entrypoint == ("/app/run",)
    assert fake.tokens_issued >= 2


def test_a_token_refused_twice_in_one_request_fails(fake, store):
    fake.auth = "bearer"
    fake.token_uses = 2
    original = fake._token

    async def stale(request: web.Request) -> web.StreamResponse:
        # From the second token on, the server hands out one that is already expired.
        if fake.tokens_issued >= 1:
            fake.tokens_issued += 1
            return web.json_response({"token": "stale"})
        return await original(request)
    fake._token = stale  # type: ignore[method-assign]
    with pytest.raises(registry.PullError) as info:
        _pull(fake, store, "{host}/team/app:v1", [Credential("alice", "pw")])
    assert info.value.status == 401 and "401 Unauthorized" in str(info.value)
    assert fake.tokens_issued == 2  # renewed once for the request, not again
    assert _stored_files(store) == []


def test_bearer_token_refused(fake, store):
    fake.auth = "bearer"
    with pytest.raises(registry.PullError, match=r"failed to authorize: failed to fetch oauth "
                       r"token: unexpected status from GET request to http://.*/token: "
                       r"401 Unauthorized \(DENIED\)"):
        _pull(fake, store, "{host}/team/app:v1", [Credential("alice", "wrong")])
    assert _stored_files(store) == []


def test_basic_auth_tries_each_credential(fake, store):
    fake.auth = "basic"
    result = _pull(fake, store, "{host}/team/app:v1",
                   [Credential("mallory", "x"), Credential("alice", "pw")])
    assert result.image.names


def test_unauthorized_without_credentials(fake, store):
    fake.auth = "basic"
    with pytest.raises(registry.PullError) as info:
        _pull(fake, store, "{host}/team/app:v1")
    assert info.value.status == 401
    assert str(info.value).startswith('failed to pull and unpack image "127.0.0.1:')
    assert ("/v2/team/app/manifests/v1: 401 Unauthorized (UNAUTHORIZED: authentication "
            "required)") in str(info.value)


def test_not_found(fake, store):
    with pytest.raises(registry.PullError, match=r'failed to resolve reference '
                       r'"127.0.0.1:\d+/team/app:v9": 127.0.0.1:\d+/team/app:v9: not found'):
        _pull(fake, store, "{host}/team/app:v9")


def test_server_error(fake, store):
    fake.fault = "500"
    with pytest.raises(registry.PullError, match="500 Internal Server Error"):
        _pull(fake, store, "{host}/team/app:v1")


def test_a_hanging_registry_times_out(fake, store):
    fake.fault = "hang"
    with pytest.raises(registry.PullError, match=r"did not answer in time \(timeout\)"):
        _pull(fake, store, "{host}/team/app:v1", read_timeout=0.5)


def test_a_layer_that_is_not_its_digest_stores_nothing(fake, store):
    fake.fault = "corrupt-layer"
    with pytest.raises(registry.PullError, match=r"blob sha256:[0-9a-f]+: the registry sent "
                       r"content with digest sha256:[0-9a-f]+: refused"):
        _pull(fake, store, "{host}/team/app:v1")
    assert store.images() == [] and _stored_files(store) == []


def test_a_manifest_that_is_not_its_digest_is_refused(fake, store):
    fake.fault = "wrong-manifest-digest"
    with pytest.raises(registry.PullError, match=r"manifest sha256:[0-9a-f]+: the registry "
                       r"sent content with digest sha256:[0-9a-f]+, not sha256:"):
        _pull(fake, store, "{host}/team/app:v1")
    assert store.images() == []


def test_a_layer_that_is_not_its_diff_id_stores_nothing(store):
    fake = FakeRegistry()
    cfg = json.loads(config([BASE]))
    cfg["rootfs"]["diff_ids"] = [f"sha256:{hashlib.sha256(b'other').hexdigest()}"]
    blob = json.dumps(cfg).encode()
    zipped = gzip.compress(BASE, mtime=0)
    fake.add_blob(blob)
    fake.add_blob(zipped)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": _desc("application/vnd.oci.image.config.v1+json", blob),
                           "layers": [_desc("application/vnd.oci.image.layer.v1.tar+gzip",
                                            zipped)]}).encode()
    fake.manifests["v1"] = (OCI_MANIFEST, manifest)
    with pytest.raises(registry.PullError, match=r"not the diff_id .*nothing was stored"):
        _pull(fake, store, "{host}/team/app:v1")
    assert store.images() == [] and _stored_files(store) == []


def test_connection_refused_is_clear(store):
    async def run() -> None:
        async with registry.session(2.0, 2.0) as http:
            await registry.pull("127.0.0.1:9/team/app:v1", store, [], http)
    with pytest.raises(registry.PullError, match=r"failed to do request: GET "
                       r"http://127.0.0.1:9/v2/team/app/manifests/v1: Cannot connect"):
        asyncio.run(run())


@pytest.mark.parametrize("image", ["busybox", "nginx:1.25", "docker.io/team/app:v1",
                                   f"library/busybox@sha256:{'a' * 64}"])
def test_docker_hub_is_never_contacted(store, monkeypatch, image):
    def no_session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        raise AssertionError("a session was opened for a Docker Hub image")
    monkeypatch.setattr(registry, "session", no_session)
    with pytest.raises(registry.PullError, match=r"failed to pull and unpack image "
                       r"\"docker\.io/.*\": .* is on Docker Hub, and netlab never pulls from "
                       r"it \(a lab has no way to the internet\): load the image with "
                       r"'netlab image load FILE'"):
        asyncio.run(registry.pull(image, store))
    assert _stored_files(store) == []


def test_bad_reference(store):
    with pytest.raises(registry.PullError, match="invalid"):
        asyncio.run(registry.pull("Not/Valid:", store))


def test_session_has_timeouts():
    async def run() -> aiohttp.ClientTimeout:
        async with registry.session(3.0, 7.0) as http:
            return http.timeout
    timeout = asyncio.run(run())
    assert (timeout.sock_connect, timeout.sock_read, timeout.total) == (3.0, 7.0, None)


def test_a_layer_that_escapes_its_root_is_refused(store):
    fake = FakeRegistry()
    fake.add_image("v1", [layer([("app", "dir"), ("app/../../escaped", "file", "x")])])
    with pytest.raises(registry.PullError, match=r"a path with '\.\.' would leave the root "
                       r"filesystem; nothing was stored"):
        _pull(fake, store, "{host}/team/app:v1")
    assert store.images() == [] and _stored_files(store) == []
