"""The pod's names: its hostname, its FQDN and what its ``/etc/resolv.conf`` holds.

The kubelet's ``pkg/kubelet/network/dns`` in small. ``pod_dns_config`` turns a Pod's
``dnsPolicy`` and ``dnsConfig`` into nameservers, search domains and options, the
CRI's ``DNSConfig`` of the sandbox; the runtime only writes the file.

* ``ClusterFirst`` (the default): the cluster DNS Service (``--cluster-dns``), the
  search path ``<ns>.svc.<zone> svc.<zone> <zone>`` followed by the node's own search
  domains, and ``options ndots:5``. A hostNetwork pod gets ``Default`` instead.
* ``ClusterFirstWithHostNet``: ``ClusterFirst``, for hostNetwork pods too.
* ``Default``: the node's resolv.conf (``--resolv-conf``) as it is.
* ``None``: nothing but the pod's ``dnsConfig``.

``dnsConfig`` then merges in as upstream does: its nameservers and searches are
appended without duplicates, and an option replaces one of the same name. Without a
cluster DNS, ``ClusterFirst`` falls back to ``Default`` (upstream's MissingClusterDNS).
The limits are upstream's: three nameservers and 32 search domains of at most 2048
characters in all; beyond them the list is cut and ``DNSConfig.warnings`` says what
was dropped, for the kubelet's DNSConfigForming event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab.api import views
from netlab.api.views import meta_of, pod_spec
from netlab.node.runtime import PodSpec

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
DEFAULT_OPTIONS = ("ndots:5",)


@dataclass(frozen=True)
class DNSConfig:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)


def parse_resolv_conf(text: str) -> DNSConfig:
    """The nameservers, search domains and options of a resolv.conf (the last
    ``search`` line wins, as in glibc)."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        key, values = words[0], words[1:]
        if key == "nameserver" and values:
            nameservers.append(values[0])
        elif key in ("search", "domain"):
            searches = list(values)
        elif key == "options":
            options.extend(values)
    return DNSConfig(tuple(nameservers), tuple(searches), tuple(options))


def read_resolv_conf(path: Path | None) -> DNSConfig:
    """The node's resolv.conf; empty when there is none (upstream: ``--resolv-conf=""``)."""
    if path is None:
        return DNSConfig()
    try:
        return parse_resolv_conf(path.read_text())
    except OSError:
        return DNSConfig()


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _merge_options(base: list[str], extra: list[dict[str, Any]]) -> tuple[str, ...]:
    """Options by name; a later one replaces an earlier one of the same name."""
    merged: dict[str, str] = {}
    for option in base:
        merged[option.split(":", 1)[0]] = option
    for item in extra:
        name = str(item.get("name") or "")
        if not name:
            continue
        value = item.get("value")
        merged[name] = f"{name}:{value}" if value is not None else name
    return tuple(merged.values())


def _policy(spec: views.PodSpec, cluster_dns: tuple[str, ...]) -> str:
    """The resolv.conf the pod gets: "cluster", "host" or "none"."""
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        kind = "cluster"
    elif policy == "ClusterFirst":
        kind = "host" if spec.get("hostNetwork") else "cluster"
    else:
        kind = "host"
    if kind == "cluster" and not cluster_dns:
        return "host"
    return kind


def _limit(config: DNSConfig) -> DNSConfig:
    warnings = []
    nameservers = config.nameservers
    if len(nameservers) > MAX_NAMESERVERS:
        warnings.append("Nameserver limits were exceeded, some nameservers have been omitted, "
                        f"the applied nameserver line is: {' '.join(nameservers[:3])}")
        nameservers = nameservers[:MAX_NAMESERVERS]
    searches = list(config.searches)
    if len(searches) > MAX_SEARCHES or len(" ".join(searches)) > MAX_SEARCH_CHARS:
        while searches and (len(searches) > MAX_SEARCHES or
                            len(" ".join(searches)) > MAX_SEARCH_CHARS):
            searches.pop()
        warnings.append("Search Line limits were exceeded, some search paths have been "
                        f"omitted, the applied search line is: {' '.join(searches)}")
    return DNSConfig(nameservers, tuple(searches), config.options, tuple(warnings))


def pod_dns_config(pod: dict[str, Any], cluster_dns: tuple[str, ...], cluster_domain: str,
                   host: DNSConfig) -> DNSConfig:
    """What the pod's resolv.conf holds, by its ``dnsPolicy`` and ``dnsConfig``."""
    spec = pod_spec(pod)
    namespace = meta_of(pod).get("namespace") or "default"
    kind = _policy(spec, cluster_dns)
    if kind == "cluster":
        nameservers = list(cluster_dns)
        cluster_searches = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}",
                            cluster_domain] if cluster_domain else []
        searches = cluster_searches + list(host.searches)
        options = list(DEFAULT_OPTIONS)
    elif kind == "host":
        nameservers, searches, options = (list(host.nameservers), list(host.searches),
                                          list(host.options))
    else:
        nameservers, searches, options = [], [], []
    extra = spec.get("dnsConfig") or {}
    nameservers += [str(n) for n in extra.get("nameservers") or []]
    searches += [str(s) for s in extra.get("searches") or []]
    merged = _merge_options(options, [o for o in extra.get("options") or []
                                      if isinstance(o, dict)])
    return _limit(DNSConfig(_unique(nameservers), _unique(searches), merged))


def sandbox_spec(pod: dict[str, Any], cluster_dns: tuple[str, ...], cluster_domain: str,
                 host: DNSConfig) -> tuple[PodSpec, tuple[str, ...]]:
    """The runtime's sandbox config for ``pod`` and the DNS warnings to report. A pod
    with ``subdomain`` gets ``hostname.subdomain.<ns>.svc.<zone>`` in /etc/hosts."""
    meta, spec = meta_of(pod), pod_spec(pod)
    namespace = meta.get("namespace") or "default"
    hostname = spec.get("hostname") or None
    subdomain = spec.get("subdomain")
    fqdn = None
    if subdomain and cluster_domain:
        short = (hostname or str(meta["name"]))[:63].rstrip("-.")
        fqdn = f"{short}.{subdomain}.{namespace}.svc.{cluster_domain}"
    dns = pod_dns_config(pod, cluster_dns, cluster_domain, host)
    return (PodSpec(namespace=namespace, name=str(meta["name"]), uid=str(meta["uid"]),
                    hostname=hostname, fqdn=fqdn, nameservers=dns.nameservers,
                    searches=dns.searches, dns_options=dns.options), dns.warnings)
