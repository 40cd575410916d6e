"""The official Python ``kubernetes`` client against the API server: list, create, watch."""

from __future__ import annotations

import shutil
import threading
from typing import Any

import pytest
from apiserver_kit import TOKEN, ThreadedServer, make_certificate

from netlab.master.store import MemoryStore

kubernetes = pytest.importorskip(
    "kubernetes", reason="the official client is not installed (pip install kubernetes)")
if shutil.which("openssl") is None:
    pytest.skip("needs openssl for the test certificate", allow_module_level=True)


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from kubernetes import client

    tmp = tmp_path_factory.mktemp("pyclient")
    cert = make_certificate(tmp)
    assert cert is not None
    store = MemoryStore()
    server = ThreadedServer(store, *cert).start()
    cfg = client.Configuration()
    cfg.host = server.url
    cfg.ssl_ca_cert = cert[0]
    cfg.api_key = {"authorization": TOKEN}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    api_client = client.ApiClient(cfg)
    try:
        yield client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    finally:
        api_client.close()
        server.stop()
        store.close()


def test_list_create_watch_pods(core):
    from kubernetes import client, watch

    v1, _ = core
    assert {ns.metadata.name for ns in v1.list_namespace().items} >= {"default", "kube-system"}
    start = v1.list_namespaced_pod("default").metadata.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(v1.list_namespaced_pod, "default", resource_version=start,
                              timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 3:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    body = client.V1Pod(metadata=client.V1ObjectMeta(name="py", labels={"from": "python"}),
                        spec=client.V1PodSpec(containers=[
                            client.V1Container(name="c", image="busybox")]))
    created = v1.create_namespaced_pod("default", body)
    assert created.metadata.uid and created.spec.restart_policy == "Always"
    v1.patch_namespaced_pod("py", "default", {"metadata": {"labels": {"step": "2"}}})
    v1.delete_namespaced_pod("py", "default")
    thread.join(15)
    assert seen == [("ADDED", "py"), ("MODIFIED", "py"), ("DELETED", "py")]
    pods = v1.list_pod_for_all_namespaces(label_selector="from=python")
    assert pods.items == []


def test_errors_and_other_groups(core):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    v1, apps = core
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod("missing", "default")
    assert err.value.status == 404
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c",
                                                                     image="nginx")]))))
    out = apps.create_namespaced_deployment("default", dep)
    assert out.spec.replicas == 1 and out.spec.strategy.type == "RollingUpdate"
    scale = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
    assert scale.spec.replicas == 3
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 3
