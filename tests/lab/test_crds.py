"""CustomResourceDefinitions in a running lab, driven by real kubectl: the resource
appears without a restart (api-resources, get with the printer columns), custom objects
are validated against the schema and pruned, the status subresource is patched, a watch
sees events, and deleting the CRD removes its objects and ends the watch."""

from __future__ import annotations

import subprocess
import textwrap
import threading

import pytest
from labkit import KUBECTL, netlab_cli, wait_for, write_kubeconfig

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.example.com}
    spec:
      group: example.com
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd],
              categories: [all]}
      versions:
      - name: v1
        served: true
        storage: true
        subresources:
          status: {}
          scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
        additionalPrinterColumns:
        - {name: Size, type: integer, jsonPath: .spec.size}
        - {name: Phase, type: string, jsonPath: .status.phase}
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                required: [size]
                properties:
                  size: {type: integer, minimum: 1}
                  color: {type: string, default: red}
                  replicas: {type: integer}
              status:
                type: object
                properties:
                  phase: {type: string}
    """)


def widget(name: str, size: object = 3, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: example.com/v1
        kind: Widget
        metadata: {{name: {name}}}
        spec: {{size: {size}{extra}}}
        """)


@pytest.fixture(scope="module")
def kube(cluster_lab, tmp_path_factory):
    """A kubectl runner with its own discovery cache, so no stale cache hides the CRD."""
    home = tmp_path_factory.mktemp("kube")
    config = write_kubeconfig(cluster_lab.name, home)

    def argv(*args: str) -> list[str]:
        return [str(KUBECTL), "--kubeconfig", str(config), "--cache-dir", str(home / "cache"),
                *args]

    def run(*args: str, stdin: str | None = None, timeout: float = 60):
        return subprocess.run(argv(*args), capture_output=True, text=True, input=stdin,
                              timeout=timeout, check=False)
    run.argv = argv  # type: ignore[attr-defined]
    run.config = config  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def crd(kube):
    out = kube("apply", "-f", "-", stdin=CRD)
    assert out.returncode == 0, out.stderr
    try:
        wait_for(lambda: kube("wait", "--for=condition=Established",
                              "crd/widgets.example.com", "--timeout=5s").returncode == 0,
                 timeout=30, what="the CRD to be established")
        yield
    finally:
        kube("delete", "crd", "widgets.example.com", "--ignore-not-found", "--wait=false")


def test_crd_is_listed_and_discoverable(kube, crd):
    out = kube("get", "crd")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0].split() == ["NAME", "CREATED", "AT"]
    assert "widgets.example.com" in out.stdout
    out = kube("api-resources", "--api-group=example.com")
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("widgets"))
    assert line.split() == ["widgets", "wd", "example.com/v1", "true", "Widget"]
    out = kube("get", "crd", "widgets.example.com", "-o",
               "jsonpath={.status.conditions[?(@.type=='NamesAccepted')].status}")
    assert out.stdout == "True"
    # The schema is published in OpenAPI: kubectl explain reads it.
    out = kube("explain", "widgets.spec")
    assert out.returncode == 0, out.stderr
    assert "size" in out.stdout and "<integer>" in out.stdout


def test_create_get_columns_invalid_and_pruned(kube, crd):
    out = kube("create", "-f", "-", stdin=widget("w1"))
    assert out.returncode == 0, out.stderr
    out = kube("get", "wd")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "PHASE"]
    assert lines[1].split() == ["w1", "3"]
    out = kube("create", "-f", "-", stdin=widget("bad", size='"big"'))
    assert out.returncode != 0
    assert ('spec.size: Invalid value: "string": spec.size in body must be of type integer: '
            '"string"') in out.stderr
    out = kube("create", "-f", "-", stdin=widget("bad", size=0))
    assert out.returncode != 0 and "spec.size in body should be greater than or equal to 1" \
        in out.stderr
    # kubectl's default (strict) refuses an unknown field; with validation off it is pruned.
    out = kube("create", "-f", "-", stdin=widget("w2", extra=", bogus: 1"))
    assert out.returncode != 0 and 'unknown field "spec.bogus"' in out.stderr
    out = kube("create", "--validate=false", "-f", "-", stdin=widget("w2", extra=", bogus: 1"))
    assert out.returncode == 0, out.stderr
    out = kube("get", "widget", "w2", "-o", "jsonpath={.spec}")
    assert out.stdout == '{"color":"red","size":3}'
    out = kube("get", "all")
    assert "widget.example.com/w1" in out.stdout


