"""Persistent volumes in a real lab, as a kind user has them: the default ``standard``
StorageClass (local-path), a StatefulSet whose volumeClaimTemplate gives each pod a claim
that is provisioned on the pod's node and Bound (``kubectl get pvc``/``pv``/``sc``), data
that outlives its pod (the re-created pod, on the same node, reads it), a claim deleted
after a scale-down taking its volume and directory with it (reclaim policy Delete), a pod
whose claim does not exist staying Pending with the scheduler's reason, and ``netlab
down`` leaving no volume directory behind. One lab for the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from labkit import KUBECTL, kubectl, unique_lab, wait_for, write_kubeconfig, write_topology

from netlab.lab import lifecycle
from netlab.paths import local_path_dir

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

NS = "nlt-pv"
STATEFULSET = f"""
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web, namespace: {NS}}}
spec:
  serviceName: web
  replicas: 2
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: busybox
        command: [sleep, "3600"]
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
"""
ORPHAN = f"""
apiVersion: v1
kind: Pod
metadata: {{name: orphan, namespace: {NS}}}
spec:
  containers:
  - name: main
    image: busybox
    command: [sleep, "3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: nothing}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The demo topology (control plane, two workers), up for the module; after ``netlab
    down`` no directory of its volumes is left."""
    data = yaml.safe_load((Path(__file__).parents[2] / "topologies" / "demo.yaml").read_text())
    data["name"] = name = unique_lab()
    path = write_topology(tmp_path_factory.mktemp("pv"), data)
    try:
        lifecycle.up(path, control_plane=True)
        kubeconfig = write_kubeconfig(name, tmp_path_factory.mktemp("kube"))
        yield name, kubeconfig
    finally:
        lifecycle.down(name)
        assert not local_path_dir(name).exists(), "netlab down left volume directories"


@pytest.fixture(scope="module")
def web(lab: tuple[str, Path]) -> Iterator[Path]:
    """The StatefulSet's two pods Running, each with its claim Bound."""
    _, kubeconfig = lab
    out = kubectl(kubeconfig, "create", "namespace", NS)
    assert out.returncode == 0, out.stderr
    try:
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=STATEFULSET)
        assert out.returncode == 0, out.stderr
        wait_for(lambda: _json(kubeconfig, "statefulset", "web")["status"].get(
            "readyReplicas") == 2, 150, interval=0.5, what="two ready replicas")
        yield kubeconfig
    finally:
        kubectl(kubeconfig, "delete", "namespace", NS, "--wait=false", "--ignore-not-found")


def _json(kubeconfig: Path, *what: str) -> dict:
    out = kubectl(kubeconfig, "-n", NS, "get", *what, "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_the_default_storage_class_is_standard(lab):
    out = kubectl(lab[1], "get", "storageclass")
    assert out.returncode == 0, out.stderr
    header, *rows = _rows(out.stdout)
    assert header == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                      "ALLOWVOLUMEEXPANSION", "AGE"]
    assert [r[:6] for r in rows] == [["standard", "(default)", "rancher.io/local-path",
                                      "Delete", "WaitForFirstConsumer", "false"]]


def test_each_pod_has_a_bound_claim_on_its_node(lab, web):
    name, kubeconfig = lab
    out = kubectl(kubeconfig, "-n", NS, "get", "pvc")
    assert out.returncode == 0, out.stderr
    header, *rows = _rows(out.stdout)
    assert header == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES",
                      "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"]
    assert [r[0] for r in rows] == ["data-web-0", "data-web-1"]
    for row in rows:
        assert row[1] == "Bound" and row[2].startswith("pvc-"), row
        assert row[3:7] == ["1Gi", "RWO", "standard", "<unset>"], row
    out = kubectl(kubeconfig, "get", "pv")
    header, *pv_rows = _rows(out.stdout)
    assert header[:9] == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY",
                          "STATUS", "CLAIM", "STORAGECLASS"]
    claims = {r[5]: r for r in pv_rows}  # (an empty REASON prints nothing)
    for ordinal in (0, 1):
        row = claims[f"{NS}/data-web-{ordinal}"]
        assert row[1:8] == ["1Gi", "RWO", "Delete", "Bound", f"{NS}/data-web-{ordinal}",
                            "standard", "<unset>"], row
        pv = _json(kubeconfig, "pv", row[0])
        pod = _json(kubeconfig, "pod", f"web-{ordinal}")
        terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][0]["values"] == [pod["spec"]["nodeName"]]
        directory = Path(pv["spec"]["hostPath"]["path"])
        assert directory == local_path_dir(name) / f"{row[0]}_{NS}_data-web-{ordinal}"
        assert directory.is_dir() and directory.stat().st_mode & 0o777 == 0o777


