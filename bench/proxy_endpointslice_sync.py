#!/usr/bin/env python3
"""A kube-proxy partial sync driven by an EndpointSlice change vs the same change as Endpoints.

Run as root:  .venv/bin/python bench/proxy_endpointslice_sync.py [--runs 9] [--services 1000]

kube-proxy reads EndpointSlices now; before, it read core/v1 Endpoints. This
measures what one change costs the proxy through each input, in the same run,
on the same machine: the model update (``update_endpoint_slice`` or the old
``update_endpoints``), resolving the dirty Service, rendering the partial
ruleset and committing it with libnftables. The old path is kept runnable by
:class:`EndpointsProxier`, a Proxier whose one source hook reads Endpoints
through ``model.resolve`` (the pre-slice code path, still in ``model.py``).

Each input gets its own scratch namespace (``nlb…-s`` and ``nlb…-e``, removed at
the end) holding ``--services`` Services of 10 endpoints plus one Service of
1,000 endpoints (10 slices of 100, or one Endpoints object). Changes alternate
between the two inputs so load spikes hit both:

1. one endpoint of a 10-endpoint Service replaced (a rolling-update step);
2. one endpoint of the 1,000-endpoint Service turning not ready (its slice, or
   the whole Endpoints object, is rewritten).

Printed: median and min per input, and the ratio slices / Endpoints.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Mapping
from typing import Any

from netlab.kernel import netns, nft
from netlab.node.proxy import model
from netlab.node.proxy.model import ServicePort
from netlab.node.proxy.syncer import Key, Proxier

PER_SERVICE = 10
BIG = 1000
SLICE_SIZE = 100


class EndpointsProxier(Proxier):
    """The Endpoints-driven proxy: the same engine, its source hook reading Endpoints."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endpoints: dict[Key, Mapping[str, Any]] = {}

    def update_endpoints(self, endpoints: Mapping[str, Any]) -> None:
        key = model.service_key(endpoints)
        self.endpoints[key] = endpoints
        self._touch(key)

    def _resolve(self, key: Key, service: Mapping[str, Any]) -> list[ServicePort]:
        return model.resolve(service, self.endpoints.get(key))


def ip_of(n: int) -> str:
    return f"10.244.{n // 250 % 250}.{n % 250 + 2}"


def service(i: int) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": f"svc{i}", "namespace": "bench"},
            "spec": {"clusterIP": f"10.96.{i // 250}.{i % 250 + 1}", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}


