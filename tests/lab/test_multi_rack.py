"""topologies/multi-rack.yaml, brought up once for the module: two racks (physical
networks) joined by a router node, the VXLAN overlay across the routed underlay.

What a user sees: pods on both racks Running, pod-to-pod TCP and UDP across the
router, a Service whose endpoint is on the other rack, DNS and the API server (on
rack1) from a pod on rack2, the MTU of the overlay, and ``netlab trace`` listing
the router's namespace on both paths. The lab tier's autouse fixture checks that
the host's root namespace is unchanged.
"""

from __future__ import annotations

import pytest
from labkit import netlab_cli

pytestmark = pytest.mark.netlab("../../topologies/multi-rack.yaml", scope="module")


def _echo_pods(lab) -> dict[str, dict]:
    """The echo DaemonSet's pods, by node, once every one is ready (one per worker)."""
    lab.wait("daemonset", "echo", lambda ds: ds.get("status", {}).get("numberReady") == 3,
             timeout=90)
    pods = lab.api.list("pods", "default", label_selector="app=echo")["items"]
    by_node = {p["spec"]["nodeName"]: p for p in pods if p["status"].get("podIP")}
    assert set(by_node) == {"worker1", "worker2", "worker3"}, sorted(by_node)
    return by_node


def _name(pod: dict) -> str:
    return pod["metadata"]["name"]


def test_pods_on_every_rack_run_and_the_nodes_sit_on_their_racks(lab):
    pods = _echo_pods(lab)
    assert all(p["status"]["phase"] == "Running" for p in pods.values())
    nodes = {n["metadata"]["name"]: n for n in lab.api.list("nodes")["items"]}
    assert "router" not in nodes  # a router is a plain host: no kubelet
    internal = {name: next(a["address"] for a in n["status"]["addresses"]
                           if a["type"] == "InternalIP") for name, n in nodes.items()}
    assert internal == {"control-plane": "192.168.10.2", "worker1": "192.168.10.3",
                        "worker2": "192.168.20.2", "worker3": "192.168.20.3"}


def test_the_router_forwards_and_the_racks_route_through_it(lab):
    code, out, _ = lab.exec("router", "sysctl -n net.ipv4.ip_forward")
    assert (code, out.strip()) == (0, "1")
    code, out, _ = lab.exec("router", "ip -4 -br addr show")
    assert code == 0 and "192.168.10.1/24" in out and "192.168.20.1/24" in out
    code, routes, _ = lab.exec("worker2", "ip route")
    assert code == 0 and "192.168.10.0/24 via 192.168.20.1 dev eth0" in routes
    code, routes, _ = lab.exec("control-plane", "ip route")
    assert code == 0 and "192.168.20.0/24 via 192.168.10.1 dev eth0" in routes


def test_cross_rack_pod_to_pod_tcp_and_udp(lab):
    pods = _echo_pods(lab)
    rack1, rack2 = _name(pods["worker1"]), _name(pods["worker2"])
    assert lab.reach(rack1, rack2, 8080, "tcp", within=30)
    assert lab.reach(rack2, rack1, 8080, "tcp", within=30)
    assert lab.reach(rack1, rack2, 8080, "udp", within=30)
    assert lab.reach(rack2, rack1, 8080, "udp", within=30)


def test_the_overlay_mtu_fits_the_routed_underlay(lab):
    pods = _echo_pods(lab)
    target = pods["worker2"]["status"]["podIP"]
    # Pod MTU 1450 (1500 less VXLAN's 50): 1422 bytes of ICMP data fill it, unfragmented.
    code, out, err = lab.exec(_name(pods["worker1"]), f"ping -c 1 -W 5 -M do -s 1422 {target}")
    assert code == 0, out + err
    code, out, err = lab.exec(_name(pods["worker1"]), f"ping -c 1 -W 5 -M do -s 1423 {target}")
    assert code != 0 and "mtu=1450" in out + err


def test_a_service_whose_endpoint_is_on_the_other_rack(lab):
    pods = _echo_pods(lab)
    lab.kubectl("label", "pod", _name(pods["worker1"]), "rack=rack1")
    lab.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "rack1-echo"},
               "spec": {"selector": {"app": "echo", "rack": "rack1"},
                        "ports": [{"name": "tcp", "port": 80, "targetPort": 8080},
                                  {"name": "udp", "port": 80, "targetPort": 8080,
                                   "protocol": "UDP"}]}})
    from_rack2 = _name(pods["worker3"])
    assert lab.reach(from_rack2, "svc/rack1-echo:80", within=30)
    assert lab.reach(from_rack2, "svc/rack1-echo:80", proto="udp", within=30)
    trace = lab.trace(from_rack2, "svc/rack1-echo:80")
    assert trace["verdict"]["result"] == "delivered", trace["verdict"]["reason"]
    dnat = [c for h in trace["hops"] for c in h["changes"] if c["kind"] == "dnat"]
    assert dnat and dnat[0]["to"] == f"{pods['worker1']['status']['podIP']}:8080"


def test_dns_and_the_api_server_from_a_pod_on_rack2(lab):
    pods = _echo_pods(lab)
    rack2 = _name(pods["worker2"])
    service_ip = lab.get("service", "echo")["spec"]["clusterIP"]
    code, out, err = lab.exec(rack2, "getent hosts echo.default.svc.cluster.local")
    assert code == 0, err
    assert out.split()[0] == service_ip
    # kubernetes.default: kube-proxy on worker2 DNATs to the API server on rack1.
    assert lab.reach(rack2, "svc/kubernetes:443", namespace="default", within=30)


def test_trace_shows_the_router_on_both_paths(lab):
    pods = _echo_pods(lab)
    trace = lab.trace(_name(pods["worker1"]), _name(pods["worker2"]), port=8080)
    assert trace["verdict"]["result"] == "delivered", trace["verdict"]["reason"]
    router_ns = lab.plan.node("router").netns
    for path in ("forward", "reply"):
        hops = [h for h in trace["hops"] if h["path"] == path]
        at_router = [h for h in hops if h["netns"] == router_ns]
        assert {h["interface"] for h in at_router} == {"eth0", "eth1"}, (path, hops)
        # The router forwards the encapsulated packet between the two nodes' VTEPs.
        assert all(h["outer"] for h in at_router)


def test_the_graph_of_the_running_lab_draws_both_racks_the_router_and_the_pods(lab):
    pods = _echo_pods(lab)
    out = netlab_cli("graph", lab.name, "-o", "dot")
    assert out.returncode == 0, out.stderr
    for element in ("nl-bridge.br-rack1", "nl-bridge.br-rack2", "nl-node.router",
                    "nl-link.router.eth1", "nl-tunnel.worker1.worker2",
                    *(f"nl-pod.default.{_name(p)}" for p in pods.values())):
        assert f'id="{element}"' in out.stdout, element
    assert "router: forwards rack1 <-> rack2" in out.stdout


def test_unplugging_the_router_cuts_the_racks_apart_and_plugging_it_back_heals(lab):
    pods = _echo_pods(lab)
    rack1, rack2, same_rack = (_name(pods[n]) for n in ("worker1", "worker2", "worker3"))
    with lab.link_down("router") as change:
        assert change["port"] == "p-router p1-router"
        assert not lab.reach(rack1, rack2, 8080, timeout=1)
        assert lab.reach(rack2, same_rack, 8080, within=10)  # rack2 still talks within itself
    assert lab.reach(rack1, rack2, 8080, within=30)
