"""Cluster DNS: CoreDNS's ``kubernetes`` plugin, restated for netlab.

``records.py`` holds the Services, EndpointSlices and Pods and answers a parsed
query (pure); ``server.py`` serves it over UDP and TCP, forwarding the names
outside the zone to an upstream or refusing them. The component that feeds the
records from the API server's watches is ``__main__.py``.
"""

from __future__ import annotations

from netlab.dns.records import ClusterRecords
from netlab.dns.server import DNSServer, start_dns_server

__all__ = ["ClusterRecords", "DNSServer", "start_dns_server"]
