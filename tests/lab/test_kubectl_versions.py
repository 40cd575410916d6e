"""Every ``kubectl create`` subcommand, ``auth can-i`` and ``auth whoami`` with kubectl
1.27, 1.31 and 1.33 against one real lab.

kubectl 1.32+ POST the objects of ``kubectl create`` (and the access reviews) as
``application/vnd.kubernetes.protobuf``, which /usr/bin/kubectl hides by picking the
release nearest the server's v1.31; this calls each release's binary directly and checks
what ``kubectl get -o json`` then shows.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest

BIN = "/usr/lib/google-cloud-sdk/bin/kubectl.1.{}"
VERSIONS = ("27", "31", "33")
NOT_SERVED = "the server could not find the requested resource"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def setup(cluster_lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kubectl-versions")
    out = subprocess.run([sys.executable, "-m", "netlab.cli.main", "kubeconfig", "--lab",
                          cluster_lab.name], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    (tmp / "config").write_text(out.stdout)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=tls.example", "-keyout", str(tmp / "tls.key"), "-out",
                    str(tmp / "tls.crt")], check=True, capture_output=True)
    (tmp / "bin.dat").write_bytes(b"\x00\x01\xffbin")
    return tmp


def _kubectl(tmp, version: str):
    binary = BIN.format(version)
    if not os.path.exists(binary):
        pytest.skip(f"{binary} is missing")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
           "KUBECONFIG": str(tmp / "config"), "KUBECACHEDIR": str(tmp / f"cache-{version}")}

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([binary, *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        if ok:
            assert proc.returncode == 0, f"kubectl 1.{version} {' '.join(args)}: {proc.stderr}"
        return proc
    return run


def _by_name(listing: str) -> dict:
    return {(o["kind"], o["metadata"]["name"]): o for o in json.loads(listing)["items"]}


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_create_at_every_version(setup, version):
    tmp, v = setup, version
    kubectl = _kubectl(tmp, v)
    ns = f"v1{v}"
    kubectl("create", "namespace", ns)

    def create(*args: str) -> str:
        return kubectl("-n", ns, "create", *args).stdout

    assert "configmap/cm created" in create(
        "configmap", "cm", "--from-literal=a=b", f"--from-file=bin={tmp / 'bin.dat'}")
    create("secret", "generic", "sec", "--from-literal=user=admin")
    create("secret", "tls", "tls", f"--cert={tmp / 'tls.crt'}", f"--key={tmp / 'tls.key'}")
    create("secret", "docker-registry", "reg", "--docker-server=r.example",
           "--docker-username=u", "--docker-password=p", "--docker-email=e@x.io")
    create("deployment", "web", "--image=nginx", "--replicas=2", "--port=80")
    create("deployment", "zero", "--image=nginx", "--replicas=0")
    create("job", "j", "--image=busybox", "--", "echo", "hi")
    create("cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *",
           "--restart=OnFailure", "--", "echo", "hi")
    create("job", "fromcron", "--from=cronjob/cj")
    create("service", "clusterip", "sc", "--tcp=80:8080", "--tcp=443:https")
    create("service", "clusterip", "headless", "--clusterip=None")
    create("service", "nodeport", "snp", "--tcp=80:8080")
    create("service", "loadbalancer", "slb", "--tcp=80:8080")
    create("service", "externalname", "sext", "--external-name=example.com")
    create("serviceaccount", "sa")
    create("poddisruptionbudget", "pdb", "--selector=app=web", "--min-available=1")
    create("poddisruptionbudget", "pdb2", "--selector=app=web", "--max-unavailable=50%")
    create("ingress", "ing", "--class=nginx", "--rule=foo.com/bar=svc1:8080,tls=my-cert")
    create("ingress", "ingdef", "--default-backend=svc1:80")
    create("role", "r", "--verb=get,list", "--resource=pods,deployments.apps")
    create("rolebinding", "rb", "--clusterrole=view", "--user=jane",
           f"--serviceaccount={ns}:sa")
    create("clusterrole", f"cr-{v}", "--verb=get", "--non-resource-url=/logs")
    create("clusterrolebinding", f"crb-{v}", "--clusterrole=view", "--group=g")
    create("namespace", f"ns-{v}")
    create("priorityclass", f"pc-{v}", "--value=9", "--description=x",
           "--preemption-policy=Never")
    # Not served by netlab: a 404, whatever the encoding.
    assert NOT_SERVED in kubectl("-n", ns, "create", "quota", "q", "--hard=pods=10",
                                 ok=False).stderr
    # serviceaccounts/token: a TokenRequest (protobuf from 1.32 on), answered with a JWT.
    assert kubectl("-n", ns, "create", "token", "sa").stdout.strip().count(".") == 2

    objs = _by_name(kubectl("-n", ns, "get", "-o", "json",
                            "cm,secret,deploy,job,cronjob,svc,sa,pdb,ingress,role,"
                            "rolebinding").stdout)
    cm = objs["ConfigMap", "cm"]
    assert cm["data"] == {"a": "b"}
    assert base64.b64decode(cm["binaryData"]["bin"]) == b"\x00\x01\xffbin"
    assert objs["Secret", "sec"]["data"] == {"user": base64.b64encode(b"admin").decode()}
    assert objs["Secret", "sec"]["type"] == "Opaque"
    assert objs["Secret", "tls"]["type"] == "kubernetes.io/tls"
    assert set(objs["Secret", "tls"]["data"]) == {"tls.crt", "tls.key"}
    docker = json.loads(base64.b64decode(objs["Secret", "reg"]["data"][".dockerconfigjson"]))
    assert docker["auths"]["r.example"]["username"] == "u"
    web = objs["Deployment", "web"]["spec"]
    assert web["replicas"] == 2
    assert web["template"]["spec"]["containers"][0]["image"] == "nginx"
    assert web["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80
    assert objs["Deployment", "zero"]["spec"]["replicas"] == 0
    job = objs["Job", "j"]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["echo", "hi"] and job["image"] == "busybox"
    assert objs["CronJob", "cj"]["spec"]["schedule"] == "*/5 * * * *"
    fromcron = objs["Job", "fromcron"]
    assert fromcron["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert fromcron["metadata"]["ownerReferences"][0]["name"] == "cj"
    assert fromcron["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    sc = objs["Service", "sc"]["spec"]
    assert [(p["port"], p["targetPort"]) for p in sc["ports"]] == [(80, 8080), (443, "https")]
    assert sc["type"] == "ClusterIP" and sc["clusterIP"]
    assert objs["Service", "headless"]["spec"]["clusterIP"] == "None"
    assert objs["Service", "snp"]["spec"]["type"] == "NodePort"
    assert objs["Service", "snp"]["spec"]["ports"][0]["nodePort"] > 0
    assert objs["Service", "slb"]["spec"]["type"] == "LoadBalancer"
    assert objs["Service", "sext"]["spec"]["externalName"] == "example.com"
    assert ("ServiceAccount", "sa") in objs
    assert objs["PodDisruptionBudget", "pdb"]["spec"]["minAvailable"] == 1
    assert objs["PodDisruptionBudget", "pdb2"]["spec"]["maxUnavailable"] == "50%"
    ing = objs["Ingress", "ing"]["spec"]
    assert ing["ingressClassName"] == "nginx"
    assert ing["tls"] == [{"hosts": ["foo.com"], "secretName": "my-cert"}]
    path = ing["rules"][0]["http"]["paths"][0]
    assert ing["rules"][0]["host"] == "foo.com" and path["path"] == "/bar"
    assert path["backend"]["service"] == {"name": "svc1", "port": {"number": 8080}}
    assert objs["Ingress", "ingdef"]["spec"]["defaultBackend"]["service"]["port"] == {
        "number": 80}
    assert objs["Role", "r"]["rules"][0]["verbs"] == ["get", "list"]
    assert {s["kind"] for s in objs["RoleBinding", "rb"]["subjects"]} == {
        "User", "ServiceAccount"}
    cluster = _by_name(kubectl("get", "-o", "json", f"clusterrole/cr-{v}",
                               f"clusterrolebinding/crb-{v}", f"namespace/ns-{v}",
                               f"priorityclass/pc-{v}").stdout)
    assert cluster["ClusterRole", f"cr-{v}"]["rules"][0]["nonResourceURLs"] == ["/logs"]
    assert cluster["ClusterRoleBinding", f"crb-{v}"]["roleRef"]["name"] == "view"
    assert ("Namespace", f"ns-{v}") in cluster
    pc = cluster["PriorityClass", f"pc-{v}"]
    assert (pc["value"], pc["description"], pc["preemptionPolicy"]) == (9, "x", "Never")
    table = kubectl("get", "pc", f"pc-{v}", "system-cluster-critical").stdout.splitlines()
    assert [line.split() for line in table[1:]] == [
        [f"pc-{v}", "9", "false", table[1].split()[3], "Never"],
        ["system-cluster-critical", "2000000000", "false", table[2].split()[3],
         "PreemptLowerPriority"]]

    assert kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "--list").stdout.startswith("Resources")
    whoami = kubectl("auth", "whoami", ok=v != "27")
    if v == "27":  # 1.27 asks authentication.k8s.io v1beta1/v1alpha1, which netlab lacks
        assert "selfsubjectreviews API is not enabled" in whoami.stderr
    else:
        assert "netlab-admin" in whoami.stdout
