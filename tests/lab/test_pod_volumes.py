"""Pod volumes, as a user of a lab sees them: files of a ConfigMap and a Secret in the
pod (and a ConfigMap update reaching them), an emptyDir two containers share, a hostPath
the kubelet creates, a hostPath with ``mountPropagation: HostToContainer`` (what the
host mounts there later reaches the pod; on a private mount, CreateContainerError), and
the events of volumes that cannot be mounted (a hostPath of the wrong type, a missing
ConfigMap, a PersistentVolumeClaim). Applied with kubectl, looked at with
``netlab exec``."""

from __future__ import annotations

import contextlib
import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import KUBECTL, kubectl, netlab_cli, pod_visible_dir, wait_for

from netlab import paths
from netlab.kernel import mounts

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")

OBJECTS = textwrap.dedent("""\
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: app-config}
    data: {greeting: hello, level: info}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: app-secret}
    stringData: {password: s3cr3t}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: vols, labels: {app: vols}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: a
        image: busybox
        command: [sleep, "3600"]
        volumeMounts:
        - {name: config, mountPath: /etc/app}
        - {name: secret, mountPath: /etc/secret}
        - {name: shared, mountPath: /shared}
        - {name: host, mountPath: /host}
        - {name: info, mountPath: /etc/podinfo}
      - name: b
        image: busybox
        command: [sleep, "3600"]
        env:
        - name: MY_POD
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        volumeMounts:
        - {name: shared, mountPath: /from-a, readOnly: true}
        - {name: shared, mountPath: /mine, subPathExpr: "$(MY_POD)-b"}
      - name: builtin
        image: netlab/echo
        volumeMounts:
        - {name: config, mountPath: /etc/app}
        - {name: shared, mountPath: /srv/shared}
      volumes:
      - name: config
        configMap:
          name: app-config
          items: [{key: greeting, path: greeting}, {key: level, path: conf/level, mode: 0400}]
      - name: secret
        secret: {secretName: app-secret, defaultMode: 0400}
      - {name: shared, emptyDir: {}}
      - name: host
        hostPath: {path: HOSTDIR/made, type: DirectoryOrCreate}
      - name: info
        downwardAPI:
          items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
    """)

BROKEN = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata: {name: NAME}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: c
        image: busybox
        command: [sleep, "3600"]
        volumeMounts: [{name: v, mountPath: /v}]
      volumes:
      - name: v
        VOLUME
    """)


def _exec(lab: str, container: str, script: str, pod: str = "vols") -> str:
    out = netlab_cli("exec", "--lab", lab, "-c", container, pod, "--", "sh", "-c", script)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def volumes_pod(cluster_lab, kubeconfig) -> Iterator[dict[str, Any]]:
    with pod_visible_dir() as host_dir:
        try:
            out = kubectl(kubeconfig, "apply", "-f", "-",
                          stdin=OBJECTS.replace("HOSTDIR", str(host_dir)))
            assert out.returncode == 0, out.stderr
            ready = kubectl(kubeconfig, "wait", "--for=condition=Ready", "pod/vols",
                            "--timeout=120s", timeout=150)
            assert ready.returncode == 0, ready.stderr
            yield {"lab": cluster_lab.name, "kubeconfig": kubeconfig, "host": host_dir}
        finally:
            kubectl(kubeconfig, "delete", "pod", "vols", "--wait=false", "--grace-period=0")
            kubectl(kubeconfig, "delete", "configmap", "app-config", "--ignore-not-found")
            kubectl(kubeconfig, "delete", "secret", "app-secret", "--ignore-not-found")


def test_configmap_and_secret_files_in_the_pod(volumes_pod):
    lab = volumes_pod["lab"]
    out = _exec(lab, "a", "cat /etc/app/greeting; echo; cat /etc/app/conf/level; echo; "
                          "cat /etc/secret/password; echo; stat -L -c %a /etc/secret/password; "
                          "ls -A /etc/app | sort | tr '\\n' ' '; echo; readlink /etc/app/greeting; "
                          "touch /etc/app/x 2>/dev/null && echo WRITABLE || echo READ-ONLY; "
                          "cat /etc/podinfo/labels")
    lines = out.splitlines()
    assert lines[:4] == ["hello", "info", "s3cr3t", "400"], out
    # The atomic writer's layout: ..data, a timestamped directory, links to ..data/<key>.
    names = lines[4].split()
    assert "..data" in names and "greeting" in names and "conf" in names, out
    assert any(n.startswith("..20") for n in names), out
    assert lines[5] == "..data/greeting" and lines[6] == "READ-ONLY", out
    assert lines[7] == 'app="vols"', out


def test_a_builtin_image_mounts_volumes_in_its_own_root(volumes_pod):
    """netlab/echo has no image of its own: its root is built from the host's /usr
    and /etc, so /etc/app and /srv/shared are made there, not on the host."""
    out = _exec(volumes_pod["lab"], "builtin",
                "cat /etc/app/greeting; echo; echo builtin > /srv/shared/from-builtin; "
                "test -e /run/netlab && echo LAB-VISIBLE || echo LAB-HIDDEN")
    assert out.split() == ["hello", "LAB-HIDDEN"], out
    assert _exec(volumes_pod["lab"], "a", "cat /shared/from-builtin").strip() == "builtin"
    assert not Path("/etc/app").exists() and not Path("/srv/shared").exists()


def test_a_configmap_update_reaches_the_file(volumes_pod):
    lab, kubeconfig = volumes_pod["lab"], volumes_pod["kubeconfig"]
    patch = json.dumps({"data": {"greeting": "updated"}})
    out = kubectl(kubeconfig, "patch", "configmap", "app-config", "-p", patch)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: _exec(lab, "a", "cat /etc/app/greeting") == "updated", 90, interval=1.0,
             what="the ConfigMap update in the pod's file")


def test_an_emptydir_is_shared_by_the_pods_containers(volumes_pod):
    lab = volumes_pod["lab"]
    _exec(lab, "a", "echo from-a > /shared/note")
    assert _exec(lab, "b", "cat /from-a/note; touch /from-a/x 2>/dev/null || echo READ-ONLY"
                 ).split() == ["from-a", "READ-ONLY"]


def test_a_sub_path_expr_mounts_the_directory_its_variables_name(volumes_pod):
    lab = volumes_pod["lab"]
    _exec(lab, "b", "echo mine > /mine/note")
    assert _exec(lab, "a", "cat /shared/vols-b/note").strip() == "mine"


def test_a_hostpath_directory_is_created_and_shared_with_the_host(volumes_pod):
    host: Path = volumes_pod["host"]
    assert (host / "made").is_dir()
    _exec(volumes_pod["lab"], "a", "echo from-pod > /host/out")
    assert (host / "made" / "out").read_text() == "from-pod\n"


# Kubernetes' "Configure a Security Context" example: runAsUser, runAsGroup, fsGroup and
# supplementalGroups, an emptyDir and a Secret volume.
SECURITY_DEMO = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata: {name: security-context-demo}
    spec:
      terminationGracePeriodSeconds: 0
      securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000,
                        supplementalGroups: [4000]}
      volumes:
      - {name: sec-ctx-vol, emptyDir: {}}
      - name: secret
        secret: {secretName: app-secret, defaultMode: 0400}
      containers:
      - name: sec-ctx-demo
        image: busybox
        command: [sh, -c, "sleep 1h"]
        volumeMounts:
        - {name: sec-ctx-vol, mountPath: /data/demo}
        - {name: secret, mountPath: /etc/secret}
    """)


