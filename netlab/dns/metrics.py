"""The DNS component's metrics in Prometheus text format, named as CoreDNS names them
(``coredns_dns_requests_total``, ``coredns_dns_responses_total``, ...), so a
dashboard or a ``curl :9153/metrics`` reads the same as against CoreDNS.

Pure: it renders the counters a ``DNSServer`` keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SERVER = "dns://:53"
ZONE = "."


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]
            ) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
    for labels, value in samples:
        rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{rendered}}} {value:g}")
    return lines


def metrics_text(server: Any) -> str:
    """The exposition text for ``server``'s counters."""
    base = {"server": SERVER, "zone": ZONE}
    lines = _family("coredns_dns_requests_total", "Counter of DNS requests made per zone, "
                    "protocol and family.",
                    [({**base, "proto": proto, "family": "1", "type": qtype}, count)
                     for (proto, qtype), count in sorted(server.requests_total.items())])
    lines += _family("coredns_dns_responses_total", "Counter of response status codes.",
                     [({**base, "rcode": rcode}, count)
                      for rcode, count in sorted(server.responses_total.items())])
    lines += _family("coredns_dns_dropped_total", "Counter of messages given no answer.",
                     [({"reason": reason}, count)
                      for reason, count in sorted(server.dropped_total.items())])
    lines += _family("coredns_forward_requests_total", "Counter of forwarded requests by "
                     "outcome.", [({"outcome": outcome}, count)
                                  for outcome, count in sorted(server.forwards_total.items())])
    lines += _family("coredns_cache_hits_total", "The count of cache hits.",
                     [({"server": SERVER, "type": "success"}, server.cache_hits_total)])
    return "\n".join(lines) + "\n"
