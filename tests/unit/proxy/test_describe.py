"""``describe`` on a listing the kernel really printed (data/listed.nft, from nft 1.0.6)."""

from __future__ import annotations

from pathlib import Path

from netlab.node.proxy.describe import describe, summary

LISTED = (Path(__file__).parent / "data" / "listed.nft").read_text()


def test_summary_names_every_service_port_and_its_endpoints():
    text = describe(LISTED)
    summary = text.split("--- the ruleset")[0]
    assert summary.splitlines()[0] == "table ip netlab-proxy: 4 service ports, 5 endpoints"
    assert "default/web:http (tcp)  ClusterIP 10.96.0.10:80  NodePort 30080  " \
           "affinity ClientIP, timeout 3h" in summary
    assert "  #0 -> 10.244.1.2:8080  pod web-a on worker1" in summary
    assert "  #1 -> 10.244.2.3:8080  pod web-b on worker2" in summary
    assert "default/dns (udp)  ClusterIP 10.96.0.53:53\n" \
           "  #0 -> 10.244.1.5:5353  pod dns-a on worker1" in summary
    # Round-robin without affinity: the endpoints come from the DNAT map.
    assert "default/api:https (tcp)  ClusterIP 10.96.0.20:443\n" \
           "  #0 -> 10.244.1.7:8443  pod api-a on worker1\n" \
           "  #1 -> 10.244.2.8:8443  pod api-b on worker2" in summary
    assert "kube-system/empty (tcp)  ClusterIP 10.96.0.99:80  NodePort 30099\n" \
           "  no ready endpoints: new connections are refused" in summary
    assert "awaiting deletion" not in summary


def test_the_same_summary_as_data_for_json():
    ports = {p["service"]: p for p in summary(LISTED)}
    assert sorted(ports) == ["default/api:https", "default/dns", "default/web:http",
                             "kube-system/empty"]
    web = ports["default/web:http"]
    assert (web["protocol"], web["clusterIP"], web["nodePort"], web["refuses"]) == (
        "tcp", "10.96.0.10:80", 30080, False)
    assert web["affinity"] == "ClientIP, timeout 3h"
    assert [(e["index"], e["address"], e["pod"], e["node"]) for e in web["endpoints"]] == [
        (0, "10.244.1.2:8080", "web-a", "worker1"), (1, "10.244.2.3:8080", "web-b", "worker2")]
    assert ports["kube-system/empty"]["refuses"] and not ports["kube-system/empty"]["endpoints"]
    api = ports["default/api:https"]
    assert [(e["address"], e["pod"], e["chain"]) for e in api["endpoints"]] == [
        ("10.244.1.7:8443", "api-a", "dnat-R34YZAL2-default/api/tcp/https"),
        ("10.244.2.8:8443", "api-b", "dnat-R34YZAL2-default/api/tcp/https")]
    assert ports["default/dns"]["endpoints"][0]["chain"] == "service-OIWFLQEX-default/dns/udp/"


def test_every_service_object_of_the_listing_gets_a_label():
    lines = describe(LISTED).split("--- the ruleset, each chain labelled ---\n")[1].splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("\tchain service-", "\tchain endpoint-", "\tchain external-",
                            "\tmap dispatch-", "\tset affinity-", "\tmap dnat-",
                            "\tset hairpin")):
            assert lines[i - 1].startswith("\t# "), f"no label above {line}"
    text = "\n".join(lines)
    assert "\t# default/web:http (tcp): NodePort 30080, masquerade\n\tchain external-" in text
    assert "\t# default/web:http: clients pinned to endpoint #1 10.244.2.3:8080" in text
    assert "\t# default/api:https: round-robin over 2 endpoints\n\tmap dnat-" in text
    assert "\t# default/dns (udp): Service chain, ClusterIP 10.96.0.53:53\n\tchain service-" in text


def test_objects_no_service_reaches_are_reported_as_awaiting_deletion():
    stale = LISTED.replace("\tchain masquerading {",
                           "\tchain endpoint-ABCDEFGH-default/old/tcp/__10.244.1.9/80 {\n"
                           "\t}\n\n\tmap dnat-ABCDEFGH-default/api/tcp/https {\n"
                           "\t\ttypeof numgen inc mod 2 : ip daddr . th dport\n"
                           "\t}\n\n\tchain masquerading {")
    text = describe(stale)
    assert "unused, awaiting deletion: 2 objects (dnat-ABCDEFGH-default/api/tcp/https, " \
           "endpoint-ABCDEFGH-default/old" in text
    assert "\t# unused: emptied by a sync, awaiting deletion\n\tchain endpoint-ABCDEFGH" in text


def test_an_empty_table():
    text = describe("table ip netlab-proxy {\n}\n")
    assert text.startswith("table ip netlab-proxy: 0 service ports, 0 endpoints")
