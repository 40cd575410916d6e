"""From a Pod's container to what the runtime runs: env, $(VAR), downward API, image."""

from __future__ import annotations

import sys

import pytest

from netlab.node.kubelet.spec import (
    CONFIG_ERROR,
    ContainerConfigError,
    PodContext,
    container_env,
    container_spec,
    expand,
    field_ref,
    image_id,
)

CTX = PodContext(node_name="worker1", host_ip="192.168.100.3", pod_ip="10.244.1.7",
                 hostname="web-0", node_cpu_millis=2000, node_memory_bytes=4 << 30)
POD = {"metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1",
                    "labels": {"app": "web", "tier": "front"},
                    "annotations": {"note": "hi"}},
       "spec": {"nodeName": "worker1", "serviceAccountName": "default", "containers": []}}


@pytest.mark.parametrize(("text", "want"), [
    ("$(A)", "a"),
    ("x-$(A)-$(B)", "x-a-b"),
    ("$(MISSING)", "$(MISSING)"),  # undefined stays as written
    ("$$(A)", "$(A)"),  # escaped
    ("$$$(A)", "$a"),
    ("$(A", "$(A"),  # unterminated
    ("cost $5", "cost $5"),
    ("end$", "end$"),
    ("$()", "$()"),
    ("", ""),
])
def test_expansion_follows_kubernetes(text, want):
    assert expand(text, {"A": "a", "B": "b"}) == want


def test_env_has_netlab_identity_then_the_list_in_order_with_expansion():
    container = {"name": "c", "env": [
        {"name": "URL", "value": "http://$(POD_IP):8080/$(MISSING)"},
        {"name": "A", "value": "1"},
        {"name": "B", "value": "$(A)$(A)"},
        {"name": "LATER_REF", "value": "$(C)"},  # C is defined after: stays literal
        {"name": "C", "value": "3"},
        {"name": "POD_NAME", "value": "overridden-$(POD_NAME)"},
    ]}
    env = container_env(POD, container, CTX)
    assert env["POD_NAMESPACE"] == "shop" and env["NODE_NAME"] == "worker1"
    assert env["HOSTNAME"] == "web-0" and env["POD_IP"] == "10.244.1.7"
    assert env["URL"] == "http://10.244.1.7:8080/$(MISSING)"
    assert env["B"] == "11" and env["LATER_REF"] == "$(C)"
    assert env["POD_NAME"] == "overridden-web-0"


