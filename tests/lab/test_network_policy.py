"""NetworkPolicy end to end, on the model of upstream's e2e suite.

One cluster lab serves every test: namespaces x, y and z, pods a, b and c in
each (two ``netlab/echo`` containers each, serving TCP and UDP on 80 and 81,
with the named ports ``serve-80-tcp`` ... ``serve-81-udp``), and one Service
per pod (``s-a`` ... with the same four ports). Each test applies policies
with kubectl and then every pod probes every pod's Service ClusterIP on every
port and protocol: a truth table of 9 x 9 x 4 cells, which must match what
upstream's semantics say, cell for cell. The probes of one table all run at
once (sockets opened inside each pod's namespace, driven from one selector
loop), so a table costs one probe timeout, not hundreds. ``netlab policy
check``'s decisions are compared with the same tables; ``netlab trace`` must
name the dropping policy; kill -9 of an agent must leave no window.
"""

from __future__ import annotations

import contextlib
import errno
import json
import selectors
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from labkit import KUBECTL, kubectl, netlab_cli, wait_for

from netlab.kernel import netns, nft
from netlab.lab.state import components_path, log_dir, read_json
from netlab.node.netpol import inspect, ruleset

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

NAMESPACES = ("x", "y", "z")
NAMES = ("a", "b", "c")
PODS = tuple(f"{n}/{p}" for n in NAMESPACES for p in NAMES)
PORTS = ((80, "tcp"), (80, "udp"), (81, "tcp"), (81, "udp"))
PROBE_TIMEOUT = 1.5
CONVERGE = 30.0

Cell = tuple[str, str, int, str]  # (src pod, dst pod, port, protocol)
Expect = Callable[[str, str, int, str], bool]


def _manifest() -> str:
    docs = []
    for ns in NAMESPACES:
        # Quoted: YAML 1.1 reads a bare y as true.
        docs.append(f'apiVersion: v1\nkind: Namespace\nmetadata: {{name: "{ns}", '
                    f'labels: {{ns: "{ns}"}}}}\n')
        for name in NAMES:
            ports = {p: ", ".join(f"{{name: serve-{p}-{proto}, containerPort: {p}, "
                                  f"protocol: {proto.upper()}}}" for proto in ("tcp", "udp"))
                     for p in (80, 81)}
            docs.append(textwrap.dedent(f"""\
                apiVersion: v1
                kind: Pod
                metadata: {{name: {name}, namespace: "{ns}", labels: {{pod: {name}, app: {name}}}}}
                spec:
                  terminationGracePeriodSeconds: 1
                  containers:
                  - name: serve-80
                    image: netlab/echo
                    args: ["--port", "80"]
                    ports: [{ports[80]}]
                    readinessProbe: {{tcpSocket: {{port: 80}}, periodSeconds: 1}}
                  - name: serve-81
                    image: netlab/echo
                    args: ["--port", "81"]
                    ports: [{ports[81]}]
                    readinessProbe: {{tcpSocket: {{port: 81}}, periodSeconds: 1}}
                """))
            svc_ports = ", ".join(f"{{name: p{p}-{proto}, port: {p}, protocol: {proto.upper()}}}"
                                  for p, proto in PORTS)
            docs.append(textwrap.dedent(f"""\
                apiVersion: v1
                kind: Service
                metadata: {{name: s-{name}, namespace: "{ns}"}}
                spec:
                  selector: {{app: {name}}}
                  ports: [{svc_ports}]
                """))
    return "---\n".join(docs)


