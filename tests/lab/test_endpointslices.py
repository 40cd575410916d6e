"""EndpointSlices end to end: kubectl sees the controller's slices follow pods, and the
proxies route by them.

One cluster lab serves every test: a Deployment of ``netlab/echo`` pods and one pod
("flip") whose readiness a file on the host decides, behind a Service. What is
asserted is what a user sees: ``kubectl get endpointslices`` columns, the slice's
labels, owner and conditions, 422s naming the field, and traffic through the
ClusterIP reaching only ready pods.
"""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest
from labkit import KUBECTL, kubectl, netlab_cli, pod_visible_dir, wait_for

from netlab.kernel import netns

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")
SELECT = "kubernetes.io/service-name=eps"


def _manifest(flag: Path) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: eps}}
        spec:
          replicas: 2
          selector: {{matchLabels: {{app: eps}}}}
          template:
            metadata: {{labels: {{app: eps}}}}
            spec:
              containers:
              - name: echo
                image: netlab/echo
                ports: [{{name: web, containerPort: 8080}}]
                readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: flip, labels: {{app: eps}}}}
        spec:
          containers:
          - name: echo
            image: netlab/echo
            ports: [{{name: web, containerPort: 8080}}]
            readinessProbe:
              exec: {{command: [test, "!", -e, "/flag/{flag.name}"]}}
              periodSeconds: 1
              failureThreshold: 1
            volumeMounts: [{{name: flag, mountPath: /flag, readOnly: true}}]
          volumes:
          - name: flag
            hostPath: {{path: {flag.parent}, type: Directory}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: eps, labels: {{team: lab}}}}
        spec:
          selector: {{app: eps}}
          ports: [{{name: http, port: 80, targetPort: web}}]
        """)


@pytest.fixture(scope="module")
def eps(cluster_lab, kubeconfig):
    with pod_visible_dir() as shared:
        yield from _eps(kubeconfig, shared / "unready")


def _eps(kubeconfig: Path, flag: Path):
    manifest = _manifest(flag)
    try:
        applied = kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
        assert applied.returncode == 0, applied.stderr
        wait_for(lambda: _ready_count(kubeconfig) == 3, 90, interval=0.3,
                 what="3 ready endpoints in the eps slices")
        yield {"flag": flag}
    finally:
        flag.unlink(missing_ok=True)
        kubectl(kubeconfig, "delete", "-f", "-", "--wait=false", stdin=manifest)


def _slices(kubeconfig: Path) -> list[dict]:
    out = kubectl(kubeconfig, "get", "endpointslices", "-l", SELECT, "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["items"]


def _endpoints(kubeconfig: Path) -> dict[str, dict]:
    return {e["targetRef"]["name"]: e for s in _slices(kubeconfig)
            for e in s.get("endpoints") or []}


def _ready_count(kubeconfig: Path) -> int:
    return sum(1 for e in _endpoints(kubeconfig).values() if e["conditions"].get("ready"))


def test_kubectl_lists_the_service_slice_with_its_columns_labels_and_owner(cluster_lab, kubeconfig,
                                                                           eps):
    [slice_] = _slices(kubeconfig)
    meta = slice_["metadata"]
    assert meta["name"].startswith("eps-") and len(meta["name"]) == len("eps-") + 5
    assert meta["labels"] == {"team": "lab", "kubernetes.io/service-name": "eps",
                              "endpointslice.kubernetes.io/managed-by":
                              "endpointslice-controller.k8s.io"}
    [owner] = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Service", "eps", True)
    assert slice_["addressType"] == "IPv4"
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    for endpoint in slice_["endpoints"]:
        assert endpoint["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert endpoint["nodeName"] and endpoint["targetRef"]["kind"] == "Pod"

    table = kubectl(kubeconfig, "get", "endpointslices", "-l", SELECT)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    cells = row.split()
    addresses = sorted(e["addresses"][0] for e in slice_["endpoints"])
    assert cells[:3] == [meta["name"], "IPv4", "8080"]
    assert sorted(cells[3].split(",")) == addresses

    resources = kubectl(kubeconfig, "api-resources", "--api-group=discovery.k8s.io")
    assert "endpointslices" in resources.stdout and "discovery.k8s.io/v1" in resources.stdout
    mine = netlab_cli("get", "--lab", cluster_lab.name, "endpointslices", "-l", SELECT)
    assert mine.returncode == 0, mine.stderr
    mine_header, mine_row = mine.stdout.strip().splitlines()
    assert mine_header.split() == header.split() and mine_row.split()[:4] == cells[:4]


def test_a_pod_going_unready_flips_its_conditions_and_leaves_the_proxy(cluster_lab, kubeconfig,
                                                                       eps):
    eps["flag"].touch()
    try:
        wait_for(lambda: _endpoints(kubeconfig)["flip"]["conditions"]["ready"] is False, 30,
                 interval=0.3, what="flip's endpoint to turn not ready")
        flip = _endpoints(kubeconfig)["flip"]
        assert flip["conditions"] == {"ready": False, "serving": False, "terminating": False}
        cluster_ip = json.loads(kubectl(kubeconfig, "get", "svc", "eps", "-o", "json")
                                .stdout)["spec"]["clusterIP"]
        ns = _pod_ns(cluster_lab, json.loads(kubectl(kubeconfig, "get", "pod", "flip", "-o",
                                                     "json").stdout))

        def answered_by() -> set[str]:
            seen = set()
            for _ in range(12):
                try:
                    seen.add(_echo_pod(ns, cluster_ip, 80))
                except OSError:
                    return set()
            return seen
        seen = wait_for(lambda: (s := answered_by()) and "flip" not in s and len(s) == 2 and s,
                        30, interval=0.3, what="the proxies to route to the 2 ready pods only")
        assert all(name.startswith("eps-") for name in seen)
    finally:
        eps["flag"].unlink(missing_ok=True)
    wait_for(lambda: _endpoints(kubeconfig)["flip"]["conditions"]["ready"] is True, 30,
             interval=0.3, what="flip's endpoint to be ready again")


def _pod_ns(lab, pod: dict) -> str:
    """The pod's network namespace: the runtime names it <lab>-<node>.<pod>-<uid>."""
    prefix = f"{lab.name}-{pod['spec']['nodeName']}."
    uid = pod["metadata"]["uid"][:8]
    [found] = [n for n in netns.list_netns() if n.startswith(prefix) and uid in n]
    return found


