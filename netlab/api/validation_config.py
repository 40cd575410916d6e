"""Validation of ConfigMap, Secret, ServiceAccount and ReplicationController.

Restates ``ValidateConfigMap``, ``ValidateSecret``, ``ValidateServiceAccount`` and
``ValidateReplicationController`` (and their ``...Update`` rules) of
k8s.io/kubernetes/pkg/apis/core/validation, with the same messages and field paths
(``data[.dockercfg]``). :mod:`netlab.api.validation` registers these functions in its
per-kind tables. Sizes count decoded bytes, as the Go types hold them. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

from netlab.api import configdata, selectors
from netlab.api.errors import FieldError, forbidden_field, invalid, required
from netlab.api.validation_base import _V, _regex_msg
from netlab.api.validation_pod import _check_containers_present, validate_pod_spec
from netlab.api.views import dict_at

_KEY_FMT = "[-._a-zA-Z0-9]+"
_KEY_RE = re.compile(_KEY_FMT)
_KEY_MAX = 253  # DNS1123SubdomainMaxLength
IMMUTABLE_SET = "field is immutable when `immutable` is set"
REDACTED = "<secret contents redacted>"

SA_TOKEN = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
DOCKERCFG, DOCKERCFG_KEY = "kubernetes.io/dockercfg", ".dockercfg"
DOCKERCONFIGJSON, DOCKERCONFIGJSON_KEY = "kubernetes.io/dockerconfigjson", ".dockerconfigjson"
BASIC_AUTH = "kubernetes.io/basic-auth"
SSH_AUTH = "kubernetes.io/ssh-auth"
TLS = "kubernetes.io/tls"


def config_map_key(value: str) -> list[str]:
    """``validation.IsConfigMapKey``: a key of a ConfigMap's or Secret's data."""
    errs = []
    if len(value) > _KEY_MAX:
        errs.append(f"must be no more than {_KEY_MAX} characters")
    if not _KEY_RE.fullmatch(value):
        errs.append(_regex_msg("a valid config key must consist of alphanumeric characters, "
                               "'-', '_' or '.'", _KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _string_map(v: _V, obj: dict[str, Any], field: str) -> dict[str, Any]:
    value = obj.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        v.add(invalid(field, value, "must be an object"))
        return {}
    for key, item in value.items():
        if not isinstance(item, str):
            v.add(invalid(f"{field}[{key}]", item, "must be a string"))
    return value


def _too_big(v: _V, field: str, size: int) -> None:
    if size > configdata.MAX_SIZE:
        v.add(FieldError("TooLong", field,
                         detail=f"must have at most {configdata.MAX_SIZE} bytes"))


def validate_configmap(v: _V, obj: dict[str, Any]) -> None:
    data = _string_map(v, obj, "data")
    binary = _string_map(v, obj, "binaryData")
    for field, keys, other, other_name in (("data", data, binary, "binaryData"),
                                           ("binaryData", binary, data, "data")):
        for key in keys:
            for msg in config_map_key(key):
                v.add(invalid(f"{field}[{key}]", key, msg))
            if key in other:
                v.add(invalid(f"{field}[{key}]", key,
                              f"duplicate of key present in {other_name}"))
    # Upstream names the whole object with field.NewPath(""), which prints as "[]".
    _too_big(v, "[]", configdata.payload_size("ConfigMap", obj))


def _immutable_payload(v: _V, new: dict[str, Any], old: dict[str, Any],
                       fields: tuple[str, ...]) -> None:
    if old.get("immutable") is not True:
        return
    if new.get("immutable") is not True:
        v.add(forbidden_field("immutable", IMMUTABLE_SET))
    for field in fields:
        if (new.get(field) or {}) != (old.get(field) or {}):
            v.add(forbidden_field(field, IMMUTABLE_SET))


def validate_configmap_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    _immutable_payload(v, new, old, ("data", "binaryData"))


def validate_secret(v: _V, obj: dict[str, Any]) -> None:
    data = _string_map(v, obj, "data")
    values = configdata.decoded("Secret", obj, "data")
    for key in data:
        for msg in config_map_key(key):
            v.add(invalid(f"data[{key}]", key, msg))
    _too_big(v, "data", sum(len(b) for b in values.values()))
    stype = obj.get("type")
    if stype is not None and not isinstance(stype, str):
        v.add(invalid("type", stype, "must be a string"))
        return
    meta = dict_at(obj, "metadata")
    annotations = meta.get("annotations") or {}
    if stype == SA_TOKEN:
        if not isinstance(annotations, dict) or not annotations.get(SA_NAME_ANNOTATION):
            v.add(required(f"metadata.annotations[{SA_NAME_ANNOTATION}]"))
    elif stype in (DOCKERCFG, DOCKERCONFIGJSON):
        key = DOCKERCFG_KEY if stype == DOCKERCFG else DOCKERCONFIGJSON_KEY
        if key not in values:
            v.add(required(f"data[{key}]"))
        else:
            try:
                parsed = json.loads(values[key])
            except ValueError as err:
                v.add(invalid(f"data[{key}]", REDACTED, _json_error(err)))
            else:
                # Kubernetes unmarshals it into a map[string]interface{} (null fits).
                if parsed is not None and not isinstance(parsed, dict):
                    v.add(invalid(f"data[{key}]", REDACTED, (
                        f"json: cannot unmarshal {_json_type(parsed)} into Go value of type "
                        "map[string]interface {}")))
    elif stype == BASIC_AUTH:
        if "username" not in values and "password" not in values:
            v.add(required("data[username]"))
            v.add(required("data[password]"))
    elif stype == SSH_AUTH:
        if not values.get("ssh-privatekey"):
            v.add(required("data[ssh-privatekey]"))
    elif stype == TLS:
        for key in ("tls.crt", "tls.key"):
            if key not in values:
                v.add(required(f"data[{key}]"))


def _json_error(err: ValueError) -> str:
    # encoding/json's wording for the common cases; the offset is Python's.
    if isinstance(err, json.JSONDecodeError):
        if err.msg.startswith("Expecting value") and err.pos >= len(err.doc or ""):
            return "unexpected end of JSON input"
        ch = err.doc[err.pos] if err.pos < len(err.doc) else ""
        return f"invalid character {ch!r} looking for beginning of value"
    return str(err)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "array" if isinstance(value, list) else "string"


def validate_secret_update(v: _V, new: dict[str, Any], old: dict[str, Any]) -> None:
    if new.get("type") != old.get("type"):
        v.add(invalid("type", new.get("type"), "field is immutable"))
    _immutable_payload(v, new, old, ("data",))


def validate_serviceaccount(v: _V, obj: dict[str, Any]) -> None:
    for path, ref in v.objs(obj, "secrets", "secrets"):
        v.string(ref, "name", f"{path}.name")
    for path, ref in v.objs(obj, "imagePullSecrets", "imagePullSecrets"):
        v.string(ref, "name", f"{path}.name")
    auto = obj.get("automountServiceAccountToken")
    if auto is not None and not isinstance(auto, bool):
        v.add(invalid("automountServiceAccountToken", auto, "must be a boolean"))


def validate_replicationcontroller(v: _V, obj: dict[str, Any]) -> None:
    spec = v.obj(obj, "spec", "spec")
    v.non_negative(spec, "replicas", "spec.replicas")
    v.non_negative(spec, "minReadySeconds", "spec.minReadySeconds")
    selector: Any = spec.get("selector")
    if not selector:
        v.add(required("spec.selector"))
        selector = None
    elif not isinstance(selector, dict):
        v.add(invalid("spec.selector", selector, "must be an object"))
        selector = None
    else:
        v.labels(selector, "spec.selector")
    template = spec.get("template")
    if template is None:
        v.add(required("spec.template"))
        return
    if not isinstance(template, dict):
        v.add(invalid("spec.template", template, "must be an object"))
        return
    labels = v.obj(template, "metadata", "spec.template.metadata").get("labels")
    v.labels(labels, "spec.template.metadata.labels")
    if selector is not None and isinstance(labels, dict) and all(
            isinstance(x, str) for x in selector.values()):
        if not selectors.label_selector_from_object({"matchLabels": selector}).matches(labels):
            v.add(invalid("spec.template.metadata.labels", labels,
                          "selector does not match template labels"))
    elif selector is not None and not isinstance(labels, dict):
        v.add(invalid("spec.template.metadata.labels", labels or {},
                      "selector does not match template labels"))
    tspec = template.get("spec")
    validate_pod_spec(v, tspec, "spec.template.spec", for_pod=False, restart_policies=("Always",))
    _check_containers_present(v, tspec, "spec.template.spec")
    if isinstance(tspec, dict) and tspec.get("activeDeadlineSeconds") is not None:
        v.add(invalid("spec.template.spec.activeDeadlineSeconds",
                      tspec["activeDeadlineSeconds"],
                      "activeDeadlineSeconds in ReplicationController is not Supported"))