class World:
    """The lab's pods and Services as the tests probe them."""

    def __init__(self, lab: Any, kubeconfig: Path):
        self.lab, self.kubeconfig = lab, kubeconfig
        self.pod_ip: dict[str, str] = {}
        self.pod_node: dict[str, str] = {}
        self.pod_netns: dict[str, str] = {}
        self.cluster_ip: dict[str, str] = {}

    def refresh(self) -> bool:
        pods = self.get("pods", "-A")
        prefix = f"{self.lab.name}-"
        spaces = {n for n in netns.list_netns() if n.startswith(prefix) and "." in n}
        for pod in pods:
            meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
            ref = f"{meta['namespace']}/{meta['name']}"
            if ref not in PODS or not status.get("podIP"):
                continue
            ready = all(c.get("ready") for c in status.get("containerStatuses") or [{}])
            if not ready:
                return False
            self.pod_ip[ref] = status["podIP"]
            self.pod_node[ref] = spec["nodeName"]
            found = [n for n in spaces if n.startswith(f"{prefix}{spec['nodeName']}.")
                     and meta["uid"][:8] in n]
            if found:
                self.pod_netns[ref] = found[0]
        for svc in self.get("services", "-A"):
            meta = svc["metadata"]
            if meta["namespace"] in NAMESPACES:
                self.cluster_ip[f"{meta['namespace']}/{meta['name'][2:]}"] = \
                    svc["spec"]["clusterIP"]
        return all(p in self.pod_ip and p in self.pod_netns and p in self.cluster_ip
                   for p in PODS)

    def get(self, *args: str) -> list[dict]:
        out = kubectl(self.kubeconfig, "get", *args, "-o", "json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["items"]

    def apply(self, manifest: str) -> None:
        out = kubectl(self.kubeconfig, "apply", "-f", "-", stdin=manifest)
        assert out.returncode == 0, out.stderr

    def kubectl(self, *args: str) -> str:
        out = kubectl(self.kubeconfig, *args)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def node_netns(self, node: str) -> str:
        return self.lab.ns(node)


# --- probing ------------------------------------------------------------------------------------

def probe(world: World, cells: Iterable[Cell], timeout: float = PROBE_TIMEOUT,
          via_service: bool = True) -> dict[Cell, bool]:
    """Open every cell's connection at once; True where it was answered.

    TCP: the handshake completed (a SYN dropped by policy never completes; a
    refused one fails at once). UDP: the echo came back. Sockets are made
    inside the source pod's namespace, one namespace switch per source pod.
    """
    cells = list(cells)
    by_src: dict[str, list[Cell]] = {}
    for cell in cells:
        by_src.setdefault(cell[0], []).append(cell)
    socks: dict[socket.socket, Cell] = {}
    for src, mine in by_src.items():
        kinds = [socket.SOCK_STREAM if c[3] == "tcp" else socket.SOCK_DGRAM for c in mine]
        made = netns.run_in_netns(world.pod_netns[src],
                                  lambda kinds=kinds: [socket.socket(socket.AF_INET, k)
                                                       for k in kinds])
        socks.update(zip(made, mine))
    result = dict.fromkeys(cells, False)
    sel = selectors.DefaultSelector()
    try:
        for sock, (_, dst, port, proto) in socks.items():
            sock.setblocking(False)
            target = (world.cluster_ip[dst] if via_service else world.pod_ip[dst], port)
            if proto == "tcp":
                code = sock.connect_ex(target)
                if code not in (0, errno.EINPROGRESS):
                    continue
                sel.register(sock, selectors.EVENT_WRITE)
            else:
                with contextlib.suppress(OSError):
                    sock.sendto(b"probe\n", target)
                    sel.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while sel.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                sock = key.fileobj
                cell = socks[sock]
                sel.unregister(sock)
                if cell[3] == "tcp":
                    result[cell] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                else:
                    with contextlib.suppress(OSError):
                        result[cell] = bool(sock.recv(256))
    finally:
        sel.close()
        for sock in socks:
            sock.close()
    return result


def all_cells() -> list[Cell]:
    return [(s, d, port, proto) for s in PODS for d in PODS for port, proto in PORTS]


def render_table(table: dict[Cell, bool], expected: Expect | None = None) -> str:
    """Upstream's layout: one grid per port/protocol, '.' reached, 'X' not, '!' wrong."""
    out = []
    for port, proto in PORTS:
        out.append(f"{port}/{proto}".ljust(6) + " " + " ".join(d.ljust(3) for d in PODS))
        for s in PODS:
            row = []
            for d in PODS:
                ok = table[(s, d, port, proto)]
                mark = "." if ok else "X"
                if expected is not None and expected(s, d, port, proto) != ok:
                    mark = "!"
                row.append(mark.ljust(3))
            out.append(s.ljust(6) + " " + " ".join(row))
    return "\n".join(out)


def assert_table(world: World, expected: Expect, what: str) -> dict[Cell, bool]:
    """Probe until every cell matches (the agents converge within the deadline)."""
    cells = all_cells()
    last: dict[Cell, bool] = {}

    def matches() -> bool:
        nonlocal last
        last = probe(world, cells)
        return all(last[c] == expected(*c) for c in cells)

    try:
        wait_for(matches, CONVERGE, interval=0.05, what=what)
    except AssertionError:
        raise AssertionError(f"{what}: '!' marks a wrong cell\n"
                             f"{render_table(last, expected)}") from None
    print(f"\n{what}\n{render_table(last)}")
    assert_check_agrees(world, expected, what)
    return last


def assert_check_agrees(world: World, expected: Expect, what: str) -> None:
    """``netlab policy check``'s decisions (the library, on every cell; the CLI on two)."""
    from netlab.client import SyncClient, lab_client

    client = SyncClient(lab_client(world.lab.name, timeout=10.0))
    try:
        objects = {k: client.list(k).get("items", [])
                   for k in ("networkpolicies", "pods", "namespaces")}
    finally:
        client.close()
    cluster = inspect.load_cluster(objects)
    wrong = []
    for s, d, port, proto in all_cells():
        src = inspect.Target(world.pod_ip[s], s)
        dst = inspect.Target(world.pod_ip[d], d)
        decided = inspect.check(cluster, src, dst, port, proto, {}).decision.allowed
        if decided != expected(s, d, port, proto):
            wrong.append(f"{s} -> {d} {port}/{proto}: check says {decided}")
    assert not wrong, f"{what}: netlab policy check disagrees:\n" + "\n".join(wrong[:20])


def everything(s: str, d: str, port: int, proto: str) -> bool:
    return True


def ns_of(ref: str) -> str:
    return ref.split("/")[0]


# --- the lab --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(cluster_lab, kubeconfig) -> Any:
    w = World(cluster_lab, kubeconfig)
    w.apply(_manifest())
    try:
        wait_for(w.refresh, 120, interval=0.5, what="9 pods ready with Services")
        assert_table(w, everything, "no policies: everything reaches everything")
        yield w
    finally:
        kubectl(kubeconfig, "delete", "namespace", *NAMESPACES, "--wait=false")


@pytest.fixture
def clean(world: World) -> Any:
    """Each test starts and ends without policies (tests that relabel restore labels)."""
    yield world
    world.kubectl("delete", "networkpolicies", "--all", "-A")


def policy(ns: str, name: str, spec: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "metadata": {"name": name, "namespace": ns}, "spec": spec})


