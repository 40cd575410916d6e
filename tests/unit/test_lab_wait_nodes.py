"""``up``'s wait for the Nodes (``control.wait_nodes_ready``) against a real API
server on a unix socket: it returns once every Node is Ready, having listed the Nodes
once and watched them since (no list per poll), and names the Nodes still not Ready
at its deadline."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import wait_for

from netlab.client import Client, SyncClient
from netlab.lab import control
from netlab.master.apiserver import Config, make_app
from netlab.master.store import MemoryStore


class UnixServer:
    """The API on a unix socket in a thread of its own, counting the requests for Nodes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: list[str] = []  # "LIST" or "WATCH", for /api/v1/nodes
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        from aiohttp import web

        app = make_app(MemoryStore(), Config())

        async def count(request: Any, _response: Any) -> None:
            if request.path == "/api/v1/nodes" and request.method == "GET":
                self.requests.append("WATCH" if request.query.get("watch") == "true"
                                     else "LIST")
        app.on_response_prepare.append(count)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.UnixSite(runner, str(self.path)).start()
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> UnixServer:
        self._thread.start()
        assert self._ready.wait(30), "the API server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def node(name: str, ready: bool) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready",
                                       "status": "True" if ready else "False"}]}}


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UnixServer]:
    sock = tmp_path / "api.sock"
    monkeypatch.setattr(control, "lab_client",
                        lambda lab, timeout=30.0: Client(unix_socket=str(sock), timeout=timeout))
    monkeypatch.setattr(control, "log_dir", lambda lab: tmp_path)
    with UnixServer(sock) as server:
        yield server


def test_returns_when_the_last_node_turns_ready_listing_once(api: UnixServer) -> None:
    with SyncClient(Client(unix_socket=str(api.path))) as client:
        client.create(node("a", ready=True))
        client.create(node("b", ready=False))
        outcome: list[BaseException | None] = []

        def wait() -> None:
            try:
                control.wait_nodes_ready("lab", ["a", "b"], 30)
                outcome.append(None)
            except BaseException as exc:  # reported below
                outcome.append(exc)
        waiter = threading.Thread(target=wait)
        waiter.start()
        # Node b turns Ready once the waiter is following the Nodes: by a watch, or by
        # a second list (how a poll would follow them).
        wait_for(lambda: "WATCH" in api.requests or api.requests.count("LIST") > 1, 30,
                 what="the waiter to follow the Nodes")
        client.update(node("b", ready=True) | {
            "metadata": {"name": "b",
                         "resourceVersion": client.get("nodes", "b")["metadata"][
                             "resourceVersion"]}}, subresource="status")
        waiter.join(30)
    assert outcome == [None]
    assert api.requests.count("LIST") == 1, api.requests


def test_names_the_nodes_not_ready_at_the_deadline(api: UnixServer) -> None:
    with SyncClient(Client(unix_socket=str(api.path))) as client:
        client.create(node("a", ready=True))
        client.create(node("b", ready=False))
    with pytest.raises(control.ControlPlaneError, match=r"1 nodes not Ready after 1s: b\b"):
        control.wait_nodes_ready("lab", ["a", "b"], 1)


def test_up_also_waits_for_every_component_to_be_started(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # In a 100-node lab the Nodes were Ready before the supervisor had forked the last
    # policy agents: up returned with components not yet running (pid null).
    table = tmp_path / "components.json"
    monkeypatch.setattr(control, "components_path", lambda lab: table)
    monkeypatch.setattr(control, "log_dir", lambda lab: tmp_path)
    (tmp_path / "netpol-w9.log").write_text("--- starting netpol-w9\n")
    rows = {"kubelet-w9": {"pid": 101}, "netpol-w9": {"pid": None}}
    table.write_text(json.dumps(rows))
    done = threading.Event()

    def wait() -> None:
        control.wait_components_started("lab", 30)
        done.set()
    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        assert not done.wait(0.3), "returned while netpol-w9 had no process"
        rows["netpol-w9"]["pid"] = 102
        table.write_text(json.dumps(rows))
        assert done.wait(30)
    finally:
        waiter.join(30)
    table.write_text(json.dumps({"kubelet-w9": {"pid": 101}, "netpol-w9": {"pid": None}}))
    with pytest.raises(control.ControlPlaneError, match=r"1 components not running after 0s: "
                                                        r"netpol-w9\nnetpol-w9: .*starting"):
        control.wait_components_started("lab", 0)