def test_the_recreated_pod_reads_what_its_predecessor_wrote(lab, web):
    name, kubeconfig = lab
    out = kubectl(kubeconfig, "-n", NS, "exec", "web-0", "--", "sh", "-c",
                  "echo kept > /data/greeting")
    assert out.returncode == 0, out.stderr
    before = _json(kubeconfig, "pod", "web-0")
    out = kubectl(kubeconfig, "-n", NS, "delete", "pod", "web-0")
    assert out.returncode == 0, out.stderr

    def recreated_and_ready() -> dict | None:
        out = kubectl(kubeconfig, "-n", NS, "get", "pod", "web-0", "-o", "json")
        if out.returncode != 0:
            return None
        pod = json.loads(out.stdout)
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in pod["status"].get("conditions") or [])
        return pod if ready and pod["metadata"]["uid"] != before["metadata"]["uid"] else None

    after = wait_for(recreated_and_ready, 120, interval=0.5, what="web-0 back and Ready")
    assert after["spec"]["nodeName"] == before["spec"]["nodeName"]
    out = kubectl(kubeconfig, "-n", NS, "exec", "web-0", "--", "cat", "/data/greeting")
    assert (out.returncode, out.stdout) == (0, "kept\n"), out.stderr
    # On the host, the file is in the claim's local-path directory.
    volume = _json(kubeconfig, "pvc", "data-web-0")["spec"]["volumeName"]
    directory = local_path_dir(name) / f"{volume}_{NS}_data-web-0"
    assert (directory / "greeting").read_text() == "kept\n"
    # The other pod's volume is not this one's: it never saw the file.
    out = kubectl(kubeconfig, "-n", NS, "exec", "web-1", "--", "ls", "/data")
    assert (out.returncode, out.stdout) == (0, ""), out.stderr


def test_deleting_a_claim_deletes_its_volume_and_directory(lab, web):
    _, kubeconfig = lab
    claim = _json(kubeconfig, "pvc", "data-web-1")
    volume = claim["spec"]["volumeName"]
    directory = Path(_json(kubeconfig, "pv", volume)["spec"]["hostPath"]["path"])
    assert directory.is_dir()
    out = kubectl(kubeconfig, "-n", NS, "scale", "statefulset", "web", "--replicas=1")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: kubectl(kubeconfig, "-n", NS, "get", "pod", "web-1").returncode != 0,
             60, interval=0.5, what="web-1 gone")
    # Scaled down with the default Retain: the claim stays until it is deleted.
    assert _json(kubeconfig, "pvc", "data-web-1")["status"]["phase"] == "Bound"
    out = kubectl(kubeconfig, "-n", NS, "delete", "pvc", "data-web-1")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: kubectl(kubeconfig, "get", "pv", volume).returncode != 0 and
             not directory.exists(), 60, interval=0.5,
             what="the volume and its directory to go")
    out = kubectl(kubeconfig, "get", "pv", volume)
    assert f'persistentvolumes "{volume}" not found' in out.stderr
    # The other claim and its data are untouched.
    assert _json(kubeconfig, "pvc", "data-web-0")["status"]["phase"] == "Bound"


def test_a_pod_whose_claim_does_not_exist_stays_pending(lab, web):
    _, kubeconfig = lab
    out = kubectl(kubeconfig, "apply", "-f", "-", stdin=ORPHAN)
    assert out.returncode == 0, out.stderr

    def reason() -> str | None:
        events = _json(kubeconfig, "events", "--field-selector",
                       "involvedObject.name=orphan,reason=FailedScheduling")["items"]
        return events[0]["message"] if events else None

    message = wait_for(reason, 60, interval=0.5, what="a FailedScheduling event")
    assert message == '0/3 nodes are available: persistentvolumeclaim "nothing" not found.'
    pod = _json(kubeconfig, "pod", "orphan")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    condition = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False", "Unschedulable", message)
