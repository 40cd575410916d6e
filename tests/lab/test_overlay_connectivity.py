"""The demo lab's network, seen as a user sees it: who can reach whom, and how."""

from __future__ import annotations

import itertools
import time

import pytest
from labkit import Capture, parse_vxlan, ping, tcp_roundtrip

CLUSTER = ("control-plane", "worker1", "worker2")


@pytest.mark.parametrize("src,dst", list(itertools.permutations(CLUSTER, 2)))
def test_every_node_reaches_every_other_cni0_over_the_overlay(demo_lab, src, dst):
    target = str(demo_lab.plan.node(dst).gateway.ip)
    assert ping(demo_lab.ns(src), target), f"{src} cannot ping {dst}'s cni0 {target}"


@pytest.mark.parametrize("src,dst", [("worker1", "worker2"), ("worker2", "control-plane")])
def test_tcp_crosses_the_overlay(demo_lab, src, dst):
    target = str(demo_lab.plan.node(dst).gateway.ip)
    assert tcp_roundtrip(demo_lab.ns(dst), target, demo_lab.ns(src)) == b"hello across the lab"


def test_a_1400_byte_packet_with_df_crosses(demo_lab):
    target = str(demo_lab.plan.node("worker2").gateway.ip)
    # 1372 bytes of ICMP payload + 8 ICMP + 20 IP = a 1400-byte packet, DF set.
    assert ping(demo_lab.ns("worker1"), target, size=1372, df=True)


def test_a_packet_larger_than_the_overlay_mtu_is_refused_with_df(demo_lab):
    target = str(demo_lab.plan.node("worker2").gateway.ip)
    # 1451 bytes does not fit vxlan0's 1450: proof the MTU is really set to underlay - 50.
    assert not ping(demo_lab.ns("worker1"), target, size=1423, df=True, timeout=1)


def test_cross_node_packet_is_vxlan_on_the_underlay(demo_lab):
    src, dst = demo_lab.plan.node("worker1"), demo_lab.plan.node("worker2")
    capture = Capture(demo_lab.plan.underlay_netns, src.port)
    try:
        assert ping(demo_lab.ns("worker1"), str(dst.gateway.ip))
        seen = None
        for frame in capture.frames(time.monotonic() + 3):
            info = parse_vxlan(frame)
            if info and info["dport"] == 4789 and info["inner_dst"] == str(dst.gateway.ip):
                seen = info
                break
    finally:
        capture.close()
    assert seen is not None, "no VXLAN frame to worker2 was seen on worker1's underlay port"
    assert seen["vni_flag"] and seen["vni"] == 1
    assert (seen["src"], seen["dst"]) == (str(src.underlay.ip), str(dst.underlay.ip))
    assert seen["inner_proto"] == 1  # ICMP inside
    assert seen["inner_src"] == str(src.vtep_ip)  # flannel's subnet address as source


def test_external_node_reaches_cluster_nodes_on_the_underlay(demo_lab):
    for node in CLUSTER:
        assert ping(demo_lab.ns("client"), str(demo_lab.plan.node(node).underlay.ip))


def test_external_node_has_no_route_to_pods(demo_lab):
    assert not ping(demo_lab.ns("client"), str(demo_lab.plan.node("worker1").gateway.ip), timeout=1)


def test_overlay_none_isolates_nodes(make_lab):
    lab = make_lab(overlay="none")
    w1, w2 = lab.plan.node("worker1"), lab.plan.node("worker2")
    assert ping(lab.ns("worker1"), str(w1.gateway.ip)), "a node reaches its own cni0"
    assert ping(lab.ns("worker1"), str(w2.underlay.ip)), "the physical network still works"
    for src, dst in itertools.permutations(CLUSTER, 2):
        target = str(lab.plan.node(dst).gateway.ip)
        assert not ping(lab.ns(src), target, timeout=1), f"{src} reached {dst} without an overlay"
    assert tcp_roundtrip(lab.ns("worker2"), str(w2.gateway.ip), lab.ns("worker1")) is None
