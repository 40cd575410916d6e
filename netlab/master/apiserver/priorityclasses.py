"""The PriorityClasses the Priority admission plugin reads, kept in memory.

Upstream's plugin reads the classes from an informer's cache, not from etcd, since every
pod create consults them (a pod naming no class needs the ``globalDefault`` one, which
only a list finds). netlab's registry keeps the same cache: listed from the store the
first time a pod or class is admitted, then kept exact by the registry, which tells it
of every PriorityClass this API server writes or removes (every write goes through it).
Entries carry the revision of the write they come from, so neither a late list nor a
late notification can undo a newer write, as in ``NamespaceCache``.
"""

from __future__ import annotations

from typing import Any, Optional

from netlab.api import resources
from netlab.api.objects import decode_stored
from netlab.api.views import name_of
from netlab.master.store import Store

PRIORITY_CLASSES = resources.builtin("PriorityClass")


class PriorityClassCache:
    """Every PriorityClass by name, as of the last write this API server made."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # name -> (revision, the class, or None once deleted at that revision)
        self._entries: dict[str, tuple[int, Optional[dict[str, Any]]]] = {}
        self._listed = False

    def _record(self, name: str, revision: int, obj: Optional[dict[str, Any]]) -> None:
        seen = self._entries.get(name)
        if seen is None or seen[0] <= revision:
            self._entries[name] = (revision, obj)

    def observe(self, obj: dict[str, Any], revision: int) -> None:
        """A class was written at ``revision``."""
        self._record(name_of(obj), revision, obj)

    def forget(self, name: str, revision: int) -> None:
        """A class was removed at ``revision``."""
        self._record(name, revision, None)

    async def classes(self) -> dict[str, dict[str, Any]]:
        """Every class by name (listed from the store on the first call)."""
        if not self._listed:
            listed = await self._store.alist(resources.store_prefix(PRIORITY_CLASSES))
            for kv in listed.items:
                obj = decode_stored(kv.value, kv.mod_revision)
                if isinstance(obj, dict):
                    self.observe(obj, kv.mod_revision)
            self._listed = True
        return {name: obj for name, (_, obj) in self._entries.items() if obj is not None}
