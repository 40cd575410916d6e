"""ControllerRevisions: the template history behind DaemonSets and StatefulSets.

As Kubernetes' ``pkg/controller/history`` and the DaemonSet controller's
``update.go``: each distinct pod template of an owner is snapshotted once as an
apps/v1 ControllerRevision whose ``data`` is a strategic merge patch replacing
``spec.template`` (``{"spec": {"template": {..., "$patch": "replace"}}}``), whose
``revision`` is a number increasing with every change, and whose name is
``<owner>-<hash>`` with the hash also in the ``controller-revision-hash`` label.
``kubectl rollout history`` lists these objects and ``kubectl rollout undo``
patches the owner with an old revision's ``data``; the controller then finds that
the template matches an existing revision and renumbers it as the newest, which
is how an undo shows up in the history.

Hashes: DaemonSets hash their pod template (``controller.ComputeHash``, shared with
Deployments in :mod:`rollout`), StatefulSets the revision's data bytes
(``HashControllerRevision``, FNV-1 32). Either is salted with ``status.collisionCount``
when a name is taken by a revision with different data.

The pure helpers are unit-tested; :func:`ensure_revision` and :func:`trim` (the
revision history limit) do the API calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Optional, TypeVar

from netlab.api.views import labels_of, meta_of, name_of, spec_of
from netlab.client import APIError, Client
from netlab.master.controllers import podutil
from netlab.master.controllers.base import delete_object
from netlab.master.controllers.rollout import _ALPHABET, template_hash

Obj = Mapping[str, Any]
R = TypeVar("R", bound=Obj)  # a revision, as a dict or a read-only mapping

HASH_LABEL = "controller-revision-hash"
RESOURCE = "controllerrevisions"
_PATCH = "$patch"


def revision_data(owner: Obj) -> dict[str, Any]:
    """The ``data`` of the revision that snapshots ``owner``'s pod template."""
    template = json.loads(json.dumps(spec_of(owner).get("template") or {}))
    template[_PATCH] = "replace"
    return {"spec": {"template": template}}


def template_of(revision: Obj) -> dict[str, Any]:
    """The pod template a revision restores (its data without the directive)."""
    template = dict(spec_of(revision.get("data") or {}).get("template") or {})
    template.pop(_PATCH, None)
    return template


def _safe_encode(number: int) -> str:
    return "".join(_ALPHABET[ord(c) % len(_ALPHABET)] for c in str(number))


def fnv1_32(raw: bytes) -> int:
    """Go's ``hash/fnv`` New32 (FNV-1, not FNV-1a): multiply, then xor each byte."""
    h = 0x811C9DC5
    for byte in raw:
        h = ((h * 0x01000193) & 0xFFFFFFFF) ^ byte
    return h


def hash_revision_data(data: Obj, collision_count: Optional[int] = None) -> str:
    """``HashControllerRevision``: FNV-1 (32 bit) of the data's JSON, then of the decimal
    collision count when there is one, spelled in the safe alphabet."""
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        raw += str(collision_count).encode()
    return _safe_encode(fnv1_32(raw))


def daemonset_hash(ds: Obj, collision_count: Optional[int] = None) -> str:
    return template_hash(spec_of(ds).get("template") or {}, collision_count or 0)


def revision_name(owner_name: str, hash_value: str) -> str:
    return f"{owner_name[:223]}-{hash_value}"


def number(revision: Obj) -> int:
    value = revision.get("revision")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def max_revision(revisions: Iterable[Obj]) -> int:
    return max((number(r) for r in revisions), default=0)


def matching(revisions: Iterable[R], data: Obj) -> list[R]:
    """The revisions whose data equals ``data`` (``history.FindEqualRevisions``)."""
    return [r for r in revisions if r.get("data") == data]


def sort_by_revision(revisions: Iterable[R]) -> list[R]:
    return sorted(revisions, key=lambda r: (number(r), name_of(r)))


def to_trim(revisions: Iterable[R], limit: int, keep: Iterable[str]) -> list[R]:
    """The oldest revisions beyond ``limit`` that are not in use (names in ``keep``: the
    current and update revisions and the ones live pods carry)."""
    kept = set(keep)
    candidates = [r for r in sort_by_revision(revisions)
                  if meta_of(r).get("name") not in kept]
    extra = len(candidates) - max(limit, 0)
    return candidates[:extra] if extra > 0 else []


def new_revision(owner: Obj, api_version: str, kind: str, data: dict[str, Any], revision: int,
                 hash_value: str) -> dict[str, Any]:
    """A ControllerRevision object for ``owner`` (labels from its template, plus the hash;
    annotations copied from the owner, so ``kubernetes.io/change-cause`` shows in history)."""
    meta = meta_of(owner)
    labels = dict(labels_of(spec_of(owner).get("template") or {}))
    labels[HASH_LABEL] = hash_value
    rmeta: dict[str, Any] = {
        "name": revision_name(meta.get("name", ""), hash_value),
        "namespace": meta.get("namespace"),
        "labels": labels,
        "ownerReferences": [podutil.owner_reference(owner, api_version, kind)],
    }
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    if annotations:
        rmeta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": rmeta,
            "data": data, "revision": revision}


async def trim(client: Client, owner: Obj, revisions: Iterable[Obj],
               keep: Iterable[str]) -> None:
    """Delete the ``owner``'s revisions beyond its ``revisionHistoryLimit`` (default 10),
    oldest first, sparing those named in ``keep`` (the current ones, those pods use)."""
    limit = spec_of(owner).get("revisionHistoryLimit")
    limit = limit if isinstance(limit, int) else 10
    for revision in to_trim(revisions, limit, keep):
        await delete_object(client, RESOURCE, revision)


async def ensure_revision(client: Client, owner: Obj, api_version: str, kind: str,
                          revisions: list[dict[str, Any]], hasher: Any,
                          collision_count: Optional[int]) -> tuple[dict[str, Any], Optional[int]]:
    """The revision for ``owner``'s current template, created or renumbered as the newest.

    ``hasher(owner, collision_count)`` names new revisions. Returns the revision and
    the collision count to record in the owner's status (raised when a name was taken
    by a revision with other data).
    """
    data = revision_data(owner)
    top = max_revision(revisions)
    equal = sort_by_revision(matching(revisions, data))
    if equal:
        current = equal[-1]
        if number(current) < top:
            meta = meta_of(current)
            current = await client.patch(RESOURCE, meta.get("name", ""),
                                         {"revision": top + 1}, meta.get("namespace"))
        return current, collision_count
    for _ in range(10):
        hash_value = hasher(owner, collision_count)
        revision = new_revision(owner, api_version, kind, data, top + 1, hash_value)
        try:
            return await client.create(revision), collision_count
        except APIError as err:
            if err.code != 409:
                raise
        rmeta = revision["metadata"]
        try:
            existing = await client.get(RESOURCE, rmeta["name"], rmeta["namespace"])
        except APIError as err:
            if err.not_found:
                continue
            raise
        owner_uid = meta_of(owner).get("uid")
        ref = next((r for r in meta_of(existing).get("ownerReferences") or []
                    if r.get("controller")), None)
        if existing.get("data") == data and ref is not None and ref.get("uid") == owner_uid:
            if number(existing) < top + 1:
                existing = await client.patch(RESOURCE, rmeta["name"], {"revision": top + 1},
                                              rmeta["namespace"])
            return existing, collision_count
        collision_count = (collision_count or 0) + 1
    raise APIError(409, {"message": f"could not name a revision of {kind} "
                                    f"{meta_of(owner).get('name')}"})
