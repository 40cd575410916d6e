"""What a pod's volumes contain: the kubelet's volume plugins, as payloads.

For each volume of a pod the kubelet decides, from the Pod and the objects it names,
what the volume holds; the volume manager (``volumemanager``) then makes it so on
disk. This module is that decision, pure, following the upstream plugins
(``pkg/volume/{configmap,secret,downwardapi,projected}``):

- ``configMap``/``secret``: every key (``data``, and a ConfigMap's ``binaryData``), or
  only the ``items`` listed, each with ``defaultMode`` or its own ``mode``; a missing
  object or key fails the volume unless ``optional`` (``configmap "x" not found``,
  ``configmap references non-existent config key: k``);
- ``downwardAPI``: ``fieldRef`` (name, namespace, uid, labels, annotations, one label
  or annotation) and ``resourceFieldRef`` (a container's limits and requests);
- ``projected``: the union of configMap, secret and downwardAPI sources under one
  ``defaultMode``; ``extra`` files (a service-account token and its CA, once the
  kubelet makes them) join the same payload.

Also here: which objects a pod's volumes refer to (the worker GETs them), the kind of
each volume, and why a volume netlab cannot provide fails (the cloud and network
volume types; ``persistentVolumeClaim`` volumes are resolved by ``claims``). Errors are
:class:`VolumeError`, whose message follows upstream's
``MountVolume.SetUp failed for volume "x" : ...``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from netlab.api.configdata import Base64Error, decode_base64
from netlab.api.views import pod_spec
from netlab.node.kubelet import envsources
from netlab.node.kubelet.atomic_writer import FileProjection
from netlab.node.kubelet.spec import (
    ContainerConfigError,
    PodContext,
    field_ref,
    resource_field_ref,
)

DEFAULT_MODE = 0o644  # configMap, secret, downwardAPI and projected: 420
EMPTY_DIR, HOST_PATH = "emptyDir", "hostPath"
ATOMIC = ("configMap", "secret", "downwardAPI", "projected")
SUPPORTED = (EMPTY_DIR, HOST_PATH, *ATOMIC, "persistentVolumeClaim")
# Upstream's directory per plugin, under the pod's volumes/ (kubernetes.io~empty-dir).
PLUGIN_DIRS = {EMPTY_DIR: "kubernetes.io~empty-dir", HOST_PATH: "kubernetes.io~host-path",
               "configMap": "kubernetes.io~configmap", "secret": "kubernetes.io~secret",
               "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
Payload = dict[str, FileProjection]


class VolumeError(Exception):
    """A volume that cannot be set up; the message is what follows
    ``MountVolume.SetUp failed for volume "x" : `` in the kubelet's event."""


class UnsupportedVolume(VolumeError):
    """A volume type netlab does not provide (it needs storage, or a driver)."""


def volume_type(volume: Mapping[str, Any]) -> str:
    """The source field a volume sets (``emptyDir``, ``persistentVolumeClaim``, ...)."""
    kinds = [k for k in volume if k != "name" and volume[k] is not None]
    return kinds[0] if kinds else EMPTY_DIR  # no source at all: an emptyDir, as defaulted


def unsupported_reason(kind: str) -> str:
    return (f"{kind} volumes are not supported by netlab (supported: "
            f"{', '.join(SUPPORTED)})")


def referenced(pod: Mapping[str, Any]) -> set[envsources.Source]:
    """Every ConfigMap and Secret the pod's volumes name."""
    found: set[envsources.Source] = set()

    def add(kind: str, ref: Any, field: str) -> None:
        if isinstance(ref, dict) and ref.get(field):
            found.add((kind, str(ref[field])))

    for volume in pod_spec(pod).get("volumes") or []:
        add(envsources.CONFIGMAP, volume.get("configMap"), "name")
        add(envsources.SECRET, volume.get("secret"), "secretName")
        for source in (volume.get("projected") or {}).get("sources") or []:
            add(envsources.CONFIGMAP, source.get("configMap"), "name")
            add(envsources.SECRET, source.get("secret"), "name")
    return found


def file_mode(value: Any, default: int = DEFAULT_MODE) -> int:
    """A ``mode``/``defaultMode`` as given, if it is one (validation refuses others)."""
    return value if isinstance(value, int) and 0 <= value <= 0o777 else default


