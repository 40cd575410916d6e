"""ClusterRecords: which names the cluster's Services, EndpointSlices and Pods give, with
CoreDNS's rcodes, sections and flags, built from the objects as the API serves them."""

from __future__ import annotations

from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import pytest

from netlab.dns.records import ClusterRecords

pytestmark = pytest.mark.unit

ZONE = "cluster.local"


# --- the objects, as the API serves them ---------------------------------------------------------


def service(name: str = "web", namespace: str = "default", cluster_ip: str = "10.96.0.10",
            ports: tuple = (("http", 80, "TCP"),), **spec: Any) -> dict[str, Any]:
    spec.setdefault("type", "ClusterIP")
    if spec["type"] != "ExternalName":
        spec.setdefault("clusterIP", cluster_ip)
        spec.setdefault("clusterIPs", [cluster_ip])
    spec["ports"] = [{"name": n, "port": p, "protocol": proto, "targetPort": p}
                     for n, p, proto in ports]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
            "spec": spec}


def headless(name: str = "db", namespace: str = "default",
             ports: tuple = (("pg", 5432, "TCP"),)) -> dict[str, Any]:
    return service(name, namespace, "None", ports)


def endpoint(ip: str, ready: bool | None = True, hostname: str = "",
             pod: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [ip], "nodeName": "worker1",
                           "targetRef": {"kind": "Pod", "namespace": "default",
                                         "name": pod or f"pod-{ip.replace('.', '-')}"}}
    if ready is not None:
        out["conditions"] = {"ready": ready, "serving": ready, "terminating": False}
    if hostname:
        out["hostname"] = hostname
    return out


def endpoint_slice(svc: str, endpoints: list[dict], namespace: str = "default",
                   name: str = "", ports: tuple = (("pg", 5432, "TCP"),),
                   address_type: str = "IPv4") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{svc}-abcde", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": svc,
                                    "endpointslice.kubernetes.io/managed-by":
                                        "endpointslice-controller.k8s.io"}},
            "addressType": address_type, "endpoints": endpoints,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}


