"""ConfigMap and Secret rules: keys, the 1 MiB limit, Secret types, base64, stringData,
immutability; RC validation and defaulting; the tables kubectl prints for these kinds."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from netlab.api import configdata, defaults, errors, validation
from netlab.api.tables import to_table

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def cm(**fields):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"}, **fields}


def secret(stype=None, annotations=None, **fields):
    obj = {"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "s", "namespace": "default"}, **fields}
    if stype:
        obj["type"] = stype
    if annotations:
        obj["metadata"]["annotations"] = annotations
    return obj


def messages(kind, obj):
    return [str(e) for e in validation.validate(kind, obj, namespaced=True)]


def test_a_valid_configmap_passes():
    assert messages("ConfigMap", cm(data={"a.b_c-D": "1", "app.conf": "x"},
                                    binaryData={"bin": "AAE="})) == []


@pytest.mark.parametrize(("key", "detail"), [
    ("a b", "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"),
    (".", "must not be '.'"),
    ("..", "must not be '..'"),
    ("..x", "must not start with '..'"),
    ("k" * 254, "must be no more than 253 characters"),
])
def test_bad_keys_are_named_with_their_path(key, detail):
    got = messages("ConfigMap", cm(data={key: "1"}))
    assert any(m.startswith(f'data[{key}]: Invalid value: "{key}": ') and detail in m
               for m in got), got
    got = messages("Secret", secret(data={key: "MQ=="}))
    assert any(m.startswith(f"data[{key}]: Invalid value") for m in got), got


def test_a_key_in_both_data_and_binary_data_is_refused():
    got = messages("ConfigMap", cm(data={"k": "1"}, binaryData={"k": "MQ=="}))
    assert got == ['data[k]: Invalid value: "k": duplicate of key present in binaryData',
                   'binaryData[k]: Invalid value: "k": duplicate of key present in data']


def test_one_mebibyte_is_the_limit():
    at_limit = cm(data={"a": "x" * (configdata.MAX_SIZE - 1), "b": "y"})
    assert messages("ConfigMap", at_limit) == []
    over = cm(data={"a": "x" * configdata.MAX_SIZE}, binaryData={"b": "AA=="})
    assert messages("ConfigMap", over) == ["[]: Too long: must have at most 1048576 bytes"]
    # Secrets count decoded bytes: 1 MiB + 3 bytes of base64-encoded data.
    big = configdata.encode_base64(b"\0" * (configdata.MAX_SIZE + 3))
    assert messages("Secret", secret(data={"k": big})) == [
        "data: Too long: must have at most 1048576 bytes"]
    err = errors.invalid_object("ConfigMap", "c", validation.validate(
        "ConfigMap", over, namespaced=True))
    assert err.code == 422
    assert err.message == 'ConfigMap "c" is invalid: []: Too long: must have at most 1048576 bytes'


@pytest.mark.parametrize(("stype", "data", "annotations", "want"), [
    ("kubernetes.io/service-account-token", {}, None,
     ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]),
    ("kubernetes.io/service-account-token", {}, {"kubernetes.io/service-account.name": "x"}, []),
    ("kubernetes.io/dockercfg", {}, None, ["data[.dockercfg]: Required value"]),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "bm90IGpzb24="}, None,
     ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": '
      "invalid character 'n' looking for beginning of value"]),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "e30="}, None, []),
    ("kubernetes.io/dockercfg", {".dockercfg": "WzFd"}, None,
     ['data[.dockercfg]: Invalid value: "<secret contents redacted>": json: cannot unmarshal '
      "array into Go value of type map[string]interface {}"]),
    ("kubernetes.io/basic-auth", {}, None,
     ["data[username]: Required value", "data[password]: Required value"]),
    ("kubernetes.io/basic-auth", {"password": "cA=="}, None, []),
    ("kubernetes.io/ssh-auth", {}, None, ["data[ssh-privatekey]: Required value"]),
    ("kubernetes.io/tls", {"tls.crt": "eA=="}, None, ["data[tls.key]: Required value"]),
    ("kubernetes.io/tls", {"tls.crt": "eA==", "tls.key": "eA=="}, None, []),
    ("example.com/custom", {}, None, []),
])
def test_well_known_secret_types(stype, data, annotations, want):
    assert messages("Secret", secret(stype, annotations, data=data)) == want


def test_string_data_is_merged_into_data_and_not_kept():
    obj = secret(data={"a": "eA==", "b": "eA=="}, stringData={"b": "new", "c": "é"})
    configdata.decode_payload("Secret", obj)
    assert obj["data"] == {"a": "eA==", "b": "bmV3", "c": "w6k="}
    assert "stringData" not in obj
    only = secret(stringData={"p": "pw"})
    configdata.decode_payload("Secret", only)
    assert only["data"] == {"p": "cHc="}


@pytest.mark.parametrize(("value", "offset"), [("!!!!", 0), ("cGFzcw", 4), ("YQ=", 2),
                                               ("cGF zcw==", 3)])
def test_data_that_is_not_base64_is_a_bad_request(value, offset):
    with pytest.raises(errors.APIError) as err:
        configdata.decode_payload("Secret", secret(data={"k": value}))
    assert err.value.code == 400
    assert err.value.message == ('Secret in version "v1" cannot be handled as a Secret: '
                                 f"illegal base64 data at input byte {offset}")
    with pytest.raises(errors.APIError):
        configdata.decode_payload("ConfigMap", cm(binaryData={"k": value}))
    configdata.decode_payload("ConfigMap", cm(data={"k": value}))  # plain strings: fine


def test_secret_type_defaults_to_opaque_and_is_immutable():
    obj = defaults.apply_defaults("Secret", secret())
    assert obj["type"] == "Opaque"
    new = secret("kubernetes.io/tls", data={"tls.crt": "eA==", "tls.key": "eA=="})
    got = [str(e) for e in validation.validate_update("Secret", new, obj, namespaced=True)]
    assert 'type: Invalid value: "kubernetes.io/tls": field is immutable' in got


def test_immutable_payloads_refuse_changes():
    old = cm(data={"a": "1"}, immutable=True)
    changed = cm(data={"a": "2"}, immutable=True)
    got = [str(e) for e in validation.validate_update("ConfigMap", changed, old, True)]
    assert got == ["data: Forbidden: field is immutable when `immutable` is set"]
    unfrozen = cm(data={"a": "1"}, immutable=False)
    got = [str(e) for e in validation.validate_update("ConfigMap", unfrozen, old, True)]
    assert got == ["immutable: Forbidden: field is immutable when `immutable` is set"]
    assert validation.validate_update("ConfigMap", cm(data={"a": "2"}), cm(data={"a": "1"}),
                                      True) == []
    old_s = secret(data={"a": "eA=="}, immutable=True, type="Opaque")
    new_s = secret(data={"a": "eQ=="}, immutable=True, type="Opaque")
    got = [str(e) for e in validation.validate_update("Secret", new_s, old_s, True)]
    assert got == ["data: Forbidden: field is immutable when `immutable` is set"]


def rc(**spec):
    return {"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "r", "namespace": "default"}, "spec": spec}


TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "netlab/echo"}]}}


def test_rc_defaults_its_selector_and_labels_from_the_template():
    obj = defaults.apply_defaults("ReplicationController", rc(template=TEMPLATE))
    assert obj["spec"]["selector"] == {"app": "web"}
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert messages("ReplicationController", obj) == []


def test_rc_validation_names_the_fields():
    assert messages("ReplicationController", rc()) == [
        "spec.selector: Required value", "spec.template: Required value"]
    got = messages("ReplicationController", rc(selector={"app": "other"}, template=TEMPLATE,
                                                replicas=-1))
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in got
    assert any(m.startswith("spec.template.metadata.labels: Invalid value")
               and m.endswith("selector does not match template labels") for m in got)


def test_tables_show_kubectls_columns():
    table = to_table("ConfigMap", [cm(data={"a": "1"}, binaryData={"b": "AA=="})], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["c", 2]
    table = to_table("Secret", [defaults.apply_defaults("Secret", secret(data={"a": "eA=="}))],
                     NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    assert table["rows"][0]["cells"][:3] == ["s", "Opaque", 1]
    sa = {"metadata": {"name": "default"}, "secrets": [{"name": "x"}]}
    table = to_table("ServiceAccount", [sa], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Secrets", "Age"]
    assert table["rows"][0]["cells"][:2] == ["default", 1]
    obj = defaults.apply_defaults("ReplicationController", rc(template=TEMPLATE, replicas=3))
    obj["status"] = {"replicas": 2, "readyReplicas": 1}
    table = to_table("ReplicationController", [obj], NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]
    cells = table["rows"][0]["cells"]
    assert cells[:4] == ["r", 3, 2, 1] and cells[5:] == ["c", "netlab/echo", "app=web"]


def _pod(**spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "netlab/echo"}], **spec}}


def test_pod_dns_config_is_checked_as_upstream_checks_it():
    assert messages("Pod", _pod(dnsPolicy="None")) == [
        "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]
    assert messages("Pod", _pod(dnsPolicy="None", dnsConfig={"searches": ["a"]})) == [
        "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver "
        "when `dnsPolicy` is None"]
    bad = messages("Pod", _pod(dnsConfig={"nameservers": ["1.1.1.1", "x", "3.3.3.3", "4.4.4.4"],
                                          "searches": ["Bad_Domain"], "options": [{}]}))
    assert bad[0] == ('spec.dnsConfig.nameservers: Invalid value: []string{"1.1.1.1", "x", '
                      '"3.3.3.3", "4.4.4.4"}: must not have more than 3 nameservers')
    assert 'spec.dnsConfig.nameservers[1]: Invalid value: "x": must be a valid IP address' in bad
    assert any(m.startswith('spec.dnsConfig.searches[0]: Invalid value: "Bad_Domain"')
               for m in bad)
    assert "spec.dnsConfig.options[0]: Required value: Option.Name must not be empty" in bad
    assert messages("Pod", _pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["10.96.0.10"], "searches": ["svc.cluster.local."],
        "options": [{"name": "ndots", "value": "2"}]})) == []


def _mounting(**mount):
    return _pod(containers=[{"name": "c", "image": "netlab/echo", "volumeMounts": [
        {"name": "data", "mountPath": "/data", **mount}]}],
        volumes=[{"name": "data", "emptyDir": {}}])


def test_volume_mount_paths_and_propagation_are_checked_as_upstream_checks_them():
    assert messages("Pod", _mounting(subPathExpr="$(POD_NAME)/logs")) == []
    assert messages("Pod", _mounting(subPath="a", subPathExpr="$(POD_NAME)")) == [
        'spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: "$(POD_NAME)": '
        "subPathExpr and subPath are mutually exclusive"]
    # Upstream names the list, not the entry, in these paths.
    assert messages("Pod", _mounting(subPath="/etc")) == [
        'spec.containers[0].volumeMounts.subPath: Invalid value: "/etc": '
        "must be a relative path"]
    assert messages("Pod", _mounting(subPathExpr="a/../../b")) == [
        'spec.containers[0].volumeMounts.subPathExpr: Invalid value: "a/../../b": '
        "must not contain '..'"]
    assert messages("Pod", _mounting(mountPropagation="Shared")) == [
        'spec.containers[0].volumeMounts.mountPropagation: Unsupported value: "Shared": '
        'supported values: "Bidirectional", "HostToContainer", "None"']
    assert messages("Pod", _mounting(mountPropagation="Bidirectional")) == [
        "spec.containers[0].volumeMounts.mountPropagation: Forbidden: Bidirectional mount "
        "propagation is available only to privileged containers"]
    assert messages("Pod", _mounting(mountPropagation="HostToContainer")) == []


def test_seccomp_profiles_are_checked_as_upstream_checks_them():
    def with_profile(profile, pod_level=False):
        if pod_level:
            return _pod(securityContext={"seccompProfile": profile})
        return _pod(containers=[{"name": "c", "image": "netlab/echo",
                                 "securityContext": {"seccompProfile": profile}}])
    assert messages("Pod", with_profile({"type": "Localhost",
                                         "localhostProfile": "profiles/audit.json"})) == []
    assert messages("Pod", with_profile({"type": "Localhost"}, pod_level=True)) == [
        "spec.securityContext.seccompProfile.localhostProfile: Required value: must be set "
        "when seccomp type is Localhost"]
    assert messages("Pod", with_profile({"type": "Localhost", "localhostProfile": "../x"})) == [
        'spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: '
        '"../x": must not contain \'..\'']
    assert messages("Pod", with_profile({"type": "Strict"})) == [
        'spec.containers[0].securityContext.seccompProfile.type: Unsupported value: "Strict": '
        'supported values: "Localhost", "RuntimeDefault", "Unconfined"']
