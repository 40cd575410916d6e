"""A pod never reads the lab's credentials: applied with kubectl, as a user would.

The admin token in ``/run/netlab/<lab>/`` opens the whole API; an ordinary pod
must not see it, nor be able to unmount what hides it, nor see the lab's data in
``/var/lib/netlab``, whatever its image: a stored one (busybox), a built-in one
(netlab/echo) or a host program (an image netlab does not have, with a command).
``privileged: true`` asks for exactly that and gets it; an unknown capability is a
config error naming it.
"""

from __future__ import annotations

import textwrap

import pytest
from labkit import KUBECTL, busybox_images, containers_gone, kubectl, wait_for

from netlab import paths

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

POD = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata: {name: NAME}
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 0
      containers:
      - name: c
        image: netlab/echo
        command: [sh, -c, 'SCRIPT']
        securityContext: SECURITY
    """)


def _pod(name: str, script: str, security: str = "{}", image: str = "netlab/echo") -> str:
    return POD.replace("NAME", name).replace("SCRIPT", script).replace(
        "SECURITY", security).replace("netlab/echo", image)


def _logs(kubeconfig, pod: str) -> str:
    out = kubectl(kubeconfig, "logs", pod)
    return out.stdout if out.returncode == 0 else ""


def _phase(kubeconfig, pod: str) -> str:
    return kubectl(kubeconfig, "get", "pod", pod, "-o", "jsonpath={.status.phase}").stdout


def test_a_pod_cannot_read_the_lab_token_unless_privileged(cluster_lab, kubeconfig):
    token = paths.lab_dir(cluster_lab.name) / "token"
    assert token.exists()  # the credential is there on the host
    script = (f"cat {token} >/dev/null 2>&1 && echo TOKEN-READ || echo TOKEN-HIDDEN; "
              f"umount {paths.STATE_ROOT} 2>/dev/null && echo UNMASKED || echo STILL-MASKED")
    try:
        for name, security in (("plain", "{}"), ("priv", "{privileged: true}")):
            out = kubectl(kubeconfig, "apply", "-f", "-", stdin=_pod(name, script, security))
            assert out.returncode == 0, out.stderr
        for name in ("plain", "priv"):
            wait_for(lambda name=name: _phase(kubeconfig, name) in ("Succeeded", "Failed"), 60,
                     interval=0.2, what=f"pod {name} to finish")
        assert _logs(kubeconfig, "plain").split() == ["TOKEN-HIDDEN", "STILL-MASKED"]
        assert _logs(kubeconfig, "priv").split()[0] == "TOKEN-READ"
    finally:
        kubectl(kubeconfig, "delete", "pod", "plain", "priv", "--ignore-not-found", "--wait=false")


def test_an_unknown_capability_is_a_config_error_naming_it(kubeconfig):
    manifest = _pod("badcap", "true", "{capabilities: {add: [NET_ADMINN]}}")
    try:
        assert kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest).returncode == 0

        def waiting() -> str:
            return kubectl(kubeconfig, "get", "pod", "badcap", "-o", "jsonpath="
                           "{.status.containerStatuses[0].state.waiting.reason}: "
                           "{.status.containerStatuses[0].state.waiting.message}").stdout
        text = wait_for(lambda: "CreateContainerConfigError" in waiting() and waiting(), 60,
                        interval=0.2, what="the config error")
        assert "NET_ADMINN" in text
    finally:
        kubectl(kubeconfig, "delete", "pod", "badcap", "--ignore-not-found", "--wait=false")


def test_no_image_sees_the_lab_token_or_its_data(cluster_lab, kubeconfig):
    token = paths.lab_dir(cluster_lab.name) / "token"
    assert token.exists() and any(paths.DATA_ROOT.iterdir())  # both are there on the host
    script = (f"test -e {token} && echo TOKEN-SEEN || echo TOKEN-HIDDEN; "
              f"test -n \"$(ls -A {paths.DATA_ROOT} 2>/dev/null)\" && echo DATA-SEEN "
              "|| echo DATA-HIDDEN")
    pods = {"stored": "busybox", "host-program": "some/program", "builtin": "netlab/echo"}
    uids: list[str] = []
    with busybox_images():
        try:
            for name, image in pods.items():
                out = kubectl(kubeconfig, "apply", "-f", "-",
                              stdin=_pod(name, script, image=image))
                assert out.returncode == 0, out.stderr
            for name in pods:
                wait_for(lambda name=name: _phase(kubeconfig, name) in ("Succeeded", "Failed"),
                         60, interval=0.2, what=f"pod {name} to finish")
            uids = kubectl(kubeconfig, "get", "pod", *pods, "-o",
                           "jsonpath={.items[*].metadata.uid}").stdout.split()
            for name, image in pods.items():
                assert _logs(kubeconfig, name).split() == ["TOKEN-HIDDEN", "DATA-HIDDEN"], image
        finally:
            kubectl(kubeconfig, "delete", "pod", *pods, "--ignore-not-found", "--wait=false")
            # The images this test built go once no container of these is left.
            containers_gone(cluster_lab.name, uids)
