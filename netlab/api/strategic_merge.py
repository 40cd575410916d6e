"""Kubernetes strategic merge patch, as the apiserver applies it, for the kinds netlab serves.

A strategic merge patch is a JSON merge patch that knows the object's schema: some lists
merge element by element, matched by a key (containers by ``name``, container ports by
``containerPort``), instead of being replaced whole. Kubernetes reads that from the
``patchStrategy``/``patchMergeKey`` tags of its Go types; netlab has no Go types, so
:data:`SCHEMAS` restates those tags (from k8s.io/api) as data, one table per kind.

``kubectl apply``, ``kubectl edit``, ``kubectl set image``, ``kubectl rollout restart`` and
``kubectl cordon`` all send this patch type. Besides plain values and ``null`` (delete the
key), kubectl's patches carry directives, all handled here as
k8s.io/apimachinery/pkg/util/strategicpatch does on the server side:

* ``{"$patch": "replace"}`` in a map replaces the map; in a list element, the whole list.
* ``{"$patch": "delete"}`` in a map empties it; in a list element, deletes the elements with
  that merge key. ``{"$patch": "merge"}`` is the default and merges.
* ``$setElementOrder/<list>`` gives the final order of a merged list (kubectl sends it with
  every change to a merge list, so ``apply`` keeps the order the user wrote).
* ``$deleteFromPrimitiveList/<list>`` removes values from a merged list of scalars
  (``metadata.finalizers``).
* ``$retainKeys`` lists the keys a map keeps; the others are cleared. kubectl sends it for
  ``retainKeys`` fields: a Deployment's ``spec.strategy`` and each pod volume.

The element order of merged lists follows Kubernetes too: server-only elements keep their
place relative to one another, and elements new to the list go where the patch (or its
``$setElementOrder``) puts them. Pure: no I/O, stdlib only; inputs are never modified.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional, Union

from netlab.api.patch_base import PatchError, json_equal

__all__ = [
    "SCHEMAS",
    "FieldStrategy",
    "apply_strategic_merge_patch",
    "merge_by",
]

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList"


@dataclass(frozen=True)
class FieldStrategy:
    """How one field merges: the ``patchStrategy``/``patchMergeKey`` tags of its Go type.

    ``merge``: a list merged element-wise, objects matched by ``merge_key``, scalars as a set
    (``merge_key`` None). ``retain_keys``: the field's patches may carry ``$retainKeys``
    (informational; the server honours the directive wherever it appears). ``replace``: a map
    replaced whole instead of merged. Fields not in a schema merge maps and replace lists.
    """

    merge: bool = False
    merge_key: Optional[str] = None
    retain_keys: bool = False
    replace: bool = False


def merge_by(key: Optional[str] = None, *, retain_keys: bool = False) -> FieldStrategy:
    """A merge list matched by ``key`` (None: a set of scalars)."""
    return FieldStrategy(merge=True, merge_key=key, retain_keys=retain_keys)


Schema = Mapping[str, FieldStrategy]
_DEFAULT = FieldStrategy()

# Paths are dotted, with "[]" for "each element of this list": "spec.containers[].env".
_OBJECT_META = {
    "finalizers": merge_by(),
    "ownerReferences": merge_by("uid"),
}
_CONTAINER = {
    "ports": merge_by("containerPort"),
    "env": merge_by("name"),
    "volumeMounts": merge_by("mountPath"),
    "volumeDevices": merge_by("devicePath"),
}
_POD_SPEC: dict[str, FieldStrategy] = {
    "volumes": merge_by("name", retain_keys=True),
    "containers": merge_by("name"),
    "initContainers": merge_by("name"),
    "ephemeralContainers": merge_by("name"),
    "imagePullSecrets": merge_by("name"),
    "hostAliases": merge_by("ip"),
    "topologySpreadConstraints": merge_by("topologyKey"),
    "schedulingGates": merge_by("name"),
    "resourceClaims": merge_by("name", retain_keys=True),
    # tolerations, readinessGates, a container's args/command/envFrom and the affinity
    # term lists carry no patch strategy in Kubernetes: they are replaced whole.
}
for _containers in ("containers", "initContainers", "ephemeralContainers"):
    _POD_SPEC.update({f"{_containers}[].{k}": v for k, v in _CONTAINER.items()})
_POD_STATUS = {
    "conditions": merge_by("type"),
    "podIPs": merge_by("ip"),
    "hostIPs": merge_by("ip"),
    "resourceClaimStatuses": merge_by("name", retain_keys=True),
}


def _under(prefix: str, table: Mapping[str, FieldStrategy]) -> dict[str, FieldStrategy]:
    return {f"{prefix}.{k}": v for k, v in table.items()}


_META = _under("metadata", _OBJECT_META)
_POD_TEMPLATE = {**_under("spec.template.metadata", _OBJECT_META),
                 **_under("spec.template.spec", _POD_SPEC)}
_CONDITIONS = {"status.conditions": merge_by("type")}

SCHEMAS: dict[str, dict[str, FieldStrategy]] = {
    "Pod": {**_META, **_under("spec", _POD_SPEC), **_under("status", _POD_STATUS)},
    "Deployment": {**_META, **_POD_TEMPLATE, **_CONDITIONS,
                   "spec.strategy": FieldStrategy(retain_keys=True)},
    "ReplicaSet": {**_META, **_POD_TEMPLATE, **_CONDITIONS},
    "Job": {**_META, **_POD_TEMPLATE, **_CONDITIONS},
    "DaemonSet": {**_META, **_POD_TEMPLATE, **_CONDITIONS},
    "StatefulSet": {**_META, **_POD_TEMPLATE, **_CONDITIONS},
    "ControllerRevision": dict(_META),
    "Service": {**_META, **_CONDITIONS, "spec.ports": merge_by("port")},
    "Node": {**_META, "spec.podCIDRs": merge_by(), "status.conditions": merge_by("type"),
             "status.addresses": merge_by("type")},
    "Namespace": {**_META, **_CONDITIONS},
    "Endpoints": dict(_META),  # subsets and their addresses/ports are atomic
    "EndpointSlice": dict(_META),  # endpoints and ports are atomic lists
    "HorizontalPodAutoscaler": {**_META, **_CONDITIONS},  # autoscaling/v2
    "Event": dict(_META),
    "CronJob": {**_META, **_under("spec.jobTemplate.metadata", _OBJECT_META),
                **_under("spec.jobTemplate", _POD_TEMPLATE)},
    "PodDisruptionBudget": {**_META, **_CONDITIONS,
                            "spec.selector": FieldStrategy(replace=True)},
    # networking.k8s.io and rbac.authorization.k8s.io lists are all atomic.
    **{k: dict(_META) for k in ("NetworkPolicy", "Ingress", "IngressClass", "Role",
                                "ClusterRole", "RoleBinding", "ClusterRoleBinding")},
    "APIService": {**_META, **_CONDITIONS},
    "PriorityClass": dict(_META),
    # PersistentVolumeSpec and ClaimSpec lists (accessModes, mountOptions) are atomic.
    "PersistentVolume": dict(_META),
    "PersistentVolumeClaim": {**_META, **_CONDITIONS},
    "StorageClass": dict(_META),
    "ConfigMap": dict(_META),
    "Secret": dict(_META),
    "ServiceAccount": {**_META, "secrets": merge_by("name")},
    "ReplicationController": {**_META, **_POD_TEMPLATE, **_CONDITIONS},
}


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _directive_field(key: str, prefix: str, message: str) -> str:
    head, sep, field = key.partition("/")
    if head != prefix or not sep or not field:
        raise PatchError(message, code=400)
    return field


def _is_delete(item: Any) -> bool:
    return isinstance(item, dict) and item.get(_PATCH) == "delete"


def _identity(item: Any, key: Optional[str]) -> Any:
    # What list elements are matched on: the merge key of objects, scalars themselves.
    return item.get(key) if key is not None and isinstance(item, dict) else item


def _index(items: list[Any], item: Any, key: Optional[str]) -> int:
    want = _identity(item, key)
    for i, candidate in enumerate(items):
        if json_equal(_identity(candidate, key), want):
            return i
    return -1


def _require_key(items: list[Any], key: str) -> None:
    for item in items:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {_show(item)} does not contain declared merge key: {key}")


def _sort_by(items: list[Any], order: list[Any], key: Optional[str]) -> list[Any]:
    """Stable-sort ``items`` by their position in ``order``; deletions go last."""
    deletions = []
    if key is not None:
        _require_key(items + order, key)
        deletions = [i for i in items if _is_delete(i)]
        items = [i for i in items if not _is_delete(i)]
    return sorted(items, key=lambda i: _index(order, i, key)) + deletions


def _interleave(server_only: list[Any], patched: list[Any], server_order: list[Any],
                key: Optional[str]) -> list[Any]:
    """Merge two sorted lists; a server-only element stays ahead of a patched one only if it
    was ahead of it in the live list, so new elements land before later server-only ones."""
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patched):
        if j >= len(patched):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(patched[j])
            j += 1
        else:
            li = _index(server_order, server_only[i], key)
            ri = _index(server_order, patched[j], key)
            if 0 <= li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patched[j])
                j += 1
    return out


def _order(merged: list[Any], patch_order: list[Any], server_order: list[Any],
           key: Optional[str]) -> list[Any]:
    """Kubernetes' element order for a merged list: patch elements in ``patch_order``, the
    rest in their live order, interleaved by live position."""
    if key is not None:
        _require_key(merged, key)
    in_patch = [m for m in merged if _index(patch_order, m, key) >= 0]
    server_only = [m for m in merged if _index(patch_order, m, key) < 0]
    return _interleave(_sort_by(server_only, server_order, key),
                       _sort_by(in_patch, patch_order, key), server_order, key)


def _element_kind(*lists: list[Any]) -> Optional[type]:
    kinds = {dict if isinstance(v, dict) else list if isinstance(v, list) else object
             for lst in lists for v in lst}
    if list in kinds:
        raise PatchError("lists of lists are not supported")
    if len(kinds) > 1:
        raise PatchError(f"list element types are not identical: {_show(list(lists))}")
    return kinds.pop() if kinds else None


class _Merger:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def strategy(self, path: str) -> FieldStrategy:
        return self.schema.get(path, _DEFAULT)

    def merge_map(self, original: dict[str, Any], patch: dict[str, Any],
                  path: str) -> dict[str, Any]:
        if _PATCH in patch:
            directive = patch[_PATCH]
            rest = {k: v for k, v in patch.items() if k != _PATCH}
            if directive == "replace":
                return self.merge_map({}, rest, path)
            if directive == "delete":
                return {}
            if directive != "merge":
                raise PatchError(f"unknown patch type: {directive} in map: {_show(patch)}",
                                 code=400)
            patch = rest
        result = dict(original)
        patch = dict(patch)
        if _RETAIN_KEYS in patch:
            result = self.retain_keys(result, patch.pop(_RETAIN_KEYS), patch)
        for key in [k for k in patch if k.startswith(_SET_ORDER)]:
            self.set_element_order(result, patch, key, path)
        deletions = []
        for key, value in patch.items():
            if key.startswith(_DELETE_PRIMITIVES):
                deletions.append((key, value))
            elif key.startswith("$"):
                raise PatchError(f'unknown strategic merge patch directive "{key}"', code=400)
            elif value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = self.merge_value(result[key], value, _child(path, key))
            else:
                result[key] = self.fresh(value, _child(path, key))
        for key, value in deletions:
            field = _directive_field(key, _DELETE_PRIMITIVES,
                                     "invalid patch format of primitive list")
            if not isinstance(value, list):
                raise PatchError("invalid patch format of primitive list", code=400)
            # Kubernetes would store the deletion list itself when the list is absent.
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field]
                                 if not any(json_equal(v, d) for d in value)]
        return result

    def fresh(self, value: Any, path: str) -> Any:
        """A patch value for a key the target lacks, with its directives and nulls resolved
        (Kubernetes stores it raw and lets decoding drop them)."""
        if isinstance(value, dict):
            return self.merge_map({}, value, path)
        if isinstance(value, list) and self.strategy(path).merge:
            return self.merge_list([], value, path)
        return value

    def merge_value(self, original: Any, value: Any, path: str) -> Any:
        if isinstance(original, dict) and isinstance(value, dict):
            return self.merge_map({} if self.strategy(path).replace else original, value, path)
        if isinstance(original, list) and isinstance(value, list):
            return self.merge_list(original, value, path) if self.strategy(path).merge else value
        return self.fresh(value, path)

    def merge_list(self, original: list[Any], patch: list[Any], path: str) -> list[Any]:
        return self.merge_list_and_order(original, patch, path)[0]

    def merge_list_and_order(self, original: list[Any], patch: list[Any],
                             path: str) -> tuple[list[Any], list[Any]]:
        """Merge ``patch`` into a merge list. Also returns the live order a surrounding
        ``$setElementOrder`` must use: Kubernetes deletes and appends in place in the live
        list's array, so the survivors, then as many new elements as deletions freed slots."""
        if not original and not patch:
            return list(original), list(original)
        kind = _element_kind(original, patch)
        if kind is not dict:
            merged: list[Any] = []
            for v in original + patch:
                if _index(merged, v, None) < 0:
                    merged.append(v)
            return _order(merged, patch, original, None), original
        key = self.strategy(path).merge_key
        if key is None:
            raise PatchError(f"cannot merge lists of objects without a merge key: {path}")
        size = len(original)
        survivors, patch, replaced = self.list_directives(original, patch, key)
        merged = [] if replaced else list(survivors)
        added = []
        for item in patch:
            _require_key([item], key)
            at = _index(merged, item, key)
            if at < 0:
                merged.append(self.merge_map({}, item, path + "[]"))
                added.append(merged[-1])
            else:
                merged[at] = self.merge_map(merged[at], item, path + "[]")
        live_order = survivors if replaced else survivors + added[:size - len(survivors)]
        return _order(merged, patch, [] if replaced else survivors, key), live_order

    @staticmethod
    def list_directives(original: list[Any], patch: list[Any],
                        key: str) -> tuple[list[Any], list[Any], bool]:
        """Apply ``$patch`` elements: delete by key, or (``replace``) drop the live list.
        Returns the surviving live elements, the plain patch elements, and whether the live
        list was replaced. A replacement is the plain elements merged into an empty list,
        which also resolves their nested directives (Kubernetes keeps them raw)."""
        plain, replace = [], False
        for item in patch:
            directive = item.get(_PATCH)
            if directive is None or directive == "merge":
                plain.append(item)
            elif directive == "delete":
                _require_key([item], key)
                original = [o for o in original
                            if not json_equal(_identity(o, key), item[key])]
            elif directive == "replace":
                replace = True
            else:
                raise PatchError(f"unknown patch type: {directive} in map: {_show(item)}",
                                 code=400)
        return original, plain, replace

    @staticmethod
    def retain_keys(result: dict[str, Any], retain: Any, patch: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(retain, list):
            raise PatchError("invalid patch format of retainKeys", code=400)
        for key, value in patch.items():
            if value is None or key.startswith((_DELETE_PRIMITIVES, _SET_ORDER)):
                continue
            if key not in retain:
                raise PatchError("invalid patch format of retainKeys", code=400)
        return {k: v for k, v in result.items() if k in retain}

    def set_element_order(self, result: dict[str, Any], patch: dict[str, Any], directive: str,
                          path: str) -> None:
        """Merge the list named by a ``$setElementOrder/<field>`` and put it in that order."""
        message = "invalid patch format of setElementOrder list"
        order = patch.pop(directive)
        field = _directive_field(directive, _SET_ORDER, message)
        child = _child(path, field)
        if not isinstance(order, list):
            raise PatchError(message, code=400)
        if not self.strategy(child).merge:
            return  # not a merge list here: the order hint has nothing to order
        current, patch_list = result.get(field), patch.get(field)
        for value in (current, patch_list):
            if value is not None and not isinstance(value, list):
                raise PatchError(f"{message}: {field} is not a list", code=400)
        if current is None and patch_list is None:
            return
        kind = _element_kind(current or [], patch_list or [])
        key = self.strategy(child).merge_key if kind is dict else None
        self.check_order(patch_list or [], order, key)
        if patch_list is not None:
            merged, live_order = self.merge_list_and_order(current or [], patch_list, child)
        else:
            assert current is not None  # both None returned above
            merged, live_order = current, current
        result[field] = _order(merged, order, live_order, key)
        patch.pop(field, None)

    @staticmethod
    def check_order(patch_list: list[Any], order: list[Any], key: Optional[str]) -> None:
        """The patch's own elements must appear in ``order``, in the same relative order."""
        items = [p for p in patch_list if not (isinstance(p, dict) and _PATCH in p)]
        if key is not None:
            _require_key(items + order, key)
        i = 0
        for wanted in order:
            if i < len(items) and json_equal(_identity(items[i], key), _identity(wanted, key)):
                i += 1
        if i < len(items):
            raise PatchError(f"The order in patch list:\n{_show(patch_list)}\n doesn't match "
                             f"{_SET_ORDER} list:\n{_show(order)}\n")


def apply_strategic_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any],
                                schema: Union[str, Schema, None] = None) -> dict[str, Any]:
    """Apply a strategic merge patch to ``target`` and return the new object.

    ``schema`` is a kind name from :data:`SCHEMAS` (an unknown kind merges maps and replaces
    every list, like a JSON merge patch with directives), or a mapping of paths to
    :class:`FieldStrategy`. Raises PatchError (``code`` 400 for a malformed patch, 422 for
    one that does not apply).
    """
    if not isinstance(patch, Mapping):
        raise PatchError("invalid JSON document: a strategic merge patch must be an object",
                         code=400)
    table = SCHEMAS.get(schema, {}) if isinstance(schema, str) else (schema or {})
    return _Merger(table).merge_map(copy.deepcopy(dict(target or {})),
                                    copy.deepcopy(dict(patch)), "")
