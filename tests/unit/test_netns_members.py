"""``netns.NetnsMembers``: a node's processes without a scan of /proc per look.

Each kubelet measures its node's processes every usage period; a scan of /proc
each time made a 100-node lab's idle cost grow with the square of its nodes.
These tests stand in for /proc (a fake process table) and count the scans.
"""

from __future__ import annotations

import pytest

from netlab.kernel import netns


class FakeHost:
    def __init__(self) -> None:
        self.namespaces = {"lab-w1": (1, 100), "lab-w2": (1, 200)}
        self.processes = {10: (1, 100), 11: (1, 100), 20: (1, 200)}
        self.now = 0.0

    def netns_inode(self, name: str):
        return self.namespaces.get(name)

    def process_netns(self, pid: int):
        return self.processes.get(pid)

    def pids_in_netns(self, names):
        wanted = {self.namespaces[n]: n for n in names if n in self.namespaces}
        return {pid: wanted[ino] for pid, ino in self.processes.items() if ino in wanted}


@pytest.fixture
def host(monkeypatch) -> FakeHost:
    fake = FakeHost()
    for name in ("netns_inode", "process_netns", "pids_in_netns"):
        monkeypatch.setattr(netns, name, getattr(fake, name))
    return fake


def members(host: FakeHost, rescan: float = 60.0) -> netns.NetnsMembers:
    return netns.NetnsMembers("lab-w1", rescan=rescan, clock=lambda: host.now)


def test_finds_the_namespace_processes_and_then_keeps_them(host) -> None:
    m = members(host)
    assert m.pids() == {10, 11}
    host.now = 50.0
    assert m.pids() == {10, 11}
    assert m.scans == 1


def test_a_process_gone_means_a_new_scan(host) -> None:
    m = members(host)
    m.pids()
    del host.processes[11]          # the proxy died ...
    host.processes[12] = (1, 100)   # ... and was restarted with a new pid
    assert m.pids() == {10, 12}
    assert m.scans == 2


def test_a_process_that_left_the_namespace_means_a_new_scan(host) -> None:
    m = members(host)
    m.pids()
    host.processes[11] = (1, 200)
    assert m.pids() == {10}


def test_a_recreated_namespace_means_a_new_scan(host) -> None:
    m = members(host)
    m.pids()
    host.namespaces["lab-w1"] = (1, 300)
    host.processes = {30: (1, 300)}
    assert m.pids() == {30}


def test_a_process_started_inside_by_hand_is_counted_after_the_rescan_period(host) -> None:
    m = members(host, rescan=60.0)
    m.pids()
    host.processes[13] = (1, 100)   # e.g. tcpdump run in the node's namespace
    host.now = 30.0
    assert m.pids() == {10, 11}
    host.now = 61.0
    assert m.pids() == {10, 11, 13}
    assert m.scans == 2