def _echo_pod(ns: str, ip: str, port: int) -> str:
    sock = netns.run_in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    with sock:
        sock.settimeout(1)
        sock.connect((ip, port))
        sock.sendall(b"hi\n")
        line = sock.makefile().readline()
    return dict(p.split("=", 1) for p in line.split() if "=" in p)["pod"]


def test_scaling_changes_the_slice_in_place(kubeconfig, eps):
    before = {s["metadata"]["name"] for s in _slices(kubeconfig)}
    scaled = kubectl(kubeconfig, "scale", "deployment/eps", "--replicas=4")
    assert scaled.returncode == 0, scaled.stderr
    wait_for(lambda: _ready_count(kubeconfig) == 5, 60, interval=0.3,
             what="5 ready endpoints after scaling up")
    assert {s["metadata"]["name"] for s in _slices(kubeconfig)} == before
    scaled = kubectl(kubeconfig, "scale", "deployment/eps", "--replicas=1")
    assert scaled.returncode == 0, scaled.stderr
    wait_for(lambda: len(_endpoints(kubeconfig)) == 2, 60, interval=0.3,
             what="the slice to shrink to 2 endpoints")


def test_invalid_slices_get_422_naming_the_field(kubeconfig, eps):
    bad = textwrap.dedent("""\
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: hand-made, labels: {kubernetes.io/service-name: nothing}}
        addressType: IPv5
        endpoints:
        - addresses: ["10.244.9.9"]
        ports: [{name: Bad_Name, port: 80}]
        """)
    out = kubectl(kubeconfig, "create", "-f", "-", stdin=bad)
    assert out.returncode != 0
    assert 'addressType: Unsupported value: "IPv5"' in out.stderr
    assert "ports[0].name: Invalid value" in out.stderr
    good = bad.replace("IPv5", "IPv4").replace("Bad_Name", "http")
    created = kubectl(kubeconfig, "create", "-f", "-", stdin=good)
    assert created.returncode == 0, created.stderr
    try:
        changed = kubectl(kubeconfig, "patch", "endpointslice", "hand-made", "--type=merge",
                          "-p", '{"addressType": "IPv6"}')
        assert changed.returncode != 0
        assert "addressType: Invalid value" in changed.stderr
        assert "field is immutable" in changed.stderr
    finally:
        kubectl(kubeconfig, "delete", "endpointslice", "hand-made")


