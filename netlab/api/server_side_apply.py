"""Server-side apply and managed-fields tracking: the merge, the pruning and the conflicts.

This is the pure core of what k8s.io/apiserver's fieldmanager and sigs.k8s.io/
structured-merge-diff's ``merge.Updater`` do, over the field sets of
:mod:`netlab.api.managed_fields`:

* :func:`apply`: merge an applied configuration into the live object (maps merge, ``set``
  and ``map`` lists merge by value/key, everything else is replaced), make the applier own
  exactly the configuration's fields, remove the fields it owned before and no longer sends
  unless another manager owns them, and raise :class:`Conflicts` when the merge changes a
  field another manager owns (``force`` takes such fields over instead);
* :func:`track_update`: what any other write (create, update, patch, a subresource write)
  does to ``managedFields``: the writer owns the fields it added or changed, taking them from
  other managers, and fields it removed leave every manager;
* :func:`conflict_message` / :func:`manager_label`: upstream's wording of a 409.

``ignore`` arguments are predicates over paths: the system metadata no manager owns
(upstream's stripMeta) and the fields a subresource's strategy resets. Pure: stdlib only;
inputs are never modified.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any, Callable, Optional

from netlab.api.managed_fields import (
    Entry,
    Path,
    Shape,
    ShapeError,
    compare,
    field_set,
    key_of,
    path_string,
    value_element,
)

__all__ = [
    "Conflict",
    "Conflicts",
    "ShapeError",
    "apply",
    "conflict_message",
    "manager_label",
    "merge",
    "remove_paths",
    "strip_meta",
    "track_update",
]

Ignore = Callable[[Path], bool]

_STRIPPED = frozenset((
    ("f:apiVersion",), ("f:kind",), ("f:metadata",), ("f:metadata", "f:name"),
    ("f:metadata", "f:namespace"), ("f:metadata", "f:creationTimestamp"),
    ("f:metadata", "f:selfLink"), ("f:metadata", "f:uid"), ("f:metadata", "f:clusterName"),
    ("f:metadata", "f:generation"), ("f:metadata", "f:resourceVersion"),
))


def strip_meta(path: Path) -> bool:
    """The paths no manager owns (upstream's stripMeta): apiVersion, kind, and the system
    metadata; ``managedFields`` itself and everything under it."""
    return path in _STRIPPED or path[:2] == ("f:metadata", "f:managedFields")


class Conflict:
    """A field the applier would change that ``entry``'s manager owns."""

    def __init__(self, entry: Entry, path: Path) -> None:
        self.entry = entry
        self.path = path

    @property
    def field(self) -> str:
        return path_string(self.path)


class Conflicts(Exception):
    """Apply conflicts; ``str()`` is upstream's message."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = sorted(conflicts, key=lambda c: (manager_label(c.entry), c.path))
        super().__init__(conflict_message(self.conflicts))

    def causes(self) -> list[dict[str, Any]]:
        """``details.causes`` of the 409 Status."""
        return [{"reason": "FieldManagerConflict",
                 "message": f"conflict with {manager_label(c.entry)}", "field": c.field}
                for c in self.conflicts]


def manager_label(entry: Entry) -> str:
    """``"mgr" using apps/v1`` (Update), ``"mgr"`` (Apply), with ``with subresource "x"``."""
    label = json.dumps(entry.manager)
    if entry.subresource:
        label += f" with subresource {json.dumps(entry.subresource)}"
    if entry.operation == "Apply":
        return label
    return f"{label} using {entry.api_version}"


def conflict_message(conflicts: list[Conflict]) -> str:
    """``Apply failed with 1 conflict: conflict with "m" using v1: .spec.x``, or the
    per-manager listing of several conflicts."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {manager_label(c.entry)}: {c.field}"
    by_manager: dict[str, list[str]] = {}
    for c in conflicts:
        by_manager.setdefault(manager_label(c.entry), []).append(c.field)
    lines = []
    for label in sorted(by_manager):
        lines.append(f"conflicts with {label}:")
        lines.extend(f"- {f}" for f in by_manager[label])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


# --- merge ------------------------------------------------------------------------------------


def merge(live: Any, config: Any, shape: Shape) -> Any:
    """``config`` merged into ``live`` (a new value): maps key by key, ``set`` lists by
    value and ``map`` lists by key (live order kept, new elements appended), the rest
    replaced by the configuration."""
    if shape.kind == "map" and isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for k, v in config.items():
            out[k] = merge(live[k], v, shape.child(k)) if k in live else copy.deepcopy(v)
        return out
    if shape.kind in ("set", "assoc") and isinstance(live, list) and isinstance(config, list):
        ident: Callable[[Any], Any] = (lambda i: value_element(i)) if shape.kind == "set" \
            else (lambda i: key_of(i, shape.keys))
        wanted: dict[Any, Any] = {}
        for item in config:
            wanted.setdefault(ident(item), item)
        out_list, seen = [], set()
        item_shape = shape.item()
        for item in live:
            k = ident(item)
            if k in seen:
                continue
            seen.add(k)
            if k in wanted and shape.kind == "assoc":
                out_list.append(merge(item, wanted[k], item_shape))
            else:
                out_list.append(item)
        for k, item in wanted.items():
            if k not in seen:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(config)


# --- removal ----------------------------------------------------------------------------------


def _find(container: Any, elem: str, shape: Shape) -> Optional[int]:
    if not isinstance(container, list):
        return None
    for i, item in enumerate(container):
        try:
            if elem.startswith("k:") and key_of(item, shape.keys) == elem:
                return i
        except ShapeError:
            continue
        if elem.startswith("v:") and value_element(item) == elem:
            return i
    return None


def _remove(value: Any, path: Path, shape: Shape, keep: set[Any], prefix: Path) -> None:
    elem = path[0]
    last = len(path) == 1
    if elem.startswith("f:"):
        name = elem[2:]
        if not isinstance(value, dict) or name not in value:
            return
        if last:
            del value[name]
            return
        child = value[name]
        _remove(child, path[1:], shape.child(name), keep, (*prefix, elem))
        if isinstance(child, (dict, list)) and not child and (*prefix, elem) not in keep:
            del value[name]
        return
    index = _find(value, elem, shape)
    if index is None:
        return
    if last:
        del value[index]
        return
    _remove(value[index], path[1:], shape.item(), keep, (*prefix, elem))


def remove_paths(obj: Any, paths: Iterable[Path], shape: Shape,
                 keep: Optional[set[Any]] = None) -> Any:
    """A copy of ``obj`` without the fields at ``paths``; containers emptied by a removal
    go too, unless their own path is in ``keep``."""
    out = copy.deepcopy(obj)
    wanted = set(paths)
    # Only the topmost paths: removing a node removes what is under it, and removing its
    # children first would lose an associative element's key fields.
    top = [p for p in wanted if p and not any(p[:i] in wanted for i in range(1, len(p)))]
    for path in sorted(top, key=len, reverse=True):
        _remove(out, path, shape, keep or set(), ())
    return out


# --- apply ------------------------------------------------------------------------------------


def _owned_by_others(entries: list[Entry], mine: Entry) -> set[Any]:
    out: set[Any] = set()
    for e in entries:
        if e is not mine:
            out |= e.fields
    return out


def _has_owned_descendant(path: Path, owned_prefixes: set[Any]) -> bool:
    return path in owned_prefixes


def _prefixes(fields: set[Any]) -> set[Any]:
    out: set[Any] = set()
    for p in fields:
        for i in range(1, len(p) + 1):
            out.add(p[:i])
    return out


def apply(live: dict[str, Any], config: dict[str, Any], entries: list[Entry], manager: str,
          api_version: str, shape: Shape, *, force: bool = False, subresource: str = "",
          ignore: Ignore = strip_meta, now: str = "") -> tuple[dict[str, Any], list[Entry]]:
    """Server-side apply of ``config`` by ``manager`` to ``live`` ({} to create).

    Returns the new object (without ``managedFields``: the caller sets them) and the new
    entries. Raises :class:`Conflicts` (unless ``force``) and ShapeError for a config that
    does not fit the schema (an associative-list element without its keys).
    """
    config_set = {p for p in field_set(config, shape) if not ignore(p)}
    entries = [Entry(e.manager, e.operation, e.api_version, set(e.fields), e.time,
                     e.subresource) for e in entries]
    mine_id = (manager, "Apply", "", subresource)
    mine = next((e for e in entries if e.identity == mine_id), None)
    last_set = set(mine.fields) if mine is not None else set()
    created = mine is None
    if mine is None:
        mine = Entry(manager, "Apply", api_version, set(), None, subresource)
        entries.append(mine)
    mine.api_version = api_version
    mine.fields = config_set
    merged = merge(live, config, shape)
    # Prune what the applier owned before, sends no more, and nobody else owns.
    owned = config_set | _owned_by_others(entries, mine)
    owned_prefixes = _prefixes(owned)
    drop = {p for p in last_set - owned if not _has_owned_descendant(p, owned_prefixes)}
    if drop:
        merged = remove_paths(merged, drop, shape, keep=owned)
    comparison = compare(live, merged, shape)
    changed = {p for p in comparison.changed() if not ignore(p)}
    conflicts = []
    for e in entries:
        if e is mine:
            continue
        for p in sorted(e.fields & changed):
            conflicts.append(Conflict(e, p))
    if conflicts and not force:
        raise Conflicts(conflicts)
    for e in entries:
        if e is not mine:
            e.fields -= changed
            e.fields -= comparison.removed
    if created or comparison.changed() or comparison.removed or mine.time is None:
        mine.time = now or mine.time
    return merged, [e for e in entries if e.fields]


def allowed_by_last_applied(last_applied: Any, live: dict[str, Any], shape: Shape) -> set[Any]:
    """The fields a client-side ``last-applied-configuration`` still describes exactly:
    conflicts on them do not stop ``kubectl``'s first server-side apply (upstream's
    lastAppliedManager)."""
    if not isinstance(last_applied, dict):
        return set()
    try:
        fields = field_set(last_applied, shape)
        diff = compare(last_applied, live, shape)
    except ShapeError:
        return set()
    return fields - diff.modified - diff.added - diff.removed


# --- update -----------------------------------------------------------------------------------


def track_update(live: dict[str, Any], new: dict[str, Any], entries: list[Entry], manager: str,
                 api_version: str, shape: Shape, *, subresource: str = "",
                 ignore: Ignore = strip_meta, now: str = "") -> list[Entry]:
    """The entries after a non-apply write by ``manager`` turned ``live`` ({} for a create)
    into ``new``. Unchanged entries are returned as they were when nothing changed."""
    try:
        comparison = compare(live, new, shape)
    except ShapeError:
        return entries
    changed = {p for p in comparison.changed() if not ignore(p)}
    removed = comparison.removed
    if not changed and not (removed & set().union(*(e.fields for e in entries))
                            if entries else False):
        return entries
    out = []
    for e in entries:
        fields = e.fields - changed - removed
        out.append(Entry(e.manager, e.operation, e.api_version, fields, e.time, e.subresource))
    if changed:
        mine_id = (manager, "Update", api_version, subresource)
        mine = next((e for e in out if e.identity == mine_id), None)
        if mine is None:
            mine = Entry(manager, "Update", api_version, set(), None, subresource)
            out.append(mine)
        mine.fields |= changed
        mine.time = now or mine.time
    return [e for e in out if e.fields]
