"""The kubelet's other pure parts: back-off, logs, metrics, overlay peers, node object."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from datetime import datetime, timezone
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Callable

import pytest

from netlab.api.usage import USAGE_ANNOTATION
from netlab.node.kubelet import logs, metrics
from netlab.node.kubelet.config import KubeletConfig, from_args, parse_taints
from netlab.node.kubelet.node import lease_object, node_object
from netlab.node.kubelet.pods import go_duration
from netlab.node.kubelet.restarts import Backoff, should_restart
from netlab.node.overlay import flannel_annotations, peers_from_nodes
from netlab.node.runtime import NodeUsage, ResourceUsage

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


# --- restart policy and back-off --------------------------------------------------------------


@pytest.mark.parametrize(("policy", "code", "init", "want"), [
    ("Always", 0, False, True), ("Always", 1, False, True),
    ("OnFailure", 0, False, False), ("OnFailure", 2, False, True),
    ("Never", 1, False, False), ("Never", 0, False, False),
    ("Always", 0, True, False), ("Always", 1, True, True), ("Never", 1, True, False),
])
def test_restart_policy(policy, code, init, want):
    assert should_restart(policy, code, init) is want


def test_backoff_doubles_from_the_first_restart_and_caps():
    b, key = Backoff(base=1.0, cap=8.0), ("uid", "c")
    waits = []
    t = 100.0
    for _ in range(7):
        waits.append(b.remaining(key, t, now=t))  # how long the exit at t must wait
        t += waits[-1]
        b.next(key, t)
        t += 0.5  # the container runs half a second and dies again
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_resets_after_a_long_good_run_and_is_seeded_after_a_restart():
    b, key = Backoff(base=1.0, cap=4.0), ("uid", "c")
    b.next(key, 0.0)
    b.next(key, 1.0)
    assert b.remaining(key, 2.0, now=2.0) == 2.0
    assert b.remaining(key, 100.0, now=100.0) == 0.0  # ran > 2 * cap since: starts over
    seeded = Backoff(base=1.0, cap=300.0)
    seeded.seed(key, restart_count=4, finished_at=50.0)
    assert seeded.remaining(key, 50.0, now=51.0) == 7.0  # 1 * 2**3, one second gone
    seeded.forget_pod("uid")
    assert seeded.remaining(key, 50.0, now=51.0) == 0.0


@pytest.mark.parametrize(("seconds", "text"), [
    (0.5, "500ms"), (1, "1s"), (10, "10s"), (80, "1m20s"), (300, "5m0s"), (3700, "1h1m40s")])
def test_go_durations(seconds, text):
    assert go_duration(seconds) == text


# --- logs -------------------------------------------------------------------------------------

CRI = (b"2026-01-01T00:00:01.000000001Z stdout F one\n"
       b"2026-01-01T00:00:02.000000000Z stderr F two\n"
       b"2026-01-01T00:00:03.000000000Z stdout P thr\n"
       b"2026-01-01T00:00:03.500000000Z stdout F ee\n"
       b"2026-01-01T00:00:04.000000000Z stdout F \n"
       b"2026-01-01T00:00:05.000000000Z stdout F five\n")


def render(opts: logs.LogOptions) -> bytes:
    return b"".join(logs.render(CRI.split(b"\n"), opts))


def test_log_rendering_joins_partials_and_applies_options():
    assert render(logs.LogOptions()) == b"one\ntwo\nthree\n\nfive\n"
    assert render(logs.LogOptions(tail_lines=2)) == b"\nfive\n"
    assert render(logs.LogOptions(tail_lines=0)) == b""
    assert render(logs.LogOptions(timestamps=True)).startswith(
        b"2026-01-01T00:00:01.000000001Z one\n")
    since = datetime(2026, 1, 1, 0, 0, 3, tzinfo=timezone.utc)
    assert render(logs.LogOptions(since=since)) == b"three\n\nfive\n"
    assert logs.parse_line(b"garbage") is None


def test_read_log_limits_bytes(tmp_path: Path):
    import asyncio

    path = tmp_path / "0.log"
    path.write_bytes(CRI)

    async def read(opts: logs.LogOptions) -> bytes:
        return b"".join([c async for c in logs.read_log(path, opts)])

    assert asyncio.run(read(logs.LogOptions(limit_bytes=6))) == b"one\ntw"
    assert asyncio.run(read(logs.LogOptions())) == b"one\ntwo\nthree\n\nfive\n"


def _follow(path: Path, writer: Callable[[], Awaitable[None]], last_words: bytes) -> bytes:
    """``read_log`` with ``follow`` while ``writer`` writes the log; then the container
    ends, its ``last_words`` written after the end is known (conmon writes the
    output it still had before the exit record)."""
    import asyncio

    ended = asyncio.Event()

    async def finished() -> bool:
        return ended.is_set()

    async def container() -> None:
        await writer()
        await asyncio.sleep(0.05)
        ended.set()
        with open(path, "ab") as f:
            f.write(last_words)

    async def scenario() -> bytes:
        task = asyncio.ensure_future(container())
        out = b"".join([c async for c in logs.read_log(path, logs.LogOptions(follow=True),
                                                       finished)])
        await task
        return out

    return asyncio.run(asyncio.wait_for(scenario(), 20))


def test_follow_reads_appended_lines_until_the_container_ends(tmp_path: Path):
    import asyncio

    path = tmp_path / "0.log"
    path.write_bytes(CRI[:44])

    async def writer() -> None:
        await asyncio.sleep(0.05)
        with open(path, "ab") as f:
            f.write(CRI[44:])

    out = _follow(path, writer, b"2026-01-01T00:00:06Z stdout F last\n")
    assert out == b"one\ntwo\nthree\n\nfive\nlast\n"


def test_follow_goes_on_in_the_new_file_when_conmon_rotates_the_log(tmp_path: Path):
    """Past its ``--log-size-max`` conmon writes a new log and renames it over the
    old one: a follower reads the old file to its end, then the new one."""
    import asyncio
    import os

    path = tmp_path / "0.log"
    path.write_bytes(b"2026-01-01T00:00:01Z stdout F one\n")

    async def conmon() -> None:
        await asyncio.sleep(0.05)
        with open(path, "ab") as f:  # the last line of the old file
            f.write(b"2026-01-01T00:00:02Z stdout F two\n")
        new = tmp_path / ".0.log.tmp"
        new.write_bytes(b"2026-01-01T00:00:03Z stdout F three\n")
        os.rename(new, path)
        await asyncio.sleep(0.05)

    out = _follow(path, conmon, b"2026-01-01T00:00:04Z stdout F four\n")
    assert out == b"one\ntwo\nthree\nfour\n"


def test_a_follower_of_a_log_that_keeps_growing_lets_the_loop_run(tmp_path: Path):
    """A container that logs faster than the follower reads: between chunks the
    follower still lets the event loop run, so the kubelet's other work (its
    heartbeats, and noticing that the client went away) goes on."""
    import asyncio

    path = tmp_path / "0.log"
    line = b"2026-01-01T00:00:01Z stdout F " + b"x" * 100 + b"\n"
    path.write_bytes(line)

    async def scenario() -> int | None:
        ran = asyncio.Event()

        async def elsewhere() -> None:
            ran.set()

        async def finished() -> bool:
            return False

        other = asyncio.ensure_future(elsewhere())
        follower = logs.read_log(path, logs.LogOptions(follow=True), finished)
        try:
            chunks = 0
            async for _ in follower:
                chunks += 1
                if ran.is_set():
                    return chunks
                if chunks > 50:
                    return None
                with open(path, "ab") as f:  # always more than one read takes
                    f.write(line * 2000)
        finally:
            await follower.aclose()
            await other
        return None

    assert asyncio.run(asyncio.wait_for(scenario(), 20)) is not None


# --- metrics ----------------------------------------------------------------------------------


def test_usage_annotation_and_the_metrics_objects_made_from_it():
    usage = NodeUsage(node=ResourceUsage(250, 300 << 20, 10.0, "cgroup"),
                      pods={"u1": ResourceUsage(5, 12 << 20, 10.0, "cgroup"),
                            "gone": ResourceUsage(1, 1, 10.0, "cgroup")})
    text = metrics.usage_annotation(usage, {"u1": ("default", "web")}, NOW, 10)
    node = {"metadata": {"name": "worker1", "annotations": {USAGE_ANNOTATION: text}}}
    nm = metrics.node_metrics(node)
    assert nm["kind"] == "NodeMetrics" and nm["usage"] == {"cpu": "250m",
                                                           "memory": f"{300 * 1024}Ki"}
    assert nm["timestamp"] == "2026-01-02T03:04:05Z" and nm["window"] == "10s"
    pods = metrics.pod_metrics(node, {"default/web": ["app"]})
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods] == [
        ("default", "web")]
    assert pods[0]["containers"] == [{"name": "app", "usage": {"cpu": "5m",
                                                                "memory": "12288Ki"}}]
    assert metrics.node_metrics({"metadata": {"name": "x"}}) is None
    summary = metrics.summary("worker1", usage, {"u1": ("default", "web")}, NOW, "t0")
    assert summary["node"]["cpu"]["usageNanoCores"] == 250_000_000
    assert summary["pods"][0]["podRef"] == {"name": "web", "namespace": "default", "uid": "u1"}
    # With each container measured in its own cgroup: per container, in the pod's order.
    usage.containers = {"u1": {"side": ResourceUsage(2, 4 << 20, 10.0, "cgroup"),
                               "app": ResourceUsage(3, 8 << 20, 10.0, "cgroup")}}
    text = metrics.usage_annotation(usage, {"u1": ("default", "web")}, NOW, 10)
    node = {"metadata": {"name": "worker1", "annotations": {USAGE_ANNOTATION: text}}}
    pods = metrics.pod_metrics(node, {"default/web": ["app", "side"]})
    assert pods[0]["containers"] == [
        {"name": "app", "usage": {"cpu": "3m", "memory": "8192Ki"}},
        {"name": "side", "usage": {"cpu": "2m", "memory": "4096Ki"}}]
    summary = metrics.summary("worker1", usage, {"u1": ("default", "web")}, NOW, "t0")
    assert [(c["name"], c["memory"]["workingSetBytes"])
            for c in summary["pods"][0]["containers"]] == [("app", 8 << 20), ("side", 4 << 20)]


def test_a_pod_with_no_running_container_is_left_out_of_the_metrics_as_metrics_server_does():
    usage = NodeUsage(node=ResourceUsage(250, 300 << 20, 10.0, "cgroup"),
                      pods={"up": ResourceUsage(5, 12 << 20, 10.0, "cgroup"),
                            "done": ResourceUsage(0, 1 << 20, 10.0, "cgroup")},
                      containers={"up": {"app": ResourceUsage(5, 12 << 20, 10.0, "cgroup")}},
                      running={"up"})
    names = {"up": ("default", "web"), "done": ("default", "job")}
    node = {"metadata": {"name": "worker1", "annotations": {
        USAGE_ANNOTATION: metrics.usage_annotation(usage, names, NOW, 10)}}}
    assert [p["metadata"]["name"] for p in metrics.pod_metrics(node)] == ["web"]
    assert metrics.node_metrics(node)["usage"]["cpu"] == "250m"  # the node still counts it
    # Where the runtime cannot tell (no container cgroups), every measured pod is listed.
    usage.running, usage.containers = None, {}
    node["metadata"]["annotations"][USAGE_ANNOTATION] = metrics.usage_annotation(
        usage, names, NOW, 10)
    assert [p["metadata"]["name"] for p in metrics.pod_metrics(node)] == ["job", "web"]


# --- overlay peers from Node objects --------------------------------------------------------


def _node(name: str, cidr: str, ip: str, mac: str | None) -> dict:
    annotations = flannel_annotations(1, mac, ip) if mac else {}
    return {"metadata": {"name": name, "annotations": annotations},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


def test_peers_come_from_the_other_nodes_annotations():
    nodes = [_node("cp", "10.244.0.0/24", "192.168.100.2", "02:00:00:00:00:01"),
             _node("w1", "10.244.1.0/24", "192.168.100.3", "02:00:00:00:00:02"),
             _node("w2", "10.244.2.0/24", "192.168.100.4", None),  # no VTEP yet
             {"metadata": {"name": "broken"}, "spec": {"podCIDR": "nonsense"}}]
    peers = peers_from_nodes(nodes, "w1")
    assert [p.node for p in peers] == ["cp"]
    peer = peers[0]
    assert peer.vtep_mac == "02:00:00:00:00:01"
    assert peer.underlay_ip == IPv4Address("192.168.100.2")
    assert peer.vtep_ip == IPv4Address("10.244.0.0")
    assert peer.pod_subnet == IPv4Network("10.244.0.0/24")


# --- the node object and configuration --------------------------------------------------------


def cfg(**kw) -> KubeletConfig:
    base = dict(lab="lab", node="control-plane", role="control-plane",
                api_server="https://192.168.100.2:6443", token_file=Path("/nonexistent"),
                node_ip=IPv4Interface("192.168.100.2/24"),
                pod_cidr=IPv4Network("10.244.0.0/24"), vtep_mac="02:aa:bb:cc:dd:ee",
                cpu_millis=1500, memory_bytes=2 << 30, max_pods=50,
                labels={"zone": "a"}, taints=({"key": "gpu", "effect": "NoSchedule"},))
    base.update(kw)
    return KubeletConfig(**base)


def test_node_object_has_what_kubectl_and_flannel_read():
    node = node_object(cfg(), NOW)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "control-plane" and labels["zone"] == "a"
    assert labels["node-role.kubernetes.io/control-plane"] == ""
    assert node["spec"]["podCIDR"] == "10.244.0.0/24"
    assert node["spec"]["taints"][0] == {"key": "node-role.kubernetes.io/control-plane",
                                         "effect": "NoSchedule"}
    assert {"key": "gpu", "effect": "NoSchedule"} in node["spec"]["taints"]
    backend = json.loads(node["metadata"]["annotations"][
        "flannel.alpha.coreos.com/backend-data"])
    assert backend == {"VNI": 1, "VtepMAC": "02:aa:bb:cc:dd:ee"}
    status = node["status"]
    assert status["capacity"]["cpu"] == "1500m" and status["capacity"]["pods"] == "50"
    assert status["capacity"]["memory"] == f"{2 * 1024 * 1024}Ki"
    assert status["allocatable"] == status["capacity"]
    assert {"type": "InternalIP", "address": "192.168.100.2"} in status["addresses"]
    assert {"type": "Hostname", "address": "control-plane"} in status["addresses"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    assert status["nodeInfo"]["kubeletVersion"].startswith("v1.")
    types = [c["type"] for c in status["conditions"]]
    assert types[-1] == "Ready" and "MemoryPressure" in types
    worker = node_object(cfg(node="w1", role="worker", taints=()), NOW)
    assert worker["spec"]["taints"] == []
    assert "node-role.kubernetes.io/worker" in worker["metadata"]["labels"]
    no_overlay = node_object(cfg(overlay="none"), NOW)
    assert not any(k.startswith("flannel") for k in no_overlay["metadata"]["annotations"])


def test_lease_is_owned_by_the_node():
    lease = lease_object(cfg(), "node-uid", NOW)
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "node-uid"
    assert lease["spec"]["renewTime"] == "2026-01-02T03:04:05.000000Z"
    assert lease["spec"]["holderIdentity"] == "control-plane"


def test_flags_parse_into_a_config():
    c = from_args(["--lab", "l", "--node", "w1", "--server", "https://x:6443",
                   "--token-file", "/t", "--ca-file", "/ca", "--node-ip", "192.168.100.3/24",
                   "--pod-cidr", "10.244.1.0/24", "--cpu", "2", "--memory", "4Gi",
                   "--node-labels", "a=1,b=",
                   "--register-with-taints", "k=v:NoExecute,x:NoSchedule",
                   "--cluster-dns", "10.96.0.10"])
    assert c.cpu_millis == 2000 and c.memory_bytes == 4 << 30
    assert c.labels == {"a": "1", "b": ""}
    assert c.taints == ({"key": "k", "value": "v", "effect": "NoExecute"},
                        {"key": "x", "effect": "NoSchedule"})
    assert c.cluster_dns == ("10.96.0.10",)
    assert c.node_plan().netns == "l-w1" and c.node_plan().gateway == IPv4Interface(
        "10.244.1.1/24")
    with pytest.raises(ValueError):
        parse_taints("nokey:Sometimes")