DENY_ALL_X = policy("x", "deny-all", {"podSelector": {}})
POD_A = {"matchLabels": {"pod": "a"}}


# --- the truth tables -----------------------------------------------------------------------------

def test_default_deny_ingress(clean: World) -> None:
    clean.apply(DENY_ALL_X)
    assert_table(clean, lambda s, d, *_: s == d or ns_of(d) != "x", "x/deny-all (ingress)")


def test_default_deny_all_both_directions(clean: World) -> None:
    clean.apply(policy("x", "deny-all", {"podSelector": {},
                                         "policyTypes": ["Ingress", "Egress"]}))
    assert_table(clean, lambda s, d, *_: s == d or "x" not in (ns_of(s), ns_of(d)),
                 "x/deny-all (ingress and egress)")


def test_allow_from_a_pod_selector(clean: World) -> None:
    clean.apply(DENY_ALL_X)
    clean.apply(policy("x", "allow-b", {"podSelector": POD_A, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}))
    assert_table(clean, lambda s, d, *_: s == d or ns_of(d) != "x" or (s, d) == ("x/b", "x/a"),
                 "x/a from x's pod b only")


def test_allow_from_a_namespace_selector(clean: World) -> None:
    clean.apply(policy("x", "from-y", {"podSelector": POD_A, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}))
    assert_table(clean, lambda s, d, *_: s == d or d != "x/a" or ns_of(s) == "y",
                 "x/a from namespace y")


