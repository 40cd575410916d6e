"""Validation of ``cluster.store``: where the API server keeps every object.

- ``sqlite`` (the default): a file in the lab's data directory;
- ``etcd``, or ``{etcd: {members: N}}`` with N 1 or 3: etcd members that the lab
  runs on its own nodes (``Topology.etcd_member_nodes``);
- ``{etcd: {endpoints: [...], caFile, certFile, keyFile}}``: an etcd the user runs
  outside the lab (kubeadm's ``etcd.external``). The lab runs no member; the API
  server dials the endpoints from the host's network namespace, since an etcd
  outside the lab is not on the lab's network. TLS files are read relative to the
  topology file.

Part of ``validate.py``'s one pass: every problem is recorded on the checker with its
YAML path and fix; nothing here touches the machine beyond reading whether the TLS
files exist.
"""

from __future__ import annotations

import os
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from netlab.topology import model
from netlab.topology.checker import _Checker, _kind, _suggest
from netlab.topology.source import PathKey

STORES = ("sqlite", "etcd")
ETCD_KEYS = ("members", "endpoints", "caFile", "certFile", "keyFile")
ETCD_FILES = (("caFile", "the CA that signed etcd's serving certificate"),
              ("certFile", "the client certificate the API server presents"),
              ("keyFile", "its private key"))
ETCD_SIZES = (1, 3)
_FIX = ("write 'store: sqlite' (the default), 'store: etcd', "
        "'store: {etcd: {members: 1}}' (or 3), or 'store: {etcd: {endpoints: "
        "[https://HOST:2379], caFile: ..., certFile: ..., keyFile: ...}}' for an etcd of "
        "your own")


def check_store(check: _Checker, value: Any, base_dir: Path) -> model.StoreChoice:
    """``cluster.store`` as the model's ``StoreChoice`` (SQLite on any error, which
    is recorded)."""
    raw = value.get("store", "sqlite") if isinstance(value, dict) else "sqlite"
    path: PathKey = ("cluster", "store")
    if isinstance(raw, str):
        if raw not in STORES:
            check.error(path, f"unknown store {raw!r}{_suggest(raw, STORES)}", _FIX)
            return model.StoreChoice()
        return model.StoreChoice(raw, 1 if raw == "etcd" else 0)
    if not isinstance(raw, dict) or list(raw) != ["etcd"]:
        check.error(path, f"expected 'sqlite', 'etcd' or a mapping with the one key 'etcd', "
                    f"got {_kind(raw)}", _FIX)
        return model.StoreChoice()
    etcd = check.mapping(raw["etcd"], (*path, "etcd"), ETCD_KEYS)
    if "endpoints" in etcd:
        if "members" in etcd:
            check.error((*path, "etcd", "members"),
                        "'members' (etcd run by the lab) and 'endpoints' (an etcd of your "
                        "own) exclude each other",
                        "keep 'endpoints' to use your etcd, or 'members' for the lab's")
        return model.StoreChoice("etcd", 0, _external(check, etcd, (*path, "etcd"), base_dir))
    for key, _ in ETCD_FILES:
        if key in etcd:
            check.error((*path, "etcd", key), f"'{key}' is for an etcd of your own, "
                        "and this store has no 'endpoints'",
                        "add 'endpoints: [https://HOST:2379]', or remove it: the lab's own "
                        "members use the lab's certificates")
    members = etcd.get("members", 1)
    if isinstance(members, bool) or members not in ETCD_SIZES:
        check.error((*path, "etcd", "members"), f"{members!r} members is not a size netlab runs",
                    "use 1 or 3 (an etcd cluster has an odd size, and 3 members keep a "
                    "quorum when one is lost)")
        return model.StoreChoice("etcd", 1)
    return model.StoreChoice("etcd", int(members))


def _external(check: _Checker, etcd: dict[str, Any], path: PathKey,
              base_dir: Path) -> model.EtcdExternal | None:
    raw = etcd["endpoints"]
    epath: PathKey = (*path, "endpoints")
    example = "https://127.0.0.1:2379"
    if not isinstance(raw, list) or not raw:
        check.error(epath, f"expected a list of etcd client URLs, got {_kind(raw)}",
                    f"write e.g. 'endpoints: [{example}]' (every member, as "
                    "kube-apiserver's --etcd-servers)")
        return None
    endpoints: list[str] = []
    for i, url in enumerate(raw):
        problem = _endpoint_problem(url)
        if problem:
            check.error((*epath, i), problem, f"write it as {example} (scheme, address, port)")
        else:
            endpoints.append(str(url).rstrip("/"))
    schemes = {urlsplit(u).scheme for u in endpoints}
    if len(schemes) > 1:
        check.error(epath, "the endpoints mix http and https",
                    "use one scheme for every member, as etcd's clients do")
    files: dict[str, str | None] = {}
    for key, what in ETCD_FILES:
        value = etcd.get(key)
        files[key] = None
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            check.error((*path, key), f"expected a file's path ({what}), got {_kind(value)}",
                        f"write '{key}: /path/to/file.pem'")
            continue
        file = (base_dir / value).resolve()
        if not file.is_file() or not os.access(file, os.R_OK):
            check.error((*path, key), f"{file} ({what}) is not a readable file",
                        "give the path of the PEM file, absolute or relative to the "
                        "topology file")
            continue
        files[key] = str(file)
    given = {key for key, _ in ETCD_FILES if etcd.get(key) is not None}
    if ("certFile" in given) != ("keyFile" in given):
        missing = "certFile" if "keyFile" in given else "keyFile"
        check.error((*path, missing), f"'certFile' and 'keyFile' go together, and {missing} "
                    "is missing", f"add '{missing}', or remove the other")
    if schemes == {"http"} and given:
        check.error(epath, "TLS files are given, and the endpoints are plain http",
                    "use https:// endpoints, or remove caFile, certFile and keyFile")
    if len(endpoints) != len(raw) or len(schemes) > 1:
        return None
    return model.EtcdExternal(endpoints=tuple(endpoints), ca_file=files["caFile"],
                              cert_file=files["certFile"], key_file=files["keyFile"])


def _endpoint_problem(url: Any) -> str | None:
    if not isinstance(url, str):
        return f"expected an etcd client URL, got {_kind(url)}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        return f"{url!r} is not a URL: {err}"
    if parts.scheme not in ("http", "https"):
        return f"{url!r} is not an http:// or https:// URL"
    if not parts.hostname:
        return f"{url!r} has no address"
    if port is None:
        return f"{url!r} has no port (etcd's client port is usually 2379)"
    if parts.path.strip("/") or parts.query or parts.fragment:
        return f"{url!r} has a path; an etcd endpoint is scheme://address:port"
    if parts.hostname != "localhost":
        try:
            ip_address(parts.hostname)
        except ValueError:
            if not all(label and len(label) < 64 for label in parts.hostname.split(".")):
                return f"{url!r} has no valid address"
    return None


def check_store_nodes(check: _Checker, members: int, nodes: list[model.Node]) -> None:
    """3 members need 3 cluster nodes: the control plane and the first two workers."""
    cluster = [n for n in nodes if n.in_cluster]
    if members > len(cluster):
        check.error(("cluster", "store", "etcd", "members"),
                    f"{members} etcd members run one per node, on the control-plane node "
                    f"and the first {members - 1} workers, and this topology has "
                    f"{len(cluster)} cluster node{'s' if len(cluster) != 1 else ''}",
                    f"add workers (at least {members - 1}) or use 'members: 1'")
