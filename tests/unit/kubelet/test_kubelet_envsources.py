"""Env from ConfigMaps and Secrets: what the kubelet fetches, and how references resolve."""

from __future__ import annotations

import dataclasses

import pytest

from netlab.node.kubelet.envsources import CONFIGMAP, SECRET, referenced
from netlab.node.kubelet.spec import CONFIG_ERROR, ContainerConfigError, PodContext, container_env

CM = {"data": {"a": "alpha", "KEY": "beta", "bad=name": "x"}, "binaryData": {"bin": "AA=="}}
SECRET_OBJ = {"data": {"p": "czNjcmV0", "token": "dG9r"}}
CTX = PodContext(node_name="worker1", host_ip="192.168.100.3", pod_ip="10.244.1.7",
                 hostname="web-0", node_cpu_millis=2000, node_memory_bytes=4 << 30,
                 sources={(CONFIGMAP, "cfg"): CM, (SECRET, "sec"): SECRET_OBJ,
                          (CONFIGMAP, "gone"): None})
POD = {"metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1"},
       "spec": {"nodeName": "worker1", "serviceAccountName": "default", "containers": []}}


def env_of(**container):
    return container_env(POD, {"name": "c", **container}, CTX)


def config_error(**container) -> str:
    with pytest.raises(ContainerConfigError) as err:
        env_of(**container)
    assert err.value.reason == CONFIG_ERROR
    return err.value.message


def ref(kind, name, key, **extra):
    return {"valueFrom": {kind: {"name": name, "key": key, **extra}}}


def test_referenced_collects_every_configmap_and_secret():
    containers = [{"envFrom": [{"configMapRef": {"name": "a"}}, {"secretRef": {"name": "b"}}],
                   "env": [{"name": "X", **ref("configMapKeyRef", "c", "k")},
                           {"name": "Y", **ref("secretKeyRef", "d", "k")},
                           {"name": "Z", "value": "plain"},
                           {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}]
    assert referenced(containers) == {(CONFIGMAP, "a"), (SECRET, "b"), (CONFIGMAP, "c"),
                                      (SECRET, "d")}


def test_key_refs_read_configmap_data_and_decoded_secret_data():
    env = env_of(env=[{"name": "A", **ref("configMapKeyRef", "cfg", "a")},
                      {"name": "P", **ref("secretKeyRef", "sec", "p")},
                      {"name": "BOTH", "value": "$(A)-$(P)"}])
    assert (env["A"], env["P"], env["BOTH"]) == ("alpha", "s3cret", "alpha-s3cret")


def test_missing_objects_and_keys_fail_with_the_kubelets_messages():
    assert config_error(env=[{"name": "X", **ref("configMapKeyRef", "gone", "a")}]) == \
        'configmap "gone" not found'
    assert config_error(env=[{"name": "X", **ref("secretKeyRef", "unknown", "a")}]) == \
        'secret "unknown" not found'
    assert config_error(env=[{"name": "X", **ref("configMapKeyRef", "cfg", "k")}]) == \
        "couldn't find key k in ConfigMap shop/cfg"
    # binaryData is not a source of env values.
    assert config_error(env=[{"name": "X", **ref("configMapKeyRef", "cfg", "bin")}]) == \
        "couldn't find key bin in ConfigMap shop/cfg"
    assert config_error(env=[{"name": "X", **ref("secretKeyRef", "sec", "nope")}]) == \
        "couldn't find key nope in Secret shop/sec"
    assert config_error(envFrom=[{"secretRef": {"name": "gone"}}]) == 'secret "gone" not found'


def test_optional_references_leave_the_variable_out():
    env = env_of(env=[{"name": "X", **ref("configMapKeyRef", "gone", "a", optional=True)},
                      {"name": "Y", **ref("configMapKeyRef", "cfg", "k", optional=True)},
                      {"name": "Z", **ref("secretKeyRef", "sec", "k", optional=True)}],
                 envFrom=[{"configMapRef": {"name": "gone", "optional": True}}])
    assert not {"X", "Y", "Z"} & set(env)


def test_env_from_with_prefix_then_env_overrides():
    env = env_of(envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                          {"secretRef": {"name": "sec"}}],
                 env=[{"name": "token", "value": "explicit"}])
    assert env["CFG_a"] == "alpha" and env["CFG_KEY"] == "beta"
    assert "CFG_bad=name" not in env and "CFG_bin" not in env
    assert env["p"] == "s3cret" and env["token"] == "explicit"


def test_downward_api_with_sources_present():
    ctx = dataclasses.replace(CTX, sources={})
    env = container_env(POD, {"name": "c", "env": [
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}]},
        ctx)
    assert (env["IP"], env["SA"]) == ("10.244.1.7", "default")
