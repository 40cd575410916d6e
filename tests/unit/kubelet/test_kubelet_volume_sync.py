"""A pod's volume sync while the API server is away: volumes set up once keep their
files and the sync goes on to the containers (restarts must not stop with the API)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiohttp
import pytest

from netlab.node.kubelet.pods import PodWorker

pytestmark = pytest.mark.unit

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
       "spec": {"containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "cfg", "configMap": {"name": "app"}}]}}


class AwayClient:
    async def get(self, *args, **kwargs):
        raise aiohttp.ClientConnectionError("connection refused")


def _worker(tmp_path) -> PodWorker:
    services = SimpleNamespace(client=AwayClient(), puller=None, pull_backoff=None)
    worker = PodWorker(services, "u1", lambda uid: None)  # type: ignore[arg-type]
    worker.sandbox = SimpleNamespace(path=tmp_path)  # type: ignore[assignment]
    worker.pod = worker.known = POD
    return worker


def test_volumes_set_up_once_let_the_sync_go_on_while_the_api_is_away(tmp_path):
    async def scenario() -> tuple[bool, bool]:
        worker = _worker(tmp_path)
        worker.volume_paths = {"cfg": str(tmp_path / "cfg")}
        ready = await worker._sync_volumes(POD)
        fresh = _worker(tmp_path)
        waiting = await fresh._sync_volumes(POD)
        return ready, waiting
    ready, waiting = asyncio.run(scenario())
    assert ready is True  # set up before: the containers are looked after
    assert waiting is False  # never set up: the pod still waits for its volume
