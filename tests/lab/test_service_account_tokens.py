"""Service-account tokens in a real lab, as a user and an in-cluster client see them:
``kubectl create token`` (two kubectl versions), the official Python client with that token
against the lab's HTTPS endpoint (403 in upstream's words, then allowed after a
RoleBinding, as ``kubectl auth can-i --as`` predicts), a TokenReview, ``kube-root-ca.crt``
in a new namespace, and a pod reaching the ``kubernetes`` Service over HTTPS with that CA
(401 without a token, upstream's 403 with one).
One lab for the whole module."""

from __future__ import annotations

import base64
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from labkit import KUBECTL, kubectl, kubectl_version, wait_for

from netlab import paths

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

NS = "nlt-tokens"
SA_USER = f"system:serviceaccount:{NS}:reader"
ISSUER = "https://kubernetes.default.svc.cluster.local"


def _claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path):
    out = kubectl(kubeconfig, "create", "namespace", NS)
    assert out.returncode == 0, out.stderr
    try:
        out = kubectl(kubeconfig, "-n", NS, "create", "serviceaccount", "reader")
        assert out.returncode == 0, out.stderr
        yield NS
    finally:
        kubectl(kubeconfig, "delete", "namespace", NS, "--wait=false", "--ignore-not-found")


@pytest.mark.parametrize("version", ["27", "33"])
def test_kubectl_create_token(kubeconfig, namespace, version):
    out = kubectl_version(kubeconfig, "-n", namespace, "create", "token", "reader",
                          "--duration=20m", version=version)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    claims = _claims(token)
    assert claims["sub"] == SA_USER and claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["exp"] - claims["iat"] == 1200
    assert claims["kubernetes.io"]["namespace"] == namespace
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "reader"
    # Upstream's minimum, refused by the server with its 422.
    short = kubectl_version(kubeconfig, "-n", namespace, "create", "token", "reader",
                            "--duration=5m", version=version)
    assert short.returncode != 0
    assert "spec.expirationSeconds: Invalid value: 300: may not specify a duration less " \
           "than 10 minutes" in short.stderr


def _python_client(kubeconfig: Path, token: str, tmp: Path):
    from kubernetes import client

    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = tmp / "ca.crt"
    ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    conf = client.Configuration()
    conf.host = cluster["server"]
    conf.ssl_ca_cert = str(ca)
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(conf)


def test_the_python_client_with_a_token_is_authorized_by_rbac(cluster_lab, kubeconfig,
                                                             namespace, tmp_path):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    token = kubectl(kubeconfig, "-n", namespace, "create", "token", "reader").stdout.strip()
    api = _python_client(kubeconfig, token, tmp_path)
    core = client.CoreV1Api(api)
    can_i = ("auth", "can-i", "list", "pods", "-n", namespace, f"--as={SA_USER}")
    try:
        assert kubectl(kubeconfig, *can_i).stdout.strip() == "no"
        with pytest.raises(ApiException) as err:
            core.list_namespaced_pod(namespace)
        assert err.value.status == 403
        status = json.loads(err.value.body)
        assert (status["kind"], status["reason"], status["code"]) == ("Status", "Forbidden", 403)
        assert status["message"] == (
            f'pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" '
            f'in the namespace "{namespace}"')
        # Who am I, to the server: the ServiceAccount.
        who = client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview())
        assert who.status.user_info.username == SA_USER
        assert "system:serviceaccounts:" + namespace in who.status.user_info.groups
        out = kubectl(kubeconfig, "-n", namespace, "create", "rolebinding", "reader-view",
                      "--clusterrole=view", f"--serviceaccount={namespace}:reader")
        assert out.returncode == 0, out.stderr
        assert kubectl(kubeconfig, *can_i).stdout.strip() == "yes"
        pods = core.list_namespaced_pod(namespace)
        assert pods.items == []
        # view grants no secrets, and nothing in another namespace.
        assert kubectl(kubeconfig, "auth", "can-i", "list", "secrets", "-n", namespace,
                       f"--as={SA_USER}").stdout.strip() == "no"
        for call in (lambda: core.list_namespaced_secret(namespace),
                     lambda: core.list_namespaced_pod("default")):
            with pytest.raises(ApiException) as err:
                call()
            assert err.value.status == 403
        # The lab admin's token is still system:masters.
        admin = _python_client(kubeconfig, (paths.lab_dir(cluster_lab.name) / "token")
                               .read_text().strip(), tmp_path)
        assert client.CoreV1Api(admin).list_namespaced_secret("kube-system") is not None
        # TokenReview: the token authenticates as the ServiceAccount.
        review = client.AuthenticationV1Api(admin).create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
        assert review.status.authenticated is True
        assert review.status.user.username == SA_USER
        assert review.status.audiences == [ISSUER]
        bad = client.AuthenticationV1Api(admin).create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token[:-4] + "AAAA")))
        assert not bad.status.authenticated and bad.status.error == "invalid signature"
    finally:
        kubectl(kubeconfig, "-n", namespace, "delete", "rolebinding", "reader-view",
                "--ignore-not-found")