def test_fs_group_and_supplemental_groups_as_in_the_kubernetes_docs(volumes_pod):
    lab, kubeconfig = volumes_pod["lab"], volumes_pod["kubeconfig"]
    try:
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=SECURITY_DEMO)
        assert out.returncode == 0, out.stderr
        ready = kubectl(kubeconfig, "wait", "--for=condition=Ready",
                        "pod/security-context-demo", "--timeout=120s", timeout=150)
        assert ready.returncode == 0, ready.stderr
        for run in ("the container", "kubectl exec"):
            script = ("id -u; id -g; id -G; stat -c '%g %A' /data/demo; "
                      "echo hello > /data/demo/testfile; stat -c '%g' /data/demo/testfile; "
                      "cat /etc/secret/password; echo; stat -L -c '%g %a' /etc/secret/password")
            if run == "the container":
                got = _exec(lab, "sec-ctx-demo", script, pod="security-context-demo")
            else:
                done = kubectl(kubeconfig, "exec", "security-context-demo", "--", "sh", "-c",
                               script)
                assert done.returncode == 0, done.stderr
                got = done.stdout
            lines = got.splitlines()
            # The process runs as 1000:3000 with groups 2000 (fsGroup) and 4000 (the
            # kernel keeps them sorted); the
            # emptyDir is the fsGroup's, setgid, so a new file is the group's too; the
            # secret's file (mode 0400) is readable by the group: 0440.
            assert lines[:3] == ["1000", "3000", "3000 2000 4000"], (run, got)
            assert lines[3] == "2000 drwxrwsrwx" and lines[4] == "2000", (run, got)
            assert lines[5:] == ["s3cr3t", "2000 440"], (run, got)
    finally:
        kubectl(kubeconfig, "delete", "pod", "security-context-demo", "--wait=false",
                "--grace-period=0")


def _events(kubeconfig, pod: str) -> list[dict[str, Any]]:
    out = kubectl(kubeconfig, "get", "events", "-o", "json")
    items = json.loads(out.stdout).get("items", []) if out.returncode == 0 else []
    return [e for e in items if e.get("involvedObject", {}).get("name") == pod]