def _key_values(kind: str, obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A ConfigMap's ``data`` and ``binaryData``, or a Secret's decoded ``data``."""
    out: dict[str, bytes] = {}
    if kind == envsources.CONFIGMAP:
        for k, v in (obj.get("data") or {}).items():
            out[str(k)] = str(v).encode()
        binary = obj.get("binaryData") or {}
    else:
        binary = obj.get("data") or {}
    for k, v in binary.items():
        try:
            out[str(k)] = decode_base64(str(v))
        except Base64Error:
            continue
    return out


def object_payload(kind: str, name: str, items: Any, default_mode: int, optional: bool,
                   sources: envsources.Sources) -> Payload:
    """A configMap or secret volume (or projected source): upstream's ``MakePayload``."""
    obj = sources.get((kind, name))
    if not isinstance(obj, dict):
        if optional:
            return {}
        raise VolumeError(f'{kind} "{name}" not found')
    values = _key_values(kind, obj)
    if not items:
        return {k: FileProjection(v, default_mode) for k, v in values.items()}
    payload: Payload = {}
    for item in items:
        key, path = str(item.get("key") or ""), str(item.get("path") or "")
        if key not in values:
            if optional:
                continue
            if kind == envsources.CONFIGMAP:
                raise VolumeError(f"configmap references non-existent config key: {key}")
            raise VolumeError(f"references non-existent secret key: {key}")
        payload[path] = FileProjection(values[key], file_mode(item.get("mode"), default_mode))
    return payload


def downward_payload(items: Any, default_mode: int, pod: dict[str, Any],
                     ctx: PodContext) -> Payload:
    """A downwardAPI volume (or projected source): one file per item."""
    payload: Payload = {}
    containers = {c.get("name"): c for c in pod_spec(pod).get("containers") or []}
    for item in items or []:
        path = str(item.get("path") or "")
        mode = file_mode(item.get("mode"), default_mode)
        try:
            if item.get("fieldRef"):
                value = field_ref(pod, str(item["fieldRef"].get("fieldPath") or ""), ctx)
            elif item.get("resourceFieldRef"):
                ref = item["resourceFieldRef"]
                container = containers.get(ref.get("containerName"))
                if container is None:
                    raise VolumeError(f"resourceFieldRef of {path}: no container named "
                                      f"{ref.get('containerName')!r}")
                value = resource_field_ref(container, ref, ctx)
            else:
                raise VolumeError(f"downwardAPI item {path} has neither fieldRef nor "
                                  "resourceFieldRef")
        except ContainerConfigError as err:
            raise VolumeError(err.message) from None
        payload[path] = FileProjection(value.encode(), mode)
    return payload


def payload(volume: Mapping[str, Any], pod: dict[str, Any], ctx: PodContext,
            sources: envsources.Sources,
            extra: Optional[Mapping[str, FileProjection]] = None) -> Payload:
    """The files of a configMap, secret, downwardAPI or projected volume. ``extra``
    adds files to a projected volume (what a serviceAccountToken source projects)."""
    kind = volume_type(volume)
    src = volume.get(kind) or {}
    mode = file_mode(src.get("defaultMode"), DEFAULT_MODE)
    if kind == "configMap":
        return object_payload(envsources.CONFIGMAP, str(src.get("name") or ""),
                              src.get("items"), mode, src.get("optional") is True, sources)
    if kind == "secret":
        return object_payload(envsources.SECRET, str(src.get("secretName") or ""),
                              src.get("items"), mode, src.get("optional") is True, sources)
    if kind == "downwardAPI":
        return downward_payload(src.get("items"), mode, pod, ctx)
    if kind == "projected":
        out: Payload = {}
        errors: list[str] = []
        for source in src.get("sources") or []:
            try:
                if source.get("configMap"):
                    ref = source["configMap"]
                    out.update(object_payload(envsources.CONFIGMAP, str(ref.get("name") or ""),
                                              ref.get("items"), mode,
                                              ref.get("optional") is True, sources))
                elif source.get("secret"):
                    ref = source["secret"]
                    out.update(object_payload(envsources.SECRET, str(ref.get("name") or ""),
                                              ref.get("items"), mode,
                                              ref.get("optional") is True, sources))
                elif source.get("downwardAPI"):
                    out.update(downward_payload(source["downwardAPI"].get("items"), mode,
                                                pod, ctx))
                elif source.get("serviceAccountToken") and extra is None:
                    errors.append("serviceAccountToken projections are not supported yet")
            except VolumeError as err:
                errors.append(str(err))
        if errors:  # upstream gathers every source's error into one
            raise VolumeError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
        out.update(extra or {})
        return out
    raise UnsupportedVolume(unsupported_reason(kind))
