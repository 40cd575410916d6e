"""What a trace hands back: the JSON schema, the table, the pcaps, and no scapy at import."""

from __future__ import annotations

import subprocess
import sys

from scapy.utils import rdpcap
from test_trace_correlate import TEXTS, proxy_events, service_frames
from tracekit import tcp_probe, view

from netlab.trace import correlate, report
from netlab.trace.model import Place, TraceResult
from netlab.trace.pcap import write_pcaps
from netlab.trace.verdict import decide

HOP_KEYS = {"path", "hop", "offsetUs", "timestampNs", "node", "pod", "netns", "interface",
            "direction", "point", "source", "packet", "changes", "outer", "rule", "nftrace",
            "pcap"}


def _result() -> TraceResult:
    probe = tcp_probe()
    hops = correlate.correlate(service_frames(), probe, view(), proxy_events(), TEXTS)
    src = Place("pod", "default/a", "10.244.1.2", node="worker1", netns="u1-worker1.a-1")
    dst = Place("service", "default/web", "10.96.0.10", 80, protocol="tcp",
                service="default/web:http")
    return TraceResult("u1", src, dst, probe, hops, decide(hops, probe, src, view()))


def test_the_json_schema_is_stable():
    out = report.to_json(_result())
    assert set(out) == {"apiVersion", "lab", "src", "dst", "probe", "hops", "verdict",
                        "captured", "nftrace", "pcaps", "durationMs", "warnings"}
    assert out["apiVersion"] == "netlab.trace/v1"
    assert set(out["src"]) == {"kind", "name", "ip", "port", "node", "namespace", "service"}
    assert set(out["verdict"]) == {"result", "reason", "lastHop", "node", "netns", "answer",
                                   "answeredBy", "rttUs"}
    for hop in out["hops"]:
        assert set(hop) == HOP_KEYS
    paths = [h["path"] for h in out["hops"]]
    assert paths == sorted(paths, key=lambda p: p != "forward")
    overlay = next(h for h in out["hops"] if h["point"] == "to-overlay")
    assert overlay["outer"] == {"src": "192.168.100.3", "dst": "192.168.100.4",
                                "sport": 51000, "dport": 4789, "vni": 1}
    assert {h["path"] for h in report.to_json(_result(), reply=False)["hops"]} == {"forward"}


def test_the_table_shows_hops_changes_rules_and_the_verdict():
    text = report.to_table(_result())
    assert "forward path:" in text and "reply path:" in text
    assert "DNAT 10.96.0.10:80 → 10.244.2.2:8080" in text
    assert "service default/web:http -> endpoint 10.244.2.2:8080 (pod c on worker2)" in text
    assert "192.168.100.3 → 192.168.100.4 udp/4789 vni 1" in text
    assert text.splitlines()[-1] == ("verdict: delivered: syn-ack from pod default/c on "
                                     "worker2 (round trip 16 µs)")


def test_pcaps_hold_each_interfaces_frames_with_nanosecond_stamps(tmp_path):
    result = _result()
    files = write_pcaps(tmp_path, result.hops)
    by_name = {f["file"]: f for f in files}
    assert by_name["worker1_vxlan0.pcap"]["packets"] == 2  # the probe out, the answer in
    packets = rdpcap(str(tmp_path / "worker1_eth0.pcap"))
    hops = [h for h in result.hops if h.pcap == "worker1_eth0.pcap"]
    assert len(packets) == len(hops) == 2
    assert [bytes(p) for p in packets] == [h.frame for h in hops]
    assert [int(p.time * 10**9) // 1000 for p in packets] == [h.ts_ns // 1000 for h in hops]
    assert (tmp_path / "pod-a_eth0.pcap").exists() and (tmp_path / "network_p-worker1.pcap")\
        .exists()


def test_importing_the_trace_command_does_not_import_scapy():
    code = ("import sys, netlab.cli.trace, netlab.trace.engine, netlab.trace.report, "
            "netlab.trace.correlate; print(any(m.startswith('scapy') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
