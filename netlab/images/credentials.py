"""Registry credentials: image pull Secrets, and the challenges registries answer with.

A pod names ``imagePullSecrets`` (its own, and its ServiceAccount's); each is a
Secret of type ``kubernetes.io/dockerconfigjson`` (``.dockerconfigjson``: the
``~/.docker/config.json`` form, ``{"auths": {"<registry>": {...}}}``) or the older
``kubernetes.io/dockercfg`` (``.dockercfg``: the same map without ``auths``). An
entry has ``auth`` (base64 of ``user:password``) or ``username``/``password``.

The kubelet matches a registry key to an image as its credential-provider keyring
does (``pkg/credentialprovider``): a key is a host (with ``*`` globs per DNS
label, and an optional port that must match) and an optional path that the
image's repository must start with; ``http(s)://`` and Docker Hub's
``index.docker.io/v1/`` spellings are understood (a Secret made for Docker Hub names
``docker.io`` images, as upstream's keyring reads it, though netlab never pulls from
there). Every matching credential is returned, the most specific first, and the
kubelet tries them in turn.

:func:`parse_challenge` reads a ``WWW-Authenticate`` header (``Bearer
realm="...",service="...",scope="..."`` or ``Basic realm="..."``), as the
distribution API's token authentication specifies.

Pure and standard library only.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netlab.images.reference import DEFAULT_REGISTRY, Reference

DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"
_KEYS = {DOCKERCONFIGJSON: ".dockerconfigjson", DOCKERCFG: ".dockercfg"}
# Docker Hub's names for itself, as config.json files spell it.
_DOCKER_HUB = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


class CredentialError(ValueError):
    """A pull Secret that cannot be read; the message names it and why."""


@dataclass(frozen=True)
class Credential:
    """A user name and password for one registry (never printed: see __repr__)."""

    username: str
    password: str = field(repr=False)

    def basic(self) -> str:
        """The ``Authorization: Basic`` value."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def _entry(key: str, value: Any, source: str) -> Credential | None:
    if not isinstance(value, dict):
        raise CredentialError(f"{source}: the entry for {key!r} is not an object")
    auth = value.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, colon, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialError(f"{source}: the auth of {key!r} is not base64 of "
                                  "user:password") from None
        if not colon:
            raise CredentialError(f"{source}: the auth of {key!r} has no ':' between user "
                                  "and password")
        return Credential(user, password)
    name, secret = value.get("username"), value.get("password")
    if isinstance(name, str) and isinstance(secret, str) and (name or secret):
        return Credential(name, secret)
    return None  # an entry without credentials (an email only, say): nothing to send


def parse_docker_config(data: bytes, legacy: bool = False,
                        source: str = "docker config") -> dict[str, Credential]:
    """``.dockerconfigjson`` (``{"auths": {...}}``), or with ``legacy`` ``.dockercfg``
    (the map itself): registry key -> credential."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CredentialError(f"{source}: not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise CredentialError(f"{source}: not a JSON object")
    auths = document if legacy else document.get("auths")
    if not isinstance(auths, dict):
        raise CredentialError(f"{source}: no \"auths\" object")
    out = {}
    for key, value in auths.items():
        credential = _entry(str(key), value, source)
        if credential is not None:
            out[str(key)] = credential
    return out


def from_secret(secret: Mapping[str, Any]) -> dict[str, Credential]:
    """The credentials of a pull Secret (either type; its ``data`` is base64)."""
    meta = secret.get("metadata") or {}
    source = f"secret {meta.get('namespace', 'default')}/{meta.get('name', '')}"
    kind = str(secret.get("type") or "")
    if kind not in _KEYS:
        raise CredentialError(f"{source}: type {kind or 'Opaque'} is not "
                              f"{DOCKERCONFIGJSON} or {DOCKERCFG}")
    encoded = (secret.get("data") or {}).get(_KEYS[kind])
    if not isinstance(encoded, str):
        raise CredentialError(f"{source}: no {_KEYS[kind]} key")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise CredentialError(f"{source}: {_KEYS[kind]} is not base64") from None
    return parse_docker_config(raw, legacy=kind == DOCKERCFG, source=source)


@dataclass(frozen=True)
class _Key:
    host: str  # may hold * globs
    port: str
    path: str
    text: str


def _parse_key(key: str) -> _Key:
    text = key.strip()
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    host, _, path = text.partition("/")
    path = path.strip("/")
    if path in ("v1", "v2"):  # https://index.docker.io/v1/: the API version, not a path
        path = ""
    name, port = _split_host(host)
    if name in _DOCKER_HUB:
        name = DEFAULT_REGISTRY
    return _Key(name, port, path, key)


def _split_host(host: str) -> tuple[str, str]:
    """``host:port`` -> (lower-case host, port); ``[::1]:5000`` too."""
    if host.startswith("["):
        name, _, port = host.partition("]")
        return name.lower() + "]", port.lstrip(":")
    name, _, port = host.partition(":")
    return name.lower(), port


def _host_matches(pattern: str, host: str) -> bool:
    parts, want = pattern.split("."), host.split(".")
    return len(parts) == len(want) and all(fnmatch.fnmatchcase(h, p)
                                           for p, h in zip(parts, want))


class Keyring:
    """The credentials a pod may pull with, matched to images by registry key."""

    def __init__(self, entries: Iterable[tuple[str, Credential]] = ()) -> None:
        self._entries: list[tuple[_Key, Credential]] = []
        for key, credential in entries:
            self.add(key, credential)

    def add(self, key: str, credential: Credential) -> None:
        self._entries.append((_parse_key(key), credential))

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, ref: Reference) -> list[Credential]:
        """Every credential whose key matches ``ref``'s registry and repository, the
        most specific key first (duplicates once)."""
        name, port = _split_host(ref.registry)
        found = []
        for key, credential in self._entries:
            if key.port != port or not _host_matches(key.host, name):
                continue
            if key.path and not (ref.path == key.path or ref.path.startswith(key.path + "/")):
                continue
            found.append((len(key.path), key.host.count("*") == 0, key.text, credential))
        found.sort(key=lambda f: (f[0], f[1], f[2]), reverse=True)
        out: list[Credential] = []
        for *_, credential in found:
            if credential not in out:
                out.append(credential)
        return out


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: its scheme (lower case) and parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` header, in order. Unparseable
    parameters are skipped rather than failing the pull on a registry's quirk."""
    out: list[Challenge] = []
    rest = header.strip()
    while rest:
        m = re.match(r"([A-Za-z][A-Za-z0-9_-]*)\s*", rest)
        if not m:
            break
        scheme = m.group(1).lower()
        rest = rest[m.end():]
        params: dict[str, str] = {}
        while rest:
            p = _PARAM.match(rest)
            if not p or not p.group(0).strip():
                break
            value = p.group(2) if p.group(2) is not None else p.group(3) or ""
            params[p.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            rest = rest[p.end():]
        out.append(Challenge(scheme, params))
        rest = rest.lstrip(", ")
    return out
