"""The effective securityContext (pod's and container's) and the kubelet's
runAsNonRoot refusal, with upstream's messages."""

from __future__ import annotations

import pytest

from netlab.node.kubelet.spec import CONFIG_ERROR, ContainerConfigError, PodContext, container_spec
from netlab.node.runtime.security import security_of, verify_run_as_non_root
from netlab.node.runtime.spec import ContainerSpec

pytestmark = pytest.mark.unit

CTX = PodContext(node_name="w1", host_ip="192.168.100.3", pod_ip="10.244.1.7",
                 hostname="p", node_cpu_millis=2000, node_memory_bytes=4 << 30)


def _pod(pod_sc=None):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
            "spec": {"containers": [], "securityContext": pod_sc or {}}}


def test_the_container_overrides_the_pod():
    sc = security_of({"securityContext": {"runAsUser": 1000}},
                     {"runAsUser": 2000, "runAsGroup": 3000, "runAsNonRoot": True})
    assert (sc.run_as_user, sc.run_as_group, sc.run_as_non_root) == (1000, 3000, True)


def test_defaults_are_a_contained_container():
    sc = security_of({})
    assert sc.seccomp == "RuntimeDefault" and not sc.no_new_privs and not sc.read_only_root
    assert sc.run_as_user is None


def test_no_new_privs_only_from_an_explicit_false():
    assert security_of({"securityContext": {"allowPrivilegeEscalation": False}}).no_new_privs
    assert not security_of({"securityContext": {"allowPrivilegeEscalation": True}}).no_new_privs


def test_seccomp_types_and_privileged_runs_unconfined():
    assert security_of({}, {"seccompProfile": {"type": "Unconfined"}}).seccomp == "Unconfined"
    assert security_of({"securityContext": {"privileged": True}}).seccomp == "Unconfined"
    local = security_of({"securityContext": {"seccompProfile": {
        "type": "Localhost", "localhostProfile": "p.json"}}})
    assert local.seccomp == "Localhost/p.json"


def test_run_as_user_overrides_the_images_user_but_keeps_its_group_rule():
    spec = ContainerSpec("c", command=("sh",), user="nobody:nogroup", run_as_user=1000)
    assert spec.process_user == "1000"
    spec = ContainerSpec("c", command=("sh",), user="nobody", run_as_group=5)
    assert spec.process_user == "nobody:5"
    assert ContainerSpec("c", command=("sh",)).process_user is None


@pytest.mark.parametrize(("pod_sc", "container_sc", "image_user", "want"), [
    ({}, {}, None, None),
    ({"runAsNonRoot": True}, {}, None,
     'container has runAsNonRoot and image will run as root (pod: "p_ns(u-1)", container: c)'),
    ({"runAsNonRoot": True}, {}, "0:0",
     'container has runAsNonRoot and image will run as root (pod: "p_ns(u-1)", container: c)'),
    ({}, {"runAsNonRoot": True, "runAsUser": 0}, None,
     'container\'s runAsUser breaks non-root policy (pod: "p_ns(u-1)", container: c)'),
    ({"runAsNonRoot": True}, {"runAsUser": 1000}, None, None),
    ({"runAsNonRoot": True}, {}, "1000", None),
    ({"runAsNonRoot": True}, {}, "app",
     "container has runAsNonRoot and image has non-numeric user (app), cannot verify user "
     'is non-root (pod: "p_ns(u-1)", container: c)'),
    ({"runAsNonRoot": True}, {"runAsNonRoot": False}, None, None),
])
def test_run_as_non_root_as_the_kubelet_verifies_it(pod_sc, container_sc, image_user, want):
    container = {"name": "c", "securityContext": container_sc}
    assert verify_run_as_non_root(_pod(pod_sc), container, image_user) == want


def test_the_kubelet_refuses_root_with_a_config_error():
    with pytest.raises(ContainerConfigError) as err:
        container_spec(_pod({"runAsNonRoot": True}),
                       {"name": "c", "image": "busybox", "command": ["sleep", "1"]}, CTX)
    assert err.value.reason == CONFIG_ERROR
    assert err.value.message.startswith("container has runAsNonRoot and image will run as root")
    spec = container_spec(_pod({"runAsNonRoot": True, "runAsUser": 1000}),
                          {"name": "c", "image": "busybox", "command": ["sleep", "1"],
                           "securityContext": {"readOnlyRootFilesystem": True,
                                               "allowPrivilegeEscalation": False}}, CTX)
    assert spec.run_as_user == 1000 and spec.read_only_root and spec.no_new_privs
