"""Pods deleted the moment their rollout is done go at once, as in a real cluster.

A built-in image is a Python program that used to ignore SIGTERM until its imports
were done (PID 1 of a PID namespace drops a default-disposition signal from
outside), so a delete right after ``kubectl rollout status`` waited out the whole
30 s grace period. Each image is deleted here as a user would do it, straight after
the rollout, and every pod must be gone far sooner than that grace period.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from labkit import KUBECTL, kubectl

from netlab.client import SyncClient, lab_client

pytestmark = pytest.mark.lab

REPLICAS = 10
GRACE_SECONDS = 30  # the default terminationGracePeriodSeconds the pods get
GONE_WITHIN = 5  # the bound; a stop lost during start-up costs the full grace

IMAGES = {
    "echo": ("netlab/echo", []),
    "stress": ("netlab/stress", ["--memory", "1Mi"]),  # holds memory, burns no CPU
    "agnhost": ("registry.k8s.io/e2e-test-images/agnhost:2.47", ["serve-hostname"]),
}


@pytest.fixture
def client(cluster_lab) -> Iterator[SyncClient]:
    with SyncClient(lab_client(cluster_lab.name)) as c:
        yield c


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this host")
@pytest.mark.parametrize("program", list(IMAGES))
def test_a_deployment_deleted_right_after_its_rollout_is_gone_at_once(
        client, kubeconfig, program):
    image, args = IMAGES[program]
    name = f"prompt-{program}"
    labels = {"app": name}
    container = {"name": program, "image": image, **({"args": args} if args else {})}
    client.create({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [container]}}}})
    try:
        rollout = kubectl(kubeconfig, "rollout", "status", f"deployment/{name}",
                          "--timeout=150s")
        assert rollout.returncode == 0, rollout.stdout + rollout.stderr
    finally:
        deleted = kubectl(kubeconfig, "delete", "deployment", name, "--wait=false")
        started = time.monotonic()
    assert deleted.returncode == 0, deleted.stderr
    selector = f"app={name}"
    left: list[str] = []
    while time.monotonic() - started < GRACE_SECONDS + 30:
        left = [p["metadata"]["name"]
                for p in client.list("pods", "default", label_selector=selector)["items"]]
        if not left:
            break
        time.sleep(0.1)
    took = time.monotonic() - started
    assert not left, f"pods still there after {took:.0f}s: {left}"
    assert took < GONE_WITHIN, (
        f"the {REPLICAS} pods took {took:.1f}s to go (grace period {GRACE_SECONDS}s): "
        "a SIGTERM was lost while a container was starting")
