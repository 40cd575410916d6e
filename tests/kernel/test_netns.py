"""Namespaces made without forking: visible to iproute2, isolated, and removable."""

from __future__ import annotations

import errno
import subprocess

import pytest
from labkit import unique_lab, wait_for

from netlab.kernel import netns


def test_created_namespace_is_visible_to_ip_netns(make_netns):
    name = make_netns("a")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name in listed
    links = subprocess.run(["ip", "-n", name, "-o", "link"], capture_output=True, text=True).stdout
    assert links.count("\n") == 1 and "lo:" in links  # a fresh namespace has only lo


def test_setup_runs_inside_and_the_caller_stays_outside(make_netns):
    outside = netns.read_sysctl("net.ipv4.ip_forward")

    def setup() -> str:
        netns.write_sysctl("net.ipv4.ip_forward", "1")
        return netns.read_sysctl("net.ipv4.ip_forward")

    name = make_netns("fwd", setup)
    assert netns.run_in_netns(name, lambda: netns.read_sysctl("net.ipv4.ip_forward")) == "1"
    assert netns.read_sysctl("net.ipv4.ip_forward") == outside


def test_creating_an_existing_name_fails_and_keeps_it(make_netns):
    name = make_netns("dup")
    with pytest.raises(OSError) as err:
        netns.create_netns(name)
    assert err.value.errno == errno.EEXIST
    assert netns.exists(name)


def test_a_namespace_whose_setup_fails_is_removed_again():
    # setup tags a lab's namespace; one left untagged after a failure (too many open
    # files while tagging it) would be nobody's to remove.
    name = f"{unique_lab()}-setup"

    def setup() -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    try:
        with pytest.raises(OSError, match="Too many open files"):
            netns.create_netns(name, setup)
        assert not netns.exists(name)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert name not in listed
    finally:
        netns.delete_netns(name)


def test_run_in_missing_namespace_explains():
    with pytest.raises(OSError, match="does not exist"):
        netns.run_in_netns("nlt-no-such-namespace", lambda: None)


def test_delete_is_idempotent(make_netns):
    name = make_netns("gone")
    assert netns.delete_netns(name) is True
    assert netns.delete_netns(name) is False
    assert not netns.exists(name)


def test_processes_inside_are_found_and_stopped(make_netns):
    from netlab.kernel.processes import kill_in_netns

    name = make_netns("procs")
    proc = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "60"], start_new_session=True)
    try:
        found = wait_for(lambda: netns.pids_in_netns([name]), 5, what="sleep inside")
        assert proc.pid in found
        assert proc.pid in kill_in_netns([name])
        proc.wait(timeout=5)
        assert netns.pids_in_netns([name]) == {}
    finally:
        if proc.poll() is None:
            proc.kill()


def test_parallel_returns_results_in_order_and_reraises():
    assert netns.parallel([lambda i=i: i * i for i in range(5)]) == [0, 1, 4, 9, 16]
    with pytest.raises(ZeroDivisionError):
        netns.parallel([lambda: 1, lambda: 1 / 0])
