"""Response bodies: objects and lists in the form the client negotiated.

Stored values are JSON bytes without a resourceVersion (see
:mod:`netlab.api.objects`). For the common case, a JSON list of objects in
their storage version, the items are the stored bytes with the revision
spliced in, joined once: nothing is decoded or re-encoded, which is what keeps
a list of ten thousand pods fast. Everything else (another served version,
a Table for kubectl, PartialObjectMetadata, YAML) decodes the objects first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Optional, Union

import yaml
from aiohttp import web

from netlab.api import errors, objects, tables
from netlab.api.objects import dumps, with_resource_version
from netlab.api.resources import Resource
from netlab.api.views import meta_of
from netlab.master.apiserver import conversion
from netlab.master.apiserver.request import Output
from netlab.master.store import KV

JSON_TYPE = "application/json"
YAML_TYPE = "application/yaml"

Item = Union[KV, dict]


def as_dict(item: Item) -> dict:
    if isinstance(item, KV):
        return objects.decode_stored(item.value, item.mod_revision)
    return item


def served(res: Resource, version: str, obj: dict) -> dict:
    """``obj`` (storage version) as the client's version shows it."""
    return conversion.to_served(res, version, obj)


def item_json(res: Resource, version: str, item: Item) -> bytes:
    """One object as JSON bytes in the served version."""
    if isinstance(item, KV) and not conversion.needs_conversion(res, version):
        return with_resource_version(item.value, item.mod_revision)
    return dumps(served(res, version, as_dict(item)))


def partial_metadata(obj: dict, meta_version: str) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{meta_version}",
            "metadata": meta_of(obj)}


def table(res: Resource, version: str, items: Sequence[Item], output: Output,
          include_object: str, *, resource_version: Optional[str] = None,
          continue_token: Optional[str] = None, headers: bool = True) -> dict:
    objs = [served(res, version, as_dict(i)) for i in items]
    try:
        result = tables.to_table(res, objs, objects.now(), include_object or "Metadata",
                                 api_version=f"meta.k8s.io/{output.version}",
                                 resource_version=resource_version,
                                 continue_token=continue_token)
    except ValueError as err:
        raise errors.bad_request(str(err)) from None
    if not headers:
        result["columnDefinitions"] = []
    return result


def list_body(res: Resource, version: str, output: Output, items: Sequence[Item],
              revision: int, continue_token: Optional[str] = None,
              include_object: str = "") -> bytes:
    """The body of a list response, in the negotiated form (YAML is encoded by
    :func:`respond`; this returns JSON for every form)."""
    with objects.decoding_many():  # a Table or metadata list decodes every item and keeps it
        return _list_body(res, version, output, items, revision, continue_token, include_object)


def _list_body(res: Resource, version: str, output: Output, items: Sequence[Item],
               revision: int, continue_token: Optional[str], include_object: str) -> bytes:
    list_meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if continue_token:
        list_meta["continue"] = continue_token
    if output.form == "table":
        return dumps(table(res, version, items, output, include_object,
                           resource_version=str(revision), continue_token=continue_token))
    if output.form == "metadata":
        return dumps({"kind": "PartialObjectMetadataList",
                      "apiVersion": f"meta.k8s.io/{output.version}", "metadata": list_meta,
                      "items": [partial_metadata(as_dict(i), output.version) for i in items]})
    head = dumps({"kind": res.list_kind, "apiVersion": res.api_version(version),
                  "metadata": list_meta})
    parts = b",".join(item_json(res, version, i) for i in items)
    return head[:-1] + b',"items":[' + parts + b"]}"


def object_body(res: Resource, version: str, output: Output, obj: dict,
                include_object: str = "") -> bytes:
    if output.form == "table":
        return dumps(table(res, version, [obj], output, include_object,
                           resource_version=meta_of(obj).get("resourceVersion")))
    if output.form == "metadata":
        return dumps(partial_metadata(obj, output.version))
    return dumps(served(res, version, obj))


def respond(body: bytes, output: Optional[Output] = None, status: int = 200,
            pretty: bool = False) -> web.Response:
    """A response with ``body`` (JSON bytes), re-encoded as YAML or indented if asked."""
    if output is not None and output.form == "yaml":
        text = yaml.safe_dump(objects.loads(body), default_flow_style=False, sort_keys=False)
        return web.Response(body=text.encode(), status=status, content_type=YAML_TYPE)
    if pretty:
        body = json.dumps(objects.loads(body), indent=2).encode() + b"\n"
    return web.Response(body=body, status=status, content_type=JSON_TYPE)


def status_response(status: dict, output: Optional[Output] = None) -> web.Response:
    return respond(dumps(status), output if output and output.form == "yaml" else None,
                   status=int(status.get("code") or 200))


def error_response(err: errors.APIError) -> web.Response:
    return web.Response(body=dumps(err.status()), status=err.code, content_type=JSON_TYPE)
