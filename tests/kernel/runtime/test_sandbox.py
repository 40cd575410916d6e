"""Pod sandboxes as a user sees them: namespaces in ``ip netns``, a veth on cni0,
an address from the node's /24, and pods on two nodes talking over the overlay."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
import uuid
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from rtkit import PY, as_kubelet, log_text, wait_exited, wait_log

from netlab.kernel import netns
from netlab.lab.network import owned_namespaces
from netlab.node.runtime import HostLocalIpam, PodSpec, RangeExhausted, Runtime
from netlab.node.runtime.paths import pods_dir
from netlab.node.runtime.sandbox import find_sandbox


def ip_json(*args: str) -> list:
    import json

    return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True,
                                     check=True).stdout)


def test_pods_get_unique_addresses_in_their_nodes_subnet(rlab, pods):
    w1, w2 = rlab.plan.node("worker1"), rlab.plan.node("worker2")
    sbs = [pods.sandbox("worker1", f"web-{i}") for i in range(3)] + [pods.sandbox("worker2", "db")]
    ips = [IPv4Address(sb.ip) for sb in sbs]
    assert len(set(ips)) == 4
    for sb, ip in zip(sbs, ips):
        node = w1 if sb.node == "worker1" else w2
        assert ip in node.pod_subnet and ip != node.gateway.ip and ip != node.pod_subnet[-1]
        assert sb.gateway == str(node.gateway.ip)
    # What `ip` shows inside the pod: eth0 with the address, a default route via cni0.
    sb = sbs[0]
    addrs = {a["ifname"]: a for a in ip_json("-n", sb.netns, "addr")}
    assert addrs["lo"]["operstate"] == "UNKNOWN" and "UP" in addrs["lo"]["flags"]
    # Labs are IPv4: no ::1 on lo, and eth0 (made after the sysctl) no link-local.
    assert [i["local"] for i in addrs["lo"]["addr_info"]] == ["127.0.0.1"]
    eth0 = addrs["eth0"]
    assert [(i["local"], i["prefixlen"]) for i in eth0["addr_info"]] == [(sb.ip, 24)]
    assert eth0["mtu"] == rlab.plan.pod_mtu
    routes = ip_json("-n", sb.netns, "route")
    assert {"dst": "default", "gateway": sb.gateway} in [
        {k: r.get(k) for k in ("dst", "gateway")} for r in routes]
    # The host end sits in the node namespace, on cni0, up, with the pod MTU.
    veth = ip_json("-n", w1.netns, "link", "show", sb.veth)[0]
    assert veth["master"] == "cni0" and "UP" in veth["flags"] and veth["mtu"] == rlab.plan.pod_mtu
    # The pod namespace is the lab's: `netlab down` finds it by its owner tag.
    assert sb.netns in owned_namespaces(rlab.name, trust_record=False)
    assert sb.netns.startswith(f"{rlab.name}-worker1.web-0-")


def test_a_pin_file_not_yet_mounted_is_skipped_by_downs_search(rlab):
    """A sandbox being made has a pin file in /run/netns before its namespace is
    mounted on it (setns: EINVAL): ``down`` during a pod burst met one and died."""
    placeholder = netns.netns_path(f"{rlab.name}-worker1.half-made-{uuid.uuid4().hex[:6]}")
    with open(placeholder, "x"):
        pass
    try:
        found = owned_namespaces(rlab.name, trust_record=False)
        assert rlab.plan.node("worker1").netns in found
        assert Path(placeholder).name not in found
    finally:
        os.unlink(placeholder)


def test_running_the_sandbox_again_converges_to_the_same_one(rlab, pods):
    rt = rlab.runtime("worker1")
    sb = pods.sandbox("worker1", "again")
    # Break it: remove the pod's address, as a crash half-way through might leave it.
    subprocess.run(["ip", "-n", sb.netns, "addr", "flush", "dev", "eth0"], check=True)
    problems = rt.check_pod_sandbox(sb)  # the flush took the default route with it
    assert problems == [f"eth0 lost its address {sb.ip}", f"no default route via {sb.gateway}"]
    pod = PodSpec(sb.namespace, sb.name, sb.uid)  # the kubelet re-runs the same pod
    again = as_kubelet(rt, lambda: rt.run_pod_sandbox(pod))
    assert (again.ip, again.netns, again.veth) == (sb.ip, sb.netns, sb.veth)
    assert rt.check_pod_sandbox(sb) == []


def test_a_pods_sandbox_is_found_by_uid_and_only_on_its_node(rlab, pods):
    first, second = pods.sandbox("worker1", "one"), pods.sandbox("worker2", "two")
    assert find_sandbox(rlab.name, second.uid).name == "two"
    assert find_sandbox(rlab.name, first.uid).node == "worker1"
    assert find_sandbox(rlab.name, str(uuid.uuid4())) is None
    # Each node's runtime answers for its own pods only.
    w1, w2 = rlab.runtime("worker1"), rlab.runtime("worker2")
    assert as_kubelet(w1, lambda: w1.check_pod_sandbox(first.uid)) == []
    assert as_kubelet(w2, lambda: w2.check_pod_sandbox(second.uid)) == []
    assert w1.check_pod_sandbox(second.uid) == ["no sandbox"]


def test_remove_frees_the_address_and_deletes_netns_and_veth(rlab, pods):
    rt = rlab.runtime("worker2")
    sb = pods.sandbox("worker2", "short-lived")
    assert IPv4Address(sb.ip) in rt.ipam.allocations()
    as_kubelet(rt, lambda: rt.remove_pod_sandbox(sb))
    assert not netns.exists(sb.netns)
    links = ip_json("-n", rt.node.netns, "link")
    assert sb.veth not in {link["ifname"] for link in links}
    assert IPv4Address(sb.ip) not in rt.ipam.allocations()
    assert not sb.path.exists()
    as_kubelet(rt, lambda: rt.remove_pod_sandbox(sb))  # idempotent


def test_a_create_that_fails_half_way_leaves_nothing_behind(rlab):
    # A node whose namespace is missing: the pod's netns and IP are made, then
    # wiring the veth fails. Everything made so far must go again.
    node = dataclasses.replace(rlab.plan.node("worker1"), netns=f"{rlab.name}-nosuchnode")
    rt = Runtime(rlab.name, node, pod_mtu=rlab.plan.pod_mtu)
    pod = PodSpec("default", "doomed", str(uuid.uuid4()))
    with pytest.raises(OSError, match="does not exist"):
        rt.run_pod_sandbox(pod)
    assert [n for n in netns.list_netns() if ".doomed-" in n] == []
    assert rt.ipam.lookup(pod.uid) is None
    assert pod.uid not in {sb.uid for sb in rt.list_pods()}
    assert not any(pods_dir(rlab.name).glob(f"*_{pod.uid}"))


def test_ipam_never_hands_out_an_address_twice_and_reuses_released_ones(tmp_path):
    ipam = HostLocalIpam(tmp_path, IPv4Network("10.9.0.0/28"))  # 13 usable after .1
    results: list[IPv4Address] = []
    lock = threading.Lock()

    def grab(worker: int) -> None:
        for i in range(3):
            ip = ipam.allocate(f"pod-{worker}-{i}")
            with lock:
                results.append(ip)

    threads = [threading.Thread(target=grab, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(set(results)) == 12
    assert IPv4Address("10.9.0.1") not in results  # the gateway
    assert ipam.allocate("pod-0-0") in results  # same uid, same address
    last = ipam.allocate("late")
    with pytest.raises(RangeExhausted, match="no free pod address"):
        ipam.allocate("one-too-many")
    released = ipam.allocations()
    assert ipam.release("pod-2-1") == [ip for ip, uid in released.items() if uid == "pod-2-1"]
    freed = [ip for ip in results if ip not in ipam.allocations()]
    assert len(freed) == 1
    assert ipam.allocate("one-too-many") == freed[0]  # reuse after release
    assert last not in freed


def test_pods_on_two_nodes_talk_by_pod_ip_over_tcp_and_udp(rlab, pods):
    server = (
        "import socket, threading\n"
        "t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "t.bind(('', 8080)); t.listen()\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('', 8081))\n"
        "def udp():\n"
        "    while True:\n"
        "        data, peer = u.recvfrom(2048); print('udp from', peer[0], flush=True)\n"
        "        u.sendto(b'udp:' + data, peer)\n"
        "threading.Thread(target=udp, daemon=True).start()\n"
        "print('listening', flush=True)\n"
        "while True:\n"
        "    c, peer = t.accept(); print('tcp from', peer[0], flush=True)\n"
        "    c.sendall(b'tcp:' + c.recv(1024)); c.close()\n")
    client = (
        "import socket, sys, time\n"
        "ip = sys.argv[1]; deadline = time.time() + 10\n"
        "while True:\n"
        "    try:\n"
        "        s = socket.create_connection((ip, 8080), timeout=1); break\n"
        "    except OSError:\n"
        "        if time.time() > deadline: raise\n"
        "        time.sleep(0.05)\n"
        "s.sendall(b'hello'); print(s.recv(64).decode(), flush=True)\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(0.5)\n"
        "while True:\n"
        "    u.sendto(b'hello', (ip, 8081))\n"
        "    try:\n"
        "        print(u.recvfrom(64)[0].decode(), flush=True); break\n"
        "    except socket.timeout:\n"
        "        if time.time() > deadline: raise\n")
    server_sb, server_st = pods.run("worker2", "server", PY, "-c", server)
    wait_log(server_st, "listening")
    client_sb, _ = pods.run("worker1", "client", PY, "-c", client, server_sb.ip)
    done = wait_exited(rlab.runtime("worker1"), client_sb)
    assert done.exit_code == 0, log_text(done)
    assert done.reason == "Completed"
    assert log_text(done).splitlines() == ["tcp:hello", "udp:hello"]
    # The server saw the client's own pod IP: pod to pod, no NAT on the way.
    seen = wait_log(server_st, "udp from")
    assert f"tcp from {client_sb.ip}" in seen and f"udp from {client_sb.ip}" in seen
