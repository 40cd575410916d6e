"""The kubelet's side of pulls: which images are pulled under which policy, pull
secrets from the pod and its ServiceAccount, one shared pull for concurrent pods."""

from __future__ import annotations

import asyncio
import base64
import json
import types
from typing import Any

import pytest

from netlab.client import APIError
from netlab.images import registry
from netlab.images.credentials import Credential
from netlab.images.store import ImageStore
from netlab.node.kubelet import images
from netlab.node.kubelet.restarts import Backoff

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("image, policy, stored, pull", [
    ("10.0.0.5:5000/app", None, False, True),  # untagged: Always
    ("10.0.0.5:5000/app:latest", None, True, True),
    ("10.0.0.5:5000/app:v1", None, True, False),  # a tag: IfNotPresent
    ("10.0.0.5:5000/app:v1", None, False, True),
    ("10.0.0.5:5000/app:v1", "Always", True, True),
    ("10.0.0.5:5000/app:v1", "Never", False, False),
    ("localhost:5000/app@sha256:" + "a" * 64, None, False, True),
    ("busybox", "Always", False, False),  # Docker Hub: never pulled
    ("docker.io/library/nginx:1.25", "IfNotPresent", False, False),
    ("registry.k8s.io/pause:3.9", "Always", False, False),  # built in
    ("netlab/echo", "Always", False, False),
])
def test_needs_pull(image, policy, stored, pull):
    container: dict[str, Any] = {"name": "c", "image": image}
    if policy:
        container["imagePullPolicy"] = policy
    assert images.needs_pull(container, object() if stored else None) is pull  # type: ignore


def test_go_durations():
    assert images.go_duration(0.5234) == "523ms"
    assert images.go_duration(1.2049) == "1.204s"
    assert images.go_duration(2.0) == "2s"
    assert images.go_duration(62.5) == "1m2.5s"


def _secret(name: str, kind: str, auths: dict[str, Any]) -> dict[str, Any]:
    key = ".dockerconfigjson" if kind == "kubernetes.io/dockerconfigjson" else ".dockercfg"
    doc = {"auths": auths} if key == ".dockerconfigjson" else auths
    return {"metadata": {"name": name, "namespace": "team"}, "type": kind,
            "data": {key: base64.b64encode(json.dumps(doc).encode()).decode()}}


class FakeClient:
    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects

    async def get(self, resource: str, name: str, namespace: str | None = None) -> Any:
        found = self.objects.get((resource, name))
        if found is None:
            raise APIError(404, {"kind": "Status", "code": 404, "reason": "NotFound",
                                 "message": f'{resource} "{name}" not found'})
        return found


def test_pull_credentials_from_pod_and_service_account():
    auth = base64.b64encode(b"alice:pw").decode()
    client = FakeClient({
        ("secrets", "json"): _secret("json", "kubernetes.io/dockerconfigjson",
                                     {"10.0.0.5:5000": {"auth": auth}}),
        ("secrets", "cfg"): _secret("cfg", "kubernetes.io/dockercfg",
                                    {"10.0.0.5:5001": {"username": "bob", "password": "x"}}),
        ("secrets", "opaque"): {"metadata": {"name": "opaque"}, "type": "Opaque", "data": {}},
        ("serviceaccounts", "builder"): {"imagePullSecrets": [{"name": "cfg"}]},
    })
    pod = {"metadata": {"name": "p", "namespace": "team"},
           "spec": {"serviceAccountName": "builder",
                    "imagePullSecrets": [{"name": "json"}, {"name": "gone"},
                                         {"name": "opaque"}]}}
    keyring, missing, invalid = asyncio.run(
        images.pull_credentials(client, pod))  # type: ignore[arg-type]
    from netlab.images.reference import parse
    assert keyring.lookup(parse("10.0.0.5:5000/app")) == [Credential("alice", "pw")]
    assert keyring.lookup(parse("10.0.0.5:5001/app")) == [Credential("bob", "x")]
    assert missing == ["gone"]
    assert len(invalid) == 1 and "team/opaque" not in invalid[0] and "Opaque" in invalid[0]