def test_pod_and_namespace_selector_in_one_peer_are_anded(clean: World) -> None:
    clean.apply(policy("x", "and", {"podSelector": POD_A, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}},
         "podSelector": {"matchLabels": {"pod": "b"}}}]}]}))
    assert_table(clean, lambda s, d, *_: s == d or d != "x/a" or s == "y/b",
                 "x/a from y/b only (both selectors in one peer)")


def test_pod_and_namespace_selector_in_two_peers_are_ored(clean: World) -> None:
    clean.apply(policy("x", "or", {"podSelector": POD_A, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}},
        {"podSelector": {"matchLabels": {"pod": "b"}}}]}]}))
    assert_table(clean, lambda s, d, *_: s == d or d != "x/a" or ns_of(s) == "y" or s == "x/b",
                 "x/a from namespace y or x's pod b")


def test_allow_on_one_port(clean: World) -> None:
    clean.apply(policy("x", "p81", {"podSelector": POD_A, "ingress": [
        {"ports": [{"port": 81, "protocol": "TCP"}]}]}))
    assert_table(clean, lambda s, d, port, proto: s == d or d != "x/a" or (port, proto) ==
                 (81, "tcp"), "x/a on 81/tcp only")


def test_allow_on_a_named_port(clean: World) -> None:
    clean.apply(policy("x", "named", {"podSelector": POD_A, "ingress": [
        {"ports": [{"port": "serve-80-udp", "protocol": "UDP"}]}]}))
    assert_table(clean, lambda s, d, port, proto: s == d or d != "x/a" or (port, proto) ==
                 (80, "udp"), "x/a on named port serve-80-udp only")


def test_allow_on_an_end_port_range(clean: World) -> None:
    clean.apply(policy("x", "range", {"podSelector": POD_A, "ingress": [
        {"ports": [{"port": 80, "endPort": 81, "protocol": "TCP"}]}]}))
    assert_table(clean, lambda s, d, port, proto: s == d or d != "x/a" or proto == "tcp",
                 "x/a on 80-81/tcp")


def test_udp_only_rule_does_not_allow_tcp(clean: World) -> None:
    clean.apply(policy("x", "udp", {"podSelector": POD_A, "ingress": [
        {"ports": [{"protocol": "UDP"}]}]}))
    assert_table(clean, lambda s, d, port, proto: s == d or d != "x/a" or proto == "udp",
                 "x/a on UDP only")


def test_egress_to_an_ip_block_with_except(clean: World) -> None:
    yb = clean.pod_ip["y/b"]
    clean.apply(policy("x", "egress-block", {"podSelector": POD_A, "policyTypes": ["Egress"],
                                             "egress": [{"to": [{"ipBlock": {
                                                 "cidr": "10.244.0.0/16",
                                                 "except": [f"{yb}/32"]}}]}]}))
    # Judged after DNAT: x/a reaches y/b's ClusterIP, but the endpoint is excepted.
    assert_table(clean, lambda s, d, *_: s == d or s != "x/a" or d != "y/b",
                 "x/a egress to 10.244.0.0/16 except y/b")


