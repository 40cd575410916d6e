"""Reading a request: which resource and verb a URL names, what the client accepts,
and the decoded body.

``parse_path`` is Kubernetes' ``RequestInfoFactory`` for the served API:
``/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}`` and
``/apis/{group}/{version}/...``, including the deprecated ``/watch/`` prefix and
cluster-wide lists of namespaced resources (``/api/v1/pods``).

``negotiate`` picks the response form from the ``Accept`` header: JSON, YAML, a
``meta.k8s.io`` Table (server-side printing) or PartialObjectMetadata. Protobuf
is not spoken; a client that accepts only protobuf gets 406.

``decode_body`` reads JSON or YAML bodies with the limits the API server needs
to survive hostile input: size (413), nesting depth, YAML aliases, NaN.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import yaml

from netlab.api import errors, objects, resources
from netlab.api.resources import Resource
from netlab.api.views import dict_at

MAX_DEPTH = 100
JSON = "application/json"
YAML = "application/yaml"
ACCEPTED_OUTPUT = (JSON, YAML, "application/json;stream=watch")
ACCEPTED_INPUT = (JSON, YAML)
_BAD_SEGMENT = re.compile(r"[\x00-\x1f\x7f%]")


@dataclass(frozen=True)
class RequestInfo:
    """What a resource request addresses; ``verb`` is Kubernetes' (get, list, watch,
    create, update, patch, delete, deletecollection)."""

    verb: str
    resource: Resource
    version: str
    namespace: Optional[str]
    name: Optional[str]
    subresource: Optional[str]

    @property
    def group(self) -> str:
        return self.resource.group


_VERBS = {
    ("GET", False): "list", ("GET", True): "get",
    ("POST", False): "create", ("POST", True): "create",
    ("PUT", True): "update", ("PATCH", True): "patch",
    ("DELETE", True): "delete", ("DELETE", False): "deletecollection",
}


def _check_segment(segment: str) -> None:
    if segment in (".", "..") or _BAD_SEGMENT.search(segment):
        raise errors.bad_request(f"invalid path segment {segment!r}")


def parse_path(method: str, path: str, watch_param: bool) -> RequestInfo:
    """The resource request at ``path``; raises 404/405 APIErrors like Kubernetes."""
    parts = path.strip("/").split("/")
    if any(p == "" for p in parts):
        raise errors.path_not_found()
    if parts[0] == "api" and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.path_not_found()
    for segment in rest:
        _check_segment(segment)
    watch_prefix = bool(rest) and rest[0] == "watch"
    if watch_prefix:
        rest = rest[1:]
    namespace: Optional[str] = None
    if len(rest) >= 3 and rest[0] == "namespaces" and not (
            group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise errors.path_not_found()
    res = resources.get_resource(group, version, rest[0])
    if res is None:
        raise errors.path_not_found()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if res.namespaced and namespace is None and name is not None:
        raise errors.path_not_found()  # /api/v1/pods/x names nothing
    if not res.namespaced and namespace is not None:
        raise errors.path_not_found()
    if sub is not None and res.subresource(sub) is None:
        raise errors.path_not_found()
    verb = _VERBS.get((method, name is not None))
    if verb is None:
        raise errors.method_not_allowed()
    if sub is not None:
        subresource = res.subresource(sub)
        if subresource is None or verb not in subresource.verbs:  # (None: 404 above)
            raise errors.method_not_allowed()
    else:
        if verb in ("get", "list") and (watch_param or watch_prefix):
            verb = "watch"
        if verb == "create" and name is not None:
            raise errors.method_not_allowed()  # POST to an object needs a subresource
        if res.namespaced and namespace is None and verb not in ("list", "watch"):
            raise errors.method_not_allowed()
        if verb not in res.verbs:
            raise errors.method_not_allowed()
    return RequestInfo(verb, res, version, namespace, name, sub)


# --- content negotiation ---------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """The response form: ``json``, ``yaml``, ``table`` or ``metadata``; ``version`` is
    the meta.k8s.io version for tables and partial metadata."""

    form: str = "json"
    version: str = "v1"


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for item in accept.split(","):
        fields = [f.strip() for f in item.split(";")]
        if not fields[0]:
            continue
        params: dict[str, str] = {}
        for f in fields[1:]:
            key, _, value = f.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        out.append((fields[0].lower(), params, q))
    # Stable sort: equal q keeps the client's order, as Kubernetes' negotiation does.
    return sorted(out, key=lambda r: -r[2])


def negotiate(accept: Optional[str]) -> Output:
    """The first acceptable form in the client's preference order, else 406."""
    if not accept or not accept.strip():
        return Output()
    for media, params, q in _media_ranges(accept):
        if q <= 0:
            continue
        if media in (JSON, "*/*", "application/*"):
            as_ = params.get("as")
            if not as_:
                return Output()
            if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
                if as_ == "Table":
                    return Output("table", params["v"])
                if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                    return Output("metadata", params["v"])
            continue  # e.g. aggregated discovery: fall through to the next range
        if media in (YAML, "application/yml", "text/yaml") and not params.get("as"):
            return Output("yaml")
    raise errors.not_acceptable(ACCEPTED_OUTPUT)


