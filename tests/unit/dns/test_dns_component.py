"""The DNS component's pure parts: the kube-dns objects it publishes, the search-path
expansion ``netlab dns lookup`` shows, and the CoreDNS-named metrics; and that it keeps
trying to publish those objects when the API server drops a connection."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Network

import aiohttp
import dns.asyncquery
import dns.message
import pytest

from netlab.api import validation
from netlab.dns import addon
from netlab.dns.__main__ import publish
from netlab.dns.lookup import candidates, cluster_searches
from netlab.dns.metrics import metrics_text
from netlab.dns.records import ClusterRecords
from netlab.dns.server import start_dns_server

pytestmark = pytest.mark.unit


def test_kube_dns_sits_on_the_tenth_service_address_as_kubeadm_puts_it():
    assert addon.cluster_dns_ip(IPv4Network("10.96.0.0/16")) == "10.96.0.10"
    assert addon.cluster_dns_ip(IPv4Network("172.20.0.0/24")) == "172.20.0.10"


def test_the_published_objects_are_valid_and_point_at_the_component():
    svc = addon.service("10.96.0.10")
    slice_ = addon.endpoint_slice("192.168.100.2", "control-plane")
    eps = addon.endpoints("192.168.100.2", "control-plane")
    for obj in (svc, slice_, eps):
        assert validation.validate(obj["kind"], obj, namespaced=True) == []
        assert obj["metadata"]["namespace"] == "kube-system"
    assert "selector" not in svc["spec"]  # the component publishes its own endpoint
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert slice_["endpoints"][0]["addresses"] == ["192.168.100.2"]
    assert {p["name"]: p["port"] for p in slice_["ports"]} == {"dns": 53, "dns-tcp": 53,
                                                                "metrics": 9153}


def test_search_path_expansion_follows_ndots():
    searches = cluster_searches("team", "cluster.local")
    assert candidates("web", searches) == ["web.team.svc.cluster.local.",
                                           "web.svc.cluster.local.", "web.cluster.local.",
                                           "web."]
    assert candidates("web.team.svc.cluster.local.", searches) == [
        "web.team.svc.cluster.local."]
    assert candidates("a.b.c.d.e.f", searches)[0] == "a.b.c.d.e.f."  # 5 dots: as is, first
    assert candidates("web.other", searches, ndots=1)[0] == "web.other."


def test_metrics_use_coredns_names_and_count_what_was_served():
    records = ClusterRecords()
    records.upsert("Service", {"metadata": {"name": "web", "namespace": "default"},
                               "spec": {"clusterIP": "10.96.3.4", "type": "ClusterIP"}})

    async def serve_three() -> str:
        server = await start_dns_server(records, "127.0.0.1", 0)
        try:
            for name in ("web.default.svc.cluster.local", "web.default.svc.cluster.local",
                         "nope.default.svc.cluster.local"):
                await dns.asyncquery.udp(dns.message.make_query(name, "A"), "127.0.0.1",
                                         port=server.port, timeout=2)
            return metrics_text(server)
        finally:
            server.close()
            await server.wait_closed()

    text = asyncio.run(serve_three())
    assert ('coredns_dns_requests_total{server="dns://:53",zone=".",proto="udp",family="1",'
            'type="A"} 3') in text
    assert 'coredns_dns_responses_total{server="dns://:53",zone=".",rcode="NOERROR"} 2' in text
    assert 'coredns_dns_responses_total{server="dns://:53",zone=".",rcode="NXDOMAIN"} 1' in text
    assert "# TYPE coredns_dns_requests_total counter" in text


class _FlakyClient:
    """An API client whose first apply meets a connection the server closed."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.calls = 0

    async def apply(self, obj: dict, field_manager: str) -> dict:
        self.calls += 1
        if self.calls == 1:
            raise aiohttp.ServerDisconnectedError()
        self.applied.append(obj["kind"])
        return obj


def test_publishing_retries_after_the_api_server_drops_the_connection():
    # A ServerDisconnectedError is an aiohttp.ClientError but not an OSError: it used to
    # end the publishing task silently, leaving the lab without a kube-dns Service (every
    # pod lookup then fails with EAI_AGAIN while the server itself serves on).
    client = _FlakyClient()

    async def run() -> None:
        stop = asyncio.Event()
        await asyncio.wait_for(publish(client, "10.96.0.10", "192.168.100.2",
                                       "control-plane", stop), 10)

    asyncio.run(run())
    assert client.applied == ["Service", "EndpointSlice", "Endpoints"]