def test_field_refs_the_downward_api_serves():
    def ref(path: str) -> str:
        return container_env(POD, {"name": "c", "env": [
            {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": path}}}]}, CTX)["X"]

    assert ref("metadata.name") == "web-0"
    assert ref("metadata.namespace") == "shop"
    assert ref("metadata.uid") == "u-1"
    assert ref("spec.nodeName") == "worker1"
    assert ref("spec.serviceAccountName") == "default"
    assert ref("status.podIP") == "10.244.1.7"
    assert ref("status.hostIP") == "192.168.100.3"
    assert ref("metadata.labels['app']") == "web"
    assert ref("metadata.labels") == 'app="web"\ntier="front"'
    assert ref("metadata.annotations['note']") == "hi"
    with pytest.raises(ContainerConfigError) as err:
        field_ref(POD, "status.phase", CTX)
    assert err.value.reason == CONFIG_ERROR and "status.phase" in err.value.message


def test_resource_field_refs_round_up_and_default_to_the_node():
    container = {"name": "c", "resources": {"limits": {"memory": "100Mi"},
                                            "requests": {"cpu": "250m"}},
                 "env": [
                     {"name": "MEM", "valueFrom": {"resourceFieldRef": {
                         "resource": "limits.memory", "divisor": "1Mi"}}},
                     {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {
                         "resource": "limits.cpu"}}},
                     {"name": "CPU_REQ_M", "valueFrom": {"resourceFieldRef": {
                         "resource": "requests.cpu", "divisor": "1m"}}},
                     {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {
                         "resource": "requests.cpu"}}}]}
    env = container_env(POD, container, CTX)
    assert env["MEM"] == "100" and env["CPU_REQ_M"] == "250"
    assert env["CPU_LIMIT"] == "2"  # no limit: the node's allocatable
    assert env["CPU_REQ"] == "1"  # 250m in cores, rounded up


def test_configmap_refs_explain_and_optional_ones_are_skipped():
    with pytest.raises(ContainerConfigError) as err:
        container_env(POD, {"name": "c", "env": [{"name": "X", "valueFrom": {
            "configMapKeyRef": {"name": "cfg", "key": "k"}}}]}, CTX)
    assert err.value.reason == "CreateContainerConfigError"
    assert 'configmap "cfg" not found' in err.value.message
    env = container_env(POD, {"name": "c", "env": [{"name": "X", "valueFrom": {
        "secretKeyRef": {"name": "s", "key": "k", "optional": True}}}]}, CTX)
    assert "X" not in env
    with pytest.raises(ContainerConfigError):
        container_env(POD, {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}, CTX)


def test_command_and_args_expand_then_the_image_decides_the_argv():
    spec = container_spec(POD, {"name": "c", "image": "busybox",
                                "command": ["sh", "-c"], "args": ["echo $(GREETING) $$(HOME)"],
                                "env": [{"name": "GREETING", "value": "hi"}],
                                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}},
                          CTX)
    assert spec.argv == ["sh", "-c", "echo hi $(HOME)"]
    assert spec.cpu_limit_millis == 500 and spec.memory_limit_bytes == 64 << 20
    assert spec.env["GREETING"] == "hi"
    builtin = container_spec(POD, {"name": "c", "image": "netlab/echo",
                                   "args": ["--port", "$(PORT)"],
                                   "env": [{"name": "PORT", "value": "9000"}]}, CTX)
    assert builtin.argv == [sys.executable, "-m", "netlab.images", "echo", "--port", "9000"]
    assert builtin.stop_signals_blocked


def test_an_unknown_image_without_command_lists_the_builtins():
    with pytest.raises(ContainerConfigError) as err:
        container_spec(POD, {"name": "c", "image": "nginx:1.25"}, CTX)
    assert err.value.reason == "ErrImageNeverPull"
    assert "nginx:1.25" in err.value.message and "netlab/echo" in err.value.message
    assert "agnhost" in err.value.message


def test_image_ids():
    assert image_id("registry.k8s.io/e2e-test-images/agnhost:2.39") == \
        "netlab-builtin://registry.k8s.io/e2e-test-images/agnhost"
    assert image_id("busybox") == "host-command://busybox"


def _stored(**config):
    from netlab.images.config import ImageConfig
    from netlab.images.store import StoredImage

    return StoredImage(id="sha256:" + "b" * 64, names=("docker.io/nlt/app:1",),
                       layers=("sha256:" + "1" * 64,), layer_dirs=("/store/layers/1",),
                       config=ImageConfig(**config), size=10)


def test_a_stored_image_runs_its_config_in_its_own_root():
    stored = _stored(entrypoint=("/app",), cmd=("serve",), env=("PATH=/app/bin", "MODE=image"),
                     working_dir="/srv", user="nobody")
    spec = container_spec(POD, {"name": "c", "image": "nlt/app:1", "args": ["$(MODE)-x"],
                                "env": [{"name": "MODE", "value": "pod"}]}, CTX, stored)
    assert spec.argv == ["/app", "pod-x"]  # $(VAR) sees the pod's env, not the image's
    assert spec.env["PATH"] == "/app/bin" and spec.env["MODE"] == "pod"
    assert spec.env["POD_NAME"] == "web-0"
    assert spec.working_dir == "/srv" and spec.user == "nobody"
    assert spec.rootfs == ("/store/layers/1",) and spec.image_id == stored.id
    assert not spec.stop_signals_blocked and "PYTHONPATH" not in spec.env
    own = container_spec(POD, {"name": "c", "image": "nlt/app:1", "command": ["sh"],
                               "workingDir": "/tmp"}, CTX, stored)
    assert own.argv == ["sh"] and own.working_dir == "/tmp"
    assert image_id("nlt/app:1", stored) == stored.id


def test_a_stored_image_with_nothing_to_run_is_a_create_error():
    with pytest.raises(ContainerConfigError) as err:
        container_spec(POD, {"name": "c", "image": "nlt/empty"}, CTX, _stored())
    assert err.value.reason == "CreateContainerError"
    assert "no command specified" in err.value.message


def test_an_image_nowhere_names_the_stored_ones_and_the_pull_policy():
    with pytest.raises(ContainerConfigError) as err:
        container_spec(POD, {"name": "c", "image": "nginx:1.25", "imagePullPolicy": "Never"},
                       CTX, None, ("busybox:latest", "alpine:latest"))
    message = err.value.message
    assert err.value.reason == "ErrImageNeverPull"
    assert message.startswith('Container image "nginx:1.25" is not present with pull policy '
                              "of Never")
    assert "busybox:latest, alpine:latest" in message and "netlab image load" in message
