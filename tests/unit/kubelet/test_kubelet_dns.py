"""The pod's resolv.conf by dnsPolicy and dnsConfig, as the kubelet's network/dns
package builds it (cases after upstream's dns_test.go)."""

from __future__ import annotations

import pytest

from netlab.node.kubelet.dns import (
    DNSConfig,
    parse_resolv_conf,
    pod_dns_config,
    sandbox_spec,
)

pytestmark = pytest.mark.unit

HOST = parse_resolv_conf("# the node's\nnameserver 192.168.1.1\nnameserver 192.168.1.2\n"
                         "search corp.example lab.example\noptions timeout:2 rotate\n")
CLUSTER_DNS = ("10.96.0.10",)


def _pod(policy: str | None = None, dns_config: dict | None = None, namespace: str = "team",
         **spec) -> dict:
    if policy:
        spec["dnsPolicy"] = policy
    if dns_config is not None:
        spec["dnsConfig"] = dns_config
    return {"metadata": {"name": "web-0", "namespace": namespace, "uid": "u1"}, "spec": spec}


def test_the_node_resolv_conf_is_read_as_glibc_reads_it():
    assert (HOST.nameservers, HOST.searches, HOST.options) == (
        ("192.168.1.1", "192.168.1.2"), ("corp.example", "lab.example"), ("timeout:2", "rotate"))
    assert parse_resolv_conf("search a\nsearch b c ; old\ndomain d\n").searches == ("d",)


def test_cluster_first_is_the_default_and_appends_the_node_search_domains():
    for policy in (None, "ClusterFirst", "ClusterFirstWithHostNet"):
        got = pod_dns_config(_pod(policy), CLUSTER_DNS, "cluster.local", HOST)
        assert got.nameservers == ("10.96.0.10",)
        assert got.searches == ("team.svc.cluster.local", "svc.cluster.local", "cluster.local",
                                "corp.example", "lab.example")
        assert got.options == ("ndots:5",)


def test_default_is_the_node_resolv_conf_and_host_network_cluster_first_falls_back_to_it():
    assert pod_dns_config(_pod("Default"), CLUSTER_DNS, "cluster.local", HOST) == HOST
    host_net = pod_dns_config(_pod("ClusterFirst", hostNetwork=True), CLUSTER_DNS,
                              "cluster.local", HOST)
    assert host_net == HOST
    with_host_net = pod_dns_config(_pod("ClusterFirstWithHostNet", hostNetwork=True),
                                   CLUSTER_DNS, "cluster.local", HOST)
    assert with_host_net.nameservers == CLUSTER_DNS


def test_without_a_cluster_dns_cluster_first_gets_the_node_resolv_conf():
    assert pod_dns_config(_pod(), (), "cluster.local", HOST) == HOST


def test_none_is_only_the_dns_config():
    got = pod_dns_config(_pod("None", {"nameservers": ["1.2.3.4"], "searches": ["ns1.svc.x"],
                                       "options": [{"name": "ndots", "value": "2"},
                                                   {"name": "edns0"}]}),
                         CLUSTER_DNS, "cluster.local", HOST)
    assert got == DNSConfig(("1.2.3.4",), ("ns1.svc.x",), ("ndots:2", "edns0"))


def test_dns_config_merges_without_duplicates_and_an_option_replaces_its_namesake():
    got = pod_dns_config(_pod("ClusterFirst", {
        "nameservers": ["10.96.0.10", "8.8.8.8"], "searches": ["svc.cluster.local", "extra"],
        "options": [{"name": "ndots", "value": "1"}, {"name": "single-request-reopen"}]}),
        CLUSTER_DNS, "cluster.local", HOST)
    assert got.nameservers == ("10.96.0.10", "8.8.8.8")
    assert got.searches[-1] == "extra" and got.searches.count("svc.cluster.local") == 1
    assert got.options == ("ndots:1", "single-request-reopen")


def test_limits_cut_the_lists_and_say_so():
    got = pod_dns_config(_pod("None", {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3",
                                                       "4.4.4.4"],
                                       "searches": [f"d{i}.example" for i in range(40)]}),
                         CLUSTER_DNS, "cluster.local", HOST)
    assert got.nameservers == ("1.1.1.1", "2.2.2.2", "3.3.3.3")
    assert len(got.searches) == 32
    assert [w.split(" were")[0] for w in got.warnings] == ["Nameserver limits",
                                                          "Search Line limits"]


def test_the_sandbox_spec_carries_hostname_fqdn_and_dns():
    pod = _pod(hostname="db-0", subdomain="db")
    spec, warnings = sandbox_spec(pod, CLUSTER_DNS, "cluster.local", DNSConfig())
    assert (spec.namespace, spec.name, spec.uid, spec.hostname) == ("team", "web-0", "u1",
                                                                    "db-0")
    assert spec.fqdn == "db-0.db.team.svc.cluster.local"
    assert spec.searches == ("team.svc.cluster.local", "svc.cluster.local", "cluster.local")
    assert spec.dns_options == ("ndots:5",) and warnings == ()
    plain, _ = sandbox_spec(_pod(), CLUSTER_DNS, "cluster.local", DNSConfig())
    assert plain.fqdn is None and plain.hostname is None
