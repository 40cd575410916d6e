"""The real kubectl against the API server for PriorityClasses: a Helm-style manifest applied,
``kubectl get pc``, ``kubectl create priorityclass`` as kubectl 1.33 sends it (protobuf), and
what a pod naming a class gets, or the error kubectl prints when the class is missing."""

from __future__ import annotations

import test_apiserver_kubectl as base

# The same kubectl and TLS server set-up as the main kubectl tests (a fixture of its own).
pytestmark = base.pytestmark
kubectl_cluster = base.cluster

MANIFEST = """\
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: chart-high
value: 100000
globalDefault: false
description: "what a Helm chart ships"
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  priorityClassName: {cls}
  containers:
  - name: main
    image: busybox
"""


def test_apply_get_and_pods_with_classes(kubectl_cluster):
    _, kubectl, tmp = kubectl_cluster
    (tmp / "pc.yaml").write_text(MANIFEST)
    assert kubectl.out("apply", "-f", str(tmp / "pc.yaml")).strip() == \
        "priorityclass.scheduling.k8s.io/chart-high created"
    assert kubectl.out("apply", "-f", str(tmp / "pc.yaml")).strip() == \
        "priorityclass.scheduling.k8s.io/chart-high unchanged"
    lines = kubectl.out("get", "pc").splitlines()
    assert lines[0].split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["chart-high"][1:3] + rows["chart-high"][4:] == [
        "100000", "false", "PreemptLowerPriority"]
    assert rows["system-node-critical"][1] == "2000001000"

    (tmp / "critical.yaml").write_text(POD.format(name="critical",
                                                  cls="system-cluster-critical"))
    kubectl.run("create", "-f", str(tmp / "critical.yaml"))
    assert kubectl.out("get", "pod", "critical", "-o",
                       "jsonpath={.spec.priority} {.spec.preemptionPolicy}") == \
        "2000000000 PreemptLowerPriority"
    (tmp / "orphan.yaml").write_text(POD.format(name="orphan", cls="nonexistent"))
    proc = kubectl.run("create", "-f", str(tmp / "orphan.yaml"), check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): error when creating "{tmp / "orphan.yaml"}": pods '
        '"orphan" is forbidden: no PriorityClass with name nonexistent was found')
    kubectl.run("delete", "pod", "critical")
    kubectl.run("delete", "-f", str(tmp / "pc.yaml"))


def test_create_priorityclass_with_kubectl_133(kubectl_cluster):
    server, shared, tmp = kubectl_cluster
    server.config.git_version = "v1.33.0-netlab"  # /usr/bin/kubectl then runs 1.33: protobuf
    kubectl = base.Kubectl(shared.env["KUBECONFIG"], tmp / "home-pc133")
    try:
        assert kubectl.out("create", "priorityclass", "high", "--value=1000",
                           "--description=x", "--preemption-policy=Never").strip() == \
            "priorityclass.scheduling.k8s.io/high created"
        assert kubectl.out("get", "pc", "high", "-o",
                           "jsonpath={.value} {.description} {.preemptionPolicy}") == \
            "1000 x Never"
        proc = kubectl.run("create", "priorityclass", "too-high", "--value=1000000001",
                           check=False)
        assert proc.returncode != 0 and proc.stderr.strip() == (
            'error: failed to create priorityclass: PriorityClass.scheduling.k8s.io "too-high" '
            "is invalid: value: Forbidden: maximum allowed value of a user defined priority is "
            "1000000000")
        proc = kubectl.run("delete", "pc", "system-cluster-critical", check=False)
        assert proc.returncode != 0 and proc.stderr.strip() == (
            'Error from server (Forbidden): priorityclasses.scheduling.k8s.io '
            '"system-cluster-critical" is forbidden: this is a system priority class and '
            "cannot be deleted")
        kubectl.run("delete", "pc", "high")
    finally:
        server.config.git_version = "v1.31.0-netlab"
