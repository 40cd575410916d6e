"""Server-side apply in a running lab, driven by real kubectl and the official Python
client: a repeated apply is a no-op, a second manager conflicts (409 naming the field and
the owner) until it forces, managedFields show with --show-managed-fields, a client-side
applied object upgrades to server-side apply, and custom resources apply too."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest
from labkit import KUBECTL, wait_for, write_kubeconfig

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")


def deployment(name: str, replicas: int = 1, image: str = "netlab/echo") -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}, labels: {{app: {name}}}}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              terminationGracePeriodSeconds: 0
              containers:
              - {{name: main, image: {image}}}
        """)


CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: gizmos.example.com}
    spec:
      group: example.com
      scope: Namespaced
      names: {plural: gizmos, singular: gizmo, kind: Gizmo}
      versions:
      - name: v1
        served: true
        storage: true
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                properties:
                  size: {type: integer}
                  ports:
                    type: array
                    x-kubernetes-list-type: map
                    x-kubernetes-list-map-keys: [name]
                    items:
                      type: object
                      properties:
                        name: {type: string}
                        port: {type: integer}
    """)

MULTI = textwrap.dedent("""\
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata: {name: py-role}
    rules:
    - {apiGroups: [""], resources: [pods], verbs: [get, list]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: py-svc}
    spec:
      selector: {app: py-dep}
      ports:
      - {port: 80, targetPort: 8080}
    ---
    """) + deployment("py-dep")


@pytest.fixture(scope="module")
def kube(cluster_lab, tmp_path_factory):
    """kubectl against the one lab of this module, with its own discovery cache."""
    home = tmp_path_factory.mktemp("kube")
    config = write_kubeconfig(cluster_lab.name, home)

    def run(*args: str, stdin: str | None = None, timeout: float = 60):
        return subprocess.run([str(KUBECTL), "--kubeconfig", str(config), "--cache-dir",
                               str(home / "cache"), *args], capture_output=True, text=True,
                              input=stdin, timeout=timeout, check=False)
    run.config = config  # type: ignore[attr-defined]
    run.home = home  # type: ignore[attr-defined]
    return run


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def get(kube, *what: str, managed: bool = True) -> dict:
    args = ["get", *what, "-o", "json"] + (["--show-managed-fields"] if managed else [])
    return json.loads(ok(kube(*args)))


def managers(obj: dict) -> dict:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def test_apply_twice_conflict_force_and_managed_fields(kube):
    try:
        ok(kube("apply", "--server-side", "-f", "-", stdin=deployment("ssa")))
        # The controllers write status until the rollout is done; then the object rests.
        ok(kube("rollout", "status", "deploy/ssa", "--timeout=90s", timeout=100))
        first = get(kube, "deploy", "ssa")
        second = json.loads(ok(kube("apply", "--server-side", "-o", "json", "-f", "-",
                                    stdin=deployment("ssa"))))
        assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        assert second["metadata"]["generation"] == first["metadata"]["generation"]
        second = get(kube, "deploy", "ssa")
        entry = managers(second)[("kubectl", "Apply")]
        assert "f:replicas" in entry["fieldsV1"]["f:spec"]
        # The rollout's status was written by the controller manager, named as upstream's.
        status = managers(second)[("kube-controller-manager", "Update")]
        assert status.get("subresource") == "status" and "f:status" in status["fieldsV1"]
        # Without --show-managed-fields kubectl hides them.
        assert "managedFields" not in get(kube, "deploy", "ssa", managed=False)["metadata"]
        shown = ok(kube("get", "deploy", "ssa", "-o", "yaml", "--show-managed-fields"))
        assert "managedFields:" in shown and "manager: kubectl" in shown
        # A second manager changing replicas conflicts, naming the field and the owner.
        out = kube("apply", "--server-side", "--field-manager=other", "-f", "-",
                   stdin=deployment("ssa", replicas=3))
        assert out.returncode != 0
        assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' \
            in out.stderr, out.stderr
        ok(kube("apply", "--server-side", "--field-manager=other", "--force-conflicts",
                "-f", "-", stdin=deployment("ssa", replicas=3)))
        taken = get(kube, "deploy", "ssa")
        assert taken["spec"]["replicas"] == 3
        assert "f:replicas" in managers(taken)[("other", "Apply")]["fieldsV1"]["f:spec"]
        assert "f:replicas" not in managers(taken)[("kubectl", "Apply")]["fieldsV1"]["f:spec"]
    finally:
        kube("delete", "deploy", "ssa", "--ignore-not-found", "--wait=false")


def test_client_side_then_server_side_apply(kube):
    try:
        ok(kube("apply", "-f", "-", stdin=deployment("csa")))
        before = get(kube, "deploy", "csa")
        assert ("kubectl-client-side-apply", "Update") in managers(before)
        out = kube("apply", "--server-side", "-f", "-", stdin=deployment("csa", replicas=2))
        assert out.returncode == 0, out.stderr
        after = get(kube, "deploy", "csa")
        assert after["spec"]["replicas"] == 2
        assert ("kubectl", "Apply") in managers(after)
        last = json.loads(after["metadata"]["annotations"][
            "kubectl.kubernetes.io/last-applied-configuration"])
        assert last["spec"]["replicas"] == 2  # kept up to date by the server
        # Server-side again: a no-op.
        ok(kube("rollout", "status", "deploy/csa", "--timeout=90s", timeout=100))
        rested = get(kube, "deploy", "csa")
        again = json.loads(ok(kube("apply", "--server-side", "-o", "json", "-f", "-",
                                   stdin=deployment("csa", replicas=2))))
        assert again["metadata"]["resourceVersion"] == rested["metadata"]["resourceVersion"]
    finally:
        kube("delete", "deploy", "csa", "--ignore-not-found", "--wait=false")


def test_custom_resource_applied_server_side(kube):
    ok(kube("apply", "--server-side", "-f", "-", stdin=CRD))
    try:
        wait_for(lambda: kube("wait", "--for=condition=Established",
                              "crd/gizmos.example.com", "--timeout=5s").returncode == 0,
                 timeout=30, what="the CRD to be established")
        gizmo = ("apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g1}\n"
                 "spec: {size: 1, ports: [{name: a, port: 1}]}\n")
        wait_for(lambda: kube("apply", "--server-side", "-f", "-", stdin=gizmo).returncode == 0,
                 timeout=30, what="the gizmo to apply")
        ok(kube("apply", "--server-side", "--field-manager=two", "-f", "-",
                stdin="apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g1}\n"
                      "spec: {ports: [{name: b, port: 2}]}\n"))
        got = get(kube, "gizmo", "g1")
        assert [p["name"] for p in got["spec"]["ports"]] == ["a", "b"]
        two = managers(got)[("two", "Apply")]["fieldsV1"]
        assert 'k:{"name":"b"}' in two["f:spec"]["f:ports"]
        out = kube("apply", "--server-side", "--field-manager=two", "-f", "-",
                   stdin=gizmo.replace("size: 1", "size: 5"))
        assert out.returncode != 0 and ".spec.size" in out.stderr
    finally:
        kube("delete", "crd", "gizmos.example.com", "--ignore-not-found", "--wait=false")


def test_python_client_create_from_yaml_apply(kube):
    pytest.importorskip("kubernetes")
    from kubernetes import client as kclient
    from kubernetes import config, utils

    path = kube.home / "multi.yaml"
    path.write_text(MULTI)
    api = config.new_client_from_config(str(kube.config))
    try:
        for _ in range(2):  # the second run applies over the first
            utils.create_from_yaml(api, str(path), apply=True)
        dep = kclient.AppsV1Api(api).read_namespaced_deployment("py-dep", "default")
        assert any(e.manager == "python-client" and e.operation == "Apply"
                   for e in dep.metadata.managed_fields)
        svc = kclient.CoreV1Api(api).read_namespaced_service("py-svc", "default")
        assert svc.spec.ports[0].port == 80
    finally:
        kube("delete", "deploy/py-dep", "svc/py-svc", "role/py-role", "--ignore-not-found",
             "--wait=false")
