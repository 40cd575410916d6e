"""Resources a client learns from the server's discovery documents, for names the
built-in registry does not know (the resources CustomResourceDefinitions add).

``kubectl`` resolves every name through discovery; the netlab CLI resolves through
the static registry (:mod:`netlab.api.resources`) and falls back to this module for
anything else: it reads ``/apis`` and the preferred version of each group that is not
built in, and feeds what it finds to ``resources.set_custom_resources`` in the CLI's
own process, so that name resolution and paths then work as for built-ins.
"""

from __future__ import annotations

from typing import Any

from netlab.api import resources
from netlab.api.resources import Resource, Subresource
from netlab.client.http import APIError, Client

_BUILTIN_GROUPS = frozenset(r.group for r in resources.RESOURCES)


def _resource(group: str, versions: tuple[str, ...], entry: dict[str, Any],
              subs: list[dict[str, Any]]) -> Resource:
    return Resource(
        group, versions, str(entry.get("kind") or ""), str(entry["name"]),
        str(entry.get("singularName") or str(entry.get("kind") or "").lower()),
        namespaced=bool(entry.get("namespaced")),
        verbs=tuple(entry.get("verbs") or resources.STANDARD_VERBS),
        short_names=tuple(entry.get("shortNames") or ()),
        categories=tuple(entry.get("categories") or ()),
        subresources=tuple(Subresource(s["name"].partition("/")[2], str(s.get("kind") or ""),
                                       tuple(s.get("verbs") or ()), s.get("group"),
                                       s.get("version")) for s in subs))


async def discover(client: Client) -> list[Resource]:
    """The served resources of every group that is not built in (preferred version)."""
    found: list[Resource] = []
    groups = await client.request("GET", "/apis")
    for group in (groups or {}).get("groups") or []:
        name = group.get("name")
        if not isinstance(name, str) or name in _BUILTIN_GROUPS:
            continue
        versions = tuple(v.get("version") for v in group.get("versions") or []
                         if isinstance(v, dict) and v.get("version"))
        preferred = (group.get("preferredVersion") or {}).get("version") or \
            (versions[0] if versions else None)
        if not preferred:
            continue
        ordered = (preferred, *(v for v in versions if v != preferred))
        try:
            listing = await client.request("GET", f"/apis/{name}/{preferred}")
        except APIError:
            continue  # the group went away between the two reads
        entries = [e for e in (listing or {}).get("resources") or [] if isinstance(e, dict)]
        for entry in entries:
            if "/" in entry.get("name", "/"):
                continue
            subs = [e for e in entries if e.get("name", "").startswith(entry["name"] + "/")]
            found.append(_resource(name, ordered, entry, subs))
    return found


async def learn(client: Client) -> bool:
    """Discover the server's extra resources and make them resolvable in this process;
    True when there are any."""
    found = await discover(client)
    resources.set_custom_resources(found)
    return bool(found)
