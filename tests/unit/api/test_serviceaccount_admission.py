"""ServiceAccount admission's token mount: the volume, the mounts, and who opts out."""

from __future__ import annotations

import random

import pytest

from netlab.api.serviceaccount_admission import MOUNT_PATH, mount_token

pytestmark = pytest.mark.unit


def pod(**spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"serviceAccountName": "default",
                     "containers": [{"name": "a", "image": "busybox"}], **spec}}


def test_every_container_gets_the_projected_token_ca_and_namespace() -> None:
    p = pod(initContainers=[{"name": "init", "image": "busybox"}])
    name = mount_token(p, {"metadata": {"name": "default"}}, random.Random(1))
    assert name is not None and name.startswith("kube-api-access-") and len(name) == 21
    (volume,) = p["spec"]["volumes"]
    assert volume["name"] == name
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"] == {"name": "kube-root-ca.crt",
                                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == \
        "metadata.namespace"
    assert volume["projected"]["defaultMode"] == 420
    for c in p["spec"]["initContainers"] + p["spec"]["containers"]:
        assert c["volumeMounts"] == [{"name": name, "readOnly": True, "mountPath": MOUNT_PATH}]


@pytest.mark.parametrize("pod_says, account_says, mounted", [
    (None, None, True), (None, True, True), (None, False, False),
    (True, False, True), (False, True, False), (False, None, False),
])
def test_the_pods_choice_wins_over_its_accounts(pod_says, account_says, mounted) -> None:
    p = pod() if pod_says is None else pod(automountServiceAccountToken=pod_says)
    account = {"metadata": {"name": "default"}}
    if account_says is not None:
        account["automountServiceAccountToken"] = account_says
    assert (mount_token(p, account) is not None) is mounted
    assert ("volumes" in p["spec"]) is mounted


def test_a_missing_account_still_gets_the_mount() -> None:
    p = pod()
    assert mount_token(p, None) is not None


def test_a_container_that_mounts_the_path_itself_is_left_alone() -> None:
    own = {"name": "mine", "mountPath": MOUNT_PATH}
    p = pod(containers=[{"name": "a", "image": "x", "volumeMounts": [own]},
                        {"name": "b", "image": "x"}],
            volumes=[{"name": "mine", "emptyDir": {}}])
    name = mount_token(p, None)
    a, b = p["spec"]["containers"]
    assert a["volumeMounts"] == [own]
    assert b["volumeMounts"][0]["name"] == name
    assert [v["name"] for v in p["spec"]["volumes"]] == ["mine", name]


def test_no_container_needing_it_adds_no_volume() -> None:
    p = pod(containers=[{"name": "a", "image": "x",
                         "volumeMounts": [{"name": "m", "mountPath": MOUNT_PATH}]}])
    assert mount_token(p, None) is None
    assert "volumes" not in p["spec"]


def test_the_name_never_collides_with_a_volume_of_the_pod() -> None:
    class Fixed(random.Random):
        picks = iter("bbbbb" + "ccccc")

        def choice(self, seq):  # type: ignore[override]
            return next(self.picks)

    p = pod(volumes=[{"name": "kube-api-access-bbbbb", "emptyDir": {}}])
    assert mount_token(p, None, Fixed()) == "kube-api-access-ccccc"