def test_kube_root_ca_in_every_namespace(cluster_lab, kubeconfig, namespace):
    ca = (paths.lab_dir(cluster_lab.name) / "ca.crt").read_text()

    def published() -> dict | None:
        out = kubectl(kubeconfig, "-n", namespace, "get", "configmap", "kube-root-ca.crt",
                      "-o", "json")
        return json.loads(out.stdout) if out.returncode == 0 else None

    cm = wait_for(published, 30, interval=0.2, what="kube-root-ca.crt")
    assert cm["data"] == {"ca.crt": ca}
    assert "kube-apiserver" in cm["metadata"]["annotations"]["kubernetes.io/description"]
    uid = cm["metadata"]["uid"]
    assert kubectl(kubeconfig, "-n", namespace, "delete", "configmap",
                   "kube-root-ca.crt").returncode == 0
    again = wait_for(lambda: (c := published()) and c["metadata"]["uid"] != uid and c, 30,
                     interval=0.2, what="kube-root-ca.crt re-created")
    assert again["data"] == {"ca.crt": ca}
    # The serving certificate names the kubernetes Service, as a pod addresses it.
    cert = x509.load_pem_x509_certificate(
        (paths.lab_dir(cluster_lab.name) / "apiserver.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"} <= set(sans.get_values_for_type(x509.DNSName))
    assert "10.96.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    key = paths.lab_dir(cluster_lab.name) / "sa.key"
    assert key.stat().st_mode & 0o777 == 0o600


# When a name does not resolve, the probe says on stderr what the resolver and the
# nameserver did (glibc reports a timeout, an ICMP error, SERVFAIL and REFUSED alike as
# EAI_AGAIN; and since the server REFUSES names outside the zone without an upstream, a
# missing record ends in EAI_AGAIN too), so that a failure explains itself.
PROBE = textwrap.dedent("""\
    import os, socket, ssl, struct, sys, time, urllib.request, urllib.error
    def ask(server, name):
        q = struct.pack(">6H", 0x4e4c, 0x0100, 1, 0, 0, 0) + b"".join(
            bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0\\0\\1\\0\\1"
        for connected in (True, False):  # unconnected: also hear a reply from another source
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(3)
            try:
                if connected:
                    s.connect((server, 53)); s.send(q); data, src = s.recv(512), server
                else:
                    s.sendto(q, (server, 53)); data, (src, _) = s.recvfrom(512)
                return "rcode %d, %d answers, from %s" % (
                    data[3] & 15, struct.unpack(">H", data[6:8])[0], src)
            except ConnectionRefusedError:
                return "refused (ICMP port unreachable)"
            except socket.timeout:
                continue
            except OSError as e:
                return "error %r" % e
            finally:
                s.close()
        return "no answer in 2 x 3s"
    def diagnose(host, started):
        d = lambda *a: print("DNS-DIAG", *a, file=sys.stderr, flush=True)
        d(time.strftime("%H:%M:%S", time.gmtime()), "UTC: %s failed after %.2fs"
          % (host, time.monotonic() - started))
        conf = open("/etc/resolv.conf").read()
        d("resolv.conf:", " | ".join(conf.splitlines()))
        again = time.monotonic()
        try:
            socket.getaddrinfo(host, 443)
            outcome = "resolved"
        except socket.gaierror as e:
            outcome = str(e)
        d("again: %s after %.2fs" % (outcome, time.monotonic() - again))
        server = next(l.split()[1] for l in conf.splitlines() if l.startswith("nameserver"))
        for name in (host + ".default.svc.cluster.local", "kubernetes.default.svc.cluster.local"):
            d("A", name, "from", server + ":", ask(server, name))
        try:  # the server's own counts: answers by rcode, messages dropped
            with urllib.request.urlopen("http://%s:9153/metrics" % server, timeout=3) as r:
                d("metrics:", " | ".join(l for l in r.read().decode().splitlines()
                                         if l.startswith(("coredns_dns_resp", "coredns_dns_drop"))))
        except OSError as e:
            d("metrics: %r" % e)
    ctx = ssl.create_default_context(cadata=os.environ["CA"])
    pods = "/api/v1/namespaces/default/pods"
    for url, token in (("https://10.96.0.1" + pods, None),
                       ("https://kubernetes.default.svc" + pods, None),
                       ("https://kubernetes.default.svc.cluster.local" + pods,
                        os.environ["TOKEN"])):
        req = urllib.request.Request(url)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                print(url, r.status, r.read().decode())
        except urllib.error.HTTPError as e:
            print(url, e.code, e.read().decode())
        except urllib.error.URLError as e:
            if isinstance(e.reason, socket.gaierror):
                diagnose(req.host, started)
            raise
    print("SA-KEY", "readable" if os.access(os.environ["KEY"], os.R_OK) else "hidden")
    """)


def _dns_side(lab: str) -> str:
    """What the lab's side of cluster DNS logged: the DNS component (when it served,
    published, restarted), the supervisor, and worker1's kube-proxy."""
    from netlab.lab.state import log_dir

    out = []
    for name, lines in (("dns.log", 40), ("supervisor.log", 20), ("proxy-worker1.log", 20)):
        try:
            text = (log_dir(lab) / name).read_text(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            text = [f"(unreadable: {exc})"]
        out += [f"--- {name}", *text]
    return "\n".join(out)


def test_a_pod_reaches_the_api_through_the_kubernetes_service(cluster_lab, kubeconfig):
    endpoints = json.loads(kubectl(kubeconfig, "get", "endpoints", "kubernetes", "-o",
                                   "json").stdout)
    assert endpoints["subsets"][0]["ports"][0]["port"] == 6443
    key = paths.lab_dir(cluster_lab.name) / "sa.key"
    token = kubectl(kubeconfig, "create", "token", "default").stdout.strip()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api-probe"},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                    "nodeName": "worker1",
                    "containers": [{"name": "c", "image": "python", "command": [
                        "python3", "-c", PROBE], "env": [
                        {"name": "KEY", "value": str(key)},
                        {"name": "TOKEN", "value": token},
                        {"name": "CA", "valueFrom": {"configMapKeyRef": {
                            "name": "kube-root-ca.crt", "key": "ca.crt"}}}]}]}}
    try:
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(pod))
        assert out.returncode == 0, out.stderr
        wait_for(lambda: kubectl(kubeconfig, "get", "pod", "api-probe", "-o",
                                 "jsonpath={.status.phase}").stdout in ("Succeeded", "Failed"),
                 90, interval=0.3, what="the probe pod to finish")
        logs = kubectl(kubeconfig, "logs", "api-probe").stdout
        lines = logs.strip().splitlines()
        if "DNS-DIAG" in logs:  # while the lab is up: its logs go with it
            print(_dns_side(cluster_lab.name))
        assert len(lines) == 4, logs
        answers = []
        for line in lines[:3]:
            _, code, body = line.split(" ", 2)
            status = json.loads(body)
            assert status["kind"] == "Status" and status["code"] == int(code), line
            answers.append((status["code"], status["message"]))
        # Without a token: 401 by the ClusterIP and by name (the CA verifies both).
        assert answers[:2] == [(401, "Unauthorized")] * 2
        # With the default ServiceAccount's token: authenticated, and RBAC says no.
        assert answers[2] == (403, 'pods is forbidden: User "system:serviceaccount:default:'
                                   'default" cannot list resource "pods" in API group "" in '
                                   'the namespace "default"')
        assert lines[3] == "SA-KEY hidden"
    finally:
        kubectl(kubeconfig, "delete", "pod", "api-probe", "--ignore-not-found", "--wait=false")