def test_stacked_policies_add_up(clean: World) -> None:
    clean.apply(policy("x", "from-b", {"podSelector": POD_A, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}))
    clean.apply(policy("x", "from-z", {"podSelector": POD_A, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}],
         "ports": [{"port": 80, "protocol": "TCP"}]}]}))
    assert_table(clean, lambda s, d, port, proto: s == d or d != "x/a" or s == "x/b" or (
        ns_of(s) == "z" and (port, proto) == (80, "tcp")), "x/a from x/b, and z on 80/tcp")


def test_a_policy_update_is_enforced(clean: World) -> None:
    clean.apply(policy("x", "allow", {"podSelector": POD_A, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}))
    assert_table(clean, lambda s, d, *_: s == d or d != "x/a" or s == "x/b", "x/a from x/b")
    clean.apply(policy("x", "allow", {"podSelector": POD_A, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"pod": "c"}}}]}]}))
    assert_table(clean, lambda s, d, *_: s == d or d != "x/a" or s == "x/c",
                 "x/a from x/c after the update")


def test_a_pod_label_change(clean: World) -> None:
    clean.apply(policy("x", "from-b", {"podSelector": POD_A, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}))
    try:
        clean.kubectl("label", "pod", "-n", "x", "c", "pod=b", "--overwrite")
        assert_table(clean, lambda s, d, *_: s == d or d != "x/a" or s in ("x/b", "x/c"),
                     "x/a from pods labelled pod=b, x/c relabelled")
        clean.kubectl("label", "pod", "-n", "x", "a", "pod=other", "--overwrite")
        assert_table(clean, everything, "x/a relabelled out of the policy: open again")
    finally:
        kubectl(clean.kubeconfig, "label", "pod", "-n", "x", "c", "pod=c", "--overwrite")
        kubectl(clean.kubeconfig, "label", "pod", "-n", "x", "a", "pod=a", "--overwrite")


def test_a_namespace_label_change(clean: World) -> None:
    clean.apply(policy("x", "from-team", {"podSelector": POD_A, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}))
    assert_table(clean, lambda s, d, *_: s == d or d != "x/a", "x/a from team blue: nobody")
    try:
        clean.kubectl("label", "namespace", "z", "team=blue")
        assert_table(clean, lambda s, d, *_: s == d or d != "x/a" or ns_of(s) == "z",
                     "x/a from team blue: z labelled")
    finally:
        kubectl(clean.kubeconfig, "label", "namespace", "z", "team-")


def test_deletion_restores_access(clean: World) -> None:
    clean.apply(DENY_ALL_X)
    assert_table(clean, lambda s, d, *_: s == d or ns_of(d) != "x", "x/deny-all")
    clean.kubectl("delete", "networkpolicy", "-n", "x", "deny-all")
    assert_table(clean, everything, "x/deny-all deleted")


