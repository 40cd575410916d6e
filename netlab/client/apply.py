"""``apply`` for netlab's own CLI and for a topology's workloads.

Like ``kubectl apply``, it keeps the applied manifest in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation, and on the
next apply sends only the difference between the last-applied and the new
manifest — fields the user removed become ``null`` — so fields the server or
controllers own (status, defaults, a scaled replica count the manifest never
set) are left alone, and applying the same manifest twice changes nothing.

The difference is a JSON merge patch: lists are replaced whole, which is what
a manifest author means, and the server's defaulting then fills them in the
same way each time. (kubectl sends a strategic merge patch, which the API
server also accepts; both give the same result for manifests.)
"""

from __future__ import annotations

import json
from typing import Any

from netlab.api import resources
from netlab.api.views import annotations_of, meta_of
from netlab.client.http import APIError, Client

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def merge_diff(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (``{}`` when equal)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            if isinstance(old[key], dict) and isinstance(value, dict):
                sub = merge_diff(old[key], value)
                if sub:
                    patch[key] = sub
            else:
                patch[key] = value
    return patch


def _annotated(obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The object to send, carrying its own last-applied annotation."""
    meta: dict[str, Any] = dict(meta_of(obj))
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    clean = {**obj, "metadata": {**meta, "annotations": annotations} if annotations else
             {k: v for k, v in meta.items() if k != "annotations"}}
    applied = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    out_meta = dict(clean["metadata"])
    out_meta["annotations"] = {**annotations, LAST_APPLIED: applied + "\n"}
    return {**clean, "metadata": out_meta}, applied


async def apply_object(client: Client, obj: dict[str, Any],
                       namespace: str | None = None) -> tuple[str, dict[str, Any]]:
    """Create or update ``obj``; return ("created" | "configured" | "unchanged", result)."""
    res = resources.by_api_version_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
    if res is None:
        raise resources.UnknownResourceError(f"{obj.get('apiVersion')}, Kind={obj.get('kind')}")
    meta = meta_of(obj)
    if res.namespaced:
        obj = {**obj, "metadata": {**meta, "namespace": meta.get("namespace") or namespace
                                   or "default"}}
    ns = obj["metadata"].get("namespace") if res.namespaced else None
    name = meta.get("name")
    desired, applied = _annotated(obj)
    if not name:  # generateName: every apply creates, as with kubectl create
        return "created", await client.create(desired)
    try:
        live = await client.get(res.plural if not res.group else f"{res.plural}.{res.group}",
                                name, ns)
    except APIError as err:
        if not err.not_found:
            raise
        return "created", await client.create(desired)
    last_text = annotations_of(live).get(LAST_APPLIED)
    try:
        last = json.loads(last_text) if last_text else {}
    except ValueError:
        last = {}
    patch = merge_diff(last, json.loads(applied))
    if not patch:
        return "unchanged", live
    patch.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = applied + "\n"
    target = res.plural if not res.group else f"{res.plural}.{res.group}"
    return "configured", await client.patch(target, name, patch, ns, patch_type="merge")