def test_concurrent_pulls_share_one(tmp_path, monkeypatch):
    calls: list[tuple[str, list]] = []
    gate: asyncio.Event | None = None

    async def fake_pull(image, store, credentials, http=None, plain_http=()):
        calls.append((image, list(credentials)))
        assert gate is not None
        await gate.wait()
        raise registry.PullError("nope", 404)

    monkeypatch.setattr(registry, "pull", fake_pull)

    async def run() -> list[images.Pulled]:
        nonlocal gate
        gate = asyncio.Event()
        puller = images.ImagePuller(ImageStore(tmp_path / "images"))
        try:
            a = puller.pull("10.0.0.5:5000/app:v1", [])
            b = puller.pull("10.0.0.5:5000/app:v1", [])
            c = puller.pull("10.0.0.5:5000/app:v1", [Credential("u", "p")])
            assert a is b and a is not c and puller.in_flight() == 2
            await asyncio.sleep(0)
            gate.set()
            out = [await a, await c]
            await asyncio.sleep(0)  # done callbacks run on the loop's next turn
            assert puller.in_flight() == 0
            return out
        finally:
            await puller.close()

    first, second = asyncio.run(run())
    assert second.error == "nope"
    assert len(calls) == 2
    assert first.result is None and first.error == "nope"


class FakeWorker:
    """What PodPulls records through: events, Waiting reasons, wake-ups."""

    def __init__(self) -> None:
        self.uid = "uid-1"
        self.waiting: dict[str, tuple[str, str]] = {}
        self.events: list[tuple[str, str, str]] = []
        self.woken = 0
        self.later: list[float] = []
        self._seen: set = set()

    def event(self, pod, type_, reason, message, container=None, init=False) -> None:
        self.events.append((type_, reason, message))

    def first(self, key) -> bool:
        new = key not in self._seen
        self._seen.add(key)
        return new

    def wake(self) -> None:
        self.woken += 1

    def wake_later(self, delay: float) -> None:
        self.later.append(delay)


class FakePuller:
    def __init__(self) -> None:
        self.outcomes: list[images.Pulled] = []
        self.calls: list[tuple[str, list]] = []

    def pull(self, image, credentials):
        self.calls.append((image, list(credentials)))
        outcome = self.outcomes.pop(0)

        async def done() -> images.Pulled:
            return outcome
        return asyncio.ensure_future(done())


def test_pod_pulls_fail_back_off_and_succeed():
    """EnsureImageExists over three syncs: a failed pull (ErrImagePull), a sync in its
    back-off (ImagePullBackOff), then a pull that succeeds, with upstream's events."""
    image = "10.0.0.5:5000/app:v1"
    pod = {"metadata": {"name": "p", "namespace": "team", "uid": "uid-1"}, "spec": {}}
    container = {"name": "app", "image": image}
    worker, puller = FakeWorker(), FakePuller()
    client = FakeClient({})
    stored = types.SimpleNamespace(size=1234)  # what the event reads of a StoredImage
    result = registry.PullResult(stored, image, "sha256:" + "b" * 64, 10)  # type: ignore
    puller.outcomes = [images.Pulled(None, "failed to pull and unpack image: 401", 0.2),
                       images.Pulled(result, None, 0.25)]

    async def run() -> None:
        pulls = images.PodPulls(worker, client, puller, Backoff(5.0, 300.0))  # type: ignore
        assert await pulls.ensure(pod, container, False) is None  # started
        assert worker.events[-1] == ("Normal", "Pulling", f'Pulling image "{image}"')
        assert pulls.started("app")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert worker.woken == 1
        assert await pulls.ensure(pod, container, False) is None  # failed
        assert worker.waiting["app"] == ("ErrImagePull", "failed to pull and unpack image: 401")
        assert worker.events[-2:] == [
            ("Warning", "Failed", f'Failed to pull image "{image}": failed to pull and unpack '
             "image: 401"), ("Warning", "Failed", "Error: ErrImagePull")]
        assert await pulls.ensure(pod, container, False) is None  # within the back-off
        assert worker.waiting["app"] == ("ImagePullBackOff", f'Back-off pulling image "{image}"')
        assert worker.events[-2:] == [("Normal", "BackOff", f'Back-off pulling image "{image}"'),
                                      ("Warning", "Failed", "Error: ImagePullBackOff")]
        assert 0 < worker.later[-1] <= 5.0 and len(puller.calls) == 1
        pulls.failed[image] -= 6  # the back-off is over
        assert await pulls.ensure(pod, container, False) is None  # pulling again
        await asyncio.sleep(0)
        got = await pulls.ensure(pod, container, False)
        assert got is stored and "app" not in worker.waiting
        assert worker.events[-1][1] == "Pulled" and worker.events[-1][2].startswith(
            f'Successfully pulled image "{image}" in 250ms (')
        assert worker.events[-1][2].endswith("including waiting). Image size: 1234 bytes.")
        assert not pulls.started("app")

    asyncio.run(run())