def pod(name: str, ip: str, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": "netlab/echo"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}


# --- asking ------------------------------------------------------------------------------------


def ask(records: ClusterRecords, name: str, rdtype: str = "A", **kw: Any) -> dns.message.Message:
    response = records.answer(dns.message.make_query(name, rdtype, **kw))
    assert response is not None, f"{name} {rdtype}: no answer (outside the zone)"
    return response


def rrs(section: list) -> list[tuple[str, int, str, str]]:
    """A section as (owner, ttl, type, rdata) tuples, in order."""
    return [(rrset.name.to_text(), rrset.ttl, dns.rdatatype.to_text(rrset.rdtype), rd.to_text())
            for rrset in section for rd in rrset]


def assert_nxdomain(response: dns.message.Message) -> None:
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.answer == []
    assert [t for _, _, t, _ in rrs(response.authority)] == ["SOA"]
    assert response.flags & dns.flags.AA


def assert_nodata(response: dns.message.Message) -> None:
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []
    assert [t for _, _, t, _ in rrs(response.authority)] == ["SOA"]
    assert response.flags & dns.flags.AA


@pytest.fixture
def records() -> ClusterRecords:
    r = ClusterRecords(ZONE)
    r.upsert("Service", service("web", ports=(("http", 80, "TCP"), ("metrics", 9090, "TCP"))))
    r.upsert("Service", service("dns", "kube-system", "10.96.0.53",
                                ports=(("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"))))
    r.upsert("Service", headless("db"))
    r.upsert("EndpointSlice", endpoint_slice("db", [
        endpoint("10.244.1.5", hostname="db-0"),
        endpoint("10.244.2.6", hostname="db-1"),
        endpoint("10.244.2.7", ready=False, hostname="db-2"),  # not ready: no record
    ], name="db-x1"))
    r.upsert("EndpointSlice", endpoint_slice("db", [
        endpoint("10.244.3.8", ready=None),  # readiness unknown counts as ready
    ], name="db-x2"))
    return r


# --- ClusterIP Services ------------------------------------------------------------------------


def test_a_clusterip_service_answers_its_clusterip_authoritatively(records):
    query = dns.message.make_query("web.default.svc.cluster.local", "A")
    response = records.answer(query)
    assert response is not None
    assert rrs(response.answer) == [("web.default.svc.cluster.local.", 30, "A", "10.96.0.10")]
    assert response.rcode() == dns.rcode.NOERROR
    assert response.id == query.id
    assert response.flags & dns.flags.QR and response.flags & dns.flags.AA
    assert response.flags & dns.flags.RD  # copied from the query
    assert not response.flags & dns.flags.RA  # CoreDNS's kubernetes plugin does not recurse
    assert response.authority == [] and response.additional == []
    assert response.question == query.question


def test_names_match_whatever_their_case_and_the_answer_keeps_the_query_s(records):
    response = ask(records, "WeB.DeFault.SVC.Cluster.LOCAL.")
    assert rrs(response.answer) == [("WeB.DeFault.SVC.Cluster.LOCAL.", 30, "A", "10.96.0.10")]


def test_an_existing_name_without_the_asked_type_is_nodata_with_the_soa(records):
    response = ask(records, "web.default.svc.cluster.local", "AAAA")
    assert_nodata(response)
    soa = response.authority[0]
    assert soa.name.to_text() == "cluster.local." and soa.ttl == 30
    assert (soa[0].mname.to_text(), soa[0].rname.to_text()) == \
           ("ns.dns.cluster.local.", "hostmaster.cluster.local.")
    assert (soa[0].refresh, soa[0].retry, soa[0].expire, soa[0].minimum) == (7200, 1800, 86400, 30)
    for rdtype in ("TXT", "MX", "PTR", "SOA", "ANY"):
        assert_nodata(ask(records, "web.default.svc.cluster.local", rdtype))


def test_unknown_names_in_the_zone_are_nxdomain(records):
    for name in ("nope.default.svc.cluster.local",  # no such service
                 "web.other.svc.cluster.local",  # no such namespace
                 "web.cluster.local",  # neither svc nor pod
                 "foo.bar.web.default.svc.cluster.local",  # neither an endpoint nor a port
                 "a.b.c.web.default.svc.cluster.local",  # too deep
                 "_https._tcp.web.default.svc.cluster.local",  # no such port
                 "_http._udp.web.default.svc.cluster.local",  # the port is TCP
                 "db-0.web.default.svc.cluster.local"):  # web has no such endpoint
        assert_nxdomain(ask(records, name))
        assert_nxdomain(ask(records, name, "AAAA"))


def test_the_zone_s_structure_exists_without_addresses(records):
    for name in ("cluster.local", "svc.cluster.local", "pod.cluster.local",
                 "default.svc.cluster.local", "kube-system.svc.cluster.local"):
        assert_nodata(ask(records, name))
    assert_nxdomain(ask(records, "nobody.svc.cluster.local"))  # no object in that namespace


def test_all_clusterips_of_a_service_answer(records):
    records.upsert("Service", service("multi", cluster_ip="10.96.0.20",
                                      clusterIPs=["10.96.0.20", "fd00::20"]))
    assert rrs(ask(records, "multi.default.svc.cluster.local").answer) == [
        ("multi.default.svc.cluster.local.", 30, "A", "10.96.0.20")]
    assert rrs(ask(records, "multi.default.svc.cluster.local", "AAAA").answer) == [
        ("multi.default.svc.cluster.local.", 30, "AAAA", "fd00::20")]


def test_the_ttl_and_the_zone_are_configurable():
    records = ClusterRecords("Corp.Internal.", ttl=5)
    records.upsert("Service", service())
    assert rrs(ask(records, "web.default.svc.corp.internal").answer) == [
        ("web.default.svc.corp.internal.", 5, "A", "10.96.0.10")]
    assert records.answer(dns.message.make_query("web.default.svc.cluster.local", "A")) is None
    soa = ask(records, "x.default.svc.corp.internal").authority[0]
    assert soa.ttl == 5 and soa[0].minimum == 5 and soa.name.to_text() == "corp.internal."


# --- headless Services and endpoints -----------------------------------------------------------


def test_a_headless_service_answers_its_ready_endpoints_from_all_its_slices(records):
    response = ask(records, "db.default.svc.cluster.local")
    assert rrs(response.answer) == [("db.default.svc.cluster.local.", 30, "A", ip)
                                    for ip in ("10.244.1.5", "10.244.2.6", "10.244.3.8")]
    assert response.flags & dns.flags.AA
    assert_nodata(ask(records, "db.default.svc.cluster.local", "AAAA"))


def test_an_address_in_two_slices_or_ports_is_answered_once(records):
    records.upsert("EndpointSlice", endpoint_slice("db", [endpoint("10.244.1.5", hostname="db-0")],
                                                   name="db-x3", ports=(("pg", 5432, "TCP"),
                                                                        ("admin", 8008, "TCP"))))
    answer = rrs(ask(records, "db.default.svc.cluster.local").answer)
    assert [rd for *_, rd in answer] == ["10.244.1.5", "10.244.2.6", "10.244.3.8"]


def test_a_headless_service_without_ready_endpoints_is_nxdomain_as_in_coredns(records):
    records.upsert("Service", headless("empty"))
    assert_nxdomain(ask(records, "empty.default.svc.cluster.local"))
    records.upsert("EndpointSlice", endpoint_slice("empty", [endpoint("10.244.1.9", ready=False)]))
    assert_nxdomain(ask(records, "empty.default.svc.cluster.local"))
    records.upsert("EndpointSlice", endpoint_slice("empty", [endpoint("10.244.1.9")]))
    assert rrs(ask(records, "empty.default.svc.cluster.local").answer) == [
        ("empty.default.svc.cluster.local.", 30, "A", "10.244.1.9")]


def test_a_portless_headless_service_still_answers_a_but_no_srv(records):
    records.upsert("Service", headless("bare", ports=()))
    records.upsert("EndpointSlice", endpoint_slice("bare", [endpoint("10.244.1.20")], ports=()))
    assert rrs(ask(records, "bare.default.svc.cluster.local").answer) == [
        ("bare.default.svc.cluster.local.", 30, "A", "10.244.1.20")]
    assert_nodata(ask(records, "bare.default.svc.cluster.local", "SRV"))


def test_endpoints_are_named_by_hostname_or_dashed_address(records):
    assert rrs(ask(records, "db-0.db.default.svc.cluster.local").answer) == [
        ("db-0.db.default.svc.cluster.local.", 30, "A", "10.244.1.5")]
    assert rrs(ask(records, "10-244-3-8.db.default.svc.cluster.local").answer) == [
        ("10-244-3-8.db.default.svc.cluster.local.", 30, "A", "10.244.3.8")]
    assert_nxdomain(ask(records, "db-2.db.default.svc.cluster.local"))  # not ready
    assert_nxdomain(ask(records, "db-9.db.default.svc.cluster.local"))
    # The dashed name is the fallback only: an endpoint with a hostname has just that.
    assert_nxdomain(ask(records, "10-244-1-5.db.default.svc.cluster.local"))


def test_a_pod_with_hostname_and_subdomain_is_named_under_its_headless_service():
    # What the EndpointSlice controller writes for a pod with hostname "box" and
    # subdomain "sub" (a headless Service of that name selecting it).
    records = ClusterRecords()
    records.upsert("Service", headless("sub", ports=(("http", 80, "TCP"),)))
    records.upsert("EndpointSlice", endpoint_slice("sub", [endpoint("10.244.1.30", hostname="box")],
                                                   ports=(("http", 80, "TCP"),)))
    assert rrs(ask(records, "box.sub.default.svc.cluster.local").answer) == [
        ("box.sub.default.svc.cluster.local.", 30, "A", "10.244.1.30")]


def test_endpoints_of_a_clusterip_service_have_names_too_as_in_coredns(records):
    records.upsert("EndpointSlice", endpoint_slice("web", [endpoint("10.244.1.40")],
                                                   ports=(("http", 8080, "TCP"),)))
    assert rrs(ask(records, "10-244-1-40.web.default.svc.cluster.local").answer) == [
        ("10-244-1-40.web.default.svc.cluster.local.", 30, "A", "10.244.1.40")]
    assert rrs(ask(records, "web.default.svc.cluster.local").answer) == [
        ("web.default.svc.cluster.local.", 30, "A", "10.96.0.10")]  # still the ClusterIP


def test_ipv6_slices_give_aaaa_records():
    records = ClusterRecords()
    records.upsert("Service", headless("v6"))
    records.upsert("EndpointSlice", endpoint_slice("v6", [endpoint("fd00:10:244::5")],
                                                   address_type="IPv6"))
    records.upsert("EndpointSlice", endpoint_slice("v6", [endpoint("db.example")], name="v6-fqdn",
                                                   address_type="FQDN"))
    assert rrs(ask(records, "v6.default.svc.cluster.local", "AAAA").answer) == [
        ("v6.default.svc.cluster.local.", 30, "AAAA", "fd00:10:244::5")]
    assert rrs(ask(records, "fd00-10-244--5.v6.default.svc.cluster.local", "AAAA").answer) == [
        ("fd00-10-244--5.v6.default.svc.cluster.local.", 30, "AAAA", "fd00:10:244::5")]
    assert_nodata(ask(records, "v6.default.svc.cluster.local", "A"))


# --- SRV -----------------------------------------------------------------------------------------


def test_srv_of_a_clusterip_port_points_at_the_service(records):
    response = ask(records, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert rrs(response.answer) == [("_http._tcp.web.default.svc.cluster.local.", 30, "SRV",
                                     "0 100 80 web.default.svc.cluster.local.")]
    assert rrs(response.additional) == [("web.default.svc.cluster.local.", 30, "A", "10.96.0.10")]
    assert response.flags & dns.flags.AA
    dns_srv = ask(records, "_DNS._UDP.dns.kube-system.svc.cluster.local", "SRV")
    assert [rd for *_, rd in rrs(dns_srv.answer)] == ["0 100 53 dns.kube-system.svc.cluster.local."]
    # An A query on the SRV name answers the ClusterIP, as CoreDNS does.
    assert [rd for *_, rd in rrs(ask(records, "_http._tcp.web.default.svc.cluster.local").answer)] \
        == ["10.96.0.10"]


def test_srv_of_the_service_name_lists_every_port_weighted_evenly(records):
    response = ask(records, "web.default.svc.cluster.local", "SRV")
    assert [rd for *_, rd in rrs(response.answer)] == [
        "0 50 80 web.default.svc.cluster.local.", "0 50 9090 web.default.svc.cluster.local."]
    assert rrs(response.additional) == [("web.default.svc.cluster.local.", 30, "A", "10.96.0.10")]
    metrics = ask(records, "_metrics._tcp.web.default.svc.cluster.local", "SRV")
    assert [rd for *_, rd in rrs(metrics.answer)] == ["0 100 9090 web.default.svc.cluster.local."]


def test_srv_of_a_headless_port_names_each_ready_endpoint_with_its_slice_port():
    records = ClusterRecords()
    records.upsert("Service", headless("web", ports=(("http", 80, "TCP"),)))
    records.upsert("EndpointSlice", endpoint_slice("web", [
        endpoint("10.244.1.5", hostname="web-0"), endpoint("10.244.2.6"),
        endpoint("10.244.2.7", ready=False)], ports=(("http", 8080, "TCP"),)))
    response = ask(records, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert rrs(response.answer) == [
        ("_http._tcp.web.default.svc.cluster.local.", 30, "SRV",
         "0 50 8080 web-0.web.default.svc.cluster.local."),
        ("_http._tcp.web.default.svc.cluster.local.", 30, "SRV",
         "0 50 8080 10-244-2-6.web.default.svc.cluster.local.")]
    assert rrs(response.additional) == [
        ("web-0.web.default.svc.cluster.local.", 30, "A", "10.244.1.5"),
        ("10-244-2-6.web.default.svc.cluster.local.", 30, "A", "10.244.2.6")]
    assert_nxdomain(ask(records, "_grpc._tcp.web.default.svc.cluster.local", "SRV"))


def test_srv_weights_are_coredns_s_integer_share_of_100():
    records = ClusterRecords()
    records.upsert("Service", headless("many", ports=(("http", 80, "TCP"),)))
    records.upsert("EndpointSlice", endpoint_slice("many", [
        endpoint(f"10.244.0.{i}") for i in range(1, 7)], ports=(("http", 80, "TCP"),)))
    answer = ask(records, "_http._tcp.many.default.svc.cluster.local", "SRV").answer
    assert {rd.weight for rd in answer[0]} == {16}  # floor(100 / 6)
    assert len(answer[0]) == 6


# --- PTR -----------------------------------------------------------------------------------------


def test_ptr_of_a_clusterip_names_the_service(records):
    response = ask(records, dns.reversename.from_address("10.96.0.10"), "PTR")
    assert rrs(response.answer) == [("10.0.96.10.in-addr.arpa.", 30, "PTR",
                                     "web.default.svc.cluster.local.")]
    assert response.flags & dns.flags.AA and response.rcode() == dns.rcode.NOERROR


def test_ptr_of_an_endpoint_names_it_by_hostname_or_dashed_address(records):
    assert [rd for *_, rd in rrs(ask(records, "5.1.244.10.in-addr.arpa.", "PTR").answer)] == \
        ["db-0.db.default.svc.cluster.local."]
    assert [rd for *_, rd in rrs(ask(records, "8.3.244.10.IN-ADDR.ARPA.", "PTR").answer)] == \
        ["10-244-3-8.db.default.svc.cluster.local."]


def test_an_address_behind_two_services_has_a_ptr_for_each(records):
    records.upsert("Service", headless("db-read"))
    records.upsert("EndpointSlice", endpoint_slice("db-read", [endpoint("10.244.1.5")]))
    assert sorted(rd for *_, rd in rrs(ask(records, "5.1.244.10.in-addr.arpa.", "PTR").answer)) \
        == ["10-244-1-5.db-read.default.svc.cluster.local.", "db-0.db.default.svc.cluster.local."]


def test_reverse_names_not_ours_are_left_to_the_caller(records):
    for name in ("7.2.244.10.in-addr.arpa.",  # an endpoint that is not ready
                 "99.99.99.10.in-addr.arpa.",  # unknown
                 "10.in-addr.arpa.", "1.2.3.4.5.in-addr.arpa.", "in-addr.arpa.",  # not addresses
                 "x.0.96.10.in-addr.arpa.",
                 dns.reversename.from_address("fd00::1").to_text()):
        assert records.answer(dns.message.make_query(name, "PTR")) is None, name
    # A known address asked for another type: CoreDNS falls through too.
    assert records.answer(dns.message.make_query("10.0.96.10.in-addr.arpa.", "A")) is None


def test_a_slice_of_a_deleted_service_gives_no_ptr(records):
    records.delete("Service", headless("db"))
    assert records.answer(dns.message.make_query("5.1.244.10.in-addr.arpa.", "PTR")) is None


# --- pods ----------------------------------------------------------------------------------------


def test_a_dashed_pod_address_answers_itself_pod_or_not(records):
    response = ask(records, "10-244-1-5.default.pod.cluster.local")
    assert rrs(response.answer) == [
        ("10-244-1-5.default.pod.cluster.local.", 30, "A", "10.244.1.5")]
    assert response.flags & dns.flags.AA
    # pods insecure: no pod needs to exist, in any namespace.
    assert rrs(ask(records, "172-16-0-1.elsewhere.pod.cluster.local").answer)[0][3] == "172.16.0.1"
    assert_nodata(ask(records, "10-244-1-5.default.pod.cluster.local", "AAAA"))
    assert rrs(ask(records, "fd00--1.default.pod.cluster.local", "AAAA").answer)[0][3] == "fd00::1"


def test_malformed_pod_names_are_nxdomain(records):
    for label in ("10-244-1-500", "10-244-1", "a-b-c-d", "010-0-0-1", "10-244-1-5-6", "web"):
        assert_nxdomain(ask(records, f"{label}.default.pod.cluster.local"))
    assert_nxdomain(ask(records, "x.10-244-1-5.default.pod.cluster.local"))


def test_pods_make_their_namespace_exist(records):
    assert_nxdomain(ask(records, "team.pod.cluster.local"))
    records.upsert("Pod", pod("client", "10.244.1.77", "team"))
    assert_nodata(ask(records, "team.pod.cluster.local"))
    assert_nodata(ask(records, "team.svc.cluster.local"))
    records.delete("Pod", pod("client", "10.244.1.77", "team"))
    assert_nxdomain(ask(records, "team.svc.cluster.local"))


# --- ExternalName --------------------------------------------------------------------------------


def test_an_externalname_service_is_a_cname_not_chased_outside_the_zone(records):
    records.upsert("Service", service("ext", type="ExternalName", externalName="Api.Example.COM"))
    for rdtype in ("A", "AAAA", "CNAME"):
        response = ask(records, "ext.default.svc.cluster.local", rdtype)
        assert rrs(response.answer) == [("ext.default.svc.cluster.local.", 30, "CNAME",
                                         "api.example.com.")], rdtype
        assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AA
    assert_nodata(ask(records, "ext.default.svc.cluster.local", "SRV"))
    assert_nxdomain(ask(records, "_http._tcp.ext.default.svc.cluster.local", "SRV"))
    assert_nxdomain(ask(records, "sub.ext.default.svc.cluster.local", "CNAME"))
    assert_nodata(ask(records, "web.default.svc.cluster.local", "CNAME"))


def test_an_externalname_inside_the_zone_is_followed(records):
    records.upsert("Service", service("alias", type="ExternalName",
                                      externalName="web.default.svc.cluster.local"))
    assert rrs(ask(records, "alias.default.svc.cluster.local").answer) == [
        ("alias.default.svc.cluster.local.", 30, "CNAME", "web.default.svc.cluster.local."),
        ("web.default.svc.cluster.local.", 30, "A", "10.96.0.10")]


def test_an_externalname_loop_ends(records):
    records.upsert("Service", service("a", type="ExternalName",
                                      externalName="b.default.svc.cluster.local"))
    records.upsert("Service", service("b", type="ExternalName",
                                      externalName="a.default.svc.cluster.local"))
    # Following b's CNAME back to a would loop: the chain stops before it.
    assert rrs(ask(records, "a.default.svc.cluster.local").answer) == [
        ("a.default.svc.cluster.local.", 30, "CNAME", "b.default.svc.cluster.local.")]


def test_an_externalname_that_is_an_address_or_invalid_has_no_record(records):
    records.upsert("Service", service("ip", type="ExternalName", externalName="192.0.2.1"))
    records.upsert("Service", service("bad", type="ExternalName", externalName="a" * 70 + ".com"))
    assert_nxdomain(ask(records, "ip.default.svc.cluster.local"))
    assert_nxdomain(ask(records, "bad.default.svc.cluster.local"))


# --- the apex and special names ------------------------------------------------------------------


def test_dns_version_is_the_schema_version(records):
    response = ask(records, "dns-version.cluster.local", "TXT")
    assert rrs(response.answer) == [("dns-version.cluster.local.", 28800, "TXT", '"1.1.0"')]
    assert_nodata(ask(records, "dns-version.cluster.local", "A"))


def test_the_apex_has_an_soa_and_ns_records_pointing_at_the_dns_service():
    records = ClusterRecords(ns_ips=["10.244.0.3"])
    records.upsert("Service", service("kube-dns", "kube-system", "10.96.0.10",
                                      ports=(("dns", 53, "UDP"),)))
    records.upsert("EndpointSlice", endpoint_slice("kube-dns", [endpoint("10.244.0.3")],
                                                   namespace="kube-system",
                                                   ports=(("dns", 53, "UDP"),)))
    soa = ask(records, "cluster.local", "SOA")
    assert [(o, t) for o, _, t, _ in rrs(soa.answer)] == [("cluster.local.", "SOA")]
    assert soa.authority == []
    ns = ask(records, "cluster.local", "NS")
    kube_dns = "kube-dns.kube-system.svc.cluster.local."
    assert rrs(ns.answer) == [("cluster.local.", 30, "NS", kube_dns)]
    assert rrs(ns.additional) == [(kube_dns, 30, "A", "10.96.0.10")]
    # Without a Service in front, the NS is ns.dns.<zone>, which resolves to our address.
    bare = ClusterRecords(ns_ips=["10.244.0.3"])
    assert rrs(ask(bare, "cluster.local", "NS").answer) == [
        ("cluster.local.", 30, "NS", "ns.dns.cluster.local.")]
    assert rrs(ask(bare, "ns.dns.cluster.local").answer) == [
        ("ns.dns.cluster.local.", 30, "A", "10.244.0.3")]
    assert_nodata(ask(ClusterRecords(), "cluster.local", "NS"))


def test_zone_transfers_are_refused(records):
    for rdtype in ("AXFR", "IXFR"):
        response = ask(records, "cluster.local", rdtype)
        assert response.rcode() == dns.rcode.REFUSED and not response.flags & dns.flags.AA


# --- the query itself ----------------------------------------------------------------------------


def test_names_outside_the_zone_are_left_to_the_caller(records):
    for name in ("example.com", "local", "cluster.local.example.com", "xcluster.local"):
        assert records.answer(dns.message.make_query(name, "A")) is None


def test_only_class_in_is_answered(records):
    for name in ("web.default.svc.cluster.local", "version.bind"):
        response = ask(records, name, "TXT", rdclass=dns.rdataclass.CH)
        assert response.rcode() == dns.rcode.REFUSED and response.answer == []


def test_opcodes_other_than_query_are_not_implemented(records):
    query = dns.message.make_query("web.default.svc.cluster.local", "A")
    query.set_opcode(dns.opcode.STATUS)
    response = records.answer(query)
    assert response is not None and response.rcode() == dns.rcode.NOTIMP
    assert response.opcode() == dns.opcode.STATUS


def test_a_query_without_exactly_one_question_is_formerr(records):
    empty = dns.message.Message()
    assert records.answer(empty).rcode() == dns.rcode.FORMERR
    two = dns.message.make_query("web.default.svc.cluster.local", "A")
    two.question.append(dns.message.make_query("db.default.svc.cluster.local", "A").question[0])
    assert records.answer(two).rcode() == dns.rcode.FORMERR


def test_edns_is_answered_with_edns_and_flags_are_kept(records):
    query = dns.message.make_query("web.default.svc.cluster.local", "A", use_edns=0, payload=4096)
    query.flags = dns.flags.CD  # no RD, CD set
    response = records.answer(query)
    assert response is not None and response.edns == 0
    assert not response.flags & dns.flags.RD and response.flags & dns.flags.CD
    plain = ask(records, "web.default.svc.cluster.local")
    assert plain.edns == -1
    future = dns.message.make_query("web.default.svc.cluster.local", "A", use_edns=1)
    assert records.answer(future).rcode() == dns.rcode.BADVERS


def test_unknown_types_are_nodata_or_nxdomain(records):
    assert_nodata(ask(records, "web.default.svc.cluster.local", "TYPE65280"))
    assert_nxdomain(ask(records, "nope.default.svc.cluster.local", "TYPE65280"))


# --- keeping up with the API ---------------------------------------------------------------------


def test_an_update_moves_the_name_and_its_ptr(records):
    records.upsert("Service", service("web", cluster_ip="10.96.0.11"))
    assert rrs(ask(records, "web.default.svc.cluster.local").answer)[0][3] == "10.96.0.11"
    assert records.answer(dns.message.make_query("10.0.96.10.in-addr.arpa.", "PTR")) is None
    assert rrs(ask(records, "11.0.96.10.in-addr.arpa.", "PTR").answer)[0][3] == \
        "web.default.svc.cluster.local."


def test_a_slice_update_replaces_its_endpoints(records):
    records.upsert("EndpointSlice", endpoint_slice("db", [endpoint("10.244.1.5", ready=False)],
                                                   name="db-x1"))
    assert [rd for *_, rd in rrs(ask(records, "db.default.svc.cluster.local").answer)] == \
        ["10.244.3.8"]
    assert records.answer(dns.message.make_query("6.2.244.10.in-addr.arpa.", "PTR")) is None


def test_deletes_remove_names(records):
    records.delete("EndpointSlice", {"metadata": {"name": "db-x1", "namespace": "default"}})
    records.delete("EndpointSlice", {"metadata": {"name": "db-x2", "namespace": "default"}})
    assert_nxdomain(ask(records, "db.default.svc.cluster.local"))
    records.delete("Service", service("web"))
    assert_nxdomain(ask(records, "web.default.svc.cluster.local"))
    records.delete("Service", service("never-there"))  # deleting the unknown is harmless


def test_replace_is_a_relist_that_drops_what_is_gone(records):
    before = records.serial
    records.replace("Service", [service("api", cluster_ip="10.96.0.30"), headless("db")])
    assert_nxdomain(ask(records, "web.default.svc.cluster.local"))
    assert_nxdomain(ask(records, "dns.kube-system.svc.cluster.local"))
    assert_nxdomain(ask(records, "kube-system.svc.cluster.local"))  # nothing left there
    assert rrs(ask(records, "api.default.svc.cluster.local").answer)[0][3] == "10.96.0.30"
    assert len(ask(records, "db.default.svc.cluster.local").answer[0]) == 3
    assert records.serial > before  # the SOA serial moves with every change
    records.replace("EndpointSlice", [])
    assert_nxdomain(ask(records, "db.default.svc.cluster.local"))


def test_bad_input_is_ignored_or_rejected(records):
    records.upsert("Service", {"metadata": {"name": "noname-space"}})
    records.upsert("Service", {"spec": {}})
    records.upsert("Service", {"metadata": {"name": "odd", "namespace": "default"},
                               "spec": {"clusterIP": "not-an-ip", "ports": [{"port": 99999}]}})
    assert_nxdomain(ask(records, "odd.default.svc.cluster.local"))
    records.upsert("EndpointSlice", {"metadata": {"name": "s", "namespace": "default"},
                                     "addressType": "IPv4",
                                     "endpoints": [{"addresses": ["bogus", "10.0.0.1%eth0"]}, 7]})
    with pytest.raises(ValueError):
        records.upsert("Endpoints", service())
    assert rrs(ask(records, "web.default.svc.cluster.local").answer)[0][3] == "10.96.0.10"


def test_a_large_cluster_is_indexed():
    """5,000 Services and their slices: lookups do not walk them all."""
    records = ClusterRecords()
    for i in range(5000):
        name = f"svc{i}"
        records.upsert("Service", headless(name) if i % 2 else
                       service(name, cluster_ip=f"10.96.{i // 250}.{i % 250 + 1}"))
        records.upsert("EndpointSlice", endpoint_slice(name, [
            endpoint(f"10.{100 + i // 5000}.{i // 250}.{i % 250 + 1}")]))
    assert rrs(ask(records, "svc4999.default.svc.cluster.local").answer)[0][3] == "10.100.19.250"
    assert rrs(ask(records, "svc4998.default.svc.cluster.local").answer)[0][3] == "10.96.19.249"
    assert rrs(ask(records, "250.19.100.10.in-addr.arpa.", "PTR").answer)[0][3] == \
        "10-100-19-250.svc4999.default.svc.cluster.local."
    # An index walk per query would make this take minutes; with the indexes it is milliseconds.
    for i in range(0, 5000, 7):
        assert ask(records, f"svc{i}.default.svc.cluster.local").rcode() == dns.rcode.NOERROR
