"""Container environment from ConfigMaps and Secrets: ``envFrom`` and ``*KeyRef``.

The part of the kubelet's ``makeEnvironmentVariables`` that reads API objects. The pod
worker first fetches every ConfigMap and Secret a container refers to
(:func:`referenced`, then GETs in ``pods``), and hands them over as :data:`Sources`:
``(kind, name) -> object``, or ``None`` when the API server answered 404. The functions
here then resolve references exactly as the kubelet does:

- a missing object fails the container unless the reference is ``optional``, with the
  kubelet's messages (``configmap "x" not found``);
- a missing key fails it unless ``optional`` (``couldn't find key k in ConfigMap ns/x``);
  a ConfigMap key is looked up in ``data`` only, a Secret key in ``data``, decoded;
- ``envFrom`` adds every key (after ``prefix``) that makes a usable variable name; its
  values are never ``$(VAR)``-expanded.

Failures raise :class:`netlab.node.kubelet.spec.ContainerConfigError`, which becomes the
container's ``CreateContainerConfigError``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Optional

from netlab.api.configdata import Base64Error, decode_base64

CONFIGMAP, SECRET = "configmap", "secret"
Source = tuple[str, str]  # (CONFIGMAP or SECRET, name)
Sources = Mapping[Source, Optional[dict[str, Any]]]

_REFS = (("configMapKeyRef", CONFIGMAP), ("secretKeyRef", SECRET))
_ENV_FROM = (("configMapRef", CONFIGMAP), ("secretRef", SECRET))
_KIND_TITLE = {CONFIGMAP: "ConfigMap", SECRET: "Secret"}


class SourceError(Exception):
    """A reference that cannot be resolved; the message is the kubelet's."""


def referenced(containers: Iterable[Mapping[str, Any]]) -> set[Source]:
    """Every ConfigMap and Secret that the env of ``containers`` refers to."""
    found: set[Source] = set()
    for c in containers:
        for source in c.get("envFrom") or []:
            for key, kind in _ENV_FROM:
                ref = source.get(key) if isinstance(source, dict) else None
                if isinstance(ref, dict) and ref.get("name"):
                    found.add((kind, str(ref["name"])))
        for item in c.get("env") or []:
            value_from = item.get("valueFrom") if isinstance(item, dict) else None
            for key, kind in _REFS:
                ref = value_from.get(key) if isinstance(value_from, dict) else None
                if isinstance(ref, dict) and ref.get("name"):
                    found.add((kind, str(ref["name"])))
    return found


def _values(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    data = obj.get("data") or {}
    if kind == CONFIGMAP:
        return {str(k): str(v) for k, v in data.items()}
    out = {}
    for k, v in data.items():
        try:
            out[str(k)] = decode_base64(str(v)).decode("utf-8", "replace")
        except Base64Error:
            continue
    return out


def _lookup(kind: str, name: str, sources: Sources) -> Optional[dict[str, Any]]:
    obj = sources.get((kind, name))
    return obj if isinstance(obj, dict) else None


def key_ref(kind: str, ref: dict[str, Any], namespace: str, sources: Sources) -> Optional[str]:
    """The value of a ``configMapKeyRef``/``secretKeyRef``; None for an optional miss."""
    name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
    optional = ref.get("optional") is True
    obj = _lookup(kind, name, sources)
    if obj is None:
        if optional:
            return None
        raise SourceError(f'{kind} "{name}" not found')
    values = _values(kind, obj)
    if key not in values:
        if optional:
            return None
        raise SourceError(f"couldn't find key {key} in {_KIND_TITLE[kind]} {namespace}/{name}")
    return values[key]


def _usable_name(name: str) -> bool:
    # Relaxed env var names (1.30+): printable ASCII without '='.
    return bool(name) and "=" not in name and all(" " <= ch <= "~" for ch in name)


def env_from(sources_list: list[Any], namespace: str, sources: Sources) -> dict[str, str]:
    """The variables of a container's ``envFrom``, in order (later sources win)."""
    env: dict[str, str] = {}
    for source in sources_list:
        if not isinstance(source, dict):
            continue
        prefix = str(source.get("prefix") or "")
        for key, kind in _ENV_FROM:
            ref = source.get(key)
            if not isinstance(ref, dict):
                continue
            name = str(ref.get("name") or "")
            obj = _lookup(kind, name, sources)
            if obj is None:
                if ref.get("optional") is True:
                    continue
                raise SourceError(f'{kind} "{name}" not found')
            for k, v in _values(kind, obj).items():
                if _usable_name(prefix + k):
                    env[prefix + k] = v
    return env
