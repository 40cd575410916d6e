"""networking.k8s.io, RBAC, access reviews and APIServices in a real lab, through real
kubectl and the official Python client: what ``kubectl auth can-i``, ``kubectl get
apiservices`` and everyday RBAC/NetworkPolicy/Ingress manifests show a user."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from labkit import KUBECTL, kubectl

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

RBAC = textwrap.dedent("""\
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata: {name: pod-reader}
    rules:
    - apiGroups: [""]
      resources: [pods, pods/log]
      verbs: [get, list, watch]
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: RoleBinding
    metadata: {name: read-pods}
    subjects:
    - {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
    - {kind: ServiceAccount, name: robot, namespace: default}
    roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
    """)

NETPOL = textwrap.dedent("""\
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: NAME}
    spec:
      podSelector: {matchLabels: {app: db}}
      egress:
      - to:
        - ipBlock: {cidr: 10.0.0.0/16, except: [EXCEPT]}
        ports:
        - {protocol: TCP, port: 32000, endPort: 32768}
    """)

INGRESS = textwrap.dedent("""\
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: web}
    spec:
      ingressClassName: lab
      tls: [{hosts: [web.example.com], secretName: web-tls}]
      rules:
      - host: web.example.com
        http:
          paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web, port: {number: 80}}}
    ---
    apiVersion: networking.k8s.io/v1
    kind: IngressClass
    metadata: {name: lab}
    spec: {controller: example.com/ingress-controller}
    """)

APISERVICE = textwrap.dedent("""\
    apiVersion: apiregistration.k8s.io/v1
    kind: APIService
    metadata: {name: v1beta1.metrics.example.com}
    spec:
      group: metrics.example.com
      version: v1beta1
      groupPriorityMinimum: 100
      versionPriority: 100
      service: {name: metrics, namespace: kube-system}
    """)

MULTI = textwrap.dedent("""\
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata: {name: py-role, namespace: default}
    rules: [{apiGroups: [apps], resources: [deployments], verbs: [get]}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: py-svc, namespace: default}
    spec:
      selector: {app: py}
      ports: [{port: 80}]
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: py-dep, namespace: default}
    spec:
      replicas: 1
      selector: {matchLabels: {app: py}}
      template:
        metadata: {labels: {app: py}}
        spec: {containers: [{name: c, image: netlab/echo}]}
    """)


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_auth_can_i_answers_for_the_lab_admin(kubeconfig):
    out = kubectl(kubeconfig, "auth", "can-i", "create", "pods")
    assert (out.returncode, out.stdout.strip()) == (0, "yes"), out.stderr
    out = kubectl(kubeconfig, "auth", "can-i", "delete", "nodes", "--all-namespaces")
    assert (out.returncode, out.stdout.strip()) == (0, "yes"), out.stderr
    whoami = kubectl(kubeconfig, "auth", "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert ["Username", "netlab-admin"] in _rows(whoami.stdout)
    listed = kubectl(kubeconfig, "auth", "can-i", "--list")
    assert listed.returncode == 0, listed.stderr
    rows = _rows(listed.stdout)
    assert rows[0] == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert ["*.*", "[]", "[]", "[*]"] in rows
    assert ["[*]", "[]", "[*]"] in rows
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows


def test_an_rbac_role_and_binding_from_yaml(kubeconfig):
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=RBAC)
    assert out.returncode == 0, out.stderr
    assert "role.rbac.authorization.k8s.io/pod-reader created" in out.stdout
    assert "rolebinding.rbac.authorization.k8s.io/read-pods created" in out.stdout
    again = kubectl(kubeconfig, "apply", "-f", "-", stdin=RBAC)
    assert again.returncode == 0, again.stderr
    assert "role.rbac.authorization.k8s.io/pod-reader unchanged" in again.stdout
    assert "rolebinding.rbac.authorization.k8s.io/read-pods unchanged" in again.stdout
    roles = _rows(kubectl(kubeconfig, "get", "roles").stdout)
    assert roles[0] == ["NAME", "CREATED", "AT"] and roles[1][0] == "pod-reader"
    wide = kubectl(kubeconfig, "get", "rolebinding", "read-pods", "-o", "wide")
    assert wide.returncode == 0, wide.stderr
    assert _rows(wide.stdout)[0] == ["NAME", "ROLE", "AGE", "USERS", "GROUPS",
                                     "SERVICEACCOUNTS"]
    row = _rows(wide.stdout)[1]
    assert row[:2] == ["read-pods", "Role/pod-reader"] and row[3:] == ["jane",
                                                                      "default/robot"]
    # The binding now answers access reviews for jane, and only for what it grants.
    yes = kubectl(kubeconfig, "auth", "can-i", "list", "pods", "--as", "jane")
    no = kubectl(kubeconfig, "auth", "can-i", "delete", "pods", "--as", "jane")
    assert yes.stdout.strip() == "yes" and no.stdout.strip() == "no"
    # roleRef is immutable.
    patched = kubectl(kubeconfig, "patch", "rolebinding", "read-pods", "--type", "merge",
                      "-p", '{"roleRef": {"name": "other"}}')
    assert patched.returncode != 0 and "roleRef: Invalid value" in patched.stderr
    assert "cannot change roleRef" in patched.stderr
    # The bootstrap roles are there, cluster-admin bound to system:masters.
    crb = kubectl(kubeconfig, "get", "clusterrolebinding", "cluster-admin", "-o", "wide")
    assert _rows(crb.stdout)[1][1] == "ClusterRole/cluster-admin"
    assert "system:masters" in crb.stdout
    for name in ("cluster-admin", "admin", "edit", "view"):
        assert kubectl(kubeconfig, "get", "clusterrole", name).returncode == 0


def test_network_policy_with_end_port_and_except(kubeconfig):
    good = NETPOL.replace("NAME", "db").replace("EXCEPT", "10.0.5.0/24")
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=good)
    assert out.returncode == 0, out.stderr
    again = kubectl(kubeconfig, "apply", "-f", "-", stdin=good)
    assert "networkpolicy.networking.k8s.io/db unchanged" in again.stdout, again.stderr
    got = json.loads(kubectl(kubeconfig, "get", "netpol", "db", "-o", "json").stdout)
    assert got["spec"]["policyTypes"] == ["Ingress", "Egress"]  # defaulted from the rules
    assert got["spec"]["egress"][0]["ports"][0]["endPort"] == 32768
    rows = _rows(kubectl(kubeconfig, "get", "networkpolicies").stdout)
    assert rows[0] == ["NAME", "POD-SELECTOR", "AGE"] and rows[1][:2] == ["db", "app=db"]
    bad = NETPOL.replace("NAME", "bad").replace("EXCEPT", "10.1.0.0/24")
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=bad)
    assert out.returncode != 0
    assert "spec.egress[0].to[0].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": " \
           "must be a strict subset of `cidr`" in out.stderr


def test_ingress_and_ingress_class_are_stored_and_printed(kubeconfig):
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=INGRESS)
    assert out.returncode == 0, out.stderr
    rows = _rows(kubectl(kubeconfig, "get", "ing").stdout)
    assert rows[0] == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert rows[1][:4] == ["web", "lab", "web.example.com", "80,"]  # no address yet
    classes = _rows(kubectl(kubeconfig, "get", "ingressclass").stdout)
    assert classes[0] == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    assert classes[1][:3] == ["lab", "example.com/ingress-controller", "<none>"]
    bad = INGRESS.split("---")[0].replace("pathType: Prefix", "pathType: Regex")
    out = kubectl(kubeconfig, "create", "-f", "-", stdin=bad.replace("name: web}",
                                                                     "name: web2}"))
    assert out.returncode != 0
    assert 'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex"' in out.stderr


def test_apiservices_list_the_builtin_groups_and_take_user_ones(kubeconfig):
    rows = _rows(kubectl(kubeconfig, "get", "apiservices").stdout)
    assert rows[0] == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    by_name = {r[0]: r for r in rows[1:]}
    for name in ("v1.", "v1.apps", "v2.autoscaling", "v1.autoscaling", "v1.batch",
                 "v1.networking.k8s.io", "v1.rbac.authorization.k8s.io",
                 "v1.authorization.k8s.io", "v1.apiregistration.k8s.io"):
        assert by_name[name][1:3] == ["Local", "True"], name
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=APISERVICE)
    assert out.returncode == 0, out.stderr
    row = _rows(kubectl(kubeconfig, "get", "apiservice", "v1beta1.metrics.example.com",
                        "--no-headers").stdout)[0]
    assert row[1] == "kube-system/metrics" and row[2] == "False"
    out = kubectl(kubeconfig, "delete", "apiservice", "v1beta1.metrics.example.com")
    assert out.returncode == 0, out.stderr
    gone = kubectl(kubeconfig, "get", "apiservice", "v1beta1.metrics.example.com")
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_netlab_get_prints_the_same_columns(cluster_lab, kubeconfig):
    out = subprocess.run([sys.executable, "-m", "netlab.cli.main", "get", "--lab",
                          cluster_lab.name, "clusterrolebindings", "cluster-admin", "-o",
                          "wide"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    rows = _rows(out.stdout)
    assert rows[0] == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert rows[1][:2] == ["cluster-admin", "ClusterRole/cluster-admin"]
    assert rows[1][3] == "system:masters"


def test_kubectl_create_and_describe_the_new_kinds(kubeconfig):
    for args in (("role", "cm-reader", "--verb=get,list", "--resource=services,pods/log"),
                 ("clusterrole", "node-watcher", "--verb=get,watch", "--resource=nodes"),
                 ("rolebinding", "cm-readers", "--role=cm-reader", "--group=devs",
                  "--serviceaccount=default:robot"),
                 ("clusterrolebinding", "watchers", "--clusterrole=node-watcher",
                  "--user=jane"),
                 ("ingress", "simple", "--rule=foo.com/bar=svc1:8080,tls=my-cert")):
        out = kubectl(kubeconfig, "create", *args)
        assert out.returncode == 0, (args, out.stderr)
    rule = json.loads(kubectl(kubeconfig, "get", "role", "cm-reader", "-o", "json").stdout)[
        "rules"][0]
    assert rule == {"apiGroups": [""], "resources": ["services", "pods/log"],
                    "verbs": ["get", "list"]}
    described = kubectl(kubeconfig, "describe", "rolebinding", "cm-readers")
    assert described.returncode == 0, described.stderr
    assert "Role:\n  Kind:  Role\n  Name:  cm-reader" in described.stdout
    described = kubectl(kubeconfig, "describe", "ingress", "simple")
    assert described.returncode == 0, described.stderr
    assert "foo.com" in described.stdout and "/bar" in described.stdout
    yes = kubectl(kubeconfig, "auth", "can-i", "get", "services", "--as", "someone",
                  "--as-group", "devs")
    assert yes.stdout.strip() == "yes", yes.stderr
    yes = kubectl(kubeconfig, "auth", "can-i", "watch", "nodes", "--as", "jane")
    assert yes.stdout.strip() == "yes", yes.stderr


def test_api_resources_lists_the_new_kinds(kubeconfig):
    out = kubectl(kubeconfig, "api-resources", "--no-headers")
    assert out.returncode == 0, out.stderr
    names = {line.split()[0] for line in out.stdout.splitlines()}
    assert {"networkpolicies", "ingresses", "ingressclasses", "roles", "rolebindings",
            "clusterroles", "clusterrolebindings", "selfsubjectaccessreviews",
            "selfsubjectrulesreviews", "subjectaccessreviews", "localsubjectaccessreviews",
            "apiservices"} <= names


def test_python_client_create_from_yaml_role_service_deployment(kubeconfig, tmp_path):
    pytest.importorskip("kubernetes", reason="the kubernetes package is not installed")
    from kubernetes import client as kclient
    from kubernetes import config, utils

    api = config.new_client_from_config(str(kubeconfig))
    manifest = tmp_path / "multi.yaml"
    manifest.write_text(MULTI)
    created = utils.create_from_yaml(api, str(manifest))
    kinds = [obj.kind for group in created for obj in group]
    assert kinds == ["Role", "Service", "Deployment"]
    role = kclient.RbacAuthorizationV1Api(api).read_namespaced_role("py-role", "default")
    assert role.rules[0].resources == ["deployments"]
    review = kclient.AuthorizationV1Api(api).create_self_subject_access_review(
        kclient.V1SelfSubjectAccessReview(spec=kclient.V1SelfSubjectAccessReviewSpec(
            resource_attributes=kclient.V1ResourceAttributes(
                verb="create", resource="roles", group="rbac.authorization.k8s.io",
                namespace="default"))))
    assert review.status.allowed is True
