"""Cluster DNS end to end: ``dig`` and ``nslookup`` inside pods, over UDP and TCP,
through the kube-dns Service to the lab's DNS component.

One cluster lab serves every test. Namespace ``dns-a`` holds a ClusterIP Service
``web`` (a Deployment of ``netlab/echo``), a headless Service ``db`` with a
StatefulSet ``db`` whose pods' readiness a host file decides, an ExternalName
Service ``ext``, and the client pods; namespace ``dns-b`` holds a client that
reaches ``web`` by ``web.dns-a``. What is asserted is what a user sees: answers,
answer codes, and each pod's resolv.conf against what upstream's kubelet writes.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from labkit import KUBECTL, kubectl, netlab_cli, pod_visible_dir, wait_for

from netlab.lab import faults

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")
ZONE = "cluster.local"
DNS_IP = "10.96.0.10"


def _manifest(flags: Path) -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Namespace
        metadata: {{name: dns-a}}
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {{name: dns-b}}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web, namespace: dns-a}}
        spec:
          replicas: 2
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              containers:
              - {{name: echo, image: netlab/echo, ports: [{{name: http, containerPort: 8080}}]}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: web, namespace: dns-a}}
        spec:
          selector: {{app: web}}
          ports: [{{name: http, port: 80, targetPort: http}}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: db, namespace: dns-a}}
        spec:
          clusterIP: None
          selector: {{app: db}}
          ports: [{{name: http, port: 8080}}]
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {{name: db, namespace: dns-a}}
        spec:
          serviceName: db
          replicas: 2
          selector: {{matchLabels: {{app: db}}}}
          template:
            metadata: {{labels: {{app: db}}}}
            spec:
              containers:
              - name: echo
                image: netlab/echo
                ports: [{{name: http, containerPort: 8080}}]
                readinessProbe:
                  exec: {{command: [sh, -c, "test ! -e /flags/$(hostname)"]}}
                  periodSeconds: 1
                  failureThreshold: 1
                volumeMounts: [{{name: flags, mountPath: /flags, readOnly: true}}]
              volumes:
              - name: flags
                hostPath: {{path: {flags}, type: Directory}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: ext, namespace: dns-a}}
        spec: {{type: ExternalName, externalName: db.example.org}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: client, namespace: dns-a}}
        spec:
          containers: [{{name: c, image: netlab/echo}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: client, namespace: dns-b}}
        spec:
          containers: [{{name: c, image: netlab/echo}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: host-dns, namespace: dns-b}}
        spec:
          dnsPolicy: Default
          containers: [{{name: c, image: netlab/echo}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: own-dns, namespace: dns-b}}
        spec:
          dnsPolicy: None
          dnsConfig:
            nameservers: [192.168.100.9]
            searches: [lab.example]
            options: [{{name: ndots, value: "2"}}, {{name: edns0}}]
          containers: [{{name: c, image: netlab/echo}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: merged-dns, namespace: dns-b}}
        spec:
          hostname: box
          subdomain: db
          dnsConfig:
            nameservers: [192.168.100.9]
            searches: [lab.example]
            options: [{{name: ndots, value: "1"}}]
          containers: [{{name: c, image: netlab/echo}}]
        """)


@pytest.fixture(scope="module")
def dns_lab(cluster_lab, kubeconfig):
    with pod_visible_dir() as flags:
        manifest = _manifest(flags)
        try:
            applied = kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
            assert applied.returncode == 0, applied.stderr
            for ns in ("dns-a", "dns-b"):
                ready = kubectl(kubeconfig, "wait", "-n", ns, "--for=condition=Ready", "pod",
                                "--all", "--timeout=120s", timeout=150)
                assert ready.returncode == 0, ready.stderr
            yield {"lab": cluster_lab, "kubeconfig": kubeconfig, "flags": flags}
        finally:
            kubectl(kubeconfig, "delete", "namespace", "dns-a", "dns-b", "--wait=false")


def _in_pod(dns_lab, namespace: str, pod: str, script: str) -> str:
    out = netlab_cli("exec", "--lab", dns_lab["lab"].name, "-n", namespace, pod, "--",
                     "sh", "-c", script)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _dig(dns_lab, namespace: str, *queries: str) -> list[list[str]]:
    """``dig +short`` for each query (one line of dig arguments), in one exec."""
    script = "; ".join(f"dig +short +time=2 +tries=2 {q}; echo ==" for q in queries)
    blocks = _in_pod(dns_lab, namespace, "client", script).split("==\n")
    return [sorted(b.split()) for b in blocks[:len(queries)]]


