"""A fingerprint of the calling thread's network namespace, to prove it untouched.

netlab must never change the host's root network namespace. Tests take a
snapshot before and after and compare: links, addresses, routes, the nft
ruleset and the sysctls a lab could be tempted to flip.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from pyroute2 import IPRoute

from netlab.kernel.netns import read_sysctl

WATCHED_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
)


def _sysctl(key: str) -> str | None:
    try:
        return read_sysctl(key)
    except OSError:
        return None  # e.g. br_netfilter not loaded


def _nft_ruleset() -> str | None:
    if shutil.which("nft") is None:
        return None
    out = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False)
    return out.stdout


def namespace_snapshot() -> dict[str, Any]:
    with IPRoute() as ipr:
        links = sorted(repr((link.get("IFLA_IFNAME"), link.get("IFLA_MTU"),
                             link.get("IFLA_ADDRESS"), bool(link["flags"] & 1)))
                       for link in ipr.get_links())
        addrs = sorted(repr((a["index"], a.get("IFA_ADDRESS"), a["prefixlen"]))
                       for a in ipr.get_addr())
        routes = sorted(repr((r["family"], r.get("RTA_TABLE"), r.get("RTA_DST"), r["dst_len"],
                              r.get("RTA_GATEWAY"), r.get("RTA_OIF")))
                        for r in ipr.get_routes(family=0)
                        if r.get("RTA_TABLE") != 255)  # the local table churns with addresses
    return {"links": links, "addresses": addrs, "routes": routes, "nft": _nft_ruleset(),
            "sysctls": {k: _sysctl(k) for k in WATCHED_SYSCTLS}}
