"""LIST: selectors, resourceVersion semantics, and ``limit``/``continue`` paging.

Kubernetes' list semantics, over the store:

* ``resourceVersion`` unset: the most recent state (a consistent read);
  ``"0"``: any state (netlab serves the most recent, which is allowed);
  ``N`` with ``resourceVersionMatch=Exact`` (or with ``limit``, Kubernetes'
  legacy rule): the state at revision N, 410 once compacted; ``N`` otherwise:
  not older than N, 504 if N is in the future.
* ``limit``/``continue``: a page of at most ``limit`` matching objects and an
  opaque token (base64 JSON: the revision of the first page and the last key
  looked at) that continues the *same snapshot*; a token whose revision was
  compacted is 410 Expired, as in Kubernetes.
* ``labelSelector`` and ``fieldSelector`` (per kind, see
  :mod:`netlab.api.selectors`); with a selector, pages keep being read until
  ``limit`` objects matched.

:class:`Filter` is shared with watch, which applies the same selectors.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Optional

from netlab.api import errors, objects, resources, selectors, views
from netlab.api.resources import Resource
from netlab.master.apiserver.request import query_int
from netlab.master.store import KV, CompactedError, FutureRevisionError, Store

PAGE_SIZE = 500
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list.")


def _gvr(res: Resource, version: str) -> str:
    return f"{res.group}/{version}, Resource={res.plural}"


class Filter:
    """The label and field selectors of a list or watch (and an object name, for a
    watch on one object)."""

    def __init__(self, res: Resource, version: str, label_selector: str = "",
                 field_selector: str = "", name: Optional[str] = None) -> None:
        try:
            self.labels = selectors.parse_label_selector(label_selector)
            self.fields = selectors.parse_field_selector(field_selector, kind=res.kind)
        except selectors.SelectorError as err:
            raise errors.bad_request(
                f'Unable to find "{_gvr(res, version)}" that match label selector '
                f'"{label_selector}", field selector "{field_selector}": {err}') from None
        self.name = name or self.fields.requires_exact_match("metadata.name")
        self.trivial = self.labels.empty and self.fields.empty and name is None

    def matches(self, obj: dict) -> bool:
        if self.name is not None and views.name_of(obj) != self.name:
            return False
        return self.labels.matches(views.labels_of(obj)) and self.fields.matches(obj)

    def matches_kv(self, kv: KV) -> bool:
        if self.trivial:
            return True
        return self.matches(objects.loads(kv.value))


# --- continue tokens ----------------------------------------------------------------------------


def encode_continue(revision: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        revision, start = data["rv"], data["start"]
        if not isinstance(revision, int) or revision <= 0 or not isinstance(start, str) \
                or not start or start.startswith("/") or "\x00" in start:
            raise ValueError("malformed")
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise errors.bad_request(f"continue key is not valid: {err}") from None
    return revision, start


# --- list ----------------------------------------------------------------------------------------


@dataclass
class ListResult:
    items: list[KV]
    revision: int
    continue_token: Optional[str]


def parse_resource_version(value: Optional[str]) -> Optional[int]:
    """None for unset or "0" (any), else the revision; 400 if not a number."""
    if value in (None, "", "0"):
        return None
    try:
        rev = int(value, 10)
        if rev < 0:
            raise ValueError
    except ValueError:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{value}": '
                                 "must be a non-negative integer") from None
    return rev


async def list_objects(store: Store, res: Resource, namespace: Optional[str],
                       query: Any, flt: Filter) -> ListResult:
    """The items of one LIST request (``query`` is the request's query mapping)."""
    limit = query_int(query, "limit") or 0
    if limit < 0:
        limit = 0
    token = query.get("continue") or ""
    rv_text = query.get("resourceVersion")
    rv = parse_resource_version(rv_text)
    match = query.get("resourceVersionMatch") or ""
    if match not in ("", "Exact", "NotOlderThan"):
        raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{match}": '
                                 'supported values: "Exact", "NotOlderThan"')
    prefix = resources.store_prefix(res, namespace if res.namespaced else None)
    if flt.name is not None and res.namespaced and namespace:
        prefix = resources.store_key(res, namespace, flt.name)  # one key (and its prefix)
    start_after = ""
    revision = 0
    if token:
        if rv_text not in (None, "", "0") or match:
            raise errors.bad_request("specifying resource version is not allowed when using "
                                     "continue")
        revision, start = decode_continue(token)
        start_after = prefix + start
    elif rv is not None and (match == "Exact" or (not match and limit)):
        revision = rv
    elif match and rv_text in (None, ""):
        raise errors.bad_request(f'resourceVersionMatch: Forbidden: "{match}" is forbidden '
                                 f"when resourceVersion is not provided")
    items: list[KV] = []
    more = False
    last_key = ""
    try:
        while True:
            want = max(limit - len(items), 1) if limit else 0
            page = await store.alist(prefix, revision, PAGE_SIZE if limit and not flt.trivial
                                     else want, start_after)
            revision = page.revision
            for i, kv in enumerate(page.items):
                last_key = kv.key
                if flt.matches_kv(kv):
                    items.append(kv)
                    if limit and len(items) >= limit:
                        more = page.more or i + 1 < len(page.items)
                        break
            else:
                if page.more and (not limit or len(items) < limit):
                    start_after = last_key
                    continue
                more = False
            break
    except CompactedError as err:
        if token:
            raise errors.expired(_CONTINUE_EXPIRED) from None
        raise errors.too_old_resource_version(err.requested, err.compact_revision) from None
    except FutureRevisionError as err:
        raise errors.timeout(f"Too large resource version: {err.requested}, current: "
                             f"{err.current}") from None
    if rv is not None and revision < rv and not token:
        current = store.current_revision()
        raise errors.timeout(f"Too large resource version: {rv}, current: {current}")
    continue_token = None
    if more and limit:
        continue_token = encode_continue(revision, last_key[len(prefix):])
    return ListResult(items, revision, continue_token)
