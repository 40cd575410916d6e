"""``netlab trace -o json`` on real labs: every hop the issue lists, seen in the JSON.

A network-only lab (the demo's nodes) with pods made by the container runtime
(no kubelet needed: a sandbox's kernel answers pings and SYNs), a listener in
pod ``c``, and kube-proxy's library programmed in every cluster node for the
Service cases (the proxy component itself is not needed to hold a table).
Names resolve through the runtime's records and the proxy's table. Every
test runs the real command, in-process, and reads its JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from labkit import topology, unique_lab, write_topology

from netlab.cli.trace import trace as trace_command
from netlab.kernel import netns
from netlab.lab import lifecycle
from netlab.node.proxy.syncer import Proxier
from netlab.node.runtime import PodSpec, Runtime
from netlab.topology import LabPlan, load_topology, plan_lab
from netlab.trace.engine import run_trace

POD_CIDR, SERVICE_CIDR = "10.244.0.0/16", "10.96.0.0/16"
CLUSTER = ("control-plane", "worker1", "worker2")
PODS = {"a": "worker1", "b": "worker1", "c": "worker2"}


class TraceLab:
    def __init__(self, name: str, plan: LabPlan):
        self.name, self.plan = name, plan
        self.pods: dict[str, Any] = {}

    def ip(self, node: str) -> str:
        return str(self.plan.node(node).underlay.ip)

    def trace(self, *args: str) -> dict[str, Any]:
        result = CliRunner().invoke(trace_command, ["--lab", self.name, *args, "-o", "json",
                                                    "--timeout", "1.5"])
        assert result.exit_code in (0, 1), result.output
        return json.loads(result.stdout)


def _make_pods(lab: str, plan: LabPlan) -> dict[str, Any]:
    return {pod: Runtime(lab, plan.node(node)).run_pod_sandbox(
        PodSpec("default", pod, f"uid-{pod}-{lab}")) for pod, node in PODS.items()}


def _service(name: str, ip: str, node_port: int | None = None) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    if node_port:
        port["nodePort"] = node_port
    return {"kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "NodePort" if node_port else "ClusterIP", "clusterIP": ip,
                     "ports": [port]}}


def _endpoints(name: str, pods: list[Any]) -> dict[str, Any]:
    """The Service's EndpointSlice, the proxy's source, with ``pods`` ready."""
    endpoints = [{"addresses": [p.ip], "nodeName": p.node, "conditions": {"ready": True},
                  "targetRef": {"kind": "Pod", "namespace": "default", "name": p.name}}
                 for p in pods]
    return {"kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{name}-abcde", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def _trace_tables(lab: TraceLab) -> list[str]:
    """The trace tables left in any node (through the nft command: no socket kept here)."""
    found = []
    for node in lab.plan.nodes:
        listing = subprocess.run(["ip", "netns", "exec", node.netns, "nft", "list", "tables"],
                                 capture_output=True, text=True, check=True).stdout
        found += [line for line in listing.splitlines() if "netlab-trace-" in line]
    return found


def _open_sockets() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:"):
                out.add(target)
    return out


@pytest.fixture(scope="module")
def trace_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraceLab]:
    name = unique_lab()
    path = write_topology(Path(tmp_path_factory.mktemp("trace")), topology(name))
    proxiers: list[Proxier] = []
    listeners: list[socket.socket] = []
    try:
        lifecycle.up(path, control_plane=False)
        lab = TraceLab(name, plan_lab(load_topology(path)))
        lab.pods = _make_pods(name, lab.plan)

        def listen() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("0.0.0.0", 8080))
            sock.listen(16)  # the kernel answers SYNs; nobody needs to accept
            return sock

        listeners += [netns.run_in_netns(lab.pods[p].netns, listen) for p in ("b", "c")]
        objects = [_service("web", "10.96.0.10", node_port=30080),
                   _endpoints("web", [lab.pods["c"]]),
                   _service("empty", "10.96.0.11"), _endpoints("empty", []),
                   _service("pair", "10.96.0.12"),
                   _endpoints("pair", [lab.pods["b"], lab.pods["c"]])]
        for node in CLUSTER:
            plan = lab.plan.node(node)
            proxier = Proxier(plan.netns, None, POD_CIDR, service_cidr=SERVICE_CIDR,
                              local_pod_cidr=str(plan.pod_subnet), min_interval=0.0)
            proxiers.append(proxier)
            for obj in objects:
                (proxier.update_service if obj["kind"] == "Service"
                 else proxier.update_endpoint_slice)(obj)
            assert proxier.sync(force=True).ok
        yield lab
    finally:
        for listener in listeners:
            listener.close()
        for proxier in proxiers:
            proxier.cleanup()
        lifecycle.down(name)


def _points(out: dict[str, Any], path: str = "forward") -> list[tuple[str | None, str, str]]:
    return [(h["node"], h["interface"], h["point"]) for h in out["hops"] if h["path"] == path]


def test_pod_to_pod_on_one_node_goes_veth_cni0_veth(trace_lab: TraceLab):
    a, b = trace_lab.pods["a"], trace_lab.pods["b"]
    out = trace_lab.trace("a", "b")
    assert _points(out) == [("worker1", "eth0", "sent"), ("worker1", a.veth, "from-pod"),
                            ("worker1", "cni0", "bridged"), ("worker1", b.veth, "to-pod"),
                            ("worker1", "eth0", "received")]
    assert [h["pod"] for h in out["hops"] if h["point"] in ("sent", "received")][:2] == \
        ["default/a", "default/b"]
    assert out["verdict"]["result"] == "delivered" and out["verdict"]["answer"] == "echo-reply"
    assert [p for _, _, p in _points(out, "reply")] == \
        ["sent", "from-pod", "bridged", "to-pod", "received"]


def test_pod_to_pod_across_nodes_crosses_the_overlay(trace_lab: TraceLab):
    out = trace_lab.trace("a", "c", "--port", "8080")
    fwd = [h for h in out["hops"] if h["path"] == "forward"]
    points = [h["point"] for h in fwd]
    overlay = fwd[points.index("to-overlay")]
    assert overlay["node"] == "worker1" and overlay["interface"] == "vxlan0"
    assert overlay["outer"] == {"src": trace_lab.ip("worker1"), "dst": trace_lab.ip("worker2"),
                                "sport": overlay["outer"]["sport"], "dport": 4789, "vni": 1}
    assert points.index("to-overlay") < points.index("from-overlay") < points.index("to-pod")
    assert fwd[points.index("from-overlay")]["node"] == "worker2"
    assert fwd[points.index("to-pod")]["node"] == "worker2"
    wire = [(h["interface"], h["direction"]) for h in fwd if h["point"] == "underlay"]
    assert wire == [("p-worker1", "ingress"), ("p-worker2", "egress")]
    assert out["verdict"]["result"] == "delivered" and out["verdict"]["answer"] == "syn-ack"


def test_node_to_node_is_plain_underlay(trace_lab: TraceLab):
    out = trace_lab.trace("worker1", "worker2")
    assert _points(out) == [("worker1", "eth0", "to-network"), (None, "p-worker1", "underlay"),
                            (None, "p-worker2", "underlay"), ("worker2", "eth0", "from-network")]
    assert out["verdict"]["result"] == "delivered"


def test_pod_to_cluster_ip_is_dnated_to_an_endpoint_and_translated_back(trace_lab: TraceLab):
    c = trace_lab.pods["c"]
    out = trace_lab.trace("a", "svc/web")
    assert out["dst"]["service"] == "default/web:http"
    dnat = [(h, ch) for h in out["hops"] if h["path"] == "forward" for ch in h["changes"]
            if ch["kind"] == "dnat"]
    assert len(dnat) == 1
    hop, change = dnat[0]
    assert (change["from"], change["to"]) == ("10.96.0.10:80", f"{c.ip}:8080")
    assert hop["node"] == "worker1"
    assert hop["rule"]["service"] == "default/web:http"
    assert hop["rule"]["endpoint"] == f"{c.ip}:8080" and hop["rule"]["action"] == "dnat"
    assert "service default/web:http" in hop["rule"]["label"]
    undnat = [ch for h in out["hops"] if h["path"] == "reply" for ch in h["changes"]
              if ch["kind"] == "un-dnat"]
    assert [(ch["from"], ch["to"]) for ch in undnat] == [(f"{c.ip}:8080", "10.96.0.10:80")]
    last = [h for h in out["hops"] if h["path"] == "reply"][-1]
    assert (last["pod"], last["packet"]["src"]) == ("default/a", "10.96.0.10")
    assert out["verdict"]["result"] == "delivered"


def test_a_round_robin_pick_is_named_after_the_endpoint_the_packet_went_to(trace_lab: TraceLab):
    """Two endpoints: the proxy DNATs through a map, whose pick the nft trace does not
    report; the rule still names the endpoint (and its pod) the packet went to."""
    b, c = trace_lab.pods["b"], trace_lab.pods["c"]
    seen = set()
    for _ in range(2):  # numgen inc alternates: both endpoints, one per trace
        out = trace_lab.trace("a", "svc/pair")
        [(hop, change)] = [(h, ch) for h in out["hops"] if h["path"] == "forward"
                           for ch in h["changes"] if ch["kind"] == "dnat"]
        rule = hop["rule"]
        assert rule["action"] == "dnat" and rule["service"] == "default/pair:http"
        assert rule["endpoint"] == change["to"], (rule, change)
        assert "map @dnat-" in rule["text"]
        pod = {f"{b.ip}:8080": "b on worker1", f"{c.ip}:8080": "c on worker2"}[change["to"]]
        assert rule["pod"] == pod and f"(pod {pod})" in rule["label"]
        seen.add(change["to"])
        assert out["verdict"]["result"] == "delivered"
    assert seen == {f"{b.ip}:8080", f"{c.ip}:8080"}


def test_external_to_nodeport_is_masqueraded(trace_lab: TraceLab):
    out = trace_lab.trace("client", "node/worker1:30080")
    fwd = [h for h in out["hops"] if h["path"] == "forward"]
    snat = [ch for h in fwd for ch in h["changes"] if ch["kind"] == "snat"]
    assert len(snat) == 1 and snat[0]["from"].startswith(trace_lab.ip("client") + ":")
    ruled = [h["rule"] for h in fwd if h["rule"]]
    assert ruled and ruled[0]["masquerade"] and ruled[0]["nodePort"]
    assert ruled[0]["service"] == "default/web:http"
    assert fwd[-1]["pod"] == "default/c" and fwd[-1]["packet"]["src"] != trace_lab.ip("client")
    assert out["verdict"]["result"] == "delivered"


def test_a_service_without_endpoints_is_rejected_at_the_first_node(trace_lab: TraceLab):
    out = trace_lab.trace("a", "svc/empty")
    verdict = out["verdict"]
    assert (verdict["result"], verdict["answeredBy"], verdict["node"]) == \
        ("answered", "rule", "worker1")
    assert verdict["answer"] == "tcp-rst"
    assert verdict["reason"].startswith("rejected: service default/empty:http has no endpoints")
    assert {h["node"] for h in out["hops"]} == {"worker1"}


def test_pcaps_open_with_rdpcap_and_match_the_hops(trace_lab: TraceLab, tmp_path: Path):
    from scapy.layers.inet import IP
    from scapy.layers.vxlan import VXLAN  # binds UDP 4789, so the inner packet is decoded
    from scapy.utils import rdpcap

    out = trace_lab.trace("a", "svc/web", "--pcap", str(tmp_path))
    assert out["pcaps"]
    for entry in out["pcaps"]:
        packets = rdpcap(str(tmp_path / entry["file"]))
        hops = [h for h in out["hops"] if h["pcap"] == entry["file"]]
        assert len(packets) == len(hops) == entry["packets"]
        for packet, hop in zip(packets, hops):
            # The hop describes the innermost packet; VXLAN frames carry the outer too.
            inner = [layer for layer in packet.iterpayloads() if isinstance(layer, IP)][-1]
            assert packet.haslayer(VXLAN) == (hop["outer"] is not None
                                              and hop["interface"] != "vxlan0")
            assert (inner.src, inner.dst, inner.id) == \
                (hop["packet"]["src"], hop["packet"]["dst"], hop["packet"]["ipId"])
    assert (tmp_path / "worker1_vxlan0.pcap").exists()


def test_traces_leave_no_rules_and_no_sockets_even_when_interrupted(trace_lab: TraceLab):
    before = _open_sockets()

    def interrupt() -> None:
        assert _trace_tables(trace_lab), "the trace's tables should be in place by now"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trace(trace_lab.name, "a", "c", on_sent=interrupt)
    assert _trace_tables(trace_lab) == []
    assert _open_sockets() - before == set(), "capture or trace sockets were left open"
    # A trace killed outright (SIGKILL) cannot clean up: the next one removes its tables.
    dead = subprocess.Popen(["true"])
    dead.wait()
    worker = trace_lab.plan.node("worker2").netns
    subprocess.run(["ip", "netns", "exec", worker, "nft", "add", "table", "ip",
                    f"netlab-trace-{dead.pid}-dead"], check=True)
    trace_lab.trace("a", "c")
    assert _trace_tables(trace_lab) == []


def test_overlay_none_is_lost_after_the_source_node(make_lab):
    lab = make_lab(data=topology(unique_lab(), overlay="none"))
    _make_pods(lab.name, lab.plan)
    result = CliRunner().invoke(trace_command, ["--lab", lab.name, "a", "c", "-o", "json",
                                                "--timeout", "1"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    verdict = out["verdict"]
    assert (verdict["result"], verdict["node"]) == ("lost", "worker1")
    assert "overlay is none" in verdict["reason"]
    forward = [h for h in out["hops"] if h["path"] == "forward"]
    assert verdict["lastHop"] == forward[-1]["hop"]
    assert {h["node"] for h in forward} == {"worker1"}


def test_capture_runs_tcpdump_inside_the_node(trace_lab: TraceLab):
    import sys
    import threading

    from labkit import ping, wait_for

    proc = subprocess.Popen([sys.executable, "-m", "netlab.cli.trace", "capture", "--lab",
                             trace_lab.name, "worker2", "eth0", "--", "-c", "1", "icmp"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    # A thread reads stderr: select() on a buffered text pipe can miss lines that
    # readline() has already pulled into Python's buffer.
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    try:
        # tcpdump says when its socket is open
        wait_for(lambda: any("listening on eth0" in line for line in lines), 20,
                 what=f"tcpdump to start: {''.join(lines)}")
        seen = "".join(lines)
        assert seen.startswith(f"capturing on eth0 in {trace_lab.name}-worker2")
        assert ping(trace_lab.plan.node("worker1").netns, trace_lab.ip("worker2"))
        proc.wait(timeout=10)  # -c 1: tcpdump exits after the one packet
        out = proc.stdout.read()
        assert f"IP {trace_lab.ip('worker1')} > {trace_lab.ip('worker2')}: ICMP echo request" \
            in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