def test_hand_written_endpoints_are_mirrored_and_routed(cluster_lab, kubeconfig, eps):
    flip = json.loads(kubectl(kubeconfig, "get", "pod", "flip", "-o", "json").stdout)
    manual = textwrap.dedent(f"""\
        apiVersion: v1
        kind: Service
        metadata: {{name: manual}}
        spec:
          ports: [{{name: http, port: 80, targetPort: 8080}}]
        ---
        apiVersion: v1
        kind: Endpoints
        metadata: {{name: manual}}
        subsets:
        - addresses: [{{ip: "{flip['status']['podIP']}"}}]
          ports: [{{name: http, port: 8080}}]
        """)
    created = kubectl(kubeconfig, "apply", "-f", "-", stdin=manual)
    assert created.returncode == 0, created.stderr
    try:
        def mirrored() -> list[dict]:
            out = kubectl(kubeconfig, "get", "endpointslices", "-o", "json", "-l",
                          "kubernetes.io/service-name=manual")
            return json.loads(out.stdout)["items"] if out.returncode == 0 else []
        [slice_] = wait_for(mirrored, 30, interval=0.3, what="the mirrored slice")
        assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
            "endpointslicemirroring-controller.k8s.io"
        assert slice_["endpoints"][0]["addresses"] == [flip["status"]["podIP"]]
        cluster_ip = json.loads(kubectl(kubeconfig, "get", "svc", "manual", "-o", "json")
                                .stdout)["spec"]["clusterIP"]
        ns = _pod_ns(cluster_lab, flip)

        def answered() -> str | None:
            try:
                return _echo_pod(ns, cluster_ip, 80)
            except OSError:
                return None
        assert wait_for(answered, 30, interval=0.3, what="the mirrored endpoint to answer") \
            == "flip"
    finally:
        kubectl(kubeconfig, "delete", "-f", "-", stdin=manual)


def test_pods_reach_the_api_server_through_the_kubernetes_slice(cluster_lab, kubeconfig, eps):
    out = kubectl(kubeconfig, "get", "endpointslice", "kubernetes", "-o", "json")
    assert out.returncode == 0, out.stderr
    k8s = json.loads(out.stdout)
    assert k8s["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
    [port] = k8s["ports"]
    assert (port["name"], port["protocol"]) == ("https", "TCP")
    cluster_ip = json.loads(kubectl(kubeconfig, "get", "svc", "kubernetes", "-o", "json")
                            .stdout)["spec"]["clusterIP"]
    flip = json.loads(kubectl(kubeconfig, "get", "pod", "flip", "-o", "json").stdout)
    ns = _pod_ns(cluster_lab, flip)

    def connects() -> bool:
        sock = netns.run_in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        with sock:
            sock.settimeout(1)
            try:
                sock.connect((cluster_ip, 443))
            except OSError:
                return False
        return True
    wait_for(connects, 30, interval=0.3, what="the kubernetes Service to accept connections")


def test_deleting_the_service_deletes_its_slices(kubeconfig, eps):
    deleted = kubectl(kubeconfig, "delete", "svc", "eps")
    assert deleted.returncode == 0, deleted.stderr
    wait_for(lambda: not _slices(kubeconfig), 30, interval=0.3,
             what="the slices to go with their Service")