IN_CLUSTER = textwrap.dedent("""
    import os
    from kubernetes import client, config
    base = "/var/run/secrets/kubernetes.io/serviceaccount"
    print("FILES", sorted(f for f in os.listdir(base) if not f.startswith("..")))
    print("NAMESPACE", open(base + "/namespace").read())
    print("HOST", os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
    config.load_incluster_config()
    try:
        pods = client.CoreV1Api().list_namespaced_pod(open(base + "/namespace").read())
        print("PODS", sorted(p.metadata.name for p in pods.items))
    except client.ApiException as e:
        print("DENIED", e.status)
    """)


def _in_cluster_pod(kubeconfig: Path, name: str, **spec: object) -> list[str]:
    """Run IN_CLUSTER in a pod of the reader account with the official Python client
    (netlab's own interpreter, which the pod sees read-only); its output lines."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                    "serviceAccountName": "reader", **spec,
                    "containers": [{"name": "c", "image": "python-client",
                                    "command": [sys.executable, "-c", IN_CLUSTER]}]}}
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(pod))
    assert out.returncode == 0, out.stderr
    try:
        wait_for(lambda: kubectl(kubeconfig, "-n", NS, "get", "pod", name, "-o",
                                 "jsonpath={.status.phase}").stdout in ("Succeeded", "Failed"),
                 90, interval=0.3, what=f"pod {name} to finish")
        return kubectl(kubeconfig, "-n", NS, "logs", name).stdout.strip().splitlines()
    finally:
        kubectl(kubeconfig, "-n", NS, "delete", "pod", name, "--ignore-not-found",
                "--wait=false")


def test_a_pod_lists_pods_with_its_projected_token(cluster_lab, kubeconfig, namespace):
    created = json.loads(kubectl(kubeconfig, "-n", NS, "create", "--dry-run=server", "-o",
                                 "json", "-f", "-", stdin=json.dumps({
                                     "apiVersion": "v1", "kind": "Pod",
                                     "metadata": {"name": "look"},
                                     "spec": {"containers": [{"name": "c", "image": "x"}]}}
                                 )).stdout)
    (volume,) = created["spec"]["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    assert created["spec"]["containers"][0]["volumeMounts"] == [{
        "name": volume["name"], "readOnly": True,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]

    denied = _in_cluster_pod(kubeconfig, "incluster-denied")
    assert denied[0] == "FILES ['ca.crt', 'namespace', 'token']", denied
    assert denied[1] == f"NAMESPACE {NS}"
    assert denied[2] == "HOST 10.96.0.1 443"
    assert denied[3] == "DENIED 403", denied
    out = kubectl(kubeconfig, "-n", NS, "create", "rolebinding", "reader-view",
                  "--clusterrole=view", f"--serviceaccount={NS}:reader")
    assert out.returncode == 0, out.stderr
    allowed = _in_cluster_pod(kubeconfig, "incluster-allowed")
    assert allowed[-1] == "PODS ['incluster-allowed']", allowed


def test_a_pod_that_opts_out_has_no_token(cluster_lab, kubeconfig, namespace):
    lines = _in_cluster_pod(kubeconfig, "no-token", automountServiceAccountToken=False)
    logs = "\n".join(lines)
    assert "FILES" not in logs and "No such file or directory" in logs, logs