def as_endpoints(i: int, members: list[tuple[int, bool]]) -> dict[str, Any]:
    def address(n: int) -> dict[str, Any]:
        return {"ip": ip_of(n), "nodeName": f"node{n % 100}",
                "targetRef": {"kind": "Pod", "namespace": "bench", "name": f"pod-{n}"}}
    subset: dict[str, Any] = {
        "addresses": [address(n) for n, ready in members if ready],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    not_ready = [address(n) for n, ready in members if not ready]
    if not_ready:
        subset["notReadyAddresses"] = not_ready
    return {"kind": "Endpoints", "metadata": {"name": f"svc{i}", "namespace": "bench"},
            "subsets": [subset]}


def as_slices(i: int, members: list[tuple[int, bool]]) -> list[dict[str, Any]]:
    out = []
    for start in range(0, len(members), SLICE_SIZE):
        out.append({
            "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"svc{i}-{start // SLICE_SIZE:05d}", "namespace": "bench",
                         "labels": {"kubernetes.io/service-name": f"svc{i}"}},
            "endpoints": [{"addresses": [ip_of(n)], "nodeName": f"node{n % 100}",
                           "conditions": {"ready": ready, "serving": ready,
                                          "terminating": False},
                           "targetRef": {"kind": "Pod", "namespace": "bench",
                                         "name": f"pod-{n}"}}
                          for n, ready in members[start:start + SLICE_SIZE]],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    return out


def make(ns: str, cls: type[Proxier]) -> Proxier:
    return cls(ns, None, "10.244.0.0/16", service_cidr="10.96.0.0/16",
               local_pod_cidr="10.244.1.0/24", min_interval=0.0, gc_delay=1e9,
               gc_inline_objects=0, bridge=None)


def feed(proxier: Proxier, i: int, members: list[tuple[int, bool]]) -> None:
    if isinstance(proxier, EndpointsProxier):
        proxier.update_endpoints(as_endpoints(i, members))
        return
    for slice_ in as_slices(i, members):
        proxier.update_endpoint_slice(slice_)


def changed_slice(i: int, members: list[tuple[int, bool]], at: int) -> dict[str, Any]:
    """The one slice that holds member ``at``: what the slice controller rewrites."""
    return as_slices(i, members)[at // SLICE_SIZE]


def timed_change(proxier: Proxier, i: int, members: list[tuple[int, bool]], at: int) -> float:
    started = time.perf_counter()
    if isinstance(proxier, EndpointsProxier):
        proxier.update_endpoints(as_endpoints(i, members))
    else:
        proxier.update_endpoint_slice(changed_slice(i, members, at))
    result = proxier.sync(force=True)
    elapsed = time.perf_counter() - started
    assert result.ok and result.kind == "partial", result
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--services", type=int, default=1000)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:7]
    spaces = {"slices": f"nlb{tag}-s", "endpoints": f"nlb{tag}-e"}
    proxiers: dict[str, Proxier] = {}
    try:
        for name, ns in spaces.items():
            netns.create_netns(ns)
            proxiers[name] = make(ns, EndpointsProxier if name == "endpoints" else Proxier)
        small = {i: [(i * PER_SERVICE + j, True) for j in range(PER_SERVICE)]
                 for i in range(args.services)}
        big_index = args.services
        big = [(10**6 + j, True) for j in range(BIG)]
        print(f"nft backend: {nft.backend_name()}; {args.services} Services x {PER_SERVICE} "
              f"endpoints + 1 Service x {BIG}; median of {args.runs}\n")
        for name, proxier in proxiers.items():
            for i, members in small.items():
                proxier.update_service(service(i))
                feed(proxier, i, members)
            proxier.update_service(service(big_index))
            feed(proxier, big_index, big)
            result = proxier.sync(force=True)
            assert result.ok and result.kind == "full", result
            print(f"  full sync through {name:<9}: {result.seconds:6.2f} s")
        times: dict[tuple[str, str], list[float]] = {}
        for k in range(args.runs):
            i = (k * 37) % args.services
            members = small[i]
            members[k % PER_SERVICE] = (5 * 10**6 + k, True)  # a new pod replaces one
            at = (k * 101) % BIG
            big[at] = (big[at][0], not big[at][1])  # a pod of the big Service flips
            order = ("slices", "endpoints") if k % 2 == 0 else ("endpoints", "slices")
            for name in order:
                times.setdefault(("replace", name), []).append(
                    timed_change(proxiers[name], i, members, k % PER_SERVICE))
                times.setdefault(("flip", name), []).append(
                    timed_change(proxiers[name], big_index, big, at))
        print()
        labels = {"replace": f"one endpoint replaced in a {PER_SERVICE}-endpoint Service",
                  "flip": f"one endpoint of the {BIG}-endpoint Service not ready"}
        for change, label in labels.items():
            s, e = times[(change, "slices")], times[(change, "endpoints")]
            ms, me = statistics.median(s), statistics.median(e)
            print(f"{label}:")
            for what, m, lo in (("EndpointSlice-driven:", ms, min(s)),
                                ("Endpoints-driven:    ", me, min(e))):
                print(f"  {what} median {m * 1000:7.1f} ms, min {lo * 1000:6.1f} ms")
            print(f"  ratio slices / Endpoints: {ms / me:.2f}")
    finally:
        for proxier in proxiers.values():
            proxier.cleanup()
        for ns in spaces.values():
            if ns in netns.list_netns():
                netns.delete_netns(ns)


if __name__ == "__main__":
    main()