def _get(dns_lab, *args: str) -> dict:
    out = kubectl(dns_lab["kubeconfig"], "get", *args, "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_kube_dns_service_is_published_on_the_tenth_address(dns_lab):
    svc = _get(dns_lab, "-n", "kube-system", "service", "kube-dns")
    assert svc["spec"]["clusterIP"] == DNS_IP
    assert {(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]} == {
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")}
    resolv = _in_pod(dns_lab, "dns-a", "client", "cat /etc/resolv.conf")
    assert f"nameserver {DNS_IP}" in resolv.splitlines()
    # The metrics port, through the same Service, counts the queries pods made.
    _dig(dns_lab, "dns-a", f"kubernetes.default.svc.{ZONE}")
    metrics = _in_pod(dns_lab, "dns-a", "client", f"curl -s --max-time 5 http://{DNS_IP}:9153/metrics")
    counts = [float(line.split()[-1]) for line in metrics.splitlines()
              if line.startswith("coredns_dns_requests_total{") and 'type="A"' in line]
    assert counts and sum(counts) >= 1, metrics


def test_services_resolve_by_short_name_across_namespaces_and_over_tcp(dns_lab):
    web_ip = _get(dns_lab, "-n", "dns-a", "service", "web")["spec"]["clusterIP"]
    same_ns = _dig(dns_lab, "dns-a", "+search web", "+search +tcp web",
                   "+search kubernetes.default", f"kubernetes.default.svc.{ZONE}")
    assert same_ns == [[web_ip], [web_ip], ["10.96.0.1"], ["10.96.0.1"]]
    other_ns = _dig(dns_lab, "dns-b", "+search web.dns-a", "+search +tcp web.dns-a.svc",
                    "+search web")
    assert other_ns == [[web_ip], [web_ip], []]  # plain "web" is dns-b's, and there is none
    looked_up = _in_pod(dns_lab, "dns-b", "client", "nslookup web.dns-a")
    assert f"web.dns-a.svc.{ZONE}" in looked_up and web_ip in looked_up


def test_curl_reaches_a_service_through_the_search_path(dns_lab):
    out = _in_pod(dns_lab, "dns-a", "client", "curl -s --max-time 5 http://web/hello")
    answer = json.loads(out)
    assert answer["pod"].startswith("web-") and answer["path"] == "/hello", out


def test_headless_service_answers_one_address_per_ready_pod(dns_lab):
    pods = {p["metadata"]["name"]: p["status"]["podIP"]
            for p in _get(dns_lab, "-n", "dns-a", "pods", "-l", "app=db")["items"]}
    assert set(pods) == {"db-0", "db-1"}
    name = f"db.dns-a.svc.{ZONE}"
    [udp, tcp, db0, srv] = _dig(dns_lab, "dns-a", name, f"+tcp {name}",
                                f"db-0.db.dns-a.svc.{ZONE}", f"SRV _http._tcp.{name}")
    assert udp == tcp == sorted(pods.values())
    assert db0 == [pods["db-0"]]
    # priority weight port target, one per endpoint, targets named by hostname
    assert sorted(srv) == sorted(["0", "0", "50", "50", "8080", "8080",
                                  f"db-0.{name}.", f"db-1.{name}."]), srv
    flag = dns_lab["flags"] / "db-1"
    flag.touch()
    try:
        wait_for(lambda: _dig(dns_lab, "dns-a", name) == [[pods["db-0"]]], 30, interval=0.5,
                 what="db-1 to leave the headless answer once it is not ready")
    finally:
        flag.unlink()
    wait_for(lambda: _dig(dns_lab, "dns-a", name) == [sorted(pods.values())], 30, interval=0.5,
             what="db-1 to come back")


def test_ptr_pod_records_external_names_and_outside_names(dns_lab):
    web_ip = _get(dns_lab, "-n", "dns-a", "service", "web")["spec"]["clusterIP"]
    client_ip = _get(dns_lab, "-n", "dns-a", "pod", "client")["status"]["podIP"]
    dashed = client_ip.replace(".", "-")
    [ptr, pod_a, cname] = _dig(dns_lab, "dns-a", f"-x {web_ip}", f"{dashed}.dns-a.pod.{ZONE}",
                               f"CNAME ext.dns-a.svc.{ZONE}")
    assert ptr == [f"web.dns-a.svc.{ZONE}."]
    assert pod_a == [client_ip]
    assert cname == ["db.example.org."]
    status = _in_pod(dns_lab, "dns-a", "client",
                     f"dig +time=2 +tries=1 nothing.dns-a.svc.{ZONE} | grep -o 'status: [A-Z]*';"
                     "dig +time=2 +tries=1 example.com | grep -o 'status: [A-Z]*'")
    # Unknown in the zone: NXDOMAIN. Outside it, with no upstream: REFUSED, nothing sent out.
    assert status.split() == ["status:", "NXDOMAIN", "status:", "REFUSED"]


def _resolv(dns_lab, namespace: str, pod: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in _in_pod(dns_lab, namespace, pod, "cat /etc/resolv.conf").splitlines():
        key, *values = line.split()
        fields.setdefault(key, []).extend(values)
    return fields


def _host_search() -> list[str]:
    search: list[str] = []
    for line in Path("/etc/resolv.conf").read_text().splitlines():
        words = line.split()
        if words and words[0] in ("search", "domain"):
            search = words[1:]
    return search


def test_each_dns_policy_gets_the_resolv_conf_upstream_writes(dns_lab):
    host = Path("/etc/resolv.conf").read_text()
    cluster = _resolv(dns_lab, "dns-b", "client")
    assert cluster == {"search": ["dns-b.svc.cluster.local", "svc.cluster.local",
                                  "cluster.local", *_host_search()],
                       "nameserver": [DNS_IP], "options": ["ndots:5"]}
    default = _resolv(dns_lab, "dns-b", "host-dns")
    assert default.get("nameserver", []) == [
        w.split()[1] for w in host.splitlines() if w.startswith("nameserver")][:3]
    assert _resolv(dns_lab, "dns-b", "own-dns") == {
        "search": ["lab.example"], "nameserver": ["192.168.100.9"],
        "options": ["ndots:2", "edns0"]}
    merged = _resolv(dns_lab, "dns-b", "merged-dns")
    assert merged["nameserver"] == [DNS_IP, "192.168.100.9"]
    assert merged["search"][:3] == ["dns-b.svc.cluster.local", "svc.cluster.local",
                                    "cluster.local"] and merged["search"][-1] == "lab.example"
    assert merged["options"] == ["ndots:1"]
    hosts = _in_pod(dns_lab, "dns-b", "merged-dns", "tail -1 /etc/hosts").split()
    assert hosts[1:] == [f"box.db.dns-b.svc.{ZONE}", "box"]


def test_netlab_dns_lookup_shows_the_search_path(dns_lab):
    web_ip = _get(dns_lab, "-n", "dns-a", "service", "web")["spec"]["clusterIP"]
    out = netlab_cli("dns", "lookup", "--lab", dns_lab["lab"].name, "web", "-n", "dns-a")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].split() == [f"web.dns-a.svc.{ZONE}.", "NOERROR"]
    assert lines[-1].split()[-2:] == ["A", web_ip]
    missing = netlab_cli("dns", "lookup", "--lab", dns_lab["lab"].name, "nope", "-n", "dns-a")
    assert missing.returncode == 1
    tried = [line.split()[0] for line in missing.stdout.splitlines()[1:]]
    assert tried == [f"nope.dns-a.svc.{ZONE}.", f"nope.svc.{ZONE}.", f"nope.{ZONE}.", "nope."]
    as_json = netlab_cli("dns", "lookup", "--lab", dns_lab["lab"].name, "db", "-n", "dns-a",
                         "--type", "SRV", "-o", "json")
    report = json.loads(as_json.stdout)
    assert report["nameserver"] == DNS_IP and report["search"][0] == f"dns-a.svc.{ZONE}"
    assert [a["rcode"] for a in report["attempts"]] == ["NOERROR"]
    # As CoreDNS: SRV of the Service name itself lists every port of every endpoint.
    assert sorted(a.split()[-1] for a in report["attempts"][0]["answers"]) == [
        f"db-0.db.dns-a.svc.{ZONE}.", f"db-1.db.dns-a.svc.{ZONE}."]


def test_answers_resume_after_kill_9_without_stale_records(dns_lab):
    kubeconfig, lab = dns_lab["kubeconfig"], dns_lab["lab"]
    made = kubectl(kubeconfig, "create", "service", "clusterip", "gone", "-n", "dns-a",
                   "--tcp=80:8080")
    assert made.returncode == 0, made.stderr
    gone = f"gone.dns-a.svc.{ZONE}"
    wait_for(lambda: _dig(dns_lab, "dns-a", gone)[0] != [], 30, interval=0.3,
             what="the new Service to resolve")
    faults.kill_component(lab.name, "dns")
    deleted = kubectl(kubeconfig, "delete", "service", "gone", "-n", "dns-a")
    assert deleted.returncode == 0, deleted.stderr
    web_ip = _get(dns_lab, "-n", "dns-a", "service", "web")["spec"]["clusterIP"]
    wait_for(lambda: _dig(dns_lab, "dns-a", f"web.dns-a.svc.{ZONE}") == [[web_ip]], 60,
             interval=0.5, what="answers after the supervisor restarted the DNS component")
    assert _dig(dns_lab, "dns-a", gone) == [[]]


def test_netlab_trace_follows_a_dns_query_through_kube_proxy_and_back(dns_lab):
    web_ip = _get(dns_lab, "-n", "dns-a", "service", "web")["spec"]["clusterIP"]
    out = netlab_cli("trace", "--lab", dns_lab["lab"].name, "-n", "dns-a", "pod/client", "dns/web",
                     "-o", "json")
    assert out.returncode == 0, out.stderr
    trace = json.loads(out.stdout)
    assert trace["dst"]["query"] == f"web.dns-a.svc.{ZONE}."
    assert trace["verdict"]["result"] == "delivered"
    assert trace["dnsAnswer"]["rcode"] == "NOERROR"
    assert trace["dnsAnswer"]["records"][0].split()[-2:] == ["A", web_ip]
    forward = [h for h in trace["hops"] if h["path"] == "forward"]
    assert any(c.get("kind") == "dnat" and c.get("to", "").endswith(":53")
               for h in forward for c in h.get("changes") or []), forward
    assert forward[-1]["node"] == "control-plane"  # where the DNS component listens


def test_answers_continue_while_the_api_server_is_down_and_catch_up_after(dns_lab):
    kubeconfig, lab = dns_lab["kubeconfig"], dns_lab["lab"]
    web_ip = _get(dns_lab, "-n", "dns-a", "service", "web")["spec"]["clusterIP"]
    faults.kill_component(lab.name, "apiserver")
    # Whatever the API server's state, the DNS server answers from what it knows.
    assert _dig(dns_lab, "dns-a", f"web.dns-a.svc.{ZONE}", f"+tcp web.dns-a.svc.{ZONE}") == \
        [[web_ip], [web_ip]]
    wait_for(lambda: kubectl(kubeconfig, "get", "--raw", "/readyz").returncode == 0, 60,
             interval=0.3, what="the API server to come back")
    made = kubectl(kubeconfig, "create", "service", "clusterip", "late", "-n", "dns-a",
                   "--tcp=80:8080")
    assert made.returncode == 0, made.stderr
    late_ip = _get(dns_lab, "-n", "dns-a", "service", "late")["spec"]["clusterIP"]
    wait_for(lambda: _dig(dns_lab, "dns-a", f"late.dns-a.svc.{ZONE}") == [[late_ip]], 60,
             interval=0.3, what="a Service made after the restart to resolve")


def _complete(*words: str) -> list[str]:
    """What bash completion offers after ``netlab WORDS``."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "_NETLAB_COMPLETE": "bash_complete",
           "COMP_WORDS": " ".join(("netlab", *words)), "COMP_CWORD": str(len(words))}
    out = subprocess.run([sys.executable, "-m", "netlab.cli.main"], env=env, text=True,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if "," in line]


def test_shell_completion_offers_the_labs_nodes_pods_and_services(dns_lab):
    lab = dns_lab["lab"].name
    assert lab in _complete("down", "")
    assert {"control-plane", "worker1", "worker2"} <= set(_complete("shell", "--lab", lab, ""))
    assert {"client", "merged-dns"} <= set(_complete("logs", "--lab", lab, "-n", "dns-b", ""))
    assert "dns-a/client" in _complete("exec", "--lab", lab, "dns-a/")
    assert set(_complete("trace", "--lab", lab, "-n", "dns-a", "client", "svc/")) >= {
        "svc/web", "svc/db", "svc/ext"}
    assert "web" in _complete("dns", "lookup", "--lab", lab, "-n", "dns-a", "w")