def test_netlab_get_resolves_custom_resources(cluster_lab, kube, crd):
    kube("apply", "-f", "-", stdin=widget("w1"))
    out = netlab_cli("get", "widgets", "--lab", cluster_lab.name)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "PHASE"]
    assert "w1" in [x.split()[0] for x in lines[1:] if x.strip()], out.stdout
    out = netlab_cli("get", "wd", "w1", "--lab", cluster_lab.name, "-o", "json")
    assert out.returncode == 0 and '"kind": "Widget"' in out.stdout, out.stderr


def test_status_and_scale_subresources(kube, crd):
    kube("create", "-f", "-", stdin=widget("w3"))
    out = kube("patch", "widget", "w3", "--subresource=status", "--type=merge",
               "-p", '{"status":{"phase":"Ready"}}')
    assert out.returncode == 0, out.stderr
    out = kube("get", "widget", "w3", "--no-headers")
    assert out.stdout.split() == ["w3", "3", "Ready"]
    # Through the main resource the status does not change, and the spec moves generation.
    kube("patch", "widget", "w3", "--type=merge", "-p",
         '{"spec":{"size":5},"status":{"phase":"Nope"}}')
    out = kube("get", "widget", "w3", "-o",
               "jsonpath={.status.phase} {.spec.size} {.metadata.generation}")
    assert out.stdout == "Ready 5 2"
    out = kube("apply", "-f", "-", stdin=widget("w3", size=6))
    assert out.returncode == 0, out.stderr
    assert kube("get", "widget", "w3", "-o", "jsonpath={.spec.size}").stdout == "6"
    # The scale subresource maps onto the CRD's replica paths.
    out = kube("scale", "widget", "w3", "--replicas=4")
    assert out.returncode == 0, out.stderr
    assert kube("get", "widget", "w3", "-o", "jsonpath={.spec.replicas}").stdout == "4"


def test_python_client_crud_and_watch(kube, crd):
    pytest.importorskip("kubernetes", reason="the kubernetes package is not installed")
    from kubernetes import client as kclient
    from kubernetes import config, watch

    api = kclient.CustomObjectsApi(config.new_client_from_config(str(kube.config)))
    args = ("example.com", "v1", "default", "widgets")
    listed = api.list_namespaced_custom_object(*args)
    stream = watch.Watch()
    events: list[tuple[str, str]] = []

    def follow() -> None:
        for event in stream.stream(api.list_namespaced_custom_object, *args,
                                   resource_version=listed["metadata"]["resourceVersion"],
                                   timeout_seconds=30):
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                stream.stop()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "py"},
            "spec": {"size": 2}}
    made = api.create_namespaced_custom_object(*args, body)
    assert made["spec"] == {"size": 2, "color": "red"}
    api.patch_namespaced_custom_object(*args, "py", {"spec": {"size": 7}})
    assert api.get_namespaced_custom_object(*args, "py")["spec"]["size"] == 7
    api.delete_namespaced_custom_object(*args, "py")
    reader.join(timeout=30)
    assert [e for e in events if e[1] == "py"] == [
        ("ADDED", "py"), ("MODIFIED", "py"), ("DELETED", "py")]


def test_namespace_deletion_removes_custom_objects(kube, crd):
    assert kube("create", "namespace", "crd-ns").returncode == 0
    try:
        out = kube("create", "-n", "crd-ns", "-f", "-", stdin=widget("inside"))
        assert out.returncode == 0, out.stderr
    finally:
        out = kube("delete", "namespace", "crd-ns", "--timeout=90s", timeout=120)
    assert out.returncode == 0, out.stderr
    out = kube("get", "widgets", "-A", "--no-headers")
    assert "inside" not in out.stdout


def test_watch_sees_events_and_crd_delete_removes_objects(kube, crd):
    watch = subprocess.Popen(kube.argv("get", "widgets", "--watch", "--no-headers"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watch.stdout), daemon=True)
    try:
        reader.start()
        kube("create", "-f", "-", stdin=widget("w4"))
        wait_for(lambda: any("w4" in x for x in lines), timeout=30, what="the watch event")
        out = kube("delete", "crd", "widgets.example.com", "--timeout=60s")
        assert out.returncode == 0, out.stderr
        # The open watch ends cleanly once the resource is gone.
        assert watch.wait(timeout=30) is not None
        assert kube("get", "crd", "widgets.example.com").returncode != 0
        out = kube("get", "--raw", "/apis/example.com/v1/namespaces/default/widgets")
        assert out.returncode != 0 and "NotFound" in out.stderr
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