def _broken(kubeconfig, name: str, volume: str, want: str) -> dict[str, Any]:
    manifest = BROKEN.replace("NAME", name).replace("VOLUME", volume)
    try:
        out = kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
        assert out.returncode == 0, out.stderr
        event = wait_for(lambda: next((e for e in _events(kubeconfig, name)
                                       if e.get("reason") == "FailedMount"), None), 60,
                         interval=0.5, what=f"the FailedMount event of {name}")
        assert event["type"] == "Warning" and event["message"] == want, event
        pod = json.loads(kubectl(kubeconfig, "get", "pod", name, "-o", "json").stdout)
        assert pod["status"]["phase"] == "Pending", pod["status"]
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "ContainerCreating", pod["status"]
        return event
    finally:
        kubectl(kubeconfig, "delete", "pod", name, "--wait=false", "--grace-period=0")


def test_a_hostpath_of_the_wrong_type_is_upstreams_event(volumes_pod):
    host: Path = volumes_pod["host"]
    _broken(volumes_pod["kubeconfig"], "wrongtype",
            f"hostPath: {{path: {host}, type: File}}",
            f'MountVolume.SetUp failed for volume "v" : hostPath type check failed: '
            f"{host} is not a file")


def test_a_missing_configmap_keeps_the_pod_waiting(volumes_pod):
    _broken(volumes_pod["kubeconfig"], "nocm", "configMap: {name: nope}",
            'MountVolume.SetUp failed for volume "v" : configmap "nope" not found')


# A pod naming a claim that does not exist stays Pending (the scheduler's VolumeBinding):
# tests/lab/test_persistent_volumes.py.


PROPAGATION = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata: {name: NAME}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: c
        image: busybox
        command: [sleep, "3600"]
        volumeMounts: [{name: v, mountPath: /v, mountPropagation: HostToContainer}]
      volumes:
      - name: v
        hostPath: {path: HOSTDIR}
    """)


@contextlib.contextmanager
def _own_mount(path: Path, propagation: str) -> Iterator[Path]:
    """``path`` bound onto itself with its own propagation, undone afterwards."""
    path.mkdir()
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", f"--make-{propagation}", str(path)], check=True)
        yield path
    finally:
        mounts.unmount_below(str(path))


def test_host_to_container_shows_what_the_host_mounts_later(volumes_pod):
    kubeconfig = volumes_pod["kubeconfig"]
    with _own_mount(volumes_pod["host"] / "shared-mount", "shared") as shared:
        (shared / "later").mkdir()
        manifest = PROPAGATION.replace("NAME", "h2c").replace("HOSTDIR", str(shared))
        try:
            assert kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest).returncode == 0
            ready = kubectl(kubeconfig, "wait", "--for=condition=Ready", "pod/h2c",
                            "--timeout=120s", timeout=150)
            assert ready.returncode == 0, ready.stderr
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "nlt-h2c",
                            str(shared / "later")], check=True)
            (shared / "later" / "f").write_text("mounted on the host\n")
            assert _exec(volumes_pod["lab"], "c", "cat /v/later/f", pod="h2c") == \
                "mounted on the host\n"
        finally:
            kubectl(kubeconfig, "delete", "pod", "h2c", "--wait=false", "--grace-period=0")


def test_host_to_container_from_a_private_mount_is_a_create_error(volumes_pod):
    kubeconfig = volumes_pod["kubeconfig"]
    with _own_mount(volumes_pod["host"] / "private-mount", "private") as private:
        manifest = PROPAGATION.replace("NAME", "h2cprivate").replace("HOSTDIR", str(private))
        want = (f'path "{private}" is mounted on "{private}" but it is not a shared or slave '
                "mount")
        try:
            assert kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest).returncode == 0
            event = wait_for(lambda: next((e for e in _events(kubeconfig, "h2cprivate")
                                           if e.get("reason") == "Failed"), None), 60,
                             interval=0.5, what="the Failed event of h2cprivate")
            assert event["type"] == "Warning" and event["message"] == f"Error: {want}", event
            pod = json.loads(kubectl(kubeconfig, "get", "pod", "h2cprivate", "-o",
                                     "json").stdout)
            waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
            assert waiting == {"reason": "CreateContainerError", "message": want}, waiting
        finally:
            kubectl(kubeconfig, "delete", "pod", "h2cprivate", "--wait=false",
                    "--grace-period=0")


def test_the_volumes_go_with_the_pod(volumes_pod):
    """Last: deletes the pod. Its emptyDir and volume files live in its directory."""
    kubeconfig = volumes_pod["kubeconfig"]
    pods_dir = paths.lab_dir(volumes_pod["lab"]) / "pods"
    uid = kubectl(kubeconfig, "get", "pod", "vols", "-o", "jsonpath={.metadata.uid}").stdout
    (pod_dir,) = [d for d in pods_dir.iterdir() if d.name.endswith(f"_vols_{uid}")]
    assert (pod_dir / "volumes" / "kubernetes.io~empty-dir" / "shared" / "note").exists()
    out = kubectl(kubeconfig, "delete", "pod", "vols", "--wait=false")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: not pod_dir.exists(), 60, interval=0.5, what="the pod's directory to go")
    assert (volumes_pod["host"] / "made" / "out").exists()  # a hostPath is the host's