def test_egress_deny_at_the_client_even_when_the_server_allows(clean: World) -> None:
    clean.apply(policy("y", "deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]}))
    clean.apply(policy("x", "allow-all", {"podSelector": {}, "ingress": [{}]}))
    assert_table(clean, lambda s, d, *_: s == d or ns_of(s) != "y",
                 "y may send nowhere, though x allows everyone")


# --- tools ----------------------------------------------------------------------------------------

def test_trace_names_the_dropping_policy_and_check_agrees(clean: World) -> None:
    clean.apply(DENY_ALL_X)
    assert_table(clean, lambda s, d, *_: s == d or ns_of(d) != "x", "x/deny-all")
    lab = clean.lab.name
    out = netlab_cli("trace", "--lab", lab, "y/a", "x/b", "--port", "80", "--proto", "tcp",
                     "--no-reply", timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    node = clean.pod_node["x/b"]
    assert f"dropped: NetworkPolicy x/deny-all (ingress) at {node}" in out.stdout, out.stdout
    check = netlab_cli("policy", "check", "--lab", lab, "y/a", "svc/x/s-b", "80/tcp")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "denied: NetworkPolicy x/deny-all (ingress) isolates x/b" in check.stdout, \
        check.stdout
    allowed = netlab_cli("policy", "check", "--lab", lab, "x/b", "y/a", "81/udp")
    assert allowed.returncode == 0 and ": allowed" in allowed.stdout, allowed.stdout
    show = netlab_cli("policy", "show", "--lab", lab, node)
    assert show.returncode == 0, show.stderr
    assert "# isolated for ingress: " in show.stdout and "x/b" in show.stdout
    assert "NetworkPolicy x/deny-all (ingress) isolates x/b" in show.stdout


def test_a_table_deleted_behind_the_agents_back_is_rebuilt_in_full(clean: World) -> None:
    """Injected failure: the table goes (an operator's ``nft delete table``), so the
    agent's next partial transaction fails; it then rewrites the table in full."""
    clean.apply(DENY_ALL_X)
    assert_table(clean, lambda s, d, *_: s == d or ns_of(d) != "x", "x/deny-all")
    node = clean.pod_node["x/a"]
    log = log_dir(clean.lab.name) / f"netpol-{node}.log"
    failed_before = log.read_text().count("partial sync failed")
    assert nft.delete_table(clean.node_netns(node), ruleset.TABLE)
    clean.apply(policy("y", "deny-all", {"podSelector": {}}))
    wait_for(lambda: log.read_text().count("partial sync failed") > failed_before, CONVERGE,
             interval=0.1, what="the agent's partial sync to fail")
    assert_table(clean, lambda s, d, *_: s == d or ns_of(d) not in ("x", "y"),
                 "x/deny-all and y/deny-all after the rebuild")


def test_established_connections_survive_a_new_deny(clean: World) -> None:
    """The documented behaviour: a connection allowed when it opened keeps flowing
    (conntrack) after a policy that would refuse it; new ones are refused."""
    sock = netns.run_in_netns(clean.pod_netns["y/a"],
                              lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    with sock:
        sock.settimeout(5)
        sock.connect((clean.cluster_ip["x/a"], 80))
        reader = sock.makefile("rb")
        sock.sendall(b"before\n")
        assert b"echo=before" in reader.readline()
        clean.apply(DENY_ALL_X)
        wait_for(lambda: not probe(clean, [("y/a", "x/a", 80, "tcp")])[("y/a", "x/a", 80,
                                                                       "tcp")],
                 CONVERGE, what="new connections to x/a refused")
        sock.sendall(b"after\n")
        assert b"echo=after" in reader.readline()


def _pinned_pod(ns: str, name: str, node: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}, namespace: "{ns}", labels: {{pod: {name}}}}}
        spec:
          nodeName: {node}
          terminationGracePeriodSeconds: 1
          containers: [{{name: echo, image: netlab/echo, args: ["--port", "80"]}}]
        """)


def _connects(world: World, src: str, ip: str, port: int = 80,
              timeout: float = 0.3) -> str | None:
    """``connected``, ``refused`` (the packet got in: nothing listened yet) or None."""
    sock = netns.run_in_netns(world.pod_netns[src],
                              lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect((ip, port))
        except ConnectionRefusedError:
            return "refused"
        except OSError:
            return None
    return "connected"


def test_a_new_pod_is_isolated_before_the_agent_knows_it(clean: World) -> None:
    """x/deny-all exists before x/d does. With the node's agent frozen (SIGSTOP), so it
    cannot learn the new pods at all, x/d (selected) and y/d (selected by nothing)
    get no traffic: an address of the pod subnet the agent has not compiled is
    dropped. Once the agent runs again, y/d opens and x/d stays isolated."""
    clean.apply(DENY_ALL_X)
    assert_table(clean, lambda s, d, *_: s == d or ns_of(d) != "x", "x/deny-all")
    node = clean.pod_node["x/a"]
    lab = clean.lab.name
    stopped = netlab_cli("fault", "kill", "--lab", lab, "-s", "STOP", "netpol", node)
    assert stopped.returncode == 0, stopped.stderr
    try:
        clean.apply(_pinned_pod("x", "d", node) + "---\n" + _pinned_pod("y", "d", node))

        def addresses() -> dict[str, str] | None:
            pods = {f"{p['metadata']['namespace']}/d": p for p in clean.get("pods", "-A")
                    if p["metadata"]["name"] == "d"}
            ready = {ref: p["status"]["podIP"] for ref, p in pods.items()
                     if (p.get("status") or {}).get("podIP") and all(
                         c.get("ready") for c in p["status"].get("containerStatuses") or [{}])
                     and p["status"].get("containerStatuses")}
            return ready if len(ready) == 2 else None

        ips = wait_for(addresses, 60, interval=0.2, what="x/d and y/d running")
        answered = [(ref, r) for _ in range(3) for ref, ip in ips.items()
                    if (r := _connects(clean, "y/a", ip))]
        assert not answered, f"a pod the frozen agent never saw answered: {answered}"
    finally:
        resumed = netlab_cli("fault", "kill", "--lab", lab, "-s", "CONT", "netpol", node)
        assert resumed.returncode == 0, resumed.stderr
    try:
        wait_for(lambda: _connects(clean, "y/a", ips["y/d"]) == "connected", CONVERGE,
                 what="y/d open once the agent has compiled it")
        assert all(_connects(clean, "y/a", ips["x/d"]) is None for _ in range(3)), \
            "x/d is selected by x/deny-all"
        check = netlab_cli("policy", "check", "--lab", lab, "y/a", "x/d", "80/tcp")
        assert check.returncode == 1 and "x/deny-all" in check.stdout, check.stdout
    finally:
        kubectl(clean.kubeconfig, "delete", "pod", "-n", "x", "d", "--wait=false")
        kubectl(clean.kubeconfig, "delete", "pod", "-n", "y", "d", "--wait=false")


def test_kill_9_of_the_agent_leaves_no_window(clean: World) -> None:
    clean.apply(DENY_ALL_X)
    assert_table(clean, lambda s, d, *_: s == d or ns_of(d) != "x", "x/deny-all")
    node = clean.pod_node["x/a"]
    lab = clean.lab.name
    name = f"netpol-{node}"
    before = read_json(components_path(lab))[name]
    log = log_dir(lab) / f"{name}.log"
    syncs_before = log.read_text().count("full sync ok")
    seen: list[bool] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            seen.append(probe(clean, [("y/a", "x/a", 80, "tcp"), ("y/b", "x/a", 81, "udp")],
                              timeout=0.3) != {("y/a", "x/a", 80, "tcp"): False,
                                               ("y/b", "x/a", 81, "udp"): False})

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        out = netlab_cli("fault", "kill", "--lab", lab, "netpol", node)
        assert out.returncode == 0, out.stderr
        # The table outlives its agent: the kernel keeps enforcing it.
        assert nft.list_table(clean.node_netns(node), ruleset.TABLE) is not None
        wait_for(lambda: (read_json(components_path(lab)) or {}).get(name, {})
                 .get("restarts", 0) > before["restarts"], 30, interval=0.1,
                 what="the supervisor to restart the agent")
        wait_for(lambda: log.read_text().count("full sync ok") > syncs_before, 30, interval=0.1,
                 what="the restarted agent's first sync")
        probed = len(seen)
        wait_for(lambda: len(seen) >= probed + 3, 30, interval=0.05,
                 what="a few more probes against the restarted agent's table")
    finally:
        stop.set()
        thread.join()
    assert seen and not any(seen), "a probe got through while the agent was down or restarting"
    assert_table(clean, lambda s, d, *_: s == d or ns_of(d) != "x", "x/deny-all after restart")
    # Seconds under default-deny by now, past three failed probes: the kubelet's
    # readiness probes come from the node, which always reaches its pods.
    for pod in clean.get("pods", "-n", "x"):
        if pod["metadata"]["name"] in NAMES:
            ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
            assert ready["Ready"] == "True", pod["metadata"]["name"]
