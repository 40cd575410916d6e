"""ConfigMaps, Secrets, ServiceAccounts, ReplicationControllers and env from them, in a
real lab, through kubectl and the official Python client."""

from __future__ import annotations

import contextlib
import json
import textwrap

import pytest
from labkit import KUBECTL, kubectl, netlab_cli, wait_for

from netlab.client import SyncClient, lab_client

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

ENV_POD = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata: {name: PODNAME}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'echo "A=$A B=$B P=$P IP=$MYIP NAME=$MYNAME X=$CFG_x"; sleep 3600']
        envFrom:
        - configMapRef: {name: env-cm}
          prefix: CFG_
        env:
        - name: A
          valueFrom: {configMapKeyRef: {name: env-cm, key: a}}
        - name: B
          valueFrom: {configMapKeyRef: {name: env-cm, key: KEY}}
        - name: P
          valueFrom: {secretKeyRef: {name: env-secret, key: p}}
        - name: MYIP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - name: MYNAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
    """)

RC = textwrap.dedent("""\
    apiVersion: v1
    kind: ReplicationController
    metadata: {name: rc-web}
    spec:
      replicas: 3
      selector: {app: rc-web}
      template:
        metadata: {labels: {app: rc-web}}
        spec:
          terminationGracePeriodSeconds: 0
          containers:
          - {name: web, image: netlab/echo}
    """)


@pytest.fixture
def client(cluster_lab):
    with SyncClient(lab_client(cluster_lab.name)) as c:
        yield c


def _cleanup(kubeconfig, *what: str) -> None:
    kubectl(kubeconfig, "delete", "--ignore-not-found", "--wait=false", *what)


def test_kubectl_creates_configmaps_and_secrets(cluster_lab, kubeconfig, client, tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("listen 80\n")
    try:
        out = kubectl(kubeconfig, "create", "configmap", "c", "--from-literal=a=1",
                      f"--from-file={conf}")
        assert out.returncode == 0, out.stderr
        out = kubectl(kubeconfig, "create", "secret", "generic", "s", "--from-literal=p=pw")
        assert out.returncode == 0, out.stderr
        got = kubectl(kubeconfig, "get", "cm,secret")
        assert got.returncode == 0, got.stderr
        lines = [line.split() for line in got.stdout.splitlines()]
        assert ["NAME", "DATA", "AGE"] in [line[:3] for line in lines]
        assert ["configmap/c", "2"] in [line[:2] for line in lines]
        assert ["NAME", "TYPE", "DATA", "AGE"] in [line[:4] for line in lines]
        assert ["secret/s", "Opaque", "1"] in [line[:3] for line in lines]
        cm = client.get("configmaps", "c", "default")
        assert cm["data"] == {"a": "1", "app.conf": "listen 80\n"}
        assert client.get("secrets", "s", "default")["data"] == {"p": "cHc="}
        # The same table from netlab's own CLI.
        mine = netlab_cli("get", "--lab", cluster_lab.name, "cm", "c")
        assert mine.returncode == 0 and mine.stdout.split()[:4] == ["NAME", "DATA", "AGE", "c"]
        # stringData is merged into data and not stored.
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sd"},
                  "stringData": {"user": "admin"}, "data": {"p": "cHc="}}
        out = kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(secret))
        assert out.returncode == 0, out.stderr
        stored = client.get("secrets", "sd", "default")
        assert stored["data"] == {"p": "cHc=", "user": "YWRtaW4="}
        assert "stringData" not in stored
        described = kubectl(kubeconfig, "describe", "secret", "sd")
        assert described.returncode == 0, described.stderr
        assert "user:  5 bytes" in described.stdout and "Type:  Opaque" in described.stdout
    finally:
        _cleanup(kubeconfig, "cm/c", "secret/s", "secret/sd")


def test_invalid_configmaps_and_secrets_are_refused(kubeconfig, tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    out = kubectl(kubeconfig, "create", "configmap", "big", f"--from-file={big}")
    assert out.returncode != 0
    assert "is invalid: []: Too long: must have at most 1048576 bytes" in out.stderr
    bad_key = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "badkey"},
               "data": {"a b": "1"}}
    out = kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(bad_key))
    assert out.returncode != 0 and "data[a b]: Invalid value" in out.stderr
    tls = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"},
           "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}
    out = kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(tls))
    assert out.returncode != 0 and "data[tls.key]: Required value" in out.stderr
    try:
        frozen = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"},
                  "data": {"a": "1"}, "immutable": True}
        out = kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(frozen))
        assert out.returncode == 0, out.stderr
        out = kubectl(kubeconfig, "patch", "cm", "frozen", "-p", '{"data":{"a":"2"}}')
        assert out.returncode != 0
        assert "field is immutable when `immutable` is set" in out.stderr
    finally:
        _cleanup(kubeconfig, "cm/frozen")


def _logs_show(kubeconfig, pod: str, text: str) -> bool:
    return text in kubectl(kubeconfig, "logs", pod).stdout


def test_env_from_configmaps_secrets_and_the_downward_api(kubeconfig, client):
    try:
        assert kubectl(kubeconfig, "create", "configmap", "env-cm", "--from-literal=a=alpha",
                       "--from-literal=KEY=beta", "--from-literal=x=ex").returncode == 0
        assert kubectl(kubeconfig, "create", "secret", "generic", "env-secret",
                       "--from-literal=p=s3cret").returncode == 0
        out = kubectl(kubeconfig, "create", "-f", "-", stdin=ENV_POD.replace("PODNAME", "env-pod"))
        assert out.returncode == 0, out.stderr
        ip = wait_for(lambda: (client.get("pods", "env-pod", "default").get("status") or {})
                      .get("podIP"), 60, interval=0.2, what="env-pod to get an IP")
        expected = f"A=alpha B=beta P=s3cret IP={ip} NAME=env-pod X=ex"
        wait_for(lambda: _logs_show(kubeconfig, "env-pod", expected), 60, interval=0.3,
                 what=f"the pod to print {expected!r}")
    finally:
        _cleanup(kubeconfig, "pod/env-pod", "cm/env-cm", "secret/env-secret")


def _waiting(client, pod: str) -> dict:
    statuses = (client.get("pods", pod, "default").get("status") or {}).get(
        "containerStatuses") or []
    return (statuses[0].get("state") or {}).get("waiting") or {} if statuses else {}


def test_a_missing_key_waits_with_a_config_error_until_it_appears(kubeconfig, client):
    manifest = ENV_POD.replace("PODNAME", "wait-pod")
    try:
        assert kubectl(kubeconfig, "create", "configmap", "env-cm",
                       "--from-literal=a=alpha").returncode == 0
        assert kubectl(kubeconfig, "create", "secret", "generic", "env-secret",
                       "--from-literal=p=pw").returncode == 0
        assert kubectl(kubeconfig, "create", "-f", "-", stdin=manifest).returncode == 0
        message = "couldn't find key KEY in ConfigMap default/env-cm"
        waiting = wait_for(lambda: _waiting(client, "wait-pod").get("reason") ==
                           "CreateContainerConfigError" and _waiting(client, "wait-pod"), 60,
                           interval=0.2, what="the container to wait on its config")
        assert waiting["message"] == message
        wait_for(lambda: f"Error: {message}" in kubectl(
            kubeconfig, "get", "events", "--field-selector", "involvedObject.name=wait-pod",
            "-o", "jsonpath={.items[*].message}").stdout, 30, interval=0.3,
            what="a Failed event naming the key")
        out = kubectl(kubeconfig, "patch", "cm", "env-cm", "-p", '{"data":{"KEY":"late"}}')
        assert out.returncode == 0, out.stderr
        wait_for(lambda: _logs_show(kubeconfig, "wait-pod", "A=alpha B=late P=pw"), 60,
                 interval=0.3, what="the container to start once the key exists")
    finally:
        _cleanup(kubeconfig, "pod/wait-pod", "cm/env-cm", "secret/env-secret")


def test_every_namespace_gets_a_default_service_account(kubeconfig):
    try:
        assert kubectl(kubeconfig, "create", "namespace", "sa-test").returncode == 0
        wait_for(lambda: "default" in kubectl(kubeconfig, "get", "sa", "-n", "sa-test",
                                              "-o", "name").stdout, 30, interval=0.2,
                 what="serviceaccount/default in the new namespace")
        table = kubectl(kubeconfig, "get", "sa", "-n", "sa-test").stdout.split()
        assert table[:4] == ["NAME", "SECRETS", "AGE", "default"]
        described = kubectl(kubeconfig, "describe", "sa", "default", "-n", "sa-test")
        assert described.returncode == 0, described.stderr
        assert "Name:                default" in described.stdout
        first = kubectl(kubeconfig, "get", "sa", "default", "-n", "sa-test", "-o",
                        "jsonpath={.metadata.uid}").stdout
        assert kubectl(kubeconfig, "delete", "sa", "default", "-n", "sa-test").returncode == 0

        def recreated() -> bool:
            out = kubectl(kubeconfig, "get", "sa", "default", "-n", "sa-test", "-o",
                          "jsonpath={.metadata.uid}")
            return out.returncode == 0 and out.stdout not in ("", first)
        wait_for(recreated, 30, interval=0.2, what="the default serviceaccount to come back")
    finally:
        _cleanup(kubeconfig, "namespace/sa-test")


def _rc_pods(client) -> list[dict]:
    items = client.list("pods", "default", label_selector="app=rc-web")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def test_a_replication_controller_keeps_its_replicas_and_scales(kubeconfig, client):
    try:
        out = kubectl(kubeconfig, "create", "-f", "-", stdin=RC)
        assert out.returncode == 0, out.stderr
        assert "replicationcontroller/rc-web created" in out.stdout
        wait_for(lambda: len(_rc_pods(client)) == 3, 60, interval=0.2, what="3 pods of the RC")
        refs = [p["metadata"]["ownerReferences"][0] for p in _rc_pods(client)]
        assert {(r["kind"], r["name"], r["apiVersion"]) for r in refs} == {
            ("ReplicationController", "rc-web", "v1")}
        wait_for(lambda: kubectl(kubeconfig, "get", "rc", "rc-web", "--no-headers").stdout
                 .split()[1:4] == ["3", "3", "3"], 90, interval=0.3, what="3 ready replicas")
        described = kubectl(kubeconfig, "describe", "rc", "rc-web")
        assert described.returncode == 0, described.stderr
        assert "3 current / 3 desired" in described.stdout
        header = kubectl(kubeconfig, "get", "rc").stdout.split()[:5]
        assert header == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
        out = kubectl(kubeconfig, "scale", "rc", "rc-web", "--replicas=1")
        assert out.returncode == 0, out.stderr
        wait_for(lambda: len(_rc_pods(client)) == 1, 60, interval=0.2, what="1 pod after scale")
        assert "replicationcontroller/rc-web" in kubectl(kubeconfig, "get", "all").stdout
        out = kubectl(kubeconfig, "delete", "rc", "rc-web")
        assert out.returncode == 0 and 'replicationcontroller "rc-web" deleted' in out.stdout
        wait_for(lambda: not _rc_pods(client), 60, interval=0.2,
                 what="the RC's pods to be garbage-collected")
    finally:
        _cleanup(kubeconfig, "rc/rc-web")


def test_python_client_configmap_crud_and_watch(kubeconfig):
    pytest.importorskip("kubernetes", reason="the kubernetes package is not installed")
    from kubernetes import client as kclient
    from kubernetes import config, watch

    api = kclient.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    listed = api.list_namespaced_config_map("default")
    body = kclient.V1ConfigMap(metadata=kclient.V1ObjectMeta(name="py-cm", labels={"py": "1"}),
                               data={"k": "v1"})
    try:
        api.create_namespaced_config_map("default", body)
        got = api.read_namespaced_config_map("py-cm", "default")
        assert got.data == {"k": "v1"}
        got.data["k"] = "v2"
        replaced = api.replace_namespaced_config_map("py-cm", "default", got)
        assert replaced.data == {"k": "v2"}
        seen = []
        for event in watch.Watch().stream(api.list_namespaced_config_map, "default",
                                          label_selector="py=1", timeout_seconds=10,
                                          resource_version=listed.metadata.resource_version):
            seen.append((event["type"], event["object"].data["k"]))
            if len(seen) == 2:
                break
        assert seen == [("ADDED", "v1"), ("MODIFIED", "v2")]
        api.delete_namespaced_config_map("py-cm", "default")
        with pytest.raises(kclient.ApiException) as err:
            api.read_namespaced_config_map("py-cm", "default")
        assert err.value.status == 404
    finally:
        with contextlib.suppress(kclient.ApiException):
            api.delete_namespaced_config_map("py-cm", "default")


def test_kubectl_apply_describe_and_strict_validation(kubeconfig, client):
    manifest = textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: applied}
        data: {a: "1", b: "2"}
        """)
    try:
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
        assert out.returncode == 0 and "configmap/applied created" in out.stdout, out.stderr
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest.replace(', b: "2"', ""))
        assert out.returncode == 0, out.stderr
        assert "configmap/applied configured" in out.stdout and "warning" not in out.stderr
        assert client.get("configmaps", "applied", "default")["data"] == {"a": "1"}
        described = kubectl(kubeconfig, "describe", "cm", "applied")
        assert described.returncode == 0 and "Name:         applied" in described.stdout
        unknown = manifest.replace("data:", "dato: {x: y}\ndata:")
        out = kubectl(kubeconfig, "create", "-f", "-", stdin=unknown.replace("applied", "typo"))
        assert out.returncode != 0 and 'unknown field "dato"' in out.stderr
    finally:
        _cleanup(kubeconfig, "cm/applied")