def content_type(header: Optional[str]) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


# --- bodies ------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases (a few bytes of anchors can expand to gigabytes once
    converted to JSON) and without timestamp resolution (JSON has no dates)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases are not supported")
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _json_scalar(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    return v is None or isinstance(v, (str, int, bool))


def _json_compatible(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                return False
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif not _json_scalar(v):
            return False
    return True


def _not_json() -> errors.APIError:
    return errors.bad_request("couldn't get version/kind; json parse error: NaN and "
                              "Infinity are not valid JSON numbers")


def check_json_value(value: Any) -> None:
    """400 for values a decoder let through that the API cannot store: NaN and
    infinities (not JSON) and nesting deeper than MAX_DEPTH. One walk for both: it
    runs on every create, update and patched object."""
    deep = False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            deep = deep or depth > MAX_DEPTH
            depth += 1
            for k, child in v.items():
                if not isinstance(k, str):
                    raise _not_json()
                stack.append((child, depth))
        elif isinstance(v, list):
            deep = deep or depth > MAX_DEPTH
            depth += 1
            for child in v:
                stack.append((child, depth))
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise _not_json()
        elif v is not None and not isinstance(v, (str, int)):  # bool is an int
            raise _not_json()
    if deep:
        raise errors.bad_request(f"the object is nested more than {MAX_DEPTH} levels deep")


def _strict_pairs(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f'duplicate field "{k}"')
        out[k] = v
    return out


def decode_body(body: bytes, ctype: str, *, strict: bool = False,
                accepted: tuple[str, ...] = ACCEPTED_INPUT) -> dict:
    """A request body as a JSON object. ``strict`` refuses duplicate fields (the
    ``fieldValidation=Strict`` behaviour for them). Raises 400/415 APIErrors."""
    if ctype in ("", "*/*", JSON):
        try:
            text = body.decode("utf-8")
            if strict:
                value = json.loads(text, object_pairs_hook=_strict_pairs,
                                   parse_constant=objects._reject_constant)
            else:
                value = objects.loads(text)
        except (ValueError, RecursionError) as err:
            raise errors.bad_request(
                f"couldn't get version/kind; json parse error: {err}") from None
    elif ctype in (YAML, "application/yml", "text/yaml") and YAML in accepted:
        try:
            value = yaml.load(body, Loader=_Loader)  # a SafeLoader subclass
        except (yaml.YAMLError, ValueError, RecursionError) as err:
            raise errors.bad_request(f"error converting YAML to JSON: {err}") from None
        if not _json_compatible(value):
            raise errors.bad_request("error converting YAML to JSON: the document contains "
                                     "values JSON cannot represent")
    else:
        raise errors.unsupported_media_type(ctype, accepted)
    if not isinstance(value, dict):
        raise errors.bad_request(
            "couldn't get version/kind; json parse error: the body must be a JSON object, "
            f"not {type(value).__name__ if value is not None else 'null'}")
    check_json_value(value)
    return value


# --- query parameters ----------------------------------------------------------------------------


def query_bool(query: Mapping[str, str], name: str) -> bool:
    """Kubernetes' string-to-bool query conversion: absent, "0" and "false" are false,
    anything else (even an empty ``?watch``) is true."""
    value = query.get(name)
    if value is None:
        return False
    return value != "0" and value.lower() != "false"


def query_int(query: Mapping[str, str], name: str) -> Optional[int]:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value, 10)
    except ValueError:
        raise errors.bad_request(
            f'strconv.ParseInt: parsing "{value}": invalid syntax (parameter {name})') from None


def dry_run(query: Any, options_kind: str) -> bool:
    """Whether ``dryRun=All`` was asked for; any other value is 422, as in Kubernetes."""
    values = query.getall("dryRun", []) if hasattr(query, "getall") else (
        [query["dryRun"]] if "dryRun" in query else [])
    for value in values:
        if value != "All":
            raise errors.invalid_object(options_kind, "", [errors.not_supported(
                "dryRun", value, ["All"])], group="meta.k8s.io")
    return bool(values)


def check_identity(info: RequestInfo, obj: dict) -> None:
    """Name and namespace in the body must match the URL's (Kubernetes answers 400)."""
    m = dict_at(obj, "metadata")
    name, namespace = m.get("name"), m.get("namespace")
    if info.name is not None and name not in (None, "") and name != info.name:
        raise errors.bad_request(f"the name of the object ({name}) does not match the name "
                                 f"on the URL ({info.name})")
    if info.resource.namespaced and namespace not in (None, "") and \
            namespace != info.namespace:
        raise errors.bad_request("the namespace of the provided object does not match the "
                                 "namespace sent on the request")
